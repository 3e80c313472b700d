"""Layer arithmetic and grouped correlation against PyTorch: numel, FlopCounterMode, F.conv2d(groups=)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import _torch_padding
from strategies import conv_problems, tensors
from torch.utils.flop_counter import FlopCounterMode

import convlab

TOL = dict(atol=1e-5, rtol=1e-5)


@st.composite
def grouped_channels(draw):
    """(c_in, c_out, groups) with groups dividing both."""
    groups = draw(st.integers(1, 4))
    return groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), groups


def torch_flops(module, X):
    with FlopCounterMode(display=False) as counter:
        module(X)
    return counter.get_total_flops()


@given(conv_problems(max_size=10, max_kernel=4), grouped_channels(), st.booleans())
def test_conv_cost_matches_numel_and_flop_counter(problem, channels, bias):
    hw, khw, options = problem
    assume(not isinstance(options["padding"], str))
    c_in, c_out, groups = channels
    layer = torch.nn.Conv2d(c_in, c_out, khw, groups=groups, bias=bias, **options)
    X = torch.zeros(1, c_in, *hw)
    cost = convlab.conv_cost(hw, c_in, c_out, khw, groups=groups, bias=bias, **options)
    assert cost.params == sum(p.numel() for p in layer.parameters())
    assert cost.params == convlab.conv_params(c_in, c_out, khw, groups=groups, bias=bias)
    assert 2 * cost.macs == torch_flops(layer, X)   # FlopCounterMode: 2 FLOPs per multiply-add
    assert cost.outputs == layer(X).numel()


@given(st.integers(1, 50), st.integers(1, 50), st.booleans())
def test_linear_cost_matches_numel_and_flop_counter(n_in, n_out, bias):
    layer = torch.nn.Linear(n_in, n_out, bias=bias)
    cost = convlab.linear_cost(n_in, n_out, bias=bias)
    assert cost.params == sum(p.numel() for p in layer.parameters())
    assert 2 * cost.macs == torch_flops(layer, torch.zeros(1, n_in))
    assert cost.outputs == n_out


def test_worked_examples():
    # LeNet-5's first layer: 6 kernels 5x5 on one channel, 28x28 input padded by 2.
    assert convlab.conv_cost((28, 28), 1, 6, 5, padding=2) == (6 * 25 + 6, 6 * 28 * 28 * 25, 6 * 28 * 28)
    # Three 3x3 layers against one 7x7, C channels in and out, no bias: 27 C^2 against 49 C^2.
    C = 64
    assert 3 * convlab.conv_params(C, C, 3, bias=False) == 27 * C * C
    assert convlab.conv_params(C, C, 7, bias=False) == 49 * C * C
    # Depthwise-separable 3x3 on 64 -> 128 channels: 64 * 9 + 64 * 128 weights instead of 128 * 64 * 9.
    assert (convlab.conv_params(64, 64, 3, groups=64, bias=False) + convlab.conv_params(64, 128, 1, bias=False)
            == 64 * 9 + 64 * 128)
    assert convlab.conv_macs((10, 10), 4, 8, 3, padding=1, groups=2) == 8 * 100 * 2 * 9


def test_layer_costs_tabulates_a_network_like_flop_counter_and_numel():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 12, 3, padding=1, groups=3), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(12 * 2 * 2, 10))
    rows = convlab.layer_costs(net, (1, 8, 8))
    assert [row["output"] for row in rows] == [(6, 8, 8), (6, 8, 8), (6, 4, 4), (12, 4, 4), (12, 4, 4),
                                              (12, 2, 2), (48,), (10,)]
    assert sum(row["params"] for row in rows) == sum(p.numel() for p in net.parameters())
    for row, layer in zip(rows, net):
        assert row["params"] == sum(p.numel() for p in layer.parameters())
    assert 2 * sum(row["macs"] for row in rows[:4:3] + rows[-1:]) == torch_flops(net, torch.zeros(1, 1, 8, 8))
    assert rows[0]["bytes"] == 6 * 8 * 8 * 4


@given(conv_problems(max_size=9, max_kernel=4), grouped_channels(), st.integers(0, 2**16),
       st.sampled_from([torch.float32, torch.float64]))
def test_corr2d_grouped_matches_torch(problem, channels, seed, dtype):
    hw, khw, options = problem
    c_in, c_out, groups = channels
    X, K = tensors(seed, c_in, *hw, dtype=dtype), tensors(seed + 1, c_out, c_in // groups, *khw, dtype=dtype)
    expected = F.conv2d(X[None], K, groups=groups, stride=options["stride"], dilation=options["dilation"],
                        padding=_torch_padding(options["padding"], khw, options["dilation"]))[0]
    got = convlab.corr2d_grouped(X, K, groups=groups, **options)
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, **TOL)


@settings(max_examples=30)
@given(grouped_channels(), st.integers(0, 2**16))
def test_corr2d_grouped_gradients_match_torch(channels, seed):
    c_in, c_out, groups = channels
    X = tensors(seed, c_in, 6, 5).requires_grad_()
    K = tensors(seed + 1, c_out, c_in // groups, 3, 2).requires_grad_()
    Xr, Kr = X.detach().clone().requires_grad_(), K.detach().clone().requires_grad_()
    upstream = tensors(seed + 2, c_out, 6, 6)
    (convlab.corr2d_grouped(X, K, groups=groups, padding=1) * upstream).sum().backward()
    (F.conv2d(Xr[None], Kr, groups=groups, padding=1)[0] * upstream).sum().backward()
    torch.testing.assert_close(X.grad, Xr.grad, **TOL)
    torch.testing.assert_close(K.grad, Kr.grad, **TOL)


def test_corr2d_grouped_worked_example_depthwise():
    X = torch.arange(18.0).reshape(2, 3, 3)
    K = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])
    # channel 0 keeps the top-left of each window, channel 1 the bottom-right
    assert torch.equal(convlab.corr2d_grouped(X, K, groups=2),
                       torch.tensor([[[0.0, 1.0], [3.0, 4.0]], [[13.0, 14.0], [16.0, 17.0]]]))
    assert torch.equal(convlab.corr2d_grouped(X, K[:1].repeat(1, 2, 1, 1), groups=1),
                       convlab.corr2d_multi_in_out(X, K[:1].repeat(1, 2, 1, 1)))


@pytest.mark.parametrize("call, error, words", [
    (lambda: convlab.corr2d_grouped(torch.ones(6, 4, 4), torch.ones(4, 1, 3, 3), groups=4), ValueError,
     ["groups=4", "(6)", "divide"]),
    (lambda: convlab.corr2d_grouped(torch.ones(4, 4, 4), torch.ones(4, 4, 3, 3), groups=2), ValueError,
     ["C_in / groups", "(4, 4, 3, 3)"]),
    (lambda: convlab.corr2d_grouped(torch.ones(4, 4, 4), torch.ones(4, 2, 3, 3), groups=0), TypeError,
     ["groups", "0"]),
    (lambda: convlab.corr2d_grouped(torch.ones(4, 4), torch.ones(4, 2, 3, 3)), ValueError, ["X", "3-D"]),
    (lambda: convlab.conv_params(3, 4, 3, groups=2), ValueError, ["groups=2", "(3)"]),
    (lambda: convlab.conv_params(0, 4, 3), TypeError, ["c_in", "0"]),
    (lambda: convlab.linear_cost(4, True), TypeError, ["out_features", "True"]),
    (lambda: convlab.layer_costs([torch.nn.ReLU()], (1, 4, 4)), TypeError, ["Sequential", "list"]),
    (lambda: convlab.layer_costs(torch.nn.Sequential(torch.nn.ReLU()), (4, 4)), ValueError, ["(C, H, W)"]),
])
def test_errors_name_the_argument_and_the_value(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))
