"""Learning a kernel from examples: squared loss and SGD, as in the lecture."""

import torch
from tqdm import tqdm

from ._checks import check_tensor
from .layers import Conv2D


def squared_loss(Y_hat, Y):
    """Sum of squared differences, the lecture's loss."""
    return ((Y_hat - Y) ** 2).sum()


def fit_kernel(X, Y, kernel_size, *, lr=0.01, num_epochs=50, weight_decay=0.0, seed=0, progress=None):
    """Learn a ``Conv2D`` layer that maps ``X`` to ``Y`` by gradient descent.

    Each epoch takes one step of SGD on the summed squared loss over all pairs,
    ``w <- w - lr * (dL/dw + weight_decay * w)`` for the weight and the bias
    alike (``torch.optim.SGD``'s weight decay).

    Parameters
    ----------
    X, Y : torch.Tensor
        One input ``(H, W)`` and its target, or a batch of pairs ``(N, H, W)``.
    kernel_size : int or pair of int
        Shape of the kernel to learn.
    lr : float
        Learning rate.
    num_epochs : int
        Number of steps.
    weight_decay : float
        L2 penalty coefficient, 0 for none.
    seed : int
        Seeds the initial kernel, so that a run can be repeated.
    progress : bool or None
        Show a tqdm progress bar; ``None`` shows it only when the output is
        interactive.

    Returns
    -------
    layer : Conv2D
        The trained layer.
    losses : list of float
        The loss before each step, one per epoch.

    Examples
    --------
    >>> from convlab import corr2d, stripes
    >>> X = stripes()
    >>> Y = corr2d(X, torch.tensor([[-1.0, 1.0]]))
    >>> layer, losses = fit_kernel(X, Y, (1, 2), progress=False)
    >>> losses[-1] < 1e-3 < losses[0]
    True
    >>> torch.allclose(layer.weight, torch.tensor([[-1.0, 1.0]]), atol=0.01)
    True
    """
    check_tensor(X, "X", ndim=(2, 3))
    check_tensor(Y, "Y", ndim=(2, 3))
    if X.dim() != Y.dim() or (X.dim() == 3 and len(X) != len(Y)):
        raise ValueError(f"X and Y must both be one image or batches of equal length, got shapes {tuple(X.shape)} and {tuple(Y.shape)}")
    for name, value in (("lr", lr), ("weight_decay", weight_decay)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    pairs = list(zip(X, Y)) if X.dim() == 3 else [(X, Y)]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer = Conv2D(kernel_size).to(X.dtype)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    bar = tqdm(range(num_epochs), desc="fit_kernel", disable=None if progress is None else not progress)
    for _ in bar:
        loss = sum(squared_loss(layer(x), y) for x, y in pairs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)  # redraw at tqdm's pace, not every epoch
    return layer, losses
