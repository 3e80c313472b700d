"""Cross-correlation with several input and output channels, and 1x1 kernels.

Shapes follow d2l: inputs ``(C_in, H, W)``, kernels ``(C_out, C_in, kh, kw)``.
"""

from ._checks import check_same_dtype, check_tensor
from .correlate import correlate
from .padding import padded
from .shapes import geometry


def corr2d_multi_in(X, K, *, padding=0, stride=1, dilation=1):
    """Correlate each channel of ``X`` with its own kernel slice and sum over channels.

    Parameters
    ----------
    X : torch.Tensor
        Input, shape ``(C, H, W)``.
    K : torch.Tensor
        Kernels, shape ``(C, kh, kw)``, one per input channel.
    padding, stride, dilation
        As in :func:`convlab.corr2d`.

    Returns
    -------
    torch.Tensor
        One output channel, shape ``(oh, ow)``.

    Examples
    --------
    d2l's two-channel example:

    >>> X = torch.tensor([[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]],
    ...                   [[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]])
    >>> K = torch.tensor([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]])
    >>> corr2d_multi_in(X, K)
    tensor([[ 56.,  72.],
            [104., 120.]])
    """
    check_tensor(K, "K", ndim=3)
    return corr2d_multi_in_out(X, K[None], padding=padding, stride=stride, dilation=dilation)[0]


def corr2d_multi_in_out(X, K, *, padding=0, stride=1, dilation=1):
    """Correlate ``X`` with ``C_out`` multi-channel kernels, one output channel each.

    Parameters
    ----------
    X : torch.Tensor
        Input, shape ``(C_in, H, W)``.
    K : torch.Tensor
        Kernels, shape ``(C_out, C_in, kh, kw)``.
    padding, stride, dilation
        As in :func:`convlab.corr2d`.

    Returns
    -------
    torch.Tensor
        Shape ``(C_out, oh, ow)``.

    Examples
    --------
    >>> X = torch.ones(2, 4, 4)
    >>> K = torch.stack([torch.ones(2, 3, 3), -torch.ones(2, 3, 3)])
    >>> corr2d_multi_in_out(X, K, padding=1)[:, 0]
    tensor([[  8.,  12.,  12.,   8.],
            [ -8., -12., -12.,  -8.]])
    """
    _check_channels(X, K)
    return correlate(X, K, padding=padding, stride=stride, dilation=dilation)


def corr2d_multi_in_out_1x1(X, K, *, padding=0, stride=1):
    """The same as :func:`corr2d_multi_in_out` for 1x1 kernels, as one matrix product.

    A 1x1 kernel mixes channels pixel by pixel: with the pixels as columns,
    ``Y = K.reshape(C_out, C_in) @ X.reshape(C_in, H * W)``.

    Parameters
    ----------
    X : torch.Tensor
        Input, shape ``(C_in, H, W)``.
    K : torch.Tensor
        Kernels, shape ``(C_out, C_in, 1, 1)``.
    padding, stride
        As in :func:`convlab.corr2d`.

    Examples
    --------
    >>> X = torch.arange(8.0).reshape(2, 2, 2)
    >>> K = torch.tensor([1.0, 10.0]).reshape(1, 2, 1, 1)
    >>> corr2d_multi_in_out_1x1(X, K)
    tensor([[[40., 51.],
             [62., 73.]]])
    """
    _check_channels(X, K)
    if K.shape[2:] != (1, 1):
        raise ValueError(f"K must hold 1x1 kernels, shape (C_out, C_in, 1, 1), got {tuple(K.shape)}")
    sides, (sh, sw), _, (oh, ow) = geometry(X.shape[1:], (1, 1), padding=padding, stride=stride)
    X = padded(X, sides)[:, : oh * sh : sh, : ow * sw : sw]
    c_out, c_in = K.shape[:2]
    return (K.reshape(c_out, c_in) @ X.reshape(c_in, oh * ow)).reshape(c_out, oh, ow)


def _check_channels(X, K):
    check_tensor(X, "X", ndim=3)
    check_tensor(K, "K", ndim=4)
    check_same_dtype(X, K)
    if K.shape[1] != X.shape[0]:
        raise ValueError(
            f"K has {K.shape[1]} input channels (shape {tuple(K.shape)}) but X has "
            f"{X.shape[0]} channels (shape {tuple(X.shape)}); they must match"
        )
