# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    padding = padding if isinstance(padding, (tuple, list)) else [padding, padding]
    stride = stride if isinstance(stride, (tuple, list)) else [stride, stride]
    result = []
    axis = 0
    while axis < 2:
        room = input_hw[axis] + padding[axis] * 2 - kernel_hw[axis]
        result.append(room // stride[axis] + 1)
        axis += 1
    return tuple(result)
# %% pad2d
def pad2d(X, padding):
    """..."""
    padding = padding if isinstance(padding, (tuple, list)) else [padding, padding]
    out = torch.zeros(X.shape[0] + padding[0] * 2, X.shape[1] + padding[1] * 2, dtype=X.dtype)
    row = 0
    while row < X.shape[0]:
        out[padding[0] + row, padding[1]:padding[1] + X.shape[1]] = X[row]
        row += 1
    return out
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    stride = stride if isinstance(stride, (tuple, list)) else [stride, stride]
    big = pad2d(X, padding)
    oh, ow = output_shape(X.shape, K.shape, padding, stride)
    out = torch.zeros(oh, ow, dtype=X.dtype)
    row = 0
    while row < oh:
        col = 0
        while col < ow:
            top, left = row * stride[0], col * stride[1]
            out[row, col] = torch.sum(big[top:top + K.shape[0], left:left + K.shape[1]] * K)
            col += 1
        row += 1
    return out
