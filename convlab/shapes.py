r"""Output-shape arithmetic: padding forms, the output-size formula, receptive fields.

Padding ``p`` is the number of zeros added on **each side**, as in PyTorch and in
Dumoulin & Visin's convolution-arithmetic guide. Along one axis, an input of size
``i``, a kernel of size ``k``, padding ``p``, stride ``s`` and dilation ``d`` give

.. math:: o = \left\lfloor \frac{i + 2p - d(k - 1) - 1}{s} \right\rfloor + 1

and a transposed convolution with the same options, and ``output_padding`` ``a``,

.. math:: o = s(i - 1) + d(k - 1) + 1 - 2p + a
"""

from typing import NamedTuple

from ._checks import pair

PADDING_MODES = ("valid", "same", "full")


class Geometry(NamedTuple):
    """Every size of one correlation, each a pair ``(height, width)`` except ``padding``."""

    padding: tuple  # zeros added (top, bottom, left, right)
    stride: tuple
    dilation: tuple
    output: tuple


class TransposedGeometry(NamedTuple):
    """Every size of one transposed convolution, each a pair ``(height, width)``."""

    padding: tuple  # rows and columns cropped from each side
    stride: tuple
    dilation: tuple
    output_padding: tuple  # rows and columns added at the bottom and right
    output: tuple


def resolve_padding(padding, kernel_hw, *, stride=1, dilation=1):
    """Return the zeros added to ``(top, bottom, left, right)`` for a padding option.

    ``padding`` is an int, a pair ``(ph, pw)`` per side, or one of ``'valid'``
    (none), ``'same'`` (output as large as the input; stride 1 only) and
    ``'full'`` (every position where the kernel overlaps the input). For an even
    kernel, ``'same'`` puts the extra row and column at the bottom and right,
    as PyTorch does.

    Examples
    --------
    >>> resolve_padding(1, (3, 3))
    (1, 1, 1, 1)
    >>> resolve_padding('same', (2, 4))
    (0, 1, 1, 2)
    >>> resolve_padding('full', (3, 3), dilation=2)
    (4, 4, 4, 4)
    """
    kernel = pair(kernel_hw, "kernel size")
    return _resolve(padding, kernel, pair(stride, "stride"), pair(dilation, "dilation"), stride)


