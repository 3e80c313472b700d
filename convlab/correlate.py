"""2-D cross-correlation and convolution of one image by one kernel.

``corr2d_loop`` is the definition written as two loops, to read. ``corr2d`` gives
the same result with one vectorized operation per kernel tap, fast enough to
beat ``torch.nn.functional.conv2d`` on single-channel images. ``conv2d`` is true
convolution: correlation with the kernel flipped along both axes.
"""

import torch

from ._checks import check_same_dtype, check_tensor
from .padding import padded
from .shapes import geometry


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

    The engine behind every vectorized function in this package; arguments are
    checked by the public functions that call it.

    Each kernel tap ``(a, b)`` multiplies a shifted copy of the padded input.
    Flattening each channel's rows into one line makes every shifted copy a
    contiguous slice, so a tap costs one ``addmm`` over all channels (or one
    ``addcmul`` for a single input channel) instead of a loop over pixels. With
    the rows laid end to end, the line also holds positions that wrap from one
    row to the next and, with a stride, positions between the strided ones;
    they are computed and dropped by the final strided view.
    """
    (c_out, c_in, kh, kw), (_, h, w) = K.shape, X.shape
    sides, (sh, sw), (dh, dw), (oh, ow) = geometry(
        (h, w), (kh, kw), padding=padding, stride=stride, dilation=dilation
    )
    X = padded(X, sides) if any(sides) else X.contiguous()
    row = X.shape[2]
    x = X.reshape(c_in, -1)
    length = (oh - 1) * sh * row + (ow - 1) * sw + 1
    Y = x.new_zeros(c_out, length)
    taps = K.permute(2, 3, 0, 1).reshape(kh * kw, c_out, c_in).unbind()
    starts = [a * dh * row + b * dw for a in range(kh) for b in range(kw)]
    for start, tap in zip(starts, taps):
        window = x[:, start : start + length]
        if c_in == 1:
            Y.addcmul_(tap, window)
        else:
            Y.addmm_(tap, window)
    return Y.as_strided((c_out, oh, ow), (length, sh * row, sw)).contiguous()
