"""Sliding-window animations: every number drawn in every frame against PyTorch.

The checks read the generated HTML, not the frame data: each animation is
parsed back into its grids (the ``data-value`` of each cell and the text drawn
in it), the input and kernel are rebuilt from what is drawn, and every output
cell, window, caption and subtotal of every frame is compared with
``torch.nn.functional`` on that input. ``BOOK`` holds the examples the chapters
animate; ``test_every_animation_of_the_built_book_matches_torch`` reads them
from the built pages themselves.
"""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from bs4 import BeautifulSoup
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import conv_problems, tensors

import convlab
from convlab import animate

MAX_BYTES = 1_000_000
TOL = 1e-5
DRAWN_TOL = 0.005 + 1e-9  # numbers are drawn with at most two decimals

d2l_X = torch.arange(9.0).reshape(3, 3)
d2l_K = torch.arange(4.0).reshape(2, 2)
# Dumoulin and Visin, A guide to convolution arithmetic for deep learning, figure 1.1.
GUIDE_X = torch.tensor([[3.0, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]])
GUIDE_K = torch.tensor([[0.0, 1, 2], [2, 2, 0], [0, 1, 2]])
GUIDE_Y = torch.tensor([[12.0, 12, 17], [10, 17, 19], [9, 6, 14]])
X2 = torch.stack([d2l_X, d2l_X + 1])
K2 = torch.stack([d2l_K, d2l_K + 1])
X4 = torch.arange(16.0).reshape(4, 4)
DILATED_X = torch.randint(0, 4, (7, 7), generator=torch.Generator().manual_seed(0)).float()

# The animations the chapters show: (chapter, function, args, options).
BOOK = {
    "3x3 by 2x2": ("cross_correlation", animate.correlation, (d2l_X, d2l_K), {}),
    "padding": ("padding_stride", animate.correlation, (d2l_X, d2l_K), dict(padding=1)),
    "stride": ("padding_stride", animate.correlation, (GUIDE_X, GUIDE_K), dict(stride=2)),
    "padding and stride": ("padding_stride", animate.correlation, (GUIDE_X, GUIDE_K),
                           dict(padding=1, stride=2)),
    "same, even kernel": ("shapes", animate.correlation, (d2l_X, d2l_K), dict(padding="same")),
    "dilation": ("shapes", animate.correlation, (DILATED_X, GUIDE_K), dict(dilation=2)),
    "two channels": ("channels_pooling", animate.correlation, (X2, K2), {}),
    "max pooling": ("channels_pooling", animate.pooling, (X4, 3), dict(padding=1, stride=2)),
    "average pooling": ("channels_pooling", animate.pooling, (X4, 3),
                        dict(mode="avg", padding=1, stride=2)),
    "transposed": ("transposed", animate.transposed_convolution, (d2l_K, d2l_K), dict(stride=2)),
}


# ---------------------------------------------------------------------------
# Reading an animation back from its HTML


def number(text):
    """A drawn number: '12', '-0.25', '(-3)', '-∞'."""
    text = text.strip().strip("()")
    if text in ("-∞", "∞"):
        return -math.inf if text.startswith("-") else math.inf
    return float(text)


def close(a, b, tol=TOL):
    return a == b if math.isinf(a) or math.isinf(b) else abs(a - b) <= tol * max(1.0, abs(b))


def read_grid(table):
    """``(values, drawn texts, classes)``, each a list of rows; ``None`` for an empty cell."""
    values, texts, classes = [], [], []
    for tr in table.find_all("tr"):
        row_v, row_t, row_c = [], [], []
        for td in tr.find_all("td"):
            text = td.get_text()
            if td.has_attr("data-value"):
                value = float(td["data-value"])
                assert close(number(text), value, DRAWN_TOL), f"cell drawn as {text!r} holds {value}"
            else:
                assert text == "", f"a cell without data-value shows {text!r}"
                value = None
            row_v.append(value)
            row_t.append(text)
            row_c.append(set(td.get("class", [])))
        values.append(row_v)
        texts.append(row_t)
        classes.append(row_c)
    return values, texts, classes


