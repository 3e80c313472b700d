"""Common mistakes of the graded exercises, for the hints of :func:`convlab.grading.check_against`.

Each entry is ``(mistaken, hint)``: a function that computes what the mistaken code
returns, called like the reference, and the hint a message adds when a student's
wrong result is that one; a mistake that does not apply to a case raises. They
live here, not in a notebook cell, so that a test cell needs nothing a student
could delete or redefine.

>>> import torch
>>> from convlab import grading
>>> def conv2d(X, K):  # forgot to flip K
...     return convlab.corr2d(X, K)
>>> grading.check_against(conv2d, convlab.conv2d, [dict(X=torch.eye(3), K=torch.tensor([[1.0, 2.0]]))],
...                       forbidden=(), mistakes=CONV2D)
Traceback (most recent call last):
...
AssertionError: wrong values for X 3x3, K 1x2: at (0, 0) expected 2, got 1 (max abs error 1); K is not flipped: flip it along both axes first, torch.flip(K, (0, 1))
"""

import torch
import torch.nn.functional as F

import convlab

__all__ = ["CONV2D", "CORR2D", "CORR2D_MULTI_IN_OUT_1X1", "CORR2D_PADDING_STRIDE", "EDGE_KERNEL", "EDGE_MAGNITUDE",
           "OUTPUT_SHAPE", "PAD2D", "POOL2D", "SGD", "TRAIN"]


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _per_axis(formula):
    """An ``output_shape(input_hw, kernel_hw, padding, stride)`` from a formula for one axis."""
    def shape(input_hw, kernel_hw, padding=0, stride=1):
        return tuple(formula(i, k, p, s) for i, k, p, s in zip(input_hw, kernel_hw, _pair(padding), _pair(stride)))
    return shape


def _total_padding(X, padding):
    """``pad2d`` reading ``(ph, pw)`` as the padding of both sides together."""
    (ph, pw), (h, w) = _pair(padding), X.shape
    Y = X.new_zeros(h + ph, w + pw)
    Y[ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w] = X
    return Y


def _max_padded_with_zeros(X, pool_size, *, mode="max", padding=0, stride=None):
    """Max pooling over zero padding instead of ``-inf``."""
    if mode != "max":
        raise ValueError("a mistake of max pooling")
    ph, pw = _pair(padding)
    return convlab.pool2d(F.pad(X, (pw, pw, ph, ph)), pool_size, stride=stride or _pair(pool_size))


def _avg_without_padding(X, pool_size, *, mode="avg", padding=0, stride=None):
    """Average pooling that divides by the real positions of a window only."""
    if mode != "avg":
        raise ValueError("a mistake of average pooling")
    def mean(Z):
        return convlab.pool2d(Z, pool_size, mode="avg", padding=padding, stride=stride)
    return mean(X) / mean(torch.ones_like(X))


def _stride_one(X, pool_size, *, mode="max", padding=0, stride=None):
    """``stride=None`` read as 1."""
    if stride is not None:
        raise ValueError("a mistake of the default stride")
    return convlab.pool2d(X, pool_size, mode=mode, padding=padding, stride=1)


def _strided_loops(X, K, padding=0, stride=1, *, pad=True, every_output=True, times_stride=True):
    """``corr2d`` with padding and stride by loops, as a student writes it, with one of its mistakes."""
    (sh, sw), (kh, kw) = _pair(stride), K.shape
    oh, ow = convlab.output_shape(tuple(X.shape), (kh, kw), padding=padding, stride=stride)
    P = convlab.pad2d(X, padding) if pad else X
    Y = torch.zeros(oh, ow, dtype=X.dtype)
    for i in range(0, oh, 1 if every_output else sh):
        for j in range(0, ow, 1 if every_output else sw):
            r, c = (i * sh, j * sw) if times_stride else (i, j)
            Y[i, j] = (P[r : r + kh, c : c + kw] * K).sum()
    return Y


def _pool_without_plus_one(X, pool_size, *, mode="max", padding=0, stride=None):
    """Pooling whose output size forgets the ``+ 1``: one row and one column short."""
    return convlab.pool2d(X, pool_size, mode=mode, padding=padding, stride=stride)[:-1, :-1]


def _pool_without_padding(X, pool_size, *, mode="max", padding=0, stride=None):
    """Pooling that ignores ``padding`` (on a case without padding, the right result)."""
    return convlab.pool2d(X, pool_size, mode=mode, stride=stride)


