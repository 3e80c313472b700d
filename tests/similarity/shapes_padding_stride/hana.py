# %% output_shape
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    p = torch.tensor(padding).expand(2)
    s = torch.tensor(stride).expand(2)
    out = (torch.tensor(input_hw) + 2 * p - torch.tensor(kernel_hw)) // s + 1
    return tuple(int(v) for v in out)
# %% pad2d
def pad2d(X, padding):
    """..."""
    ph, pw = torch.tensor(padding).expand(2).tolist()
    Y = torch.zeros(X.shape[0] + 2 * ph, X.shape[1] + 2 * pw, dtype=X.dtype)
    Y[ph:ph + X.shape[0]][:, pw:pw + X.shape[1]] = X
    return Y
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    sh, sw = torch.tensor(stride).expand(2).tolist()
    P = pad2d(X, padding)
    oh, ow = output_shape(X.shape, K.shape, padding, stride)
    kh, kw = K.shape
    rows = torch.arange(oh)[:, None, None, None] * sh + torch.arange(kh)[None, None, :, None]
    cols = torch.arange(ow)[None, :, None, None] * sw + torch.arange(kw)[None, None, None, :]
    return (P[rows, cols] * K).sum(dim=(-2, -1))
