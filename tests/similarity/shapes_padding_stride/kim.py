# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    pd = padding if isinstance(padding, (tuple, list)) else [padding, padding]
    st = stride if isinstance(stride, (tuple, list)) else [stride, stride]
    sizes = []
    d = 0
    while d < 2:
        # how far the window can travel
        room = input_hw[d] + pd[d] * 2 - kernel_hw[d]
        sizes.append(room // st[d] + 1)
        d += 1
    return tuple(sizes)
# %% pad2d
def pad2d(X, padding):
    """..."""
    pd = padding if isinstance(padding, (tuple, list)) else [padding, padding]
    res = torch.zeros(X.shape[0] + pd[0] * 2, X.shape[1] + pd[1] * 2, dtype=X.dtype)
    unused = torch.zeros(1)
    i = 0
    while i < X.shape[0]:
        res[pd[0] + i, pd[1]:pd[1] + X.shape[1]] = X[i]
        i += 1
    return res
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    st = stride if isinstance(stride, (tuple, list)) else [stride, stride]
    padded = pad2d(X, padding)
    oh, ow = output_shape(X.shape, K.shape, padding, st)
    res = torch.zeros(oh, ow, dtype=X.dtype)
    c = 0
    while c < ow:
        r = 0
        while r < oh:
            top, left = r * st[0], c * st[1]
            res[r, c] = torch.sum(padded[top:top + K.shape[0], left:left + K.shape[1]] * K)
            r += 1
        c += 1
    if False:
        print("never runs", res.sum())
    return res
