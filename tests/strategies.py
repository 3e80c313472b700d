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
