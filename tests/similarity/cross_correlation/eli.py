# %% corr2d
def corr2d(X, K):
    """..."""
    kh, kw = K.shape
    rows = X.shape[0] - kh + 1
    cols = X.shape[1] - kw + 1
    return torch.stack([torch.stack([(X[i:i + kh, j:j + kw] * K).sum() for j in range(cols)])
                        for i in range(rows)])
# %% conv2d
def conv2d(X, K):
    """..."""
    flipped = torch.flip(K, dims=(0, 1))
    return corr2d(X, flipped)