def _magnitude(X, crop_x, crop_y):
    Gx = convlab.corr2d(X, convlab.kernels.DIFFERENCE_X.to(X.dtype))[crop_x]
    Gy = convlab.corr2d(X, convlab.kernels.DIFFERENCE_Y.to(X.dtype))[crop_y]
    return torch.sqrt(Gx**2 + Gy**2)


def _sgd(values, grads, lr, weight_decay, decay):
    """The parameters after one step ``p - lr * (grad + decay(weight_decay) * p)``."""
    if not weight_decay:
        raise ValueError("a mistake of weight decay")
    return [v - lr * (g + decay(weight_decay) * v) for v, g in zip(values, grads)]


def _fit(X, Y, kernel_size, *, lr, num_epochs, weight_decay=0.0, seed=0, zero_grad=True, loss_after=False,
         decay=True):
    """``(weight, bias, losses)`` of ``convlab.fit_kernel``'s training (``torch.optim.SGD``), with a mistake:
    gradients never zeroed, the loss recorded after the step, or the weight decay dropped."""
    if not decay and not weight_decay:
        raise ValueError("a mistake of weight decay")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer = convlab.Conv2D(kernel_size).to(X.dtype)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, weight_decay=weight_decay if decay else 0.0)
    losses = []
    for _ in range(num_epochs):
        loss = convlab.squared_loss(layer(X), Y)
        loss.backward()
        optimizer.step()
        if zero_grad:
            optimizer.zero_grad()
        losses.append((convlab.squared_loss(layer(X), Y) if loss_after else loss).item())
    return layer.weight.detach(), layer.bias.detach(), losses


#: corr2d: the kernel flipped (a true convolution).
CORR2D = [(convlab.conv2d, "that is a true convolution: corr2d slides K as it is, without flipping it")]

#: conv2d: no flip, a flip along one axis only, or a transpose instead of the flip.
CONV2D = [
    (convlab.corr2d, "K is not flipped: flip it along both axes first, torch.flip(K, (0, 1))"),
    (lambda X, K: convlab.corr2d(X, K.flip(0)), "K is flipped upside down only: flip it along both axes"),
    (lambda X, K: convlab.corr2d(X, K.flip(1)), "K is flipped left to right only: flip it along both axes"),
    (lambda X, K: convlab.corr2d(X, K.T), "K is transposed (K.T), not flipped: flip it along both axes, "
                                          "torch.flip(K, (0, 1))"),
]

#: corr2d with padding and stride: the lecture's loops, outputs skipped, the stride or the padding forgotten.
CORR2D_PADDING_STRIDE = [
    (lambda X, K, padding=0, stride=1: _strided_loops(X, K, padding, stride, every_output=False, times_stride=False),
     "these are the lecture's loops: they step i and j by the stride (skipping outputs) and start each window at "
     "(i, j); loop over every output, range(oh) and range(ow), and start its window at (i * sh, j * sw)"),
    (lambda X, K, padding=0, stride=1: _strided_loops(X, K, padding, stride, every_output=False),
     "the loops skip outputs: loop over every output position, range(oh) and range(ow); the stride is in "
     "where each window starts, (i * sh, j * sw)"),
    (lambda X, K, padding=0, stride=1: _strided_loops(X, K, padding, stride, times_stride=False),
     "the window of output (i, j) starts at row i * sh and column j * sw of the padded input, not at (i, j)"),
    (lambda X, K, padding=0, stride=1: _strided_loops(X, K, padding, stride, pad=False),
     "X is not padded: slide the windows over pad2d(X, padding)"),
]

