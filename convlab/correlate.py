"""2-D cross-correlation and convolution of one image by one kernel.

``corr2d_loop`` is the definition written as two loops, to read. ``corr2d`` gives
the same result with one vectorized operation per kernel tap, fast enough to
beat ``torch.nn.functional.conv2d`` on single-channel images from 256x256 up.
``conv2d`` is true convolution: correlation with the kernel flipped along both
axes. ``correlate`` is the engine behind ``corr2d``, ``conv2d``,
``corr2d_multi_in`` and ``corr2d_multi_in_out``.
"""

import torch

from ._checks import check_same_dtype, check_tensor
from .padding import padded
from .shapes import geometry

# Most bytes of im2col columns built at once: larger inputs are done a group of
# bands of output rows at a time, so that memory stays bounded.
IM2COL_BYTES = 4 << 20


def corr2d_loop(X, K, *, padding=0, stride=1):
    """Cross-correlate ``X`` with ``K`` by two explicit loops over the output.

    This is the lecture's ``conv2d_padding_stride`` with its bugs fixed: padding
    is applied per side and in (height, width) order, the output size is
    floored, the loops step through the *output* one pixel at a time while the
    window steps through the *input* by the stride, and the result stays a
    differentiable tensor.

    Parameters
    ----------
    X : torch.Tensor
        Input image, shape ``(H, W)``, floating point.
    K : torch.Tensor
        Kernel, shape ``(kh, kw)``, same dtype as ``X``.
    padding : int, pair of int, or {'valid', 'same', 'full'}
        Zeros added on each side.
    stride : int or pair of int
        Step of the window, ``(sh, sw)``.

    Returns
    -------
    torch.Tensor
        Shape given by :func:`convlab.output_shape`.

    Examples
    --------
    >>> X = torch.arange(9.0).reshape(3, 3)
    >>> K = torch.arange(4.0).reshape(2, 2)
    >>> corr2d_loop(X, K)
    tensor([[19., 25.],
            [37., 43.]])
    """
    check_tensor(X, "X", ndim=2)
    check_tensor(K, "K", ndim=2)
    check_same_dtype(X, K)
    sides, (sh, sw), _, (oh, ow) = geometry(X.shape, K.shape, padding=padding, stride=stride)
    X, (kh, kw) = padded(X, sides), K.shape
    Y = X.new_zeros(oh, ow)
    for i in range(oh):
        for j in range(ow):
            Y[i, j] = (X[i * sh : i * sh + kh, j * sw : j * sw + kw] * K).sum()
    return Y


def corr2d(X, K, *, padding=0, stride=1, dilation=1):
    """Cross-correlate ``X`` with ``K``: ``Y[i, j] = sum_ab X[i*s + a*d, j*s + b*d] K[a, b]``.

    Parameters
    ----------
    X : torch.Tensor
        Input image, shape ``(H, W)``, floating point.
    K : torch.Tensor
        Kernel, shape ``(kh, kw)``, same dtype as ``X``.
    padding : int, pair of int, or {'valid', 'same', 'full'}
        Zeros added on each side. ``'same'`` needs stride 1; an even kernel gets
        the extra row and column at the bottom and right, as in PyTorch.
    stride, dilation : int or pair of int
        Step of the window, and spacing between kernel taps.

    Returns
    -------
    torch.Tensor
        Shape given by :func:`convlab.output_shape`. Gradients flow to ``X`` and ``K``.

    Examples
    --------
    >>> X = torch.arange(9.0).reshape(3, 3)
    >>> K = torch.arange(4.0).reshape(2, 2)
    >>> corr2d(X, K)
    tensor([[19., 25.],
            [37., 43.]])
    >>> corr2d(X, K, padding='same').shape
    torch.Size([3, 3])
    """
    check_tensor(X, "X", ndim=2)
    check_tensor(K, "K", ndim=2)
    check_same_dtype(X, K)
    return correlate(X[None], K[None, None], padding=padding, stride=stride, dilation=dilation)[0]


def conv2d(X, K, *, padding=0, stride=1, dilation=1):
    """Convolve ``X`` with ``K``: cross-correlation with ``K`` flipped along both axes.

    Takes the same arguments as :func:`corr2d`.

    Examples
    --------
    >>> X = torch.arange(9.0).reshape(3, 3)
    >>> K = torch.arange(4.0).reshape(2, 2)
    >>> conv2d(X, K)
    tensor([[ 5., 11.],
            [23., 29.]])
    """
    check_tensor(K, "K", ndim=2)
    return corr2d(X, K.flip(0, 1), padding=padding, stride=stride, dilation=dilation)


