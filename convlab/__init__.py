"""ConvLab: reference implementations of 2-D convolution for the course.

Single-channel functions take ``(H, W)`` tensors, multi-channel ones
``(C, H, W)`` inputs and ``(C_out, C_in, kh, kw)`` kernels; transposed
convolutions take ``(C_in, C_out, kh, kw)`` kernels, as in PyTorch. Padding is
the number of zeros on each side.
"""

import importlib
import sys

# public name -> the submodule that defines it. Loaded on first use (PEP 562), so that
# tools under convlab (the class grader) start without importing torch; ``import
# convlab`` then ``convlab.corr2d`` or ``from convlab import corr2d`` work as usual.
_WHERE = {
    "Conv2D": "layers",
    "LayerCost": "arithmetic", "conv_cost": "arithmetic", "conv_macs": "arithmetic", "conv_params": "arithmetic",
    "corr2d_grouped": "arithmetic", "layer_costs": "arithmetic", "linear_cost": "arithmetic",
    "conv2d": "correlate", "corr2d": "correlate", "corr2d_loop": "correlate",
    "conv_transpose2d": "transposed", "conv_transpose2d_loop": "transposed",
    "corr2d_multi_in": "channels", "corr2d_multi_in_out": "channels", "corr2d_multi_in_out_1x1": "channels",
    "fit_kernel": "train", "squared_loss": "train",
    "output_shape": "shapes", "receptive_field": "shapes", "resolve_padding": "shapes",
    "transposed_output_shape": "shapes",
    "digits": "data", "pad2d": "padding", "photo": "data", "pool2d": "pooling", "stripes": "data",
    "animate": None, "kernels": None,   # submodules
}

__all__ = [
    "Conv2D",
    "LayerCost",
    "animate",
    "conv2d",
    "conv_cost",
    "conv_macs",
    "conv_params",
    "conv_transpose2d",
    "conv_transpose2d_loop",
    "corr2d",
    "corr2d_grouped",
    "corr2d_loop",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "digits",
    "fit_kernel",
    "kernels",
    "layer_costs",
    "linear_cost",
    "output_shape",
    "pad2d",
    "photo",
    "pool2d",
    "receptive_field",
    "resolve_padding",
    "squared_loss",
    "stripes",
    "transposed_output_shape",
]


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_WHERE[name] or name}", __name__)
    value = module if _WHERE[name] is None else getattr(module, name)
    globals()[name] = value   # later uses find it without this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def load_all():
    """Import every public name now (what an eager ``__init__`` would do): a grading kernel
    does this before it takes its fingerprints, so that no later use adds a name here."""
    for name in __all__:
        getattr(sys.modules[__name__], name)
