"""Transposed convolution against PyTorch, as the adjoint of correlation, and on Dumoulin & Visin's figures."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import (
    assert_gradients_match,
    torch_conv_transpose2d,
    torch_conv_transpose2d_multi,
)
from strategies import as_pair, conv_problems, pairs, tensors, transposed_problems

import convlab

TOL = dict(atol=1e-10, rtol=1e-10)
channels = st.integers(1, 3)
seeds = st.integers(0, 2**16)
IMPLEMENTATIONS = [convlab.conv_transpose2d, convlab.conv_transpose2d_loop]


def case(X, K, options):
    return f"X {tuple(X.shape)}, K {tuple(K.shape)}, {options}"


@pytest.mark.parametrize("fn", IMPLEMENTATIONS, ids=lambda fn: fn.__name__)
@given(problem=transposed_problems(), seed=seeds)
def test_single_channel_matches_torch(fn, problem, seed):
    hw, khw, options = problem
    X, K = tensors(seed, *hw, dtype=torch.float64), tensors(seed + 1, *khw, dtype=torch.float64)
    torch.testing.assert_close(fn(X, K, **options), torch_conv_transpose2d(X, K, **options), **TOL,
                               msg=lambda m: f"{case(X, K, options)}\n{m}")


@pytest.mark.parametrize("fn", IMPLEMENTATIONS, ids=lambda fn: fn.__name__)
@given(problem=transposed_problems(max_size=6), c_in=channels, c_out=channels, seed=seeds)
def test_multi_channel_matches_torch(fn, problem, c_in, c_out, seed):
    hw, khw, options = problem
    X = tensors(seed, c_in, *hw, dtype=torch.float64)
    K = tensors(seed + 1, c_in, c_out, *khw, dtype=torch.float64)
    torch.testing.assert_close(fn(X, K, **options), torch_conv_transpose2d_multi(X, K, **options), **TOL,
                               msg=lambda m: f"{case(X, K, options)}\n{m}")


@settings(max_examples=50)
@pytest.mark.parametrize("fn", IMPLEMENTATIONS, ids=lambda fn: fn.__name__)
@given(problem=transposed_problems(max_size=6), c_in=channels, c_out=channels, multi=st.booleans(), seed=seeds)
def test_gradients_match_torch(fn, problem, c_in, c_out, multi, seed):
    hw, khw, options = problem
    if multi:
        X = tensors(seed, c_in, *hw, dtype=torch.float64)
        K = tensors(seed + 1, c_in, c_out, *khw, dtype=torch.float64)
        assert_gradients_match(fn, torch_conv_transpose2d_multi, X, K, options)
    else:
        X, K = tensors(seed, *hw, dtype=torch.float64), tensors(seed + 1, *khw, dtype=torch.float64)
        assert_gradients_match(fn, torch_conv_transpose2d, X, K, options)


def test_float32_follows_the_input_dtype():
    X, K = tensors(0, 5, 4), tensors(1, 3, 2)
    Y = convlab.conv_transpose2d(X, K, stride=2, padding=1, output_padding=1)
    assert Y.dtype == torch.float32 and Y.is_contiguous()
    torch.testing.assert_close(Y, torch_conv_transpose2d(X, K, stride=2, padding=1, output_padding=1),
                               atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------
# The output size


@given(transposed_problems(max_size=12, max_kernel=6))
def test_output_size_formula_matches_torch(problem):
    hw, khw, options = problem
    (s, d, p, a) = (as_pair(options[name]) for name in ("stride", "dilation", "padding", "output_padding"))
    formula = tuple(s[x] * (hw[x] - 1) + d[x] * (khw[x] - 1) + 1 - 2 * p[x] + a[x] for x in range(2))
    torch_size = tuple(F.conv_transpose2d(torch.zeros(1, 1, *hw), torch.zeros(1, 1, *khw), **options).shape[2:])
    assert convlab.transposed_output_shape(hw, khw, **options) == formula == torch_size


@given(
    st.tuples(st.integers(1, 6), st.integers(1, 6)),
    st.tuples(st.integers(1, 4), st.integers(1, 4)),
    pairs,
    pairs,
    st.tuples(st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.integers(0, 4), st.integers(0, 4)),
)
def test_sizes_are_refused_exactly_when_torch_refuses_them(hw, khw, stride, dilation, padding, output_padding):
    """No empty or negative output, and output_padding smaller than the stride or the dilation.

    PyTorch refuses a negative size but returns an empty tensor for a size of 0; convlab
    refuses both."""
    options = dict(stride=stride, dilation=dilation, padding=padding, output_padding=output_padding)
    try:
        Y = F.conv_transpose2d(torch.zeros(1, 1, *hw), torch.zeros(1, 1, *khw), **options)
        torch_refuses = Y.numel() == 0
    except RuntimeError:
        torch_refuses = True
    try:
        convlab.transposed_output_shape(hw, khw, **options)
        refused = False
    except ValueError:
        refused = True
    assert refused == torch_refuses, options


# ---------------------------------------------------------------------------
# The transpose of correlation


def symmetric_padding(hw, khw, options):
    """``options`` with convlab's padding as a per-side pair; None for an uneven 'same'."""
    top, bottom, left, right = convlab.resolve_padding(options["padding"], khw, stride=options["stride"],
                                                       dilation=options["dilation"])
    if top != bottom or left != right:
        return None
    return dict(options, padding=(top, left))