def correlate(X, K, *, padding=0, stride=1, dilation=1):
    """Multi-channel cross-correlation: ``(C_in, H, W)`` by ``(C_out, C_in, kh, kw)``.

    The engine behind ``corr2d``, ``conv2d``, ``corr2d_multi_in`` and
    ``corr2d_multi_in_out``; arguments are checked by those public functions.

    It views the padded input as
    ``windows[c, a, b, i, j] = X[c, i*sh + a*dh, j*sw + b*dw]``, the input that
    kernel tap ``(a, b)`` of channel ``c`` meets at output pixel ``(i, j)``: one
    strided view, no copy. Then

    - one input and one output channel: each tap adds ``K[a, b] * windows[0, a, b]``,
      a whole-image multiply-add, ``kh * kw`` of them in all;
    - several channels: the view, copied into a ``(C_in*kh*kw, oh*ow)`` matrix
      (im2col), is multiplied by the kernels reshaped to ``(C_out, C_in*kh*kw)``,
      in bands of output rows (see ``_im2col_matmul``).
    """
    (c_out, c_in, kh, kw), (_, h, w) = K.shape, X.shape
    shape = geometry((h, w), (kh, kw), padding=padding, stride=stride, dilation=dilation)
    if c_in == c_out == 1:
        return _sum_of_taps(_windows(X, (kh, kw), shape)[0], K.reshape(kh * kw))[None]
    return _im2col_matmul(X, K.reshape(c_out, c_in * kh * kw), (kh, kw), shape)


def _windows(X, kernel, shape):
    """The strided view ``windows[c, a, b, i, j]`` of ``X`` padded by ``shape.padding``."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, shape.stride, shape.dilation, shape.output
    if any(shape.padding):
        X = padded(X, shape.padding)
    cs, rs, ws = X.stride()
    strides = (cs, dh * rs, dw * ws, sh * rs, sw * ws)
    return X.as_strided((X.shape[0], kh, kw, oh, ow), strides, X.storage_offset())


def _sum_of_taps(windows, taps):
    """``sum_ab taps[a*kw + b] * windows[a, b]``, one in-place multiply-add per tap."""
    shifted = [window for row in windows.unbind() for window in row.unbind()]
    taps = taps.unbind()
    Y = (shifted[0] * taps[0]).contiguous()  # row-major, like F.conv2d's, even for a transposed X
    for window, tap in zip(shifted[1:], taps[1:]):
        Y.addcmul_(window, tap)
    return Y


def _im2col_matmul(X, weights, kernel, shape):
    """``weights @ im2col(X)``, with the output rows cut into bands, one per thread.

    The im2col columns of ``threads`` bands are copied at once into a ``(bands,
    depth, rows * ow)`` tensor, and ``torch.bmm`` multiplies each band by the
    weights. Both split their work by band, so each thread reads the columns it
    wrote itself. With one ``(depth, oh * ow)`` matrix the copy splits the rows
    and the product the columns, so each thread reads columns the other wrote; on
    the 2-core virtual machine this was measured on, that made some periods twice
    as slow. Groups of bands are thinner when needed to keep their columns within
    ``IM2COL_BYTES``, and the ``oh % bands`` rows left over take one more product.
    """
    (c_out, depth), (oh, ow), threads = weights.shape, shape.output, torch.get_num_threads()
    most_rows = max(1, IM2COL_BYTES // (threads * depth * ow * X.element_size()))
    bands = min(oh, threads * -(-oh // (threads * most_rows)))
    rows = oh // bands
    windows = _windows(X, kernel, shape)
    banded = windows[..., : bands * rows, :].unflatten(3, (bands, rows)).movedim(3, 0)
    pieces = []
    for group in banded.split(threads):
        columns = group.reshape(len(group), depth, rows * ow)
        pieces += torch.bmm(weights.expand(len(group), -1, -1), columns).view(-1, c_out, rows, ow).unbind()
    if bands * rows < oh:
        rest = windows[..., bands * rows :, :]
        pieces.append((weights @ rest.reshape(depth, -1)).view(c_out, -1, ow))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
