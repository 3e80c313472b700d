# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    if isinstance(padding, int):
        padding = (padding, padding)
    if isinstance(stride, int):
        stride = (stride, stride)
    oh = (input_hw[0] + 2 * padding[0] - kernel_hw[0]) // stride[0] + 1
    ow = (input_hw[1] + 2 * padding[1] - kernel_hw[1]) // stride[1] + 1
    return (oh, ow)
# %% pad2d
def pad2d(X, padding):
    """..."""
    if isinstance(padding, int):
        padding = (padding, padding)
    ph, pw = padding
    Y = X.new_zeros(X.shape[0] + 2 * ph, X.shape[1] + 2 * pw)
    Y[ph:ph + X.shape[0], pw:pw + X.shape[1]] = X
    return Y
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    if isinstance(stride, int):
        stride = (stride, stride)
    oh, ow = output_shape(X.shape, K.shape, padding, stride)
    P = pad2d(X, padding)
    kh, kw = K.shape
    Y = X.new_zeros(oh, ow)
    for i in range(oh):
        for j in range(ow):
            r, c = i * stride[0], j * stride[1]
            Y[i, j] = (P[r:r + kh, c:c + kw] * K).sum()
    return Y
