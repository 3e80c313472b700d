"""Edge-detection kernels, built from one-dimensional parts.

Under cross-correlation (``convlab.corr2d``), each ``*_X`` kernel responds to
intensity that increases from left to right (a vertical edge), and each ``*_Y``
kernel, its transpose, to intensity that increases from top to bottom (a
horizontal edge). These are tensors shared by everyone who imports them:
``.clone()`` one before changing it.
"""

import torch

#: The lecture's kernel: the difference of horizontal neighbours. ``[[-1, 1]]``
DIFFERENCE_X = torch.tensor([[-1.0, 1.0]])
DIFFERENCE_Y = DIFFERENCE_X.T.contiguous()

#: Diagonal differences (Roberts cross): ``[[-1, 0], [0, 1]]`` and ``[[0, -1], [1, 0]]``.
DIAGONAL = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
ANTIDIAGONAL = torch.tensor([[0.0, -1.0], [1.0, 0.0]])

#: Central difference and the smoothing that Sobel and Prewitt apply across it.
CENTRAL_DIFFERENCE = torch.tensor([-1.0, 0.0, 1.0])
SOBEL_SMOOTH = torch.tensor([1.0, 2.0, 1.0])
PREWITT_SMOOTH = torch.tensor([1.0, 1.0, 1.0])

#: ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``
SOBEL_X = torch.outer(SOBEL_SMOOTH, CENTRAL_DIFFERENCE)
SOBEL_Y = SOBEL_X.T.contiguous()

#: ``[[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]``
PREWITT_X = torch.outer(PREWITT_SMOOTH, CENTRAL_DIFFERENCE)
PREWITT_Y = PREWITT_X.T.contiguous()

#: The 4-neighbour Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``: second
#: differences along both axes, zero on flat regions and on linear ramps.
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])

_BY_DIRECTION = {"vertical": DIFFERENCE_X, "horizontal": DIFFERENCE_Y, "diagonal": DIAGONAL,
                 "antidiagonal": ANTIDIAGONAL}


def edge_kernel(direction):
    """Return a new float32 copy of the difference kernel for edges of one direction.

    ``'vertical'`` is :data:`DIFFERENCE_X`, ``'horizontal'`` :data:`DIFFERENCE_Y`,
    ``'diagonal'`` :data:`DIAGONAL` and ``'antidiagonal'`` :data:`ANTIDIAGONAL`
    (the reference of the edge-detection assignment).

    >>> edge_kernel("horizontal")
    tensor([[-1.],
            [ 1.]])
    >>> edge_kernel("Vertical")
    Traceback (most recent call last):
    ...
    ValueError: direction must be one of 'vertical', 'horizontal', 'diagonal', 'antidiagonal'; got 'Vertical'
    """
    if not isinstance(direction, str) or direction not in _BY_DIRECTION:
        names = ", ".join(map(repr, _BY_DIRECTION))
        raise ValueError(f"direction must be one of {names}; got {direction!r}")
    return _BY_DIRECTION[direction].clone()
