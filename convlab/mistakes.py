"""Common mistakes of the graded exercises, for the hints of :func:`convlab.grading.check_against`.

Each entry is ``(mistaken, hint)``: a function that computes what the mistaken code
returns, called like the reference, and the hint a message adds when a student's
wrong result is that one. They live here, not in a notebook cell, so that a test
cell needs nothing a student could delete or redefine.

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

import convlab

__all__ = ["CONV2D", "CORR2D", "EDGE_KERNEL", "OUTPUT_SHAPE", "PAD2D"]


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


#: corr2d: the kernel flipped (a true convolution).
CORR2D = [(convlab.conv2d, "that is a true convolution: corr2d slides K as it is, without flipping it")]

#: conv2d: no flip, or a flip along one axis only.
CONV2D = [
    (convlab.corr2d, "K is not flipped: flip it along both axes first, torch.flip(K, (0, 1))"),
    (lambda X, K: convlab.corr2d(X, K.flip(0)), "K is flipped upside down only: flip it along both axes"),
    (lambda X, K: convlab.corr2d(X, K.flip(1)), "K is flipped left to right only: flip it along both axes"),
]

#: output_shape: the lecture's formula, total padding, rounding, the missing + 1.
OUTPUT_SHAPE = [
    (_per_axis(lambda i, k, p, s: round((i - k + p + s) / s)),
     "this is the lecture's formula: p is the padding of each side (the axis grows by 2p) "
     "and the division floors (//)"),
    (_per_axis(lambda i, k, p, s: (i + p - k) // s + 1), "padding is per side: an axis of size i grows to i + 2p"),
    (_per_axis(lambda i, k, p, s: round((i + 2 * p - k) / s) + 1), "floor the division (//), do not round it"),
    (_per_axis(lambda i, k, p, s: (i + 2 * p - k) // s), "add 1: the first window counts too"),
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
