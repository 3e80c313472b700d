"""Multi-channel correlation, 1x1 kernels and pooling against PyTorch."""

from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import assert_gradients_match, torch_corr2d, torch_corr2d_multi
from strategies import conv_problems, pairs, tensors

import convlab

TOL = dict(atol=1e-5, rtol=1e-5)
channels = st.integers(1, 4)


@given(conv_problems(max_size=10), channels, channels, st.integers(0, 2**16))
def test_multi_in_out_matches_torch(problem, c_in, c_out, seed):
    hw, khw, options = problem
    X, K = tensors(seed, c_in, *hw), tensors(seed + 1, c_out, c_in, *khw)
    torch.testing.assert_close(convlab.corr2d_multi_in_out(X, K, **options), torch_corr2d_multi(X, K, **options), **TOL)


@settings(max_examples=50)
@given(conv_problems(max_size=8, max_kernel=4), channels, channels, st.integers(0, 2**16))
def test_multi_in_out_gradients_match_torch(problem, c_in, c_out, seed):
    hw, khw, options = problem
    X, K = tensors(seed, c_in, *hw), tensors(seed + 1, c_out, c_in, *khw)
    assert_gradients_match(convlab.corr2d_multi_in_out, torch_corr2d_multi, X, K, options)


@settings(max_examples=50)
@given(
    conv_problems(max_size=10), channels, channels, st.integers(1, 3), st.integers(1, 2000), st.integers(0, 2**16)
)
def test_im2col_in_bands_of_rows_matches_torch(problem, c_in, c_out, threads, budget, seed):
    """The output rows are cut into one band per thread, and thinner bands under a small IM2COL_BYTES."""
    hw, khw, options = problem
    X, K = tensors(seed, c_in, *hw), tensors(seed + 1, c_out, c_in, *khw)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with mock.patch.object(convlab.correlate, "IM2COL_BYTES", budget):
            Y = convlab.corr2d_multi_in_out(X, K, **options)
            assert_gradients_match(convlab.corr2d_multi_in_out, torch_corr2d_multi, X, K, options)
    finally:
        torch.set_num_threads(threads_before)
    assert Y.is_contiguous()
    torch.testing.assert_close(Y, torch_corr2d_multi(X, K, **options), **TOL)


def test_strided_views_as_input():
    """The engine reads X through its strides and storage offset, so views need no copy first."""
    base = tensors(0, 3, 12, 11)
    views = {"transposed": base.transpose(1, 2), "sliced": base[1:, 2:, 1::2], "permuted": base.permute(0, 2, 1)[:, 1:-1]}
    for name, X in views.items():
        assert not X.is_contiguous(), name
        K = tensors(1, 2, X.shape[0], 3, 2)
        for options in (dict(), dict(padding=1, stride=2), dict(dilation=(2, 1))):
            expected = torch_corr2d_multi(X.contiguous(), K, **options)
            torch.testing.assert_close(convlab.corr2d_multi_in_out(X, K, **options), expected, **TOL)
            Y = convlab.corr2d(X[-1], K[0, 0], **options)
            assert Y.is_contiguous(), (name, options)
            torch.testing.assert_close(Y, torch_corr2d(X[-1].contiguous(), K[0, 0], **options), **TOL)


@given(conv_problems(max_size=10), channels, st.integers(0, 2**16))
def test_multi_in_matches_torch(problem, c_in, seed):
    hw, khw, options = problem
    X, K = tensors(seed, c_in, *hw), tensors(seed + 1, c_in, *khw)
    torch.testing.assert_close(convlab.corr2d_multi_in(X, K, **options), torch_corr2d_multi(X, K[None], **options)[0], **TOL)


@given(
    st.tuples(st.integers(1, 9), st.integers(1, 9)),
    st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3))),
    pairs,
    channels,
    channels,
    st.integers(0, 2**16),
)
def test_1x1_matches_torch(hw, padding, stride, c_in, c_out, seed):
    X, K = tensors(seed, c_in, *hw), tensors(seed + 1, c_out, c_in, 1, 1)
    expected = F.conv2d(X[None], K, padding=padding, stride=stride)[0]
    torch.testing.assert_close(convlab.corr2d_multi_in_out_1x1(X, K, padding=padding, stride=stride), expected, **TOL)


def test_d2l_multi_channel_examples():
    X = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                      [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    torch.testing.assert_close(convlab.corr2d_multi_in(X, K), torch.tensor([[56.0, 72.0], [104.0, 120.0]]))
    K3 = torch.stack((K, K + 1, K + 2))
    Y = convlab.corr2d_multi_in_out(X, K3)
    assert Y.shape == (3, 2, 2)
    torch.testing.assert_close(Y[0], torch.tensor([[56.0, 72.0], [104.0, 120.0]]))
    torch.testing.assert_close(Y[1], torch.tensor([[76.0, 100.0], [148.0, 172.0]]))


def test_d2l_1x1_example():
    X, K = tensors(0, 3, 3, 3), tensors(1, 2, 3, 1, 1)
    torch.testing.assert_close(convlab.corr2d_multi_in_out_1x1(X, K), convlab.corr2d_multi_in_out(X, K), **TOL)


@st.composite
def pool_problems(draw):
    hw = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    window = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, window[0] // 2)), draw(st.integers(0, window[1] // 2)))
    stride = draw(st.one_of(st.none(), pairs))
    assume(hw[0] + 2 * padding[0] >= window[0] and hw[1] + 2 * padding[1] >= window[1])
    return hw, window, padding, stride


@given(pool_problems(), st.sampled_from(["max", "avg"]), st.booleans(), st.integers(0, 2**16))
def test_pool2d_matches_torch(problem, mode, batched, seed):
    hw, window, padding, stride = problem
    X = tensors(seed, 3, *hw) if batched else tensors(seed, *hw)
    torch_pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    expected = torch_pool(X[None] if batched else X[None, None], window, stride=stride, padding=padding)
    expected = expected[0] if batched else expected[0, 0]
    got = convlab.pool2d(X, window, mode=mode, padding=padding, stride=stride)
    torch.testing.assert_close(got, expected, **TOL)


def test_d2l_pooling_examples():
    X = torch.arange(9.0).reshape(3, 3)
    torch.testing.assert_close(convlab.pool2d(X, 2, stride=1), torch.tensor([[4.0, 5.0], [7.0, 8.0]]))
    torch.testing.assert_close(convlab.pool2d(X, 2, mode="avg", stride=1), torch.tensor([[2.0, 3.0], [5.0, 6.0]]))
    X = torch.arange(16.0).reshape(4, 4)
    assert torch.equal(convlab.pool2d(X, 3), torch.tensor([[10.0]]))  # the stride defaults to the window
    torch.testing.assert_close(convlab.pool2d(X, 3, padding=1, stride=2), torch.tensor([[5.0, 7.0], [13.0, 15.0]]))
    torch.testing.assert_close(convlab.pool2d(X, (2, 3), padding=(0, 1), stride=(2, 3)), torch.tensor([[5.0, 7.0], [13.0, 15.0]]))


def test_max_pool_on_integers_and_all_negative_values():
    X = torch.tensor([[-5, -3], [-4, -9]])
    assert torch.equal(convlab.pool2d(X, 2, padding=1, stride=1), F.max_pool2d(X[None].float(), 2, 1, 1)[0].long())
