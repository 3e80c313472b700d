"""Zero padding of an image, or of every channel of a stack of images."""

from ._checks import check_tensor, pair


def pad2d(X, padding, *, value=0):
    """Return ``X`` with zeros (or ``value``) added around its last two dimensions.

    Parameters
    ----------
    X : torch.Tensor
        An ``(H, W)`` image or a ``(C, H, W)`` stack of channels. It is not modified.
    padding : int, pair of int, or 4-tuple of int
        Zeros per side: ``p`` on all four sides, ``(ph, pw)`` on top and bottom,
        left and right, or ``(top, bottom, left, right)``.

    Returns
    -------
    torch.Tensor
        Shape ``(..., H + top + bottom, W + left + right)``; gradients flow to ``X``.

    Notes
    -----
    ``np.pad`` and ``torch.nn.functional.pad`` order their arguments differently:
    ``np.pad(x, ((top, bottom), (left, right)))`` but
    ``F.pad(x, (left, right, top, bottom))``, last dimension first.

    Examples
    --------
    >>> pad2d(torch.ones(1, 2), (1, 0, 0, 2))
    tensor([[0., 0., 0., 0.],
            [1., 1., 0., 0.]])
    """
    check_tensor(X, "X", ndim=(2, 3), floating=False)
    return padded(X, _per_side(padding), value=value)


def padded(X, sides, *, value=0):
    """``pad2d`` for ``sides = (top, bottom, left, right)`` already checked: a new tensor."""
    top, bottom, left, right = sides
    if (top, bottom, left, right) == (0, 0, 0, 0):
        return X.clone()
    *lead, h, w = X.shape
    out = X.new_full((*lead, h + top + bottom, w + left + right), value)
    out[..., top : top + h, left : left + w] = X
    return out


def _per_side(padding):
    """``(top, bottom, left, right)`` from an int, a pair or a 4-tuple."""
    allowed = "an int, a pair (ph, pw) or a 4-tuple (top, bottom, left, right) of ints >= 0"
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in padding):
            raise TypeError(f"padding must be {allowed}, got {padding!r}")
        if min(padding) < 0:
            raise ValueError(f"padding must be {allowed}, got {padding!r}")
        return tuple(padding)
    try:
        ph, pw = pair(padding, "padding", minimum=0)
    except TypeError:
        raise TypeError(f"padding must be {allowed}, got {padding!r}") from None
    except ValueError:
        raise ValueError(f"padding must be {allowed}, got {padding!r}") from None
    return (ph, ph, pw, pw)