def cells_with(classes, name):
    return {(r, q) for r, row in enumerate(classes) for q, c in enumerate(row) if name in c}


def parse(fragment):
    """The animations of an HTML page or fragment, each a dict of its attributes and frames."""
    soup = BeautifulSoup(fragment, "html.parser")
    found = []
    for root in soup.select("div.convlab-anim"):
        ints = lambda name: tuple(int(v) for v in root[f"data-{name}"].split())  # noqa: E731
        anim = dict(op=root["data-op"], kernel_size=ints("kernel-size"), padding=ints("padding"),
                    stride=ints("stride"), dilation=ints("dilation"), count=int(root["data-frames"]),
                    frames=[], html=str(root))
        for n, div in enumerate(root.select("div.ca-frame")):
            assert int(div["data-frame"]) == n
            frame = dict(inputs={}, kernels={})
            for table in div.select('table[data-role="input"]'):
                frame["inputs"][int(table["data-channel"])] = read_grid(table)
            for table in div.select('table[data-role="kernel"]'):
                frame["kernels"][int(table["data-channel"])] = read_grid(table)
            frame["output"] = read_grid(div.select_one('table[data-role="output"]'))
            caption = div.select_one("p.ca-caption")
            frame["caption"], frame["value"] = caption.get_text(), float(caption["data-value"])
            anim["frames"].append(frame)
        found.append(anim)
    return found


def drawn_tensor(grid, padding=(0, 0, 0, 0)):
    """The numbers of a grid inside its padding, as a float64 tensor."""
    values, _, _ = grid
    top, bottom, left, right = padding
    rows = values[top : len(values) - bottom]
    return torch.tensor([row[left : len(row) - right] for row in rows], dtype=torch.float64)


# ---------------------------------------------------------------------------
# The checks, one per kind of animation


def check(anim):
    """Check every frame of a parsed animation against PyTorch; return the reference output."""
    assert len(anim["frames"]) == anim["count"]
    assert len(anim["html"].encode()) < MAX_BYTES
    assert not re.search(r"""\b(src|href)\s*=|https?:|//cdn""", anim["html"]), "the animation loads something"
    first = anim["frames"][0]
    for frame in anim["frames"]:  # the input and kernel are the same in every frame
        assert [g[0] for g in frame["inputs"].values()] == [g[0] for g in first["inputs"].values()]
        assert [g[0] for g in frame["kernels"].values()] == [g[0] for g in first["kernels"].values()]
    if anim["op"] == "transpose":
        return check_transposed(anim)
    return check_sliding(anim)


