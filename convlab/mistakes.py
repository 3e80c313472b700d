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

__all__ = ["CONV2D", "CORR2D", "CORR2D_MULTI_IN_OUT_1X1", "EDGE_KERNEL", "OUTPUT_SHAPE", "PAD2D", "POOL2D"]


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

#: corr2d_multi_in_out_1x1: K read as (C_in, C_out) and transposed.
CORR2D_MULTI_IN_OUT_1X1 = [
    (lambda X, K: (K.reshape(K.shape[1], K.shape[0]).T @ X.reshape(X.shape[0], -1)).reshape(
        K.shape[0], *X.shape[1:]),
     "K.reshape(C_in, C_out).T mixes up the weights: reshape K to (C_out, C_in)"),
]

#: pool2d: zeros that win the maximum, a mean over the real positions only, stride=None read as 1.
POOL2D = [
    (_max_padded_with_zeros, "the padding won the maximum: pad with float('-inf'), not with zeros"),
    (_avg_without_padding, "the mean is over the whole window, kh * kw values, padded zeros included "
                           "(count_include_pad=True): do not divide by the number of real positions"),
    (_stride_one, "stride=None means the window size (windows that do not overlap), not 1"),
]
