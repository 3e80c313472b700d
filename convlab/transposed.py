"""Transposed convolution: each input pixel scatters a scaled copy of the kernel.

``conv_transpose2d_loop`` is the definition written as a loop over the input, to
read. ``conv_transpose2d`` gives the same result as one correlation: the input
stretched by ``s - 1`` zeros between its pixels, correlated with full padding
with the kernel flipped along both axes, then cropped by the padding.

Both take an ``(H, W)`` image with a ``(kh, kw)`` kernel, or a ``(C_in, H, W)``
input with ``(C_in, C_out, kh, kw)`` kernels: the layout of the weight of
``torch.nn.functional.conv_transpose2d``, and the layout of the
``(C_out, C_in, kh, kw)`` kernels of the correlation it transposes read the
other way round, since that correlation maps ``C_out`` channels back to ``C_in``.
"""

import torch

from ._checks import check_same_dtype, check_tensor
from .correlate import correlate
from .shapes import transposed_geometry


def conv_transpose2d_loop(X, K, *, padding=0, stride=1, dilation=1, output_padding=0):
    """Transposed convolution by a loop over the input: ``Y[i*s + a*d, j*s + b*d] += X[i, j] K[a, b]``.

    Each input pixel adds a copy of the kernel, scaled by the pixel, to the
    output, at its own position times the stride; copies that overlap add up.
    Then ``padding`` rows and columns are cropped from each side.

    Parameters
    ----------
    X : torch.Tensor
        Input, shape ``(H, W)`` or ``(C_in, H, W)``, floating point.
    K : torch.Tensor
        Kernel, shape ``(kh, kw)`` for a 2-D ``X``, or ``(C_in, C_out, kh, kw)``.
    padding : int or pair of int
        Rows and columns cropped from each side of the result.
    stride, dilation : int or pair of int
        Spacing between the copies of the kernel, and between its taps.
    output_padding : int or pair of int
        Rows and columns of zeros kept at the bottom and right; smaller than the
        stride or the dilation.

    Returns
    -------
    torch.Tensor
        ``(oh, ow)`` or ``(C_out, oh, ow)``, size from
        :func:`convlab.transposed_output_shape`. Gradients flow to ``X`` and ``K``.

    Examples
    --------
    d2l's example: four copies of ``K``, scaled by 0, 1, 2 and 3, overlap.

    >>> X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> conv_transpose2d_loop(X, K)
    tensor([[ 0.,  0.,  1.],
            [ 0.,  4.,  6.],
            [ 4., 12.,  9.]])
    """
    X3, K4, shape = _checked(X, K, padding, stride, dilation, output_padding)
    (ph, pw), (sh, sw), (dh, dw), (oh, ow) = shape.padding, shape.stride, shape.dilation, shape.output
    (c_in, h, w), (_, c_out, kh, kw) = X3.shape, K4.shape
    # Uncropped, every copy of the kernel lands whole: the last one ends at s(i-1) + d(k-1) + 1.
    full = X3.new_zeros(c_out, oh + 2 * ph, ow + 2 * pw)
    for i in range(h):
        for j in range(w):
            copy = (X3[:, i, j, None, None, None] * K4).sum(0)  # (C_out, kh, kw): summed over C_in
            full[:, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw] += copy
    Y = full[:, ph : ph + oh, pw : pw + ow]
    return Y[0] if X.dim() == 2 else Y


def conv_transpose2d(X, K, *, padding=0, stride=1, dilation=1, output_padding=0):
    """Transposed convolution, computed as a correlation of the stretched input.

    Takes the same arguments as :func:`conv_transpose2d_loop` and returns the
    same result, as ``torch.nn.functional.conv_transpose2d`` would: it is the
    gradient of :func:`convlab.corr2d` (or :func:`convlab.corr2d_multi_in_out`)
    with respect to its input, for the same kernel and options.

    Notes
    -----
    Along one axis, with ``s - 1`` zeros put between the input pixels and
    ``output_padding`` zeros after the last one, the scatter of the loop is a
    correlation with full padding ``d(k - 1)`` by the flipped kernel: output
    pixel ``t`` collects ``X[i] K[a]`` for every ``t = i*s + a*d``. Cropping
    ``p`` from each side gives ``o = s(i - 1) + d(k - 1) + 1 - 2p + output_padding``.

    Examples
    --------
    >>> X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> conv_transpose2d(X, K)
    tensor([[ 0.,  0.,  1.],
            [ 0.,  4.,  6.],
            [ 4., 12.,  9.]])

    At stride 2 the copies no longer overlap; padding 1 crops the border:

    >>> conv_transpose2d(X, K, stride=2)
    tensor([[0., 0., 0., 1.],
            [0., 0., 2., 3.],
            [0., 2., 0., 3.],
            [4., 6., 6., 9.]])
    >>> conv_transpose2d(X, K, stride=2, padding=1)
    tensor([[0., 2.],
            [2., 0.]])
    """
    X3, K4, shape = _checked(X, K, padding, stride, dilation, output_padding)
    (ph, pw), (sh, sw), (ah, aw), (oh, ow) = shape.padding, shape.stride, shape.output_padding, shape.output
    c_in, h, w = X3.shape
    stretched = X3.new_zeros(c_in, sh * (h - 1) + 1 + ah, sw * (w - 1) + 1 + aw)
    stretched[:, : sh * (h - 1) + 1 : sh, : sw * (w - 1) + 1 : sw] = X3
    flipped = K4.transpose(0, 1).flip(2, 3)  # (C_out, C_in, kh, kw), as correlate takes it
    full = correlate(stretched, flipped, padding="full", dilation=shape.dilation)
    Y = full[:, ph : ph + oh, pw : pw + ow].contiguous()
    return Y[0] if X.dim() == 2 else Y


def _checked(X, K, padding, stride, dilation, output_padding):
    """``X`` as ``(C_in, H, W)``, ``K`` as ``(C_in, C_out, kh, kw)``, and the checked sizes."""
    check_tensor(X, "X", ndim=(2, 3))
    ndim, layout = (2, "(kh, kw)") if X.dim() == 2 else (4, "(C_in, C_out, kh, kw)")
    if isinstance(K, torch.Tensor) and K.dim() != ndim:
        raise ValueError(
            f"K must be {ndim}-D {layout} for a {X.dim()}-D X, got {K.dim()}-D with shape {tuple(K.shape)}"
        )
    check_tensor(K, "K", ndim=ndim)
    check_same_dtype(X, K)
    X3, K4 = (X[None], K[None, None]) if X.dim() == 2 else (X, K)
    if K4.shape[0] != X3.shape[0]:
        raise ValueError(
            f"K has {K4.shape[0]} input channels (shape {tuple(K.shape)}, layout {layout}) but X has "
            f"{X3.shape[0]} channels (shape {tuple(X.shape)}); they must match"
        )
    shape = transposed_geometry(X3.shape[1:], K4.shape[2:], padding=padding, stride=stride,
                                dilation=dilation, output_padding=output_padding)
    return X3, K4, shape