@given(conv_problems(max_size=8, max_kernel=4), channels, channels, st.booleans(), seeds)
def test_conv_transpose_is_the_adjoint_of_correlation(problem, c_in, c_out, multi, seed):
    """<corr(X, K), Y> == <X, conv_transpose(Y, K)>, and conv_transpose(Y, K) is corr's gradient in X."""
    hw, khw, options = problem
    options = symmetric_padding(hw, khw, options)
    assume(options is not None)
    s, d, p = as_pair(options["stride"]), as_pair(options["dilation"]), options["padding"]
    # The rows (and columns) of X that the last window leaves out: Dumoulin & Visin's a.
    a = tuple((hw[x] + 2 * p[x] - d[x] * (khw[x] - 1) - 1) % s[x] for x in range(2))
    if multi:
        X = tensors(seed, c_in, *hw, dtype=torch.float64).requires_grad_()
        K = tensors(seed + 1, c_out, c_in, *khw, dtype=torch.float64)
        corr = convlab.corr2d_multi_in_out
    else:
        X, K = tensors(seed, *hw, dtype=torch.float64).requires_grad_(), tensors(seed + 1, *khw, dtype=torch.float64)
        corr = convlab.corr2d
    Y_corr = corr(X, K, **options)
    Y = tensors(seed + 2, *Y_corr.shape, dtype=torch.float64)
    back = convlab.conv_transpose2d(Y, K, output_padding=a, **options)
    assert back.shape == X.shape, case(X, K, options)
    torch.testing.assert_close((Y_corr * Y).sum(), (X * back).sum(), **TOL)
    (gradient,) = torch.autograd.grad(Y_corr, X, grad_outputs=Y)
    torch.testing.assert_close(gradient, back, **TOL)


def correlation_matrix(shape, K):
    """The matrix of ``corr2d(., K)`` on ``shape`` inputs: column ``n`` is the response to pixel ``n``."""
    basis = torch.eye(shape[0] * shape[1], dtype=K.dtype)
    return torch.stack([convlab.corr2d(e.reshape(shape), K).flatten() for e in basis], dim=1)


def test_the_matrix_of_conv_transpose_is_the_transposed_matrix():
    """Dumoulin & Visin's section 4.1: a 3x3 kernel on a 4x4 input is a 4x16 matrix C; C.T maps back."""
    K = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(3, 3)
    C = correlation_matrix((4, 4), K)
    assert C.shape == (4, 16)
    assert torch.equal(C[0].reshape(4, 4)[:3, :3], K) and torch.count_nonzero(C[0]) == 9
    basis = torch.eye(4, dtype=K.dtype)
    C_T = torch.stack([convlab.conv_transpose2d(e.reshape(2, 2), K).flatten() for e in basis], dim=1)
    assert torch.equal(C_T, C.T)


# ---------------------------------------------------------------------------
# Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (arXiv:1603.07285),
# Relationships 8 to 14 on the examples of Figures 4.1 to 4.7: a convolution (i, k, s, p)
# and the direct convolution equivalent to its transpose: input i' (stretched to i~' by
# s - 1 zeros between its units), a zeros at the bottom and right, padding p', stride 1.

