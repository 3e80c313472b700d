"""PyTorch's own operations, called the way convlab's options mean, as the reference."""

import torch
import torch.nn.functional as F


def _torch_padding(padding, khw, dilation):
    """PyTorch's padding argument for one of convlab's padding forms."""
    if padding == "full":
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        return (dh * (khw[0] - 1), dw * (khw[1] - 1))
    return padding


def torch_corr2d(X, K, *, padding=0, stride=1, dilation=1):
    """``F.conv2d`` on an (H, W) image and an (kh, kw) kernel."""
    p = _torch_padding(padding, K.shape, dilation)
    return F.conv2d(X[None, None], K[None, None], padding=p, stride=stride, dilation=dilation)[0, 0]


def torch_corr2d_multi(X, K, *, padding=0, stride=1, dilation=1):
    """``F.conv2d`` on a (C_in, H, W) input and (C_out, C_in, kh, kw) kernels."""
    p = _torch_padding(padding, K.shape[2:], dilation)
    return F.conv2d(X[None], K, padding=p, stride=stride, dilation=dilation)[0]


def assert_gradients_match(fn, reference, X, K, options):
    """``fn`` and ``reference`` give the same gradients for X and K under one random upstream gradient."""
    X, K = X.detach().requires_grad_(), K.detach().requires_grad_()
    X_ref, K_ref = X.detach().clone().requires_grad_(), K.detach().clone().requires_grad_()
    Y, Y_ref = fn(X, K, **options), reference(X_ref, K_ref, **options)
    upstream = torch.randn(Y.shape, generator=torch.Generator().manual_seed(0), dtype=Y.dtype)
    (Y * upstream).sum().backward()
    (Y_ref * upstream).sum().backward()
    case = f"X {tuple(X.shape)}, K {tuple(K.shape)}, {options}"
    torch.testing.assert_close(X.grad, X_ref.grad, atol=1e-5, rtol=1e-5, msg=lambda m: f"dL/dX for {case}\n{m}")
    torch.testing.assert_close(K.grad, K_ref.grad, atol=1e-5, rtol=1e-5, msg=lambda m: f"dL/dK for {case}\n{m}")


def torch_conv_transpose2d(X, K, **options):
    """``F.conv_transpose2d`` on an (H, W) image and an (kh, kw) kernel."""
    return F.conv_transpose2d(X[None, None], K[None, None], **options)[0, 0]


def torch_conv_transpose2d_multi(X, K, **options):
    """``F.conv_transpose2d`` on a (C_in, H, W) input and (C_in, C_out, kh, kw) kernels."""
    return F.conv_transpose2d(X[None], K, **options)[0]
