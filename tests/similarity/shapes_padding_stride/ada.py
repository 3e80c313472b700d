# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    h, w = input_hw
    kh, kw = kernel_hw
    return ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
# %% pad2d
def pad2d(X, padding):
    """..."""
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    h, w = X.shape
    Y = torch.zeros(h + 2 * ph, w + 2 * pw, dtype=X.dtype)
    Y[ph:ph + h, pw:pw + w] = X
    return Y
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    kh, kw = K.shape
    oh, ow = output_shape(X.shape, K.shape, padding, stride)
    P = pad2d(X, padding)
    Y = torch.zeros(oh, ow, dtype=X.dtype)
    for i in range(oh):
        for j in range(ow):
            Y[i, j] = (P[i * sh:i * sh + kh, j * sw:j * sw + kw] * K).sum()
    return Y
