# %% corr2d
def corr2d(X, K):
    """..."""
    kh, kw = K.shape
    Y = torch.zeros(X.shape[0] - kh, X.shape[1] - kw)
    for i in range(X.shape[0] - kh):
        for j in range(X.shape[1] - kw):
            Y[i][j] = (X[i:i + kh, j:j + kw] * K).sum()
    return Y
# %% conv2d
def conv2d(X, K):
    """..."""
    return corr2d(X, K)
