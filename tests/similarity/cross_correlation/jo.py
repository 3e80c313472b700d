# %% corr2d
def corr2d(X, K):
    """..."""
    kh, kw = K.shape
    H, W = X.shape
    Y = torch.zeros(H - kh + 1, W - kw + 1, dtype=X.dtype)
    for a in range(kh):
        for b in range(kw):
            Y += K[a, b] * X[a:a + H - kh + 1, b:b + W - kw + 1]
    return Y
# %% conv2d
def conv2d(X, K):
    """..."""
    return corr2d(X, torch.rot90(K, 2))
