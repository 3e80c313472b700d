# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    oh = (input_hw[0] + 2 * ph - kernel_hw[0]) // sh + 1
    ow = (input_hw[1] + 2 * pw - kernel_hw[1]) // sw + 1
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
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    P = pad2d(X, padding)
    kh, kw = K.shape
    oh, ow = output_shape(X.shape, K.shape, padding, stride)
    Y = torch.zeros(oh, ow, dtype=X.dtype)
    for i in range(oh):
        for j in range(ow):
            Y[i, j] = (P[i * sh:i * sh + kh, j * sw:j * sw + kw] * K).sum()
    return Y
