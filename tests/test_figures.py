"""convlab.figures draws every value of a tensor in its own cell, and shades the cells asked for."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convlab import figures  # noqa: E402

WHITE = (1.0, 1.0, 1.0, 1.0)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def drawn_values(ax):
    """The numbers drawn on ax, by cell: {(row, column): text}."""
    return {(int(t.get_position()[1]), int(t.get_position()[0])): t.get_text() for t in ax.texts}


def rgba(color, alpha=None):
    return tuple(round(x, 6) for x in matplotlib.colors.to_rgba(color, alpha))


def shaded(ax):
    return {(int(p.get_y()), int(p.get_x())) for p in ax.patches if p.get_facecolor() != WHITE}


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 5), cols=st.integers(1, 5), data=st.data())
def test_grid_draws_each_value_in_its_cell_and_shades_the_cells_asked_for(rows, cols, data):
    A = torch.tensor(data.draw(st.lists(st.lists(st.integers(-99, 99), min_size=cols, max_size=cols),
                                        min_size=rows, max_size=rows)), dtype=torch.float32) / 4
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    shade = data.draw(st.sets(st.sampled_from(cells)))
    fig, ax = plt.subplots()
    try:
        figures.grid(ax, A, shade=shade, title="A")
        assert len(ax.texts) == rows * cols
        values = drawn_values(ax)
        assert {cell: float(text) for cell, text in values.items()} == \
            {(r, c): A[r, c].item() for r, c in cells}
        assert shaded(ax) == set(shade)
        assert ax.get_title() == "A"
    finally:
        plt.close(fig)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), data=st.data())
def test_grid_greys_the_padding_and_gives_each_shaded_cell_its_colour(rows, cols, data):
    ph, pw = data.draw(st.integers(0, (rows - 1) // 2)), data.draw(st.integers(0, (cols - 1) // 2))
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    shade = data.draw(st.dictionaries(st.sampled_from(cells),
                                      st.sampled_from(["tab:red", "tab:blue", "tab:orange"])))
    fig, ax = plt.subplots()
    try:
        figures.grid(ax, torch.zeros(rows, cols), shade=shade, padding=(ph, pw))
        padding = {(r, c) for r, c in cells if not (ph <= r < rows - ph and pw <= c < cols - pw)}
        faces = {(int(p.get_y()), int(p.get_x())): rgba(p.get_facecolor()) for p in ax.patches}
        expected = {cell: rgba(shade[cell], 0.4) if cell in shade
                    else rgba(figures.PADDING_COLOR) if cell in padding
                    else WHITE for cell in cells}
        assert faces == expected
        grey = {cell for cell, text in zip(cells, ax.texts) if text.get_color() == figures.PADDING_TEXT}
        assert grey == padding
        assert all(text.get_color() in ("black", figures.PADDING_TEXT) for text in ax.texts)
    finally:
        plt.close(fig)


def test_grid_frame_size_keeps_small_grids_on_a_shared_scale(ax):
    figures.grid(ax, torch.zeros(2, 2), size=(3, 4))
    m = figures.MARGIN
    assert ax.get_xlim() == pytest.approx((-m, 4 + m)) and ax.get_ylim() == pytest.approx((3 + m, -m))


def test_grid_draws_the_title_and_numbers_at_the_book_sizes(ax):
    figures.grid(ax, torch.ones(1, 1), title="t")
    assert ax.title.get_fontsize() == figures.STYLE["axes.titlesize"]
    assert ax.texts[0].get_fontsize() >= figures.SMALLEST_TEXT


def test_use_book_style_sets_every_text_size_of_the_style():
    with matplotlib.rc_context({"font.size": 6, "axes.titlesize": 6, "xtick.labelsize": 6}):
        figures.use_book_style()
        for key, value in figures.STYLE.items():
            assert plt.rcParams[key] == value, key
        fig, ax = plt.subplots()
        try:
            ax.set_title("t")
            ax.set_xticks([0, 1])
            assert ax.title.get_fontsize() == figures.STYLE["axes.titlesize"]
            assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= figures.SMALLEST_TEXT
        finally:
            plt.close(fig)


@pytest.mark.parametrize("A, message", [
    (torch.zeros(2, 2, 2), "2-D tensor"),
    ([[1.0]], "2-D tensor"),
])
def test_grid_rejects_what_it_cannot_draw(ax, A, message):
    with pytest.raises(ValueError, match=message):
        figures.grid(ax, A)


@pytest.mark.parametrize("padding", [-1, (0, 2), (1, 0), 3])
def test_grid_rejects_padding_that_leaves_no_cell_inside(ax, padding):
    with pytest.raises(ValueError, match=rf"padding must be >= 0 .* 2x4 grid .*, got {re.escape(str(padding))}$"):
        figures.grid(ax, torch.zeros(2, 4), padding=padding)


def test_grid_rejects_a_shaded_cell_outside_the_grid(ax):
    with pytest.raises(ValueError, match=r"cells of the 2x3 grid, got \[\(2, 0\)\]"):
        figures.grid(ax, torch.zeros(2, 3), shade=[(0, 0), (2, 0)])
