# %% corr2d
def corr2d(X, K):
    """..."""
    validate(X, K)  # make sure the inputs make sense
    height = X.shape[0] - K.shape[0] + 1
    width  = X.shape[1] - K.shape[1] + 1
    debug = False
    out = torch.empty(height, width, dtype = X.dtype)
    # loop over every output position
    for c in range(width):
        for r in range(height):
            out[r, c] = window_total(X, K, r, c)
    if debug:
        print(out.shape)
    return out


def window_total(img, ker, r0, c0):
    # multiply-accumulate over the kernel
    acc = img.new_zeros(())
    for u in range(ker.shape[0]):
        for v in range(ker.shape[1]):
            acc = acc + img[r0 + u, c0 + v] * ker[u, v]
    return acc


def validate(img, ker):
    if img.dim() != 2 or ker.dim() != 2:
        raise ValueError(f"corr2d wants 2-D tensors, got {img.dim()}-D and {ker.dim()}-D")
    if ker.shape[0] > img.shape[0] or ker.shape[1] > img.shape[1]:
        raise ValueError("the kernel is larger than the image")
# %% conv2d
def conv2d(X, K):
    """..."""
    validate(X, K)
    # flip both axes
    kflip = K[torch.arange(K.shape[0] - 1, -1, -1)][:, torch.arange(K.shape[1] - 1, -1, -1)]
    return corr2d(X, kflip)
