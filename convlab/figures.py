"""Figures for the book: one style for text sizes, and a matrix drawn as a grid.

Every chapter that draws calls :func:`use_book_style` first. The diagrams draw
small tensors cell by cell with :func:`grid`, the cells that take part in one
step shaded, as *Dive into Deep Learning* does, and the padding of a padded
input in grey; every number drawn comes from the tensor passed in, so a diagram
shows what the code computed.

Not imported by ``import convlab``: grading kernels need no matplotlib.
"""

import matplotlib.pyplot as plt
import torch

# The book's figures share one style: text no smaller than 11 pt and titles of
# 14 pt, so that a figure shown in the page's column has titles at least as
# large as the body text (tests/test_browser.py measures this in Chromium).
STYLE = {
    "font.size": 12,
    "axes.titlesize": 14,
    "axes.labelsize": 12,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 11,
}
SMALLEST_TEXT = 11
TEXT_SIZE = 12
TITLE_SIZE = STYLE["axes.titlesize"]
MARGIN = 0.03
# Padding cells of a grid: a light grey background and grey numbers.
PADDING_COLOR = "0.9"
PADDING_TEXT = "0.45"


def use_book_style():
    """Set matplotlib's text sizes to the book's :data:`STYLE`."""
    plt.rcParams.update(STYLE)


def grid(ax, A, *, shade=(), color="tab:blue", title="", size=None, padding=0):
    """Draw the 2-D tensor ``A`` on ``ax`` as a grid of its values.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw; its axis lines are switched off.
    A : torch.Tensor
        A 2-D tensor, drawn row 0 at the top.
    shade : iterable of (row, column), or dict
        Cells to shade in ``color``, or ``{(row, column): colour}`` to give each
        shaded cell its own colour.
    color : str
        A matplotlib colour for the shaded cells.
    title : str
        Drawn above the grid.
    size : pair of int or None
        The ``(rows, columns)`` of the frame, at least ``A``'s, so that grids of
        different sizes share one scale in a row of axes.
    padding : int or pair of int
        ``A`` is a padded input: its outer ``ph`` rows and ``pw`` columns are
        padding, drawn in grey unless shaded.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, with one text per cell, in row-major order.

    Examples
    --------
    >>> fig, ax = plt.subplots()
    >>> ax = grid(ax, torch.tensor([[1.0, 2.5]]), shade={(0, 1)})
    >>> [t.get_text() for t in ax.texts]
    ['1', '2.5']
    >>> plt.close(fig)

    A padded input, its padding in grey, two cells shaded in colours of their own:

    >>> fig, ax = plt.subplots()
    >>> ax = grid(ax, torch.ones(3, 3), padding=1, shade={(0, 0): "tab:red", (1, 1): "tab:blue"})
    >>> [t.get_color() for t in ax.texts[3:6]]
    ['0.45', 'black', '0.45']
    >>> plt.close(fig)
    """
    if not isinstance(A, torch.Tensor) or A.ndim != 2:
        raise ValueError(f"A must be a 2-D tensor, got {type(A).__name__} "
                         f"with shape {tuple(getattr(A, 'shape', ()))}")
    rows, cols = A.shape
    shade = ({tuple(cell): colour for cell, colour in shade.items()} if isinstance(shade, dict)
             else {tuple(cell): color for cell in shade})
    outside = sorted(cell for cell in shade if not (0 <= cell[0] < rows and 0 <= cell[1] < cols))
    if outside:
        raise ValueError(f"shade must name cells of the {rows}x{cols} grid, got {outside}")
    ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if min(ph, pw) < 0 or 2 * ph >= rows or 2 * pw >= cols:
        raise ValueError(f"padding must be >= 0 and leave some cells of the {rows}x{cols} "
                         f"grid inside it, got {padding}")
    frame_rows, frame_cols = (rows, cols) if size is None else size
    for r in range(rows):
        for c in range(cols):
            pad = not (ph <= r < rows - ph and pw <= c < cols - pw)
            if (r, c) in shade:
                face, alpha = shade[r, c], 0.4
            else:
                face, alpha = (PADDING_COLOR if pad else "white"), 1.0
            ax.add_patch(plt.Rectangle((c, r), 1, 1, edgecolor="black", facecolor=face, alpha=alpha))
            ax.text(c + 0.5, r + 0.5, f"{A[r, c].item():g}", ha="center", va="center",
                    fontsize=TEXT_SIZE, color=PADDING_TEXT if pad else "black")
    # A small margin, so that the border lines of the last row and column are not clipped.
    ax.set_xlim(-MARGIN, max(frame_cols, cols) + MARGIN)
    ax.set_ylim(max(frame_rows, rows) + MARGIN, -MARGIN)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=TITLE_SIZE)
    return ax