#: output_shape: the lecture's formula, total padding, rounding, the missing + 1, ph and pw swapped.
OUTPUT_SHAPE = [
    (_per_axis(lambda i, k, p, s: round((i - k + p + s) / s)),
     "this is the lecture's formula: p is the padding of each side (the axis grows by 2p) "
     "and the division floors (//)"),
    (_per_axis(lambda i, k, p, s: (i + p - k) // s + 1), "padding is per side: an axis of size i grows to i + 2p"),
    (_per_axis(lambda i, k, p, s: round((i + 2 * p - k) / s) + 1), "floor the division (//), do not round it"),
    (_per_axis(lambda i, k, p, s: (i + 2 * p - k) // s), "add 1: the first window counts too"),
    (lambda input_hw, kernel_hw, padding=0, stride=1: convlab.output_shape(
        input_hw, kernel_hw, padding=_pair(padding)[::-1], stride=stride),
     "ph and pw are swapped: ph pads the height (the first axis), pw the width"),
]

#: pad2d: the axes swapped, total padding.
PAD2D = [
    (lambda X, padding: convlab.pad2d(X, _pair(padding)[::-1]),
     "the axes are swapped: ph rows go above and below, pw columns left and right "
     "(torch.nn.functional.pad lists the last dimension first: (pw, pw, ph, ph))"),
    (_total_padding, "padding is per side: ph rows above and ph below, so the height grows by 2 ph"),
]

#: edge_kernel: the signs flipped.
EDGE_KERNEL = [
    (lambda direction: -convlab.kernels.edge_kernel(direction),
     "the signs are flipped: the kernel subtracts the first pixel (-1) and adds the second (+1)"),
]

#: edge_magnitude: Gx and Gy combined uncropped, or cropped at the wrong end.
EDGE_MAGNITUDE = [
    (lambda X: _magnitude(X, slice(None), slice(None)),
     "Gx is H x (W-1) and Gy is (H-1) x W: crop both to (H-1) x (W-1), Gx[:-1, :] and Gy[:, :-1], before combining"),
    (lambda X: _magnitude(X, (slice(1, None), slice(None)), (slice(None), slice(1, None))),
     "the crop drops the first row of Gx and the first column of Gy: keep Gx[:-1, :] and Gy[:, :-1], "
     "so that M[i, j] combines the differences at the pixel X[i, j]"),
]

#: corr2d_multi_in_out_1x1: K read as (C_in, C_out) and transposed.
CORR2D_MULTI_IN_OUT_1X1 = [
    (lambda X, K: (K.reshape(K.shape[1], K.shape[0]).T @ X.reshape(X.shape[0], -1)).reshape(
        K.shape[0], *X.shape[1:]),
     "K.reshape(C_in, C_out).T mixes up the weights: reshape K to (C_out, C_in)"),
]

#: sgd (with grading.explained, called with the values, gradients, lr and weight_decay): the weight decay
#: missing, with the wrong sign, or halved.
SGD = [
    (lambda values, grads, lr, weight_decay: _sgd(values, grads, lr, weight_decay, lambda wd: 0.0),
     "the weight decay is missing: add weight_decay * p to the gradient"),
    (lambda values, grads, lr, weight_decay: _sgd(values, grads, lr, weight_decay, lambda wd: -wd),
     "the weight decay has the wrong sign: the step is p - lr * (p.grad + weight_decay * p)"),
    (lambda values, grads, lr, weight_decay: _sgd(values, grads, lr, weight_decay, lambda wd: wd / 2),
     "the gradient of weight_decay / 2 * ||p||**2 is weight_decay * p, not weight_decay / 2 * p"),
]

#: train (with grading.explained, called like convlab.fit_kernel; gives (weight, bias, losses)): the gradients
#: never zeroed, the loss recorded after the step, the weight decay dropped.
TRAIN = [
    (lambda X, Y, kernel_size, **options: _fit(X, Y, kernel_size, zero_grad=False, **options),
     "the gradients are never zeroed: backward() adds to .grad, so zero it after each step "
     "(p.grad.zero_() or optimizer.zero_grad())"),
    (lambda X, Y, kernel_size, **options: _fit(X, Y, kernel_size, loss_after=True, **options),
     "losses[k] must be the loss before step k: record loss.item() of the loss you back-propagated"),
    (lambda X, Y, kernel_size, **options: _fit(X, Y, kernel_size, decay=False, **options),
     "the weight decay is dropped: pass weight_decay to sgd (or torch.optim.SGD) at every step"),
]

#: pool2d: zeros that win the maximum, a mean over the real positions only, stride=None read as 1,
#: the missing + 1, the padding ignored.
POOL2D = [
    (_max_padded_with_zeros, "the padding won the maximum: pad with float('-inf'), not with zeros"),
    (_avg_without_padding, "the mean is over the whole window, kh * kw values, padded zeros included "
                           "(count_include_pad=True): do not divide by the number of real positions"),
    (_stride_one, "stride=None means the window size (windows that do not overlap), not 1"),
    (_pool_without_plus_one, "the output is one row and one column short: it has (H + 2 ph - kh) // sh + 1 rows "
                             "(add 1: the first window counts too)"),
    (_pool_without_padding, "the padding is missing: add ph positions above and below and pw left and right "
                            "(-inf for max pooling, zeros for the mean) before sliding the window"),
]


# --- layer_arithmetic (the sixth assignment) ------------------------------------------------

def _cost_without_bias(input_hw, c_in, c_out, kernel_size, *, bias=True, **options):
    """The parameters counted without the biases."""
    if not bias:
        raise ValueError("a mistake of the bias")
    cost = convlab.conv_cost(input_hw, c_in, c_out, kernel_size, bias=bias, **options)
    return (cost.params - c_out, cost.macs, cost.outputs)


def _cost_macs_twice(input_hw, c_in, c_out, kernel_size, **options):
    """Two operations (a multiply and an add) counted for each multiply-add."""
    cost = convlab.conv_cost(input_hw, c_in, c_out, kernel_size, **options)
    return (cost.params, 2 * cost.macs, cost.outputs)


def _cost_groups_ignored(input_hw, c_in, c_out, kernel_size, *, groups=1, **options):
    """Every kernel counted with all C_in channels."""
    if groups == 1:
        raise ValueError("a mistake of the groups")
    return tuple(convlab.conv_cost(input_hw, c_in, c_out, kernel_size, groups=1, **options))


def _field_without_stride_product(layers):
    """Each layer adds d (k - 1), the strides below it forgotten."""
    if not any(_pair(layer.get("stride", 1)) != (1, 1) for layer in layers[:-1]):
        raise ValueError("a mistake of the strides")
    return convlab.receptive_field([{k: v for k, v in layer.items() if k != "stride"} for layer in layers])


def _field_own_stride(layers):
    """Each layer's own stride multiplied in too."""
    field, jump = [1, 1], [1, 1]
    for layer in layers:
        k, s, d = (_pair(layer.get(key, 1)) for key in ("kernel_size", "stride", "dilation"))
        for axis in range(2):
            jump[axis] *= s[axis]
            field[axis] += d[axis] * (k[axis] - 1) * jump[axis]
    if tuple(field) == convlab.receptive_field(layers):
        raise ValueError("a mistake of the last stride")
    return tuple(field)


def _grouped_interleaved(X, K, *, groups=1):
    """Output channel o given to group o % groups instead of o // (C_out / groups)."""
    if groups == 1 or groups == K.shape[0]:
        raise ValueError("a mistake of the order of the groups")
    n_in = X.shape[0] // groups
    return torch.cat([convlab.corr2d_multi_in_out(X[(o % groups) * n_in:(o % groups + 1) * n_in], K[o:o + 1])
                      for o in range(K.shape[0])])


#: conv_cost: the bias forgotten, multiply-adds counted twice, the groups ignored.
CONV_COST = [
    (_cost_without_bias, "the parameters include one bias per output channel: add c_out when bias=True"),
    (_cost_macs_twice, "a multiply-add is one product added to a sum: count it once "
                       "(FlopCounterMode's 2 operations per multiply-add are FLOPs, not multiply-adds)"),
    (_cost_groups_ignored, "with groups=g each kernel has c_in / g channels: divide the weights and the "
                           "multiply-adds by g"),
]

#: receptive_field: the stride product forgotten, or a layer's own stride multiplied in.
RECEPTIVE_FIELD = [
    (_field_without_stride_product, "the field grows by d (k - 1) times the product of the strides of the "
                                    "layers below: a pixel of a strided layer's output is s pixels apart in "
                                    "its input"),
    (_field_own_stride, "a layer's own stride does not widen its field: multiply d (k - 1) by the strides of "
                        "the layers below it only, then multiply in its stride"),
]

#: corr2d_grouped: the output channels dealt to the groups in turn instead of in blocks.
CORR2D_GROUPED = [
    (_grouped_interleaved, "the output channels form consecutive blocks: kernels 0 to C_out/groups - 1 read "
                           "the first C_in/groups input channels, the next block the next ones"),
]

#: corr2d_grouped: what a check_raises case adds to its message (a count of groups that divides nothing).
GROUPS_MUST_DIVIDE = ("groups must divide both C_in and C_out: raise ValueError (naming groups and the "
                      "channel counts) when it does not")

__all__ += ["CONV_COST", "CORR2D_GROUPED", "RECEPTIVE_FIELD"]
