# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    def two(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    out = []
    for size, k, p, s in zip(input_hw, kernel_hw, two(padding), two(stride)):
        out.append((size + 2 * p - k) // s + 1)
    return tuple(out)
# %% pad2d
def pad2d(X, padding):
    """..."""
    ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
    big = torch.zeros((X.shape[0] + 2 * ph, X.shape[1] + 2 * pw), dtype=X.dtype)
    big[ph:big.shape[0] - ph, pw:big.shape[1] - pw] = X
    return big
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    P = pad2d(X, padding).contiguous()
    oh, ow = output_shape(X.shape, K.shape, padding, stride)
    s0, s1 = P.stride()
    view = P.as_strided((oh, ow, K.shape[0], K.shape[1]), (s0 * sh, s1 * sw, s0, s1))
    return (view * K).sum(dim=(2, 3))