def _resolve(padding, kernel, stride, dilation, given_stride):
    """``resolve_padding`` for sizes already turned into pairs; ``given_stride`` is for messages."""
    (kh, kw), (dh, dw) = kernel, dilation
    # The extent of a dilated kernel, minus one: the zeros 'full' adds per side.
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "full":
            return (eh, eh, ew, ew)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride={given_stride!r}")
            return (eh // 2, eh - eh // 2, ew // 2, ew - ew // 2)
        raise ValueError(f"padding must be an int, a pair (ph, pw) or one of {PADDING_MODES}, got {padding!r}")
    try:
        ph, pw = pair(padding, "padding", minimum=0)
    except TypeError:
        raise TypeError(
            f"padding must be an int, a pair (ph, pw) or one of {PADDING_MODES}, got {padding!r}"
        ) from None
    return (ph, ph, pw, pw)


def output_shape(input_hw, kernel_hw, *, padding=0, stride=1, dilation=1):
    """Return the output size ``(oh, ow)`` of a 2-D cross-correlation.

    Parameters
    ----------
    input_hw, kernel_hw : int or pair of int
        Height and width of the input and of the kernel.
    padding : int, pair of int, or {'valid', 'same', 'full'}
        Zeros added on each side (see :func:`resolve_padding`).
    stride, dilation : int or pair of int
        Step between windows, and spacing between kernel taps.

    Returns
    -------
    tuple of int
        ``floor((i + 2p - d(k-1) - 1) / s) + 1`` along each axis.

    Examples
    --------
    The lecture's case: an 8x8 input, a 3x5 kernel, padding (0, 1), stride (3, 4).

    >>> output_shape((8, 8), (3, 5), padding=(0, 1), stride=(3, 4))
    (2, 2)
    >>> output_shape((5, 5), (3, 3), padding='full')
    (7, 7)
    """
    return geometry(input_hw, kernel_hw, padding=padding, stride=stride, dilation=dilation).output


def transposed_output_shape(input_hw, kernel_hw, *, padding=0, stride=1, dilation=1, output_padding=0):
    """Return the output size ``(oh, ow)`` of a 2-D transposed convolution.

    Parameters
    ----------
    input_hw, kernel_hw : int or pair of int
        Height and width of the input and of the kernel.
    padding : int or pair of int
        Rows and columns cropped from each side of the output, as in
        ``torch.nn.functional.conv_transpose2d``.
    stride, dilation : int or pair of int
        Spacing between the copies of the kernel, and between its taps.
    output_padding : int or pair of int
        Rows and columns added at the bottom and right; each must be smaller than
        the stride or the dilation along its axis, as PyTorch requires.

    Returns
    -------
    tuple of int
        ``s(i - 1) + d(k - 1) + 1 - 2p + output_padding`` along each axis.

    Examples
    --------
    A 3x3 kernel at stride 2 doubles a 4x4 input, less one row and column,
    unless ``output_padding`` adds them back:

    >>> transposed_output_shape((4, 4), (3, 3), stride=2, padding=1)
    (7, 7)
    >>> transposed_output_shape((4, 4), (3, 3), stride=2, padding=1, output_padding=1)
    (8, 8)
    """
    return transposed_geometry(input_hw, kernel_hw, padding=padding, stride=stride, dilation=dilation,
                               output_padding=output_padding).output


def transposed_geometry(input_hw, kernel_hw, *, padding=0, stride=1, dilation=1, output_padding=0):
    """Check every size of a transposed convolution once; ``padding`` of the result is ``(ph, pw)``.

    Examples
    --------
    >>> transposed_geometry((2, 3), 3, stride=(2, 1), output_padding=(1, 0))
    TransposedGeometry(padding=(0, 0), stride=(2, 1), dilation=(1, 1), output_padding=(1, 0), output=(6, 5))
    """
    ih, iw = pair(input_hw, "input size")
    kh, kw = pair(kernel_hw, "kernel size")
    try:
        ph, pw = pair(padding, "padding", minimum=0)
    except TypeError:
        raise TypeError(f"padding must be an int or a pair (ph, pw) of ints >= 0, got {padding!r}") from None
    sh, sw = pair(stride, "stride")
    dh, dw = pair(dilation, "dilation")
    ah, aw = pair(output_padding, "output_padding", minimum=0)
    if not (ah < max(sh, dh) and aw < max(sw, dw)):
        raise ValueError(
            f"output_padding must be smaller than the stride or the dilation along each axis, "
            f"got output_padding={output_padding!r} with stride={stride!r} and dilation={dilation!r}"
        )
    output = (sh * (ih - 1) + dh * (kh - 1) + 1 - 2 * ph + ah, sw * (iw - 1) + dw * (kw - 1) + 1 - 2 * pw + aw)
    if min(output) < 1:
        raise ValueError(
            f"padding={padding!r} crops more than the transposed convolution produces: input size "
            f"{(ih, iw)}, kernel size {(kh, kw)} and stride={stride!r} would give an output of size "
            f"{output}; use less padding"
        )
    return TransposedGeometry((ph, pw), (sh, sw), (dh, dw), (ah, aw), output)


def geometry(input_hw, kernel_hw, *, padding=0, stride=1, dilation=1):
    """Check every size of a correlation once and return them as a :class:`Geometry`.

    Takes the arguments of :func:`output_shape`. The correlation functions call
    it once per call, so that each argument is checked, and each message
    raised, in one place.

    Examples
    --------
    >>> geometry((8, 8), (3, 5), padding=(0, 1), stride=(3, 4))
    Geometry(padding=(0, 0, 1, 1), stride=(3, 4), dilation=(1, 1), output=(2, 2))
    """
    ih, iw = pair(input_hw, "input size")
    kh, kw = pair(kernel_hw, "kernel size")
    sh, sw = pair(stride, "stride")
    dh, dw = pair(dilation, "dilation")
    pads = _resolve(padding, (kh, kw), (sh, sw), (dh, dw), stride)
    top, bottom, left, right = pads
    padded = (ih + top + bottom, iw + left + right)
    extent = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    if extent[0] > padded[0] or extent[1] > padded[1]:
        dilated = "" if (dh, dw) == (1, 1) else f" dilated by {(dh, dw)} spans {extent} and"
        raise ValueError(
            f"kernel size {(kh, kw)}{dilated} is larger than the padded input {padded}; "
            f"use a smaller kernel or more padding"
        )
    output = ((padded[0] - extent[0]) // sh + 1, (padded[1] - extent[1]) // sw + 1)
    return Geometry(pads, (sh, sw), (dh, dw), output)


def receptive_field(layers):
    """Return the ``(height, width)`` of input that one output pixel of a stack sees.

    Parameters
    ----------
    layers : sequence of dict
        One dict per layer, first layer first, with the key ``kernel_size`` and
        optionally ``stride`` and ``dilation`` (ints or pairs; both default to 1).

    Notes
    -----
    Walking up the stack, each layer widens the field by ``d (k - 1)`` times the
    product of the strides below it::

        r = 1
        for k, s, d in layers:   r += d * (k - 1) * jump;   jump *= s

    Examples
    --------
    >>> receptive_field([dict(kernel_size=3)] * 3)
    (7, 7)
    >>> receptive_field([dict(kernel_size=3, stride=2), dict(kernel_size=3)])
    (7, 7)
    >>> receptive_field([dict(kernel_size=3, dilation=d) for d in (1, 2, 4)])
    (15, 15)
    """
    if isinstance(layers, dict) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be a sequence of dicts, got {layers!r}")
    field, jump = [1, 1], [1, 1]
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict) or "kernel_size" not in layer or set(layer) - {"kernel_size", "stride", "dilation"}:
            raise TypeError(
                f"layers[{index}] must be a dict with 'kernel_size' and optionally 'stride' "
                f"and 'dilation', got {layer!r}"
            )
        k = pair(layer["kernel_size"], f"layers[{index}]['kernel_size']")
        s = pair(layer.get("stride", 1), f"layers[{index}]['stride']")
        d = pair(layer.get("dilation", 1), f"layers[{index}]['dilation']")
        for axis in range(2):
            field[axis] += d[axis] * (k[axis] - 1) * jump[axis]
            jump[axis] *= s[axis]
    return tuple(field)
