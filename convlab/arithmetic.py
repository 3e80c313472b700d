r"""Layer arithmetic: parameters, multiply-adds and activations, and grouped convolution.

A convolution layer with ``C_in`` input channels, ``C_out`` output channels, a
``kh x kw`` kernel and ``g`` groups holds

.. math:: C_\text{out} \frac{C_\text{in}}{g} k_h k_w + C_\text{out}

parameters (weights, then one bias per output channel), and computes each of its
``C_out x oh x ow`` outputs with ``(C_in / g) kh kw`` multiply-adds. A multiply-add
is one product added to a sum; ``torch.utils.flop_counter`` counts it as two
floating-point operations.

With ``groups=g`` the input channels are split into ``g`` consecutive blocks, and
so are the output channels: output block ``j`` sees input block ``j`` only.
``groups=C_in`` (one input channel per group) is the depthwise convolution of a
depthwise-separable layer, which a ``1x1`` convolution then mixes.
"""

from typing import NamedTuple

import torch

from ._checks import check_same_dtype, check_tensor, pair
from .correlate import correlate
from .shapes import output_shape


class LayerCost(NamedTuple):
    """What one layer costs, per image."""

    params: int    # weights and biases
    macs: int      # multiply-adds
    outputs: int   # numbers in the output (the activation it stores for the backward pass)


