"""Bad input gets a ValueError or TypeError that names the argument, the value and what is allowed."""

import numpy as np
import pytest
import torch

import convlab

X, K = torch.ones(4, 5), torch.ones(2, 3)
X3, K4 = torch.ones(2, 4, 5), torch.ones(3, 2, 2, 2)

CASES = {
    # a kernel larger than the (padded) input
    "kernel too large": (lambda: convlab.corr2d(X, torch.ones(5, 3)), ValueError, ["kernel size (5, 3)", "padded input (4, 5)"]),
    "kernel too large, loop": (lambda: convlab.corr2d_loop(X, torch.ones(2, 6)), ValueError, ["kernel size (2, 6)", "(4, 5)"]),
    "dilated kernel too large": (lambda: convlab.conv2d(X, K, dilation=3), ValueError, ["dilated by (3, 3)", "spans (4, 7)"]),
    "kernel too large, shape": (lambda: convlab.output_shape((2, 2), (3, 3), padding=0), ValueError, ["kernel size (3, 3)", "(2, 2)"]),
    "kernel too large, channels": (lambda: convlab.corr2d_multi_in(X3, torch.ones(2, 5, 5)), ValueError, ["kernel size (5, 5)"]),
    "window too large, pool": (lambda: convlab.pool2d(X, 6), ValueError, ["kernel size (6, 6)", "(4, 5)"]),
    # stride and dilation must be positive
    "zero stride": (lambda: convlab.corr2d(X, K, stride=0), ValueError, ["stride", "at least 1", "0"]),
    "negative stride pair": (lambda: convlab.corr2d_loop(X, K, stride=(1, -2)), ValueError, ["stride", "(1, -2)"]),
    "zero dilation": (lambda: convlab.corr2d(X, K, dilation=0), ValueError, ["dilation", "at least 1"]),
    "negative dilation": (lambda: convlab.output_shape((4, 4), (2, 2), dilation=-1), ValueError, ["dilation", "-1"]),
    "zero pool stride": (lambda: convlab.pool2d(X, 2, stride=0), ValueError, ["stride", "0"]),
    "float stride": (lambda: convlab.corr2d(X, K, stride=1.5), TypeError, ["stride", "1.5", "int or a pair"]),
    # padding must not be negative, and must be a known form
    "negative padding": (lambda: convlab.corr2d(X, K, padding=-1), ValueError, ["padding", "-1", "at least 0"]),
    "negative padding pair": (lambda: convlab.output_shape((4, 4), (2, 2), padding=(0, -1)), ValueError, ["padding", "(0, -1)"]),
    "negative pad2d": (lambda: convlab.pad2d(X, (0, 0, 0, -1)), ValueError, ["padding", "(0, 0, 0, -1)", ">= 0"]),
    "negative pool padding": (lambda: convlab.pool2d(X, 2, padding=-1), ValueError, ["padding", "-1"]),
    "pool padding over half": (lambda: convlab.pool2d(X, 2, padding=2), ValueError, ["padding", "half of pool_size"]),
    "unknown padding mode": (lambda: convlab.corr2d(X, K, padding="half"), ValueError, ["padding", "'half'", "'same'"]),
    "float padding": (lambda: convlab.corr2d(X, K, padding=0.5), TypeError, ["padding", "0.5", "'valid'"]),
    "three-element pad2d": (lambda: convlab.pad2d(X, (1, 2, 3)), TypeError, ["padding", "(1, 2, 3)", "4-tuple"]),
    # 'same' only at stride 1
    "same with stride": (lambda: convlab.corr2d(X, K, padding="same", stride=2), ValueError, ["'same'", "stride=2"]),
    "same with stride, shape": (lambda: convlab.output_shape((4, 4), (3, 3), padding="same", stride=(1, 2)), ValueError, ["'same'", "(1, 2)"]),
    # single-channel functions take 2-D tensors
    "3-D input": (lambda: convlab.corr2d(X3, K), ValueError, ["X must be 2-D", "(2, 4, 5)"]),
    "1-D kernel": (lambda: convlab.corr2d(X, torch.ones(3)), ValueError, ["K must be 2-D", "(3,)"]),
    "3-D input, loop": (lambda: convlab.corr2d_loop(X3, K), ValueError, ["X must be 2-D"]),
    "3-D kernel, conv": (lambda: convlab.conv2d(X, K4[0]), ValueError, ["K must be 2-D", "(2, 2, 2)"]),
    "4-D pad2d": (lambda: convlab.pad2d(K4, 1), ValueError, ["X must be 2-D", "or 3-D", "(3, 2, 2, 2)"]),
    "1-D pool": (lambda: convlab.pool2d(torch.ones(5), 2), ValueError, ["X must be 2-D", "(5,)"]),
    "multi-in needs 3-D X": (lambda: convlab.corr2d_multi_in(X, K4[0]), ValueError, ["X must be 3-D", "(4, 5)"]),
    "multi-in-out needs 4-D K": (lambda: convlab.corr2d_multi_in_out(X3, K4[0]), ValueError, ["K must be 4-D", "(2, 2, 2)"]),
    "1x1 needs 1x1 kernels": (lambda: convlab.corr2d_multi_in_out_1x1(X3, K4), ValueError, ["1x1", "(3, 2, 2, 2)"]),
    # channel counts must match
    "channels, multi-in": (lambda: convlab.corr2d_multi_in(X3, torch.ones(3, 2, 2)), ValueError, ["3 input channels", "2 channels"]),
    "channels, multi-in-out": (lambda: convlab.corr2d_multi_in_out(X3, torch.ones(4, 1, 2, 2)), ValueError, ["1 input channels", "X has 2"]),
    "channels, 1x1": (lambda: convlab.corr2d_multi_in_out_1x1(X3, torch.ones(4, 3, 1, 1)), ValueError, ["3 input channels"]),
    # tensors only, floating point where needed, same dtype
    "numpy input": (lambda: convlab.corr2d(np.ones((4, 5)), K), TypeError, ["X must be a torch.Tensor", "ndarray"]),
    "list kernel": (lambda: convlab.conv2d(X, [[1.0, 2.0]]), TypeError, ["K must be a torch.Tensor", "list"]),
    "numpy pad2d": (lambda: convlab.pad2d(np.ones((2, 2)), 1), TypeError, ["X must be a torch.Tensor"]),
    "numpy pool": (lambda: convlab.pool2d(np.ones((2, 2)), 1), TypeError, ["X must be a torch.Tensor"]),
    "integer input": (lambda: convlab.corr2d(torch.arange(9).reshape(3, 3), K[:2, :2]), TypeError, ["X must have a floating-point dtype", "torch.int64", "X.float()"]),
    "integer kernel": (lambda: convlab.corr2d_loop(X, torch.ones(2, 2, dtype=torch.int32)), TypeError, ["K must have a floating-point dtype", "torch.int32"]),
    "integer average": (lambda: convlab.pool2d(torch.ones(3, 3, dtype=torch.int64), 2, mode="avg"), TypeError, ["X must have a floating-point dtype"]),
    "mixed dtypes": (lambda: convlab.corr2d(X.double(), K), TypeError, ["same dtype", "torch.float64", "torch.float32"]),
    # empty tensors
    "empty input": (lambda: convlab.corr2d(torch.ones(0, 5), K), ValueError, ["X must not be empty", "(0, 5)"]),
    "empty kernel": (lambda: convlab.corr2d_loop(X, torch.ones(2, 0)), ValueError, ["K must not be empty", "(2, 0)"]),
    "empty pad2d": (lambda: convlab.pad2d(torch.ones(3, 0), 1), ValueError, ["X must not be empty"]),
    "empty channels": (lambda: convlab.corr2d_multi_in_out(torch.ones(0, 4, 4), torch.ones(1, 0, 2, 2)), ValueError, ["must not be empty"]),
    "empty pool": (lambda: convlab.pool2d(torch.ones(0, 0), 1), ValueError, ["X must not be empty"]),
    # other options
    "pool mode": (lambda: convlab.pool2d(X, 2, mode="min"), ValueError, ["mode", "'min'", "'max'", "'avg'"]),
    "layer kernel size": (lambda: convlab.Conv2D((0, 2)), ValueError, ["kernel_size", "(0, 2)"]),
    "learning rate": (lambda: convlab.fit_kernel(X, X, 1, lr=-1.0), ValueError, ["lr", "-1.0"]),
    "epochs": (lambda: convlab.fit_kernel(X, X, 1, num_epochs=0), ValueError, ["num_epochs", "0"]),
    "mismatched pairs": (lambda: convlab.fit_kernel(X3, X, 1), ValueError, ["X and Y", "(2, 4, 5)", "(4, 5)"]),
    "receptive field layer": (lambda: convlab.receptive_field([dict(size=3)]), TypeError, ["layers[0]", "kernel_size", "{'size': 3}"]),
    "receptive field stride": (lambda: convlab.receptive_field([dict(kernel_size=3, stride=0)]), ValueError, ["layers[0]['stride']", "0"]),
}


@pytest.mark.parametrize("call, error, fragments", CASES.values(), ids=CASES.keys())
def test_bad_input_is_explained(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} missing from: {info.value}"