GUIDE = {
    # relationship: (i, k, s, p), (i', i~', a, p'), o' by the relationship's formula
    "8, Figure 4.1 (no padding, unit strides)": ((4, 3, 1, 0), (2, 2, 0, 2), lambda i_, k, s, p, a: i_ + (k - 1)),
    "9, Figure 4.2 (padding, unit strides)": ((5, 4, 1, 2), (6, 6, 0, 1), lambda i_, k, s, p, a: i_ + (k - 1) - 2 * p),
    "10, Figure 4.3 (half padding)": ((5, 3, 1, 1), (5, 5, 0, 1), lambda i_, k, s, p, a: i_),
    "11, Figure 4.4 (full padding)": ((5, 3, 1, 2), (7, 7, 0, 0), lambda i_, k, s, p, a: i_ - (k - 1)),
    "12, Figure 4.5 (no padding, strides)": ((5, 3, 2, 0), (2, 3, 0, 2), lambda i_, k, s, p, a: s * (i_ - 1) + k),
    "13, Figure 4.6 (padding, strides)": ((5, 3, 2, 1), (3, 5, 0, 1), lambda i_, k, s, p, a: s * (i_ - 1) + k - 2 * p),
    "14, Figure 4.7 (padding, strides, odd)": (
        (6, 3, 2, 1), (3, 5, 1, 1), lambda i_, k, s, p, a: s * (i_ - 1) + a + k - 2 * p),
}


def stretch(X, s):
    """``X`` with ``s - 1`` zeros between its pixels along both axes."""
    h, w = X.shape
    Z = X.new_zeros(s * (h - 1) + 1, s * (w - 1) + 1)
    Z[::s, ::s] = X
    return Z


@pytest.mark.parametrize("direct, transposed, relationship", GUIDE.values(), ids=GUIDE.keys())
def test_dumoulin_visin_transposed_relationships(direct, transposed, relationship):
    (i, k, s, p), (i_, i_stretched, a, p_) = direct, transposed
    # The direct convolution maps i to i', and its transpose maps i' back to i.
    assert convlab.output_shape((i, i), (k, k), padding=p, stride=s) == (i_, i_)
    assert a == (i + 2 * p - k) % s and p_ == k - p - 1 and i_stretched == s * (i_ - 1) + 1
    assert relationship(i_, k, s, p, a) == i
    assert convlab.transposed_output_shape((i_, i_), (k, k), padding=p, stride=s, output_padding=a) == (i, i)
    # The equivalent direct convolution: stretch, pad p' (and a at the bottom and right), convolve
    # with stride 1. Convolution proper, that is, correlation with the kernel flipped.
    Y, K = tensors(0, i_, i_, dtype=torch.float64), tensors(1, k, k, dtype=torch.float64)
    Z = convlab.pad2d(stretch(Y, s), (p_, p_ + a, p_, p_ + a))
    assert Z.shape == (i_stretched + 2 * p_ + a,) * 2
    equivalent = convlab.conv2d(Z, K)
    transpose = convlab.conv_transpose2d(Y, K, padding=p, stride=s, output_padding=a)
    assert transpose.shape == (i, i)
    torch.testing.assert_close(transpose, equivalent, **TOL)
    torch.testing.assert_close(transpose, torch_conv_transpose2d(Y, K, padding=p, stride=s, output_padding=a), **TOL)


def test_d2l_transposed_convolution_examples():
    """d2l's section on transposed convolution: a 2x2 input and kernel, stride 1 and 2, padding 1."""
    X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    for fn in IMPLEMENTATIONS:
        assert torch.equal(fn(X, K), torch.tensor([[0.0, 0.0, 1.0], [0.0, 4.0, 6.0], [4.0, 12.0, 9.0]]))
        assert torch.equal(fn(X, K, padding=1), torch.tensor([[4.0]]))
        expected = torch.tensor([[0.0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]])
        assert torch.equal(fn(X, K, stride=2), expected)


