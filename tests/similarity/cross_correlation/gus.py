# %% corr2d
def _check_shapes(X, K):
    if X.dim() != 2 or K.dim() != 2:
        raise ValueError(f"corr2d wants 2-D tensors, got {X.dim()}-D and {K.dim()}-D")
    if K.shape[0] > X.shape[0] or K.shape[1] > X.shape[1]:
        raise ValueError("the kernel is larger than the image")


def _window_sum(X, K, top, left):
    total = X.new_zeros(())
    for a in range(K.shape[0]):
        for b in range(K.shape[1]):
            total = total + X[top + a, left + b] * K[a, b]
    return total


def corr2d(X, K):
    """..."""
    _check_shapes(X, K)
    n_rows = X.shape[0] - K.shape[0] + 1
    n_cols = X.shape[1] - K.shape[1] + 1
    result = torch.empty(n_rows, n_cols, dtype=X.dtype)
    for top in range(n_rows):
        for left in range(n_cols):
            result[top, left] = _window_sum(X, K, top, left)
    return result
# %% conv2d
def conv2d(X, K):
    """..."""
    _check_shapes(X, K)
    flipped = K[torch.arange(K.shape[0] - 1, -1, -1)][:, torch.arange(K.shape[1] - 1, -1, -1)]
    return corr2d(X, flipped)