def check_sliding(anim):
    top, bottom, left, right = pads = anim["padding"]
    (sh, sw), (dh, dw), (kh, kw) = anim["stride"], anim["dilation"], anim["kernel_size"]
    first = anim["frames"][0]
    channels = sorted(first["inputs"])
    X = torch.stack([drawn_tensor(first["inputs"][c], pads) for c in channels])
    fill = {"corr": 0.0, "avg": 0.0, "max": -math.inf}[anim["op"]]
    for c in channels:  # the padding is drawn as padding and holds the fill value
        values, _, classes = first["inputs"][c]
        border = {(r, q) for r in range(len(values)) for q in range(len(values[0]))
                  if r < top or r >= len(values) - bottom or q < left or q >= len(values[0]) - right}
        assert cells_with(classes, "p") == border
        assert all(values[r][q] == fill for r, q in border)
    if anim["op"] == "corr":
        K = torch.stack([drawn_tensor(first["kernels"][c]) for c in channels])
        assert K.shape[-2:] == (kh, kw)
        # groups=C: each channel with its own kernel slice, not yet summed
        per_channel = F.conv2d(F.pad(X, (left, right, top, bottom))[None], K[:, None],
                               stride=(sh, sw), dilation=(dh, dw), groups=len(channels))[0]
        Y = per_channel.sum(0)
    else:
        assert not first["kernels"] and (top, left) == (bottom, right) and (dh, dw) == (1, 1)
        pool = F.max_pool2d if anim["op"] == "max" else F.avg_pool2d
        Y = pool(X, (kh, kw), stride=(sh, sw), padding=(top, left))[0]
    oh, ow = Y.shape
    assert anim["count"] == oh * ow, f"{anim['count']} frames for {oh}x{ow} outputs"
    for n, frame in enumerate(anim["frames"]):
        i, j = divmod(n, ow)
        taps = [(i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)]
        for c in channels:
            assert cells_with(frame["inputs"][c][2], "w") == set(taps), f"frame {n}: window"
        values, _, classes = frame["output"]
        assert cells_with(classes, "c") == {(i, j)}, f"frame {n}: current cell"
        for r in range(oh):
            for q in range(ow):
                if r * ow + q <= n:
                    assert close(values[r][q], Y[r, q].item()), f"frame {n}: Y[{r}, {q}] {values[r][q]} vs torch {Y[r, q]}"
                else:
                    assert values[r][q] is None, f"frame {n}: Y[{r}, {q}] shown before it is computed"
        assert close(frame["value"], Y[i, j].item())
        head, arithmetic = frame["caption"].split(" = ", 1)
        assert head == f"Y[{i}, {j}]"
        *_, shown = arithmetic.split(" = ")
        assert close(number(shown), Y[i, j].item(), DRAWN_TOL), frame["caption"]
        window = [[X[c, r - top, q - left].item() if top <= r < top + X.shape[1] and left <= q < left + X.shape[2]
                   else fill for r, q in taps] for c in range(len(channels))]
        if anim["op"] == "corr":
            products = re.findall(r"(\(?-?[\d.]+\)?)·(\(?-?[\d.]+\)?)", arithmetic)
            expected = [(x, K[c].flatten()[t].item()) for c in range(len(channels))
                        for t, x in enumerate(window[c])]
            assert len(products) == len(expected), frame["caption"]
            for (a, b), (x, k) in zip(products, expected):
                assert close(number(a), x, DRAWN_TOL) and close(number(b), k, DRAWN_TOL), frame["caption"]
            if len(channels) > 1:
                subtotals = arithmetic.split(" = ")[-2].split(" + ")
                for c, s in enumerate(subtotals):
                    assert close(number(s), per_channel[c, i, j].item(), DRAWN_TOL), frame["caption"]
        else:
            match = re.fullmatch(r"max\((.*)\) = .*" if anim["op"] == "max" else r"\((.*)\) / (\d+) = .*",
                                 arithmetic)
            assert match, frame["caption"]
            terms = re.split(r", | \+ ", match.group(1))
            assert [number(t) for t in terms] == pytest.approx(window[0], abs=DRAWN_TOL)
            if anim["op"] == "avg":
                assert int(match.group(2)) == kh * kw
    return Y


