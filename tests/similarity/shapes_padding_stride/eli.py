# %% output_shape
def _pair(value):
    """Turn an int or a pair into a pair of ints."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def _one_axis(size, kernel, pad, step):
    span = size + 2 * pad - kernel
    if span < 0:
        raise ValueError(f"kernel {kernel} does not fit in {size} padded by {pad}")
    return span // step + 1


def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    """..."""
    pad_h, pad_w = _pair(padding)
    step_h, step_w = _pair(stride)
    return (_one_axis(input_hw[0], kernel_hw[0], pad_h, step_h),
            _one_axis(input_hw[1], kernel_hw[1], pad_w, step_w))
# %% pad2d
def pad2d(X, padding):
    """..."""
    pad_h, pad_w = _pair(padding)
    height, width = X.shape
    canvas = torch.zeros(height + 2 * pad_h, width + 2 * pad_w, dtype=X.dtype)
    canvas[pad_h:pad_h + height, pad_w:pad_w + width] = X
    return canvas
# %% corr2d
def _window(P, top, left, kh, kw):
    return P[top:top + kh, left:left + kw]


def corr2d(X, K, padding=0, stride=1):
    """..."""
    step_h, step_w = _pair(stride)
    kh, kw = K.shape
    oh, ow = output_shape(tuple(X.shape), (kh, kw), padding, stride)
    P = pad2d(X, padding)
    rows = []
    for i in range(oh):
        row = [(_window(P, i * step_h, j * step_w, kh, kw) * K).sum() for j in range(ow)]
        rows.append(torch.stack(row))
    return torch.stack(rows)
