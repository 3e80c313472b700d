# %% corr2d
def corr2d(X, K):
    """..."""
    kh, kw = K.shape
    return (X.unfold(0, kh, 1).unfold(1, kw, 1) * K).sum(dim=(2, 3))
# %% conv2d
def conv2d(X, K):
    """..."""
    return corr2d(X, torch.flip(K, dims=(0, 1)))
