"""ConvLab: reference implementations of 2-D convolution for the course.

Single-channel functions take ``(H, W)`` tensors, multi-channel ones
``(C, H, W)`` inputs and ``(C_out, C_in, kh, kw)`` kernels; transposed
convolutions take ``(C_in, C_out, kh, kw)`` kernels, as in PyTorch. Padding is
the number of zeros on each side.
"""

__version__ = "0.1.0"  # = pyproject.toml's version; the graded notebooks check it (tests/test_download.py)

from . import animate, kernels
from .arithmetic import LayerCost, conv_cost, conv_macs, conv_params, corr2d_grouped, layer_costs, linear_cost
from .channels import corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1
from .correlate import conv2d, corr2d, corr2d_loop
from .data import digits, photo, stripes
from .layers import Conv2D
from .padding import pad2d
from .pooling import pool2d
from .shapes import output_shape, receptive_field, resolve_padding, transposed_output_shape
from .train import fit_kernel, squared_loss
from .transposed import conv_transpose2d, conv_transpose2d_loop

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
