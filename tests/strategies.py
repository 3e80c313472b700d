"""Hypothesis strategies shared by the package tests (one place, as in minitorch)."""

import torch
from hypothesis import assume, settings
from hypothesis import strategies as st

import convlab

# Examples are small but some run autograd or Python loops: no per-example deadline.
settings.register_profile("convlab", deadline=None, max_examples=100)
settings.load_profile("convlab")

small = st.integers(min_value=1, max_value=4)
pairs = st.one_of(small, st.tuples(small, small))
paddings = st.one_of(
    st.integers(0, 4),
    st.tuples(st.integers(0, 4), st.integers(0, 4)),
    st.sampled_from(["valid", "same", "full"]),
)


@st.composite
def conv_problems(draw, *, max_size=12, max_kernel=5, dilation=True):
    """An input size, a kernel size and options for which the output is not empty."""
    hw = (draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
    khw = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    options = dict(padding=draw(paddings), stride=draw(pairs))
    if dilation:
        options["dilation"] = draw(pairs)
    assume(not (options["padding"] == "same" and options["stride"] not in (1, (1, 1))))
    try:
        convlab.output_shape(hw, khw, **options)
    except ValueError:
        assume(False)
    return hw, khw, options


def tensors(seed, *shape, dtype=torch.float32):
    """A reproducible standard-normal tensor."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def as_pair(value):
    """``(v, v)`` for an int, the pair itself otherwise."""
    return (value, value) if isinstance(value, int) else tuple(value)


@st.composite
def transposed_problems(draw, *, max_size=8, max_kernel=4):
    """An input size, a kernel size and options of a transposed convolution whose output is not empty.

    ``output_padding`` is drawn below the larger of stride and dilation on each
    axis, the values PyTorch accepts.
    """
    hw = (draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
    khw = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride, dilation = draw(pairs), draw(pairs)
    padding = draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3))))
    bounds = [max(s, d) - 1 for s, d in zip(as_pair(stride), as_pair(dilation))]
    output_padding = (draw(st.integers(0, bounds[0])), draw(st.integers(0, bounds[1])))
    if output_padding[0] == output_padding[1] and draw(st.booleans()):
        output_padding = output_padding[0]
    options = dict(padding=padding, stride=stride, dilation=dilation, output_padding=output_padding)
    try:
        convlab.transposed_output_shape(hw, khw, **options)
    except ValueError:
        assume(False)
    return hw, khw, options
