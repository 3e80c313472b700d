"""output_shape, resolve_padding, receptive_field and pad2d."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from reference import torch_corr2d
from strategies import conv_problems, tensors

import convlab


@given(conv_problems())
def test_output_shape_is_the_shape_torch_produces(problem):
    hw, khw, options = problem
    expected = torch_corr2d(torch.zeros(hw), torch.zeros(khw), **options).shape
    assert convlab.output_shape(hw, khw, **options) == tuple(expected)


@given(conv_problems())
def test_output_shape_returns_python_ints(problem):
    oh, ow = convlab.output_shape(*problem[:2], **problem[2])
    assert type(oh) is int and type(ow) is int and oh >= 1 and ow >= 1


@given(conv_problems())
def test_geometry_gathers_the_public_answers(problem):
    hw, khw, options = problem
    stride, dilation = options.get("stride", 1), options.get("dilation", 1)
    geometry = convlab.shapes.geometry(hw, khw, **options)
    assert geometry.padding == convlab.resolve_padding(options["padding"], khw, stride=stride, dilation=dilation)
    assert geometry.stride == convlab._checks.pair(stride, "stride")
    assert geometry.dilation == convlab._checks.pair(dilation, "dilation")


@pytest.mark.parametrize(
    "i, k, p, s, d, o",
    [
        # Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016).
        (4, 3, 0, 1, 1, 2),  # relationship 1: no padding, unit strides
        (5, 4, 2, 1, 1, 6),  # relationship 2: arbitrary padding
        (5, 3, 1, 1, 1, 5),  # relationship 3: half ('same') padding
        (5, 3, 2, 1, 1, 7),  # relationship 4: full padding
        (5, 3, 0, 2, 1, 2),  # relationship 5: no padding, strides
        (5, 3, 1, 2, 1, 3),  # relationship 6: padding and strides
        (6, 3, 1, 2, 1, 3),  # relationship 6, the odd case: i = 5 and i = 6 give the same o
        (7, 3, 0, 1, 2, 3),  # relationship 15: dilation
    ],
)
def test_convolution_arithmetic_guide(i, k, p, s, d, o):
    assert convlab.output_shape((i, i), (k, k), padding=p, stride=s, dilation=d) == (o, o)


def test_lecture_case():
    assert convlab.output_shape((8, 8), (3, 5), padding=(0, 1), stride=(3, 4)) == (2, 2)


@pytest.mark.parametrize(
    "padding, khw, dilation, expected",
    [
        ("valid", (3, 3), 1, (0, 0, 0, 0)),
        ("same", (3, 5), 1, (1, 1, 2, 2)),
        ("same", (2, 4), 1, (0, 1, 1, 2)),  # even kernels: the extra zero goes bottom/right
        ("same", (2, 2), 3, (1, 2, 1, 2)),
        ("full", (3, 2), (2, 1), (4, 4, 1, 1)),
        (2, (3, 3), 1, (2, 2, 2, 2)),
        ((1, 3), (3, 3), 1, (1, 1, 3, 3)),
    ],
)
def test_resolve_padding(padding, khw, dilation, expected):
    assert convlab.resolve_padding(padding, khw, dilation=dilation) == expected


@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3))
def test_same_keeps_the_size_and_full_grows_it(h, w, kh, kw, d):
    assert convlab.output_shape((h, w), (kh, kw), padding="same", dilation=d) == (h, w)
    assert convlab.output_shape((h, w), (kh, kw), padding="full", dilation=d) == (h + d * (kh - 1), w + d * (kw - 1))


@given(
    st.tuples(st.integers(1, 7), st.integers(1, 7)),
    st.one_of(
        st.integers(0, 3),
        st.tuples(st.integers(0, 3), st.integers(0, 3)),
        st.tuples(*[st.integers(0, 3)] * 4),
    ),
    st.integers(0, 2**16),
)
def test_pad2d_matches_torch_pad(hw, padding, seed):
    X = tensors(seed, *hw)
    if isinstance(padding, int):
        top = bottom = left = right = padding
    elif len(padding) == 2:
        (top, left), (bottom, right) = padding, padding
    else:
        top, bottom, left, right = padding
    expected = F.pad(X, (left, right, top, bottom))
    torch.testing.assert_close(convlab.pad2d(X, padding), expected, atol=0, rtol=0)
    torch.testing.assert_close(convlab.pad2d(X[None].expand(3, *hw), padding), expected.expand(3, *expected.shape))


def test_pad2d_keeps_gradients_and_the_input():
    X = tensors(0, 3, 4).requires_grad_()
    X0 = X.detach().clone()
    convlab.pad2d(X, (1, 2)).sum().backward()
    assert torch.equal(X.grad, torch.ones(3, 4)) and torch.equal(X.detach(), X0)


def test_pad2d_with_a_value():
    torch.testing.assert_close(convlab.pad2d(torch.zeros(1, 1), 1, value=-1.0)[0], torch.tensor([-1.0, -1.0, -1.0]))


def receptive_field_by_autograd(layers, size=41):
    """Extent of the input pixels whose gradient from the central output pixel is nonzero."""
    X = torch.zeros(1, 1, size, size, requires_grad=True)
    Y = X
    for layer in layers:
        k, s, d = layer["kernel_size"], layer.get("stride", 1), layer.get("dilation", 1)
        Y = F.conv2d(Y, torch.ones(1, 1, k, k), stride=s, dilation=d)
    Y[0, 0, Y.shape[2] // 2, Y.shape[3] // 2].backward()
    rows, cols = torch.nonzero(X.grad[0, 0], as_tuple=True)
    return (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)


@pytest.mark.parametrize(
    "layers",
    [
        [dict(kernel_size=3)],
        [dict(kernel_size=3)] * 4,
        [dict(kernel_size=3, stride=2)] * 3,
        [dict(kernel_size=5, stride=2), dict(kernel_size=3)],
        [dict(kernel_size=3, dilation=d) for d in (1, 2, 4)],
        [dict(kernel_size=2, stride=2), dict(kernel_size=3, dilation=2), dict(kernel_size=3)],
    ],
)
def test_receptive_field_matches_autograd(layers):
    assert convlab.receptive_field(layers) == receptive_field_by_autograd(layers)


def test_receptive_field_of_non_square_layers():
    assert convlab.receptive_field([dict(kernel_size=(3, 1)), dict(kernel_size=(1, 5), stride=(1, 2))]) == (3, 5)
