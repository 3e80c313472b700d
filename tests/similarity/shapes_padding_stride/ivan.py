# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    # sizes along each axis, computed separately
    ph, pw = as_pair(padding)
    sh, sw = as_pair(stride)
    return (axis_size(input_hw[0], kernel_hw[0], ph, sh),
            axis_size(input_hw[1], kernel_hw[1], pw, sw))


def axis_size(n, k, p, s):
    # formula from the lecture
    span = n + 2*p - k
    if span < 0:
        raise ValueError(f"kernel {k} does not fit in {n} padded by {p}")
    return span//s + 1


def as_pair(v):
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)
# %% pad2d
def pad2d(X, padding):
    """..."""
    ph, pw = as_pair(padding)
    H, W = X.shape
    Z = torch.zeros(H + 2*ph, W + 2*pw, dtype=X.dtype)
    Z[ph:ph + H, pw:pw + W] = X   # put the image in the middle
    return Z
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    sh, sw = as_pair(stride)
    kh, kw = K.shape
    oh, ow = output_shape(tuple(X.shape), (kh, kw), padding, stride)
    padded = pad2d(X, padding)
    out = []
    for r in range(oh):
        line = [(patch(padded, r * sh, c * sw, kh, kw) * K).sum() for c in range(ow)]
        out.append(torch.stack(line))
    return torch.stack(out)


def patch(img, t, l, h, w):
    return img[t:t + h, l:l + w]
