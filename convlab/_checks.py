"""Argument checks shared by every public function.

Each check raises ``TypeError`` or ``ValueError`` with a message that names the
argument, the value received and what is allowed, so that a student sees what
went wrong instead of an ``IndexError`` from deep inside a loop.
"""

import torch

LAYOUTS = {2: "(H, W)", 3: "(C, H, W)", 4: "(C_out, C_in, kh, kw)"}


def check_tensor(value, name, *, ndim, floating=True):
    """Return ``value`` if it is a non-empty tensor with ``ndim`` (an int or a tuple) dimensions."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if value.dim() not in allowed:
        layouts = " or ".join(f"{n}-D {LAYOUTS[n]}" for n in allowed)
        raise ValueError(f"{name} must be {layouts}, got {value.dim()}-D with shape {tuple(value.shape)}")
    if value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    if floating and not (value.is_floating_point() or value.is_complex()):
        raise TypeError(
            f"{name} must have a floating-point dtype, got {value.dtype}; "
            f"convert it with {name}.float()"
        )
    return value


def check_same_dtype(X, K):
    """Both operands of a correlation share one dtype, as in torch.nn.functional."""
    if X.dtype != K.dtype:
        raise TypeError(f"X and K must have the same dtype, got X {X.dtype} and K {K.dtype}")


def pair(value, name, *, minimum=1):
    """Turn an int or a pair of ints into a pair, each at least ``minimum``."""
    if type(value) is int and value >= minimum:  # the common case, checked cheaply
        return (value, value)
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return values