def check_transposed(anim):
    first = anim["frames"][0]
    assert sorted(first["inputs"]) == sorted(first["kernels"]) == [0]
    X, K = drawn_tensor(first["inputs"][0]), drawn_tensor(first["kernels"][0])
    (sh, sw), (ph, _, pw, _) = anim["stride"], anim["padding"]
    h, w = X.shape
    assert anim["count"] == X.numel()
    full = F.conv_transpose2d(X[None, None], K[None, None], stride=(sh, sw))[0, 0]
    for n, frame in enumerate(anim["frames"]):
        i, j = divmod(n, w)
        so_far = (torch.arange(X.numel()) <= n).reshape(h, w).to(X.dtype)
        partial = F.conv_transpose2d((X * so_far)[None, None], K[None, None], stride=(sh, sw))[0, 0]
        values, _, classes = frame["output"]
        assert (len(values), len(values[0])) == tuple(full.shape)
        for r in range(full.shape[0]):  # the output starts as zeros, every cell is drawn
            for q in range(full.shape[1]):
                assert close(values[r][q], partial[r, q].item()), f"frame {n}: Y[{r}, {q}]"
        footprint = {(i * sh + a, j * sw + b) for a in range(K.shape[0]) for b in range(K.shape[1])}
        assert cells_with(classes, "w") == footprint, f"frame {n}: cells added to"
        assert cells_with(frame["inputs"][0][2], "w") == {(i, j)}
        assert close(frame["value"], X[i, j].item())
        match = re.fullmatch(r"X\[(\d+), (\d+)\] = (\S+): add (\S+)·K to Y\[(\d+):(\d+), (\d+):(\d+)\]",
                             frame["caption"])
        assert match, frame["caption"]
        assert (int(match[1]), int(match[2])) == (i, j)
        assert close(number(match[3]), X[i, j].item(), DRAWN_TOL) and close(number(match[4]), X[i, j].item(), DRAWN_TOL)
        assert tuple(int(v) for v in match.groups()[4:]) == (i * sh, i * sh + K.shape[0], j * sw, j * sw + K.shape[1])
        cropped = {(r, q) for r in range(full.shape[0]) for q in range(full.shape[1])
                   if r < ph or r >= full.shape[0] - ph or q < pw or q >= full.shape[1] - pw}
        assert cells_with(classes, "p") == cropped
    assert torch.allclose(partial, full)
    Y = F.conv_transpose2d(X[None, None], K[None, None], stride=(sh, sw), padding=(ph, pw))[0, 0]
    final = torch.tensor(values, dtype=torch.float64)[ph : full.shape[0] - ph, pw : full.shape[1] - pw]
    torch.testing.assert_close(final, Y)
    return Y


def check_call(fn, args, options):
    """Animate, check the HTML against torch, and check that the drawing shows the tensors given."""
    anim = fn(*args, **options)
    (parsed,) = parse(anim.to_html())
    Y = check(parsed)
    first = parsed["frames"][0]
    X = args[0] if args[0].dim() == 3 else args[0][None]
    pads = parsed["padding"] if parsed["op"] != "transpose" else (0, 0, 0, 0)
    for c in range(X.shape[0]):
        torch.testing.assert_close(drawn_tensor(first["inputs"][c], pads), X[c].double())
    if fn is animate.correlation:
        K = args[1] if args[1].dim() == 3 else args[1][None]
        for c in range(K.shape[0]):
            torch.testing.assert_close(drawn_tensor(first["kernels"][c]), K[c].double())
        reference = F.conv2d(X[None].double(), K[None].double(), **options)[0, 0]
    elif fn is animate.pooling:
        size, mode = args[1], options.get("mode", "max")
        pool = F.max_pool2d if mode == "max" else F.avg_pool2d
        reference = pool(X.double(), size, stride=options.get("stride"),
                         padding=options.get("padding", 0))[0]
    else:
        reference = F.conv_transpose2d(X[None].double(), args[1][None, None].double(), **options)[0, 0]
    torch.testing.assert_close(Y, reference)
    return anim, parsed


# ---------------------------------------------------------------------------
# The book's animations and the worked examples of the literature


@pytest.mark.parametrize("name", BOOK)
def test_the_books_animations_match_torch(name):
    _, fn, args, options = BOOK[name]
    check_call(fn, args, options)


@pytest.mark.parametrize("name, expected", [
    ("3x3 by 2x2", [[19.0, 25.0], [37.0, 43.0]]),                       # d2l
    ("stride", [[12.0, 17.0], [9.0, 14.0]]),                             # every other output of the guide's
    ("two channels", [[56.0, 72.0], [104.0, 120.0]]),                    # d2l
    ("max pooling", [[5.0, 7.0], [13.0, 15.0]]),                         # d2l
    ("average pooling", [[10 / 9, 24 / 9], [51 / 9, 90 / 9]]),   # padded zeros count
    ("transposed", [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 2.0, 3.0],         # d2l, stride 2
                    [0.0, 2.0, 0.0, 3.0], [4.0, 6.0, 6.0, 9.0]]),
])
def test_worked_examples(name, expected):
    _, fn, args, options = BOOK[name]
    anim = fn(*args, **options)
    torch.testing.assert_close(torch.tensor(anim.frames[-1].output, dtype=torch.float64),
                               torch.tensor(expected, dtype=torch.float64))