def check_groups(c_in, c_out, groups):
    """Return ``groups`` if it is a positive int that divides both channel counts."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise TypeError(f"groups must be a positive int, got {groups!r}")
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"groups={groups} must divide both the input channels ({c_in}) and the output "
            f"channels ({c_out}); choose a common divisor of {c_in} and {c_out}"
        )
    return groups


def _channels(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    return value


def conv_params(c_in, c_out, kernel_size, *, groups=1, bias=True):
    """Return the number of parameters of a ``Conv2d(c_in, c_out, kernel_size, groups=groups, bias=bias)``.

    Examples
    --------
    A 3x3 layer from 3 to 64 channels: 64 x 3 x 9 weights and 64 biases.

    >>> conv_params(3, 64, 3)
    1792
    >>> conv_params(32, 32, 3, groups=32, bias=False)   # depthwise
    288
    """
    c_in, c_out = _channels(c_in, "c_in"), _channels(c_out, "c_out")
    kh, kw = pair(kernel_size, "kernel_size")
    groups = check_groups(c_in, c_out, groups)
    return c_out * (c_in // groups) * kh * kw + (c_out if bias else 0)


def conv_macs(input_hw, c_in, c_out, kernel_size, *, padding=0, stride=1, dilation=1, groups=1):
    """Return the multiply-adds of one image through a 2-D convolution layer.

    Each of the ``c_out * oh * ow`` outputs is a sum of ``(c_in / groups) * kh * kw``
    products; the bias is an addition, not a multiply-add, and is not counted
    (nor does ``FlopCounterMode`` count it).

    Examples
    --------
    >>> conv_macs((32, 32), 3, 64, 3, padding=1)   # 64 * 32 * 32 outputs, 27 each
    1769472
    """
    c_in, c_out = _channels(c_in, "c_in"), _channels(c_out, "c_out")
    groups = check_groups(c_in, c_out, groups)
    kh, kw = pair(kernel_size, "kernel_size")
    oh, ow = output_shape(input_hw, (kh, kw), padding=padding, stride=stride, dilation=dilation)
    return c_out * oh * ow * (c_in // groups) * kh * kw


def conv_cost(input_hw, c_in, c_out, kernel_size, *, padding=0, stride=1, dilation=1, groups=1, bias=True):
    """Return the :class:`LayerCost` ``(params, macs, outputs)`` of a 2-D convolution layer on one image.

    Parameters
    ----------
    input_hw : int or pair of int
        Height and width of the input.
    c_in, c_out : int
        Input and output channels.
    kernel_size, padding, stride, dilation
        As in ``torch.nn.Conv2d`` (padding per side).
    groups : int
        Channel groups; must divide ``c_in`` and ``c_out``.
    bias : bool
        Whether the layer has one bias per output channel.

    Examples
    --------
    >>> conv_cost((28, 28), 1, 6, 5, padding=2)
    LayerCost(params=156, macs=117600, outputs=4704)
    """
    params = conv_params(c_in, c_out, kernel_size, groups=groups, bias=bias)
    macs = conv_macs(input_hw, c_in, c_out, kernel_size, padding=padding, stride=stride, dilation=dilation,
                     groups=groups)
    oh, ow = output_shape(input_hw, kernel_size, padding=padding, stride=stride, dilation=dilation)
    return LayerCost(params, macs, c_out * oh * ow)


def linear_cost(in_features, out_features, *, bias=True):
    """Return the :class:`LayerCost` of a dense layer ``nn.Linear(in_features, out_features)`` on one input.

    >>> linear_cost(64, 10)
    LayerCost(params=650, macs=640, outputs=10)
    """
    n_in, n_out = _channels(in_features, "in_features"), _channels(out_features, "out_features")
    return LayerCost(n_out * n_in + (n_out if bias else 0), n_out * n_in, n_out)


def layer_costs(model, input_shape):
    """Tabulate the cost of each layer of an ``nn.Sequential`` on one input of ``input_shape``.

    Parameters
    ----------
    model : torch.nn.Sequential
        Layers run in order; ``Conv2d`` and ``Linear`` are costed by
        :func:`conv_cost` and :func:`linear_cost`, every other layer (activation,
        pooling, flatten) as no parameters and no multiply-adds.
    input_shape : tuple of int
        ``(C, H, W)`` of one input, without the batch dimension.

    Returns
    -------
    list of dict
        One per layer: ``name`` (its index and class), ``output`` (shape without
        batch), ``params``, ``macs``, ``outputs`` and ``bytes`` (the output's memory
        in the input's dtype, float32).

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                           torch.nn.Linear(2 * 6 * 6, 3))
    >>> [(row["name"], row["params"], row["macs"]) for row in layer_costs(net, (1, 8, 8))]
    [('0 Conv2d', 20, 648), ('1 ReLU', 0, 0), ('2 Flatten', 0, 0), ('3 Linear', 219, 216)]
    """
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential, got {type(model).__name__}")
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise ValueError(f"input_shape must be (C, H, W) of positive ints, got {input_shape!r}")
    rows = []
    X = torch.zeros(1, *shape)
    with torch.no_grad():
        for index, layer in enumerate(model):
            Y = layer(X)
            if isinstance(layer, torch.nn.Conv2d):
                if not isinstance(layer.padding, tuple):
                    raise ValueError(f"layer {index}: padding={layer.padding!r}; give it as ints")
                cost = conv_cost(tuple(X.shape[2:]), layer.in_channels, layer.out_channels, layer.kernel_size,
                                 padding=layer.padding, stride=layer.stride, dilation=layer.dilation,
                                 groups=layer.groups, bias=layer.bias is not None)
            elif isinstance(layer, torch.nn.Linear):
                cost = linear_cost(layer.in_features, layer.out_features, bias=layer.bias is not None)
            else:
                cost = LayerCost(0, 0, Y[0].numel())
            assert cost.outputs == Y[0].numel(), (index, cost, tuple(Y.shape))
            rows.append(dict(name=f"{index} {type(layer).__name__}", output=tuple(Y.shape[1:]),
                             params=cost.params, macs=cost.macs, outputs=cost.outputs,
                             bytes=cost.outputs * Y.element_size()))
            X = Y
    return rows


def corr2d_grouped(X, K, *, groups=1, padding=0, stride=1, dilation=1):
    """Grouped multi-channel cross-correlation, as ``F.conv2d(X[None], K, groups=groups)[0]``.

    The ``C_in`` input channels are split into ``groups`` consecutive blocks of
    ``C_in / groups``, and the ``C_out`` kernels into ``groups`` consecutive blocks
    of ``C_out / groups``; block ``j`` of the kernels correlates block ``j`` of the
    input only.

    Parameters
    ----------
    X : torch.Tensor
        Input, shape ``(C_in, H, W)``.
    K : torch.Tensor
        Kernels, shape ``(C_out, C_in / groups, kh, kw)``.
    groups : int
        Number of groups; divides ``C_in`` and ``C_out``. ``groups=C_in`` with
        ``C_out = C_in`` is a depthwise correlation.
    padding, stride, dilation
        As in :func:`convlab.corr2d`.

    Returns
    -------
    torch.Tensor
        Shape ``(C_out, oh, ow)``.

    Examples
    --------
    Two groups: output channel 0 reads input channel 0, output channel 1 reads input
    channel 1.

    >>> X = torch.stack([torch.ones(3, 3), 2 * torch.ones(3, 3)])
    >>> corr2d_grouped(X, torch.ones(2, 1, 2, 2), groups=2)
    tensor([[[4., 4.],
             [4., 4.]],
    <BLANKLINE>
            [[8., 8.],
             [8., 8.]]])
    """
    check_tensor(X, "X", ndim=3)
    check_tensor(K, "K", ndim=4)
    check_same_dtype(X, K)
    c_in, c_out = X.shape[0], K.shape[0]
    groups = check_groups(c_in, c_out, groups)
    if K.shape[1] * groups != c_in:
        raise ValueError(
            f"K must have C_in / groups = {c_in} / {groups} = {c_in // groups} input channels per kernel "
            f"(shape (C_out, C_in / groups, kh, kw)), got shape {tuple(K.shape)} for X of shape {tuple(X.shape)}"
        )
    n_in, n_out = c_in // groups, c_out // groups
    return torch.cat([correlate(X[j * n_in:(j + 1) * n_in], K[j * n_out:(j + 1) * n_out],
                                padding=padding, stride=stride, dilation=dilation) for j in range(groups)])
