# %% output_shape
import math

def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    p = padding if type(padding) == int else padding[0]
    s = stride if type(stride) == int else stride[0]
    oh = math.floor((input_hw[0] + p - kernel_hw[0]) / s)
    ow = math.floor((input_hw[1] + p - kernel_hw[1]) / s)
    return oh, ow
# %% pad2d
def pad2d(X, padding):
    """..."""
    p = padding if type(padding) == int else padding[0]
    return torch.nn.functional.pad(X, (p, p, p, p))
# %% corr2d
def corr2d(X, K, padding=0, stride=1):
    """..."""
    s = stride if type(stride) == int else stride[0]
    X = pad2d(X, padding)
    oh, ow = X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1
    Y = torch.zeros(oh, ow)
    for i in range(0, oh, s):
        for j in range(0, ow, s):
            Y[i, j] = (X[i:i + K.shape[0], j:j + K.shape[1]] * K).sum()
    return Y