def test_the_guides_figure_and_its_first_caption():
    anim = animate.correlation(GUIDE_X, GUIDE_K)
    torch.testing.assert_close(torch.tensor(anim.frames[-1].output, dtype=torch.float64), GUIDE_Y.double())
    assert anim.frames[0].caption == "Y[0, 0] = 3·0 + 3·1 + 2·2 + 0·2 + 0·2 + 1·0 + 3·0 + 1·1 + 2·2 = 12"


def test_d2l_transposed_convolution_with_padding_keeps_the_centre():
    anim = animate.transposed_convolution(d2l_K, d2l_K, padding=1)
    (parsed,) = parse(anim.to_html())
    assert check(parsed).tolist() == [[4.0]]


def test_same_with_an_even_kernel_pads_bottom_and_right():
    anim = animate.correlation(d2l_X, d2l_K, padding="same")
    assert anim.padding == (0, 1, 0, 1)
    assert anim.inputs[0][-1] == (0.0,) * 4 and all(row[-1] == 0.0 for row in anim.inputs[0])
    assert anim.inputs[0][0][:3] == (0.0, 1.0, 2.0)


def test_negative_factors_are_drawn_in_parentheses():
    anim = animate.correlation(torch.tensor([[1.0, -2.0]]), torch.tensor([[-0.5, 3.0]]))
    assert anim.frames[0].caption == "Y[0, 0] = 1·(-0.50) + (-2)·3 = -6.50"
    (parsed,) = parse(anim.to_html())
    check(parsed)


@pytest.mark.parametrize("fn, args, options", [
    (animate.correlation, (tensors(0, 8, 8), tensors(1, 1, 1)), {}),
    (animate.correlation, (tensors(0, 2, 6, 6), tensors(1, 2, 2, 2)), dict(padding=1)),
    (animate.pooling, (tensors(0, 9, 9), 2), dict(mode="avg", stride=1)),
    (animate.transposed_convolution, (tensors(0, 8, 8), tensors(1, 3, 3)), dict(stride=1)),
])
def test_the_largest_animations_accepted_stay_under_1_mb(fn, args, options):
    """Random negative floats draw the longest numbers; these are near MAX_CELLS."""
    size = len(fn(*args, **options).to_html().encode())
    assert 300_000 < size < MAX_BYTES, size


# ---------------------------------------------------------------------------
# Random examples


@settings(max_examples=40)
@given(conv_problems(max_size=6, max_kernel=3), st.integers(1, 2), st.integers(0, 2**16))
def test_random_correlations_match_torch(problem, channels, seed):
    hw, khw, options = problem
    geo = convlab.shapes.geometry(hw, khw, **options)
    top, bottom, left, right = geo.padding
    assume(max(hw[0] + top + bottom, hw[1] + left + right) <= animate.MAX_SIDE)
    frames = geo.output[0] * geo.output[1]
    drawn = channels * ((hw[0] + top + bottom) * (hw[1] + left + right) + khw[0] * khw[1]) + frames
    assume(frames <= animate.MAX_FRAMES and frames * drawn <= animate.MAX_CELLS)
    X, K = tensors(seed, channels, *hw), tensors(seed + 1, channels, *khw)
    if channels == 1 and seed % 2:
        X, K = X[0], K[0]
    anim = animate.correlation(X, K, **options)
    (parsed,) = parse(anim.to_html())
    Y = check(parsed)
    reference = F.conv2d(F.pad(X.reshape(-1, *hw), (left, right, top, bottom))[None],
                         K.reshape(1, -1, *khw), stride=options["stride"], dilation=options["dilation"])[0, 0]
    torch.testing.assert_close(Y, reference.double(), atol=1e-5, rtol=1e-5)


