# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    oh = (input_hw[0] - kernel_hw[0] + 2 * ph) // sh + 1
    ow = (input_hw[1] - kernel_hw[1] + 2 * pw) // sw + 1
    return oh, ow
# %% pad2d
def pad2d(X, padding):
    """..."""
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    Y = torch.zeros(X.shape[0] + 2 * ph, X.shape[1] + 2 * pw, dtype=X.dtype)
    Y[ph:ph + X.shape[0], pw:pw + X.shape[1]] = X
    return Y
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    # unfold makes every window a view: (oh, ow, kh, kw)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    kh, kw = K.shape
    windows = pad2d(X, padding).unfold(0, kh, sh).unfold(1, kw, sw)
    return (windows * K).sum(dim=(-2, -1))