def test_one_pixel_scatters_one_copy_of_the_kernel():
    X = torch.zeros(3, 4, dtype=torch.float64)
    X[1, 2] = 2.0
    K = tensors(0, 2, 3, dtype=torch.float64)
    for fn in IMPLEMENTATIONS:
        Y = fn(X, K, stride=(2, 3), dilation=(1, 2))
        assert Y.shape == (2 * 2 + 1 * 1 + 1, 3 * 3 + 2 * 2 + 1)
        copy = torch.zeros_like(Y)
        copy[2:4, 6:11:2] = 2.0 * K
        assert torch.equal(Y, copy)


# ---------------------------------------------------------------------------
# Errors name the argument, the value and what is allowed

X2, K2 = torch.ones(3, 4), torch.ones(2, 2)
X3, K4 = torch.ones(2, 3, 4), torch.ones(2, 5, 2, 2)

ERRORS = {
    "output_padding as large as the stride": (
        lambda: convlab.conv_transpose2d(X2, K2, stride=2, output_padding=2), ValueError,
        ["output_padding", "smaller than the stride or the dilation", "output_padding=2", "stride=2"]),
    "output_padding at stride 1": (
        lambda: convlab.transposed_output_shape((3, 3), (2, 2), output_padding=(0, 1)), ValueError,
        ["output_padding=(0, 1)", "stride=1", "dilation=1"]),
    "negative output_padding": (
        lambda: convlab.conv_transpose2d_loop(X2, K2, stride=2, output_padding=-1), ValueError,
        ["output_padding", "at least 0", "-1"]),
    "padding crops everything": (
        lambda: convlab.conv_transpose2d(X2, K2, padding=(1, 3)), ValueError,
        ["padding=(1, 3)", "output of size (2, -1)", "less padding"]),
    "negative padding": (
        lambda: convlab.conv_transpose2d(X2, K2, padding=-1), ValueError, ["padding", "-1", "at least 0"]),
    "padding by name": (
        lambda: convlab.conv_transpose2d(X2, K2, padding="same"), TypeError, ["padding", "'same'", "pair (ph, pw)"]),
    "zero stride": (
        lambda: convlab.conv_transpose2d(X2, K2, stride=0), ValueError, ["stride", "at least 1", "0"]),
    "float dilation": (
        lambda: convlab.transposed_output_shape((3, 3), (2, 2), dilation=1.5), TypeError, ["dilation", "1.5"]),
    "negative input size": (
        lambda: convlab.transposed_output_shape((-1, 3), (2, 2)), ValueError, ["input size", "(-1, 3)"]),
    "3-D kernel": (
        lambda: convlab.conv_transpose2d(X3, K4[0]), ValueError, ["K must be 4-D (C_in, C_out, kh, kw)", "3-D X"]),
    "4-D kernel for an image": (
        lambda: convlab.conv_transpose2d(X2, K4), ValueError, ["K must be 2-D (kh, kw)", "(2, 5, 2, 2)"]),
    "4-D input": (
        lambda: convlab.conv_transpose2d_loop(K4, K4), ValueError, ["X must be 2-D", "or 3-D", "(2, 5, 2, 2)"]),
    "channels": (
        lambda: convlab.conv_transpose2d(X3, torch.ones(5, 2, 2, 2)), ValueError,
        ["K has 5 input channels", "(C_in, C_out, kh, kw)", "X has 2 channels"]),
    "integer input": (
        lambda: convlab.conv_transpose2d(torch.ones(3, 3, dtype=torch.int64), K2), TypeError,
        ["X must have a floating-point dtype", "torch.int64"]),
    "mixed dtypes": (
        lambda: convlab.conv_transpose2d(X2.double(), K2), TypeError, ["same dtype", "torch.float64", "torch.float32"]),
    "numpy kernel": (
        lambda: convlab.conv_transpose2d(X2, np.ones((2, 2))), TypeError, ["K must be a torch.Tensor", "ndarray"]),
    "empty kernel": (
        lambda: convlab.conv_transpose2d_loop(X2, torch.ones(0, 2)), ValueError, ["K must not be empty", "(0, 2)"]),
}


@pytest.mark.parametrize("call, error, fragments", ERRORS.values(), ids=ERRORS.keys())
def test_bad_input_is_explained(call, error, fragments):
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    missing = [fragment for fragment in fragments if fragment not in message]
    assert not missing, f"{error.__name__} message {message!r} lacks {missing}"
