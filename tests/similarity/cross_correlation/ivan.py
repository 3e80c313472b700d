# %% corr2d
def corr2d(X, K):
    """..."""
    H, W = X.shape
    kh, kw = K.shape
    Y = torch.zeros(H - kh + 1, W - kw + 1, dtype=X.dtype)
    for i in range(H - kh + 1):
        for j in range(W - kw + 1):
            Y[i, j] = torch.sum(X[i:i+kh, j:j+kw] * K)
    return Y
# %% conv2d
def conv2d(X, K):
    """..."""
    return corr2d(X, torch.flip(K, [0, 1]))
