"""A convolutional layer with a learnable kernel and bias."""

import torch
from torch import nn

from ._checks import pair
from .correlate import corr2d


class Conv2D(nn.Module):
    """Single-channel 2-D convolutional layer: ``corr2d(X, weight) + bias``.

    Parameters
    ----------
    kernel_size : int or pair of int
        Shape of ``weight``, initialised uniformly in ``[0, 1)`` as in d2l.
    padding, stride, dilation
        As in :func:`convlab.corr2d`, applied at every forward pass.

    Examples
    --------
    >>> torch.manual_seed(0) is not None
    True
    >>> layer = Conv2D((1, 2))
    >>> layer(torch.ones(6, 8)).shape
    torch.Size([6, 7])
    >>> [name for name, _ in layer.named_parameters()]
    ['weight', 'bias']
    """

    def __init__(self, kernel_size, *, padding=0, stride=1, dilation=1):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(pair(kernel_size, "kernel_size")))
        self.bias = nn.Parameter(torch.zeros(1))
        self.options = dict(padding=padding, stride=stride, dilation=dilation)

    def forward(self, X):
        return corr2d(X, self.weight, **self.options) + self.bias

    def extra_repr(self):
        return f"kernel_size={tuple(self.weight.shape)}, " + ", ".join(f"{k}={v!r}" for k, v in self.options.items())
