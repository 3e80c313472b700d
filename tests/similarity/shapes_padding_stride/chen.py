# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    pads = padding if isinstance(padding, tuple) else (padding,) * 2
    steps = stride if isinstance(stride, tuple) else (stride,) * 2
    return tuple((n + 2 * p - k) // s + 1 for n, k, p, s in zip(input_hw, kernel_hw, pads, steps))
# %% pad2d
def pad2d(X, padding):
    """..."""
    ph, pw = padding if isinstance(padding, tuple) else (padding,) * 2
    rows = torch.zeros(ph, X.shape[1], dtype=X.dtype)
    X = torch.cat([rows, X, rows], dim=0)
    cols = torch.zeros(X.shape[0], pw, dtype=X.dtype)
    return torch.cat([cols, X, cols], dim=1)
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    sh, sw = stride if isinstance(stride, tuple) else (stride,) * 2
    windows = pad2d(X, padding).unfold(0, K.shape[0], sh).unfold(1, K.shape[1], sw)
    return torch.einsum("ijab,ab->ij", windows, K)
