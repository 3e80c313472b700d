"""corr2d, corr2d_loop and conv2d against torch.nn.functional.conv2d."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import assert_gradients_match, torch_corr2d
from strategies import conv_problems, tensors

import convlab

TOL = dict(atol=1e-5, rtol=1e-5)


@given(conv_problems(), st.integers(0, 2**16))
def test_corr2d_matches_torch(problem, seed):
    hw, khw, options = problem
    X, K = tensors(seed, *hw), tensors(seed + 1, *khw)
    expected = torch_corr2d(X, K, **options)
    got = convlab.corr2d(X, K, **options)
    assert got.shape == expected.shape == convlab.output_shape(hw, khw, **options)
    torch.testing.assert_close(got, expected, **TOL, msg=lambda m: f"{m}\nfor X {hw}, K {khw}, {options}")


@settings(max_examples=60)
@given(conv_problems(max_size=9, dilation=False), st.integers(0, 2**16))
def test_corr2d_loop_matches_torch(problem, seed):
    hw, khw, options = problem
    X, K = tensors(seed, *hw), tensors(seed + 1, *khw)
    torch.testing.assert_close(convlab.corr2d_loop(X, K, **options), torch_corr2d(X, K, **options), **TOL)


@given(conv_problems(), st.integers(0, 2**16))
def test_conv2d_is_correlation_with_the_flipped_kernel(problem, seed):
    hw, khw, options = problem
    X, K = tensors(seed, *hw), tensors(seed + 1, *khw)
    expected = torch_corr2d(X, torch.flip(K, (0, 1)), **options)
    torch.testing.assert_close(convlab.conv2d(X, K, **options), expected, **TOL)


def test_conv2d_differs_from_corr2d_on_an_asymmetric_kernel():
    X = torch.arange(9.0).reshape(3, 3)
    K = torch.arange(4.0).reshape(2, 2)
    assert not torch.allclose(convlab.conv2d(X, K), convlab.corr2d(X, K))
    torch.testing.assert_close(convlab.conv2d(X, K), torch.tensor([[5.0, 11.0], [23.0, 29.0]]))


def assert_gradients_match_torch(fn, problem, seed):
    hw, khw, options = problem
    assert_gradients_match(fn, torch_corr2d, tensors(seed, *hw), tensors(seed + 1, *khw), options)


@settings(max_examples=50)
@given(conv_problems(max_size=8, max_kernel=4), st.integers(0, 2**16))
def test_corr2d_gradients_match_torch(problem, seed):
    assert_gradients_match_torch(convlab.corr2d, problem, seed)


@settings(max_examples=25)
@given(conv_problems(max_size=6, max_kernel=3, dilation=False), st.integers(0, 2**16))
def test_corr2d_loop_gradients_match_torch(problem, seed):
    assert_gradients_match_torch(convlab.corr2d_loop, problem, seed)


def test_float64_stays_float64():
    X, K = tensors(0, 6, 7, dtype=torch.float64), tensors(1, 3, 3, dtype=torch.float64)
    Y = convlab.corr2d(X, K, padding="same")
    assert Y.dtype == torch.float64
    torch.testing.assert_close(Y, torch_corr2d(X, K, padding="same"), atol=1e-12, rtol=1e-12)


def test_inputs_are_not_modified():
    X, K = tensors(0, 6, 7), tensors(1, 3, 2)
    X0, K0 = X.clone(), K.clone()
    for fn in (convlab.corr2d, convlab.corr2d_loop, convlab.conv2d):
        fn(X, K, padding=2, stride=2)
        assert torch.equal(X, X0) and torch.equal(K, K0), fn.__name__


def test_non_contiguous_input():
    X = tensors(0, 9, 8).T
    K = tensors(1, 3, 3)
    torch.testing.assert_close(convlab.corr2d(X, K, stride=2), torch_corr2d(X, K, stride=2), **TOL)


# Worked examples from the lecture and from d2l, kept literal.

def test_d2l_worked_example():
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    expected = torch.tensor([[19.0, 25.0], [37.0, 43.0]])
    for fn in (convlab.corr2d, convlab.corr2d_loop):
        torch.testing.assert_close(fn(X, K), expected)


def test_lecture_stripe_edge_map():
    X = convlab.stripes()
    expected = torch.tensor([[0.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0]] * 6)
    torch.testing.assert_close(convlab.corr2d(X, convlab.kernels.DIFFERENCE_X), expected)
    # The transposed image has only horizontal edges, which this kernel cannot see.
    assert torch.count_nonzero(convlab.corr2d(X.T, convlab.kernels.DIFFERENCE_X)) == 0


def test_edge_kernels_compute_the_differences_they_are_named_for():
    X = tensors(2, 5, 6)
    differences = {
        "vertical": X[:, 1:] - X[:, :-1],
        "horizontal": X[1:, :] - X[:-1, :],
        "diagonal": X[1:, 1:] - X[:-1, :-1],
        "antidiagonal": X[1:, :-1] - X[:-1, 1:],
    }
    for direction, expected in differences.items():
        K = convlab.kernels.edge_kernel(direction)
        assert K.dtype == torch.float32
        torch.testing.assert_close(convlab.corr2d(X, K), expected)
        K.zero_()  # a copy: the shared constants stay as they are
    assert convlab.kernels.DIFFERENCE_X.abs().sum() == 2
    for bad in ["Vertical", "diag", "", None]:
        with pytest.raises(ValueError, match="direction must be one of 'vertical'"):
            convlab.kernels.edge_kernel(bad)


@pytest.mark.parametrize("fn", [convlab.corr2d, convlab.corr2d_loop])
def test_lecture_padding_and_stride_case(fn):
    """8x8 input, 3x5 kernel, padding (0, 1), stride (3, 4): the case the lecture crashed on."""
    X, K = tensors(0, 8, 8), tensors(1, 3, 5)
    Y = fn(X, K, padding=(0, 1), stride=(3, 4))
    assert Y.shape == (2, 2)
    torch.testing.assert_close(Y, F.conv2d(X[None, None], K[None, None], padding=(0, 1), stride=(3, 4))[0, 0], **TOL)


def test_same_padding_with_an_even_kernel_pads_bottom_right():
    X, K = tensors(0, 5, 6), tensors(1, 2, 4)
    Y = convlab.corr2d(X, K, padding="same")
    assert Y.shape == X.shape
    explicit = convlab.corr2d(convlab.pad2d(X, (0, 1, 1, 2)), K)
    torch.testing.assert_close(Y, explicit)
    torch.testing.assert_close(Y, torch_corr2d(X, K, padding="same"), **TOL)
