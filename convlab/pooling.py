"""Max and average pooling over windows of each channel."""

import torch

from ._checks import check_tensor, pair
from .padding import pad2d
from .shapes import output_shape

POOL_MODES = ("max", "avg")


def pool2d(X, pool_size, *, mode="max", padding=0, stride=None):
    """Pool ``X`` over ``pool_size`` windows, as ``max_pool2d`` / ``avg_pool2d`` do.

    Parameters
    ----------
    X : torch.Tensor
        An ``(H, W)`` image or a ``(C, H, W)`` stack, each channel pooled alone.
    pool_size : int or pair of int
        Window height and width.
    mode : {'max', 'avg'}
        Maximum or mean of each window. Padded positions never win a maximum and
        count as zeros in a mean (PyTorch's ``count_include_pad=True``).
    padding : int or pair of int
        Per side, at most half the window, as PyTorch requires.
    stride : int, pair of int or None
        Step of the window; ``None`` (the default) means the window size.

    Returns
    -------
    torch.Tensor
        Shape ``(..., oh, ow)`` from :func:`convlab.output_shape`.

    Examples
    --------
    >>> X = torch.arange(9.0).reshape(3, 3)
    >>> pool2d(X, 2, stride=1)
    tensor([[4., 5.],
            [7., 8.]])
    >>> pool2d(X, 2, mode='avg', stride=1)
    tensor([[2., 3.],
            [5., 6.]])
    """
    if mode not in POOL_MODES:
        raise ValueError(f"mode must be one of {POOL_MODES}, got {mode!r}")
    check_tensor(X, "X", ndim=(2, 3), floating=(mode == "avg"))
    kh, kw = pair(pool_size, "pool_size")
    sh, sw = pair((kh, kw) if stride is None else stride, "stride")
    ph, pw = pair(padding, "padding", minimum=0)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"padding must be at most half of pool_size {(kh, kw)}, got {padding!r}")
    oh, ow = output_shape(X.shape[-2:], (kh, kw), padding=(ph, pw), stride=(sh, sw))
    if mode == "max":
        # Pad with the lowest value instead of zero, so that padding never wins.
        lowest = float("-inf") if X.is_floating_point() else torch.iinfo(X.dtype).min
        X = pad2d(X, (ph, pw), value=lowest)
    else:
        X = pad2d(X, (ph, pw))
    windows = X.unfold(-2, kh, sh).unfold(-2, kw, sw)[..., :oh, :ow, :, :]
    if mode == "max":
        return windows.amax(dim=(-2, -1))
    return windows.mean(dim=(-2, -1))
