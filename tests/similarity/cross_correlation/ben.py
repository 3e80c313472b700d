# %% corr2d
def corr2d(X, K):
    """..."""
    # the lecture's loop: one output pixel at a time
    kh, kw = K.shape
    out = X.new_zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1)
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = (X[r:r + kh, c:c + kw] * K).sum()
    return out
# %% conv2d
def conv2d(X, K):
    """..."""
    return corr2d(X, K.flip(0, 1))