@settings(max_examples=30)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 1), st.sampled_from(["max", "avg"]), st.integers(0, 2**16))
def test_random_poolings_match_torch(h, w, k, s, s2, p, mode, seed):
    assume(2 * p <= k and k <= h + 2 * p and k <= w + 2 * p)
    X = tensors(seed, h, w)
    check_call(animate.pooling, (X, k), dict(mode=mode, padding=p, stride=(s, s2)))


@settings(max_examples=30)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 1), st.integers(0, 2**16))
def test_random_transposed_convolutions_match_torch(h, w, kh, kw, s, p, seed):
    assume(2 * p < (h - 1) * s + kh and 2 * p < (w - 1) * s + kw)
    check_call(animate.transposed_convolution, (tensors(seed, h, w), tensors(seed + 1, kh, kw)),
               dict(stride=s, padding=p))


# ---------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("call, error, message", [
    (lambda: animate.correlation(d2l_X.tolist(), d2l_K), TypeError, "X must be a torch.Tensor, got list"),
    (lambda: animate.correlation(torch.ones(1, 1, 3, 3), d2l_K), ValueError, "X must be 2-D (H, W) or 3-D"),
    (lambda: animate.correlation(X2, torch.ones(3, 2, 2)), ValueError,
     "as many channels, got X of shape (2, 3, 3) and K of shape (3, 2, 2)"),
    (lambda: animate.correlation(X2, d2l_K), ValueError, "X and K must both be 2-D"),
    (lambda: animate.correlation(d2l_K, d2l_X), ValueError, "larger than the padded input"),
    (lambda: animate.correlation(d2l_X, d2l_K, stride=0), ValueError, "stride must be at least 1, got 0"),
    (lambda: animate.correlation(d2l_X, d2l_K, padding="same", stride=2), ValueError, "padding='same' needs stride 1"),
    (lambda: animate.correlation(torch.ones(13, 3), d2l_K), ValueError, "would be 13x3; an animation draws at most 12x12"),
    (lambda: animate.correlation(torch.ones(11, 11), torch.ones(1, 1)), ValueError, "121 frames; at most 100"),
    (lambda: animate.correlation(torch.ones(2, 10, 10), torch.ones(2, 1, 1)), ValueError,
     "would draw 30200 cells (100 frames of 302); at most 12000"),
    (lambda: animate.correlation(d2l_X.long(), d2l_K), TypeError, "X must have a floating-point dtype"),
    (lambda: animate.pooling(d2l_X, 2, mode="min"), ValueError, "mode must be one of ('max', 'avg'), got 'min'"),
    (lambda: animate.pooling(d2l_X, 2, padding=2), ValueError, "padding must be at most half of pool_size (2, 2), got 2"),
    (lambda: animate.pooling(X2, 2), ValueError, "X must be 2-D (H, W), got 3-D"),
    (lambda: animate.transposed_convolution(d2l_K, d2l_K, padding=2), ValueError,
     "padding=2 crops more than the transposed convolution produces"),
    (lambda: animate.transposed_convolution(X2, d2l_K), ValueError, "X must be 2-D (H, W), got 3-D"),
    (lambda: animate.transposed_convolution(d2l_K, d2l_K, stride=(1, 2, 3)), TypeError, "stride must be an int or a pair"),
])
def test_bad_input_is_refused_with_a_message(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)


# ---------------------------------------------------------------------------
# The built book


@pytest.mark.book
def test_every_animation_of_the_built_book_matches_torch(built_book):
    """Each chapter shows the animations of BOOK, and each one's numbers are PyTorch's."""
    assert built_book.returncode == 0, built_book.log[-3000:]
    shown = {}
    for page in sorted(built_book.html.glob("book/*.html")):
        for anim in parse(page.read_text(encoding="utf-8")):
            check(anim)
            shown.setdefault(page.stem, []).append(anim["op"])
    expected = {}
    for chapter, fn, args, options in BOOK.values():
        expected.setdefault(chapter, []).append(fn(*args, **options).op)
    assert {k: sorted(v) for k, v in shown.items()} == {k: sorted(v) for k, v in expected.items()}
