# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    out = []
    for n, kk, pp, ss in zip(input_hw, kernel_hw, both(padding), both(stride)):
        out.append((n + 2*pp - kk)//ss + 1)   # the usual formula
    return tuple(out)


def both(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)
# %% pad2d
def pad2d(X, padding):
    """..."""
    # zeros all around, then the image in the middle
    top, side = (padding, padding) if isinstance(padding, int) else tuple(padding)
    Z = torch.zeros((X.shape[0] + 2*top, X.shape[1] + 2*side), dtype=X.dtype)
    Z[top:Z.shape[0] - top, side:Z.shape[1] - side] = X
    return Z
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    step_r, step_c = (stride, stride) if isinstance(stride, int) else tuple(stride)
    Xp = pad2d(X, padding).contiguous()
    oh, ow = output_shape(X.shape, K.shape, padding, stride)
    a, b = Xp.stride()
    # a 4-D view: (output row, output col, kernel row, kernel col)
    windows = Xp.as_strided((oh, ow, K.shape[0], K.shape[1]), (a*step_r, b*step_c, a, b))
    return (windows * K).sum(dim=(2, 3))
