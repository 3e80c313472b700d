# %% corr2d
def corr2d(X, K):
    """..."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
# %% conv2d
def conv2d(X, K):
    """..."""
    return corr2d(X, torch.flip(K, dims=(0, 1)))
