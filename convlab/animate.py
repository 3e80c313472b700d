"""Step-by-step animations of a sliding window, as data and as self-contained HTML.

Each function computes the steps of one operation as plain numbers, one
:class:`Frame` per output pixel (per input pixel for the transposed convolution),
by summing the products of each window itself: the frames do not call the rest
of ``convlab``, so that a test can hold them against ``torch.nn.functional``.
:meth:`Animation.to_html` draws the frames as HTML tables with Previous,
Play/Pause and Next buttons. The HTML loads nothing (no CDN, no kernel), and
every number drawn carries its exact value in a ``data-value`` attribute::

    <div class="convlab-anim" data-op="corr" data-padding="1 1 1 1" ...>
      <div class="ca-frame" data-frame="0">
        <table data-role="input" data-channel="0"> <td class="p w" data-value="0.0">0</td> ...
        <table data-role="kernel" data-channel="0"> ...
        <table data-role="output"> <td class="c" data-value="19.0">19</td> <td></td> ...
        <p class="ca-caption" data-value="19.0">Y[0, 0] = 0·0 + 1·1 + 3·2 + 4·3 = 19</p>

Cells of class ``p`` are padding, ``w`` the window (or, for the transposed
convolution, the output cells that the current step adds to) and ``c`` the
cell being computed; an output cell not computed yet is empty.

Examples
--------
The first chapter's example: a 3x3 input, a 2x2 kernel, four windows.

>>> X = torch.arange(9.0).reshape(3, 3)
>>> K = torch.arange(4.0).reshape(2, 2)
>>> anim = correlation(X, K)
>>> len(anim.frames), anim.frames[0].value, anim.frames[0].caption
(4, 19.0, 'Y[0, 0] = 0·0 + 1·1 + 3·2 + 4·3 = 19')
>>> anim.frames[1].output
((19.0, 25.0), (None, None))
>>> '<table data-role="kernel"' in anim.to_html()
True
"""

import html
import itertools
import json
import math
from dataclasses import dataclass

import torch

from ._checks import check_tensor, pair
from .shapes import geometry, transposed_geometry

# An animation is for a small, readable example: at most this many cells per side
# of a drawn grid, this many frames, and this many cells drawn in all the frames
# together (each frame is drawn in full; this keeps the HTML well under 1 MB).
MAX_SIDE = 12
MAX_FRAMES = 100
MAX_CELLS = 12_000
# Milliseconds between frames while playing.
INTERVAL_MS = 1000
OPERATIONS = ("corr", "max", "avg", "transpose")


@dataclass(frozen=True)
class Frame:
    """One step: which cells are read, what is written, and the grid of outputs so far.

    Attributes
    ----------
    window : frozenset of (channel, row, col)
        Cells of the drawn input grids that this step reads.
    target : frozenset of (row, col)
        Cells of the drawn output grid that this step writes (one cell, except in
        the transposed convolution, where a whole scaled kernel is added).
    value : float
        The output pixel just computed; for the transposed convolution the input
        pixel that scales the kernel.
    output : tuple of tuple
        The output grid after this step, ``None`` where nothing is computed yet
        (the transposed convolution starts from zeros and adds to them).
    caption : str
        The step as arithmetic, such as ``Y[0, 0] = 0·0 + 1·1 + 3·2 + 4·3 = 19``.
    """

    window: frozenset
    target: frozenset
    value: float
    output: tuple
    caption: str


@dataclass(frozen=True)
class Animation:
    """The frames of one operation and the grids they are drawn on.

    ``inputs`` holds one drawn (padded) input grid per channel, ``kernels`` one
    kernel per channel (empty for pooling). ``padding`` is ``(top, bottom, left,
    right)``: the padding rows and columns of the drawn input, or, for the
    transposed convolution, the rows and columns of the drawn output that
    PyTorch's ``padding`` crops away. ``kernel_size`` is that of the kernel or
    of the pooling window, and ``fill`` the value of a padding cell.
    """

    op: str
    inputs: tuple
    kernels: tuple
    kernel_size: tuple
    padding: tuple
    stride: tuple
    dilation: tuple
    fill: float
    frames: tuple
    title: str = ""

    def __repr__(self):
        shape = "x".join(map(str, (len(self.inputs[0]), len(self.inputs[0][0]))))
        return f"<Animation {self.op}: {len(self.inputs)} channel(s) of {shape}, {len(self.frames)} frames>"

    def _repr_html_(self):
        return self.to_html()

    def to_html(self):
        """The animation as one HTML fragment: style, frames, buttons and a small script."""
        attrs = {"op": self.op, "kernel-size": self.kernel_size, "padding": self.padding, "stride": self.stride,
                 "dilation": self.dilation, "frames": len(self.frames)}
        data = " ".join(f'data-{k}="{_words(v)}"' for k, v in attrs.items())
        frames = "\n".join(self._frame_html(n, frame) for n, frame in enumerate(self.frames))
        body = (f'<div class="ca-controls" hidden><button type="button" data-action="prev">Previous'
                f'</button> <button type="button" data-action="play">Play</button> <button '
                f'type="button" data-action="next">Next</button> <span class="ca-counter" '
                f'aria-live="polite">step 1 of {len(self.frames)}</span></div>\n{frames}')
        uid = f"convlab-anim-{next(_COUNTER)}"   # unique on a page: one kernel runs a chapter
        title = f'<p class="ca-title">{html.escape(self.title)}</p>' if self.title else ""
        return (f'<div class="convlab-anim" id="{uid}" {data}>\n<style>{_CSS}</style>\n{title}{body}\n'
                f'<script>{_SCRIPT % (json.dumps(uid), INTERVAL_MS)}</script>\n</div>')

    def _frame_html(self, n, frame):
        grids = []
        channels = len(self.inputs)
        for c, grid in enumerate(self.inputs):
            label = "padded input" if any(self.padding) and self.op != "transpose" else "input"
            label += f", channel {c}" if channels > 1 else ""
            window = {(r, q) for (ch, r, q) in frame.window if ch == c}
            pad = self.padding if self.op != "transpose" else (0, 0, 0, 0)
            grids.append(_grid(grid, label, "input", c, window=window, pad=pad))
        for c, grid in enumerate(self.kernels):
            label = "kernel" + (f", channel {c}" if channels > 1 else "")
            grids.append(_grid(grid, label, "kernel", c))
        current = frame.target if self.op != "transpose" else set()
        written = frame.target if self.op == "transpose" else set()
        pad = self.padding if self.op == "transpose" else (0, 0, 0, 0)
        label = "output (cropped cells shaded)" if self.op == "transpose" and any(pad) else "output"
        grids.append(_grid(frame.output, label, "output", None, window=written, current=current, pad=pad))
        caption = (f'<p class="ca-caption" data-value="{_exact(frame.value)}">'
                   f"{html.escape(frame.caption)}</p>")
        return (f'<div class="ca-frame" data-frame="{n}"><div class="ca-grids">{"".join(grids)}</div>'
                f"{caption}</div>")


def correlation(X, K, *, padding=0, stride=1, dilation=1):
    """Animate the cross-correlation of ``X`` with ``K``, one window per frame.

    Parameters
    ----------
    X : torch.Tensor
        An ``(H, W)`` image, or ``(C, H, W)`` channels that are summed.
    K : torch.Tensor
        An ``(kh, kw)`` kernel, or ``(C, kh, kw)``, one slice per input channel.
    padding, stride, dilation
        As in :func:`convlab.corr2d` (``'same'`` puts the extra zeros of an even
        kernel at the bottom and right, as PyTorch does).

    Returns
    -------
    Animation
        One frame per output pixel, in row-major order.

    Examples
    --------
    >>> X = torch.ones(3, 3)
    >>> anim = correlation(X, torch.ones(2, 2), padding='same')
    >>> anim.padding, len(anim.frames), anim.frames[-1].caption
    ((0, 1, 0, 1), 9, 'Y[2, 2] = 1·1 + 0·1 + 0·1 + 0·1 = 1')
    """
    check_tensor(X, "X", ndim=(2, 3))
    check_tensor(K, "K", ndim=(2, 3))
    if X.dim() != K.dim() or (X.dim() == 3 and X.shape[0] != K.shape[0]):
        raise ValueError(f"X and K must both be 2-D, or 3-D with as many channels, got X of shape "
                         f"{tuple(X.shape)} and K of shape {tuple(K.shape)}")
    X3, K3 = (X[None], K[None]) if X.dim() == 2 else (X, K)
    geo = geometry(X3.shape[-2:], K3.shape[-2:], padding=padding, stride=stride, dilation=dilation)
    (kh, kw), (sh, sw), (dh, dw) = K3.shape[-2:], geo.stride, geo.dilation
    top, bottom, left, right = geo.padding
    drawn = (X3.shape[1] + top + bottom, X3.shape[2] + left + right)
    _check_size([drawn] * len(X3) + [(kh, kw)] * len(K3) + [geo.output], geo.output[0] * geo.output[1])
    inputs = tuple(_padded_grid(x, geo.padding, 0.0) for x in X3)
    kernels = tuple(_grid_of(k) for k in K3)
    steps = []
    for i, j in itertools.product(range(geo.output[0]), range(geo.output[1])):
        taps = [(a, b, i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)]
        sums, parts = [], []
        for grid, kernel in zip(inputs, kernels):
            sums.append(math.fsum(grid[r][q] * kernel[a][b] for a, b, r, q in taps))
            parts.append(" + ".join(f"{_factor(grid[r][q])}·{_factor(kernel[a][b])}" for a, b, r, q in taps))
        value = math.fsum(sums)
        if len(parts) == 1:
            arithmetic = parts[0]
        else:
            arithmetic = (" + ".join(f"({p})" for p in parts) + " = "
                          + " + ".join(_text(s) for s in sums))
        window = {(c, r, q) for c in range(len(inputs)) for _, _, r, q in taps}
        steps.append(((i, j), window, value, f"Y[{i}, {j}] = {arithmetic} = {_text(value)}"))
    return Animation("corr", inputs, kernels, (kh, kw), geo.padding, geo.stride, geo.dilation, 0.0,
                     _fill_in(steps, geo.output))


def pooling(X, pool_size, *, mode="max", padding=0, stride=None):
    """Animate max or average pooling of an ``(H, W)`` image, one window per frame.

    The options are those of :func:`convlab.pool2d`: the stride defaults to the
    window size, padded cells are ``-inf`` for a maximum and zeros in a mean
    (PyTorch's ``count_include_pad=True``).

    Examples
    --------
    >>> anim = pooling(torch.arange(9.0).reshape(3, 3), 2, stride=1)
    >>> [f.value for f in anim.frames], anim.frames[0].caption
    ([4.0, 5.0, 7.0, 8.0], 'Y[0, 0] = max(0, 1, 3, 4) = 4')
    >>> pooling(torch.arange(9.0).reshape(3, 3), 2, mode='avg').frames[0].caption
    'Y[0, 0] = (0 + 1 + 3 + 4) / 4 = 2'
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be one of ('max', 'avg'), got {mode!r}")
    check_tensor(X, "X", ndim=2, floating=(mode == "avg"))
    kh, kw = pair(pool_size, "pool_size")
    stride = pair((kh, kw) if stride is None else stride, "stride")
    ph, pw = pair(padding, "padding", minimum=0)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"padding must be at most half of pool_size {(kh, kw)}, got {padding!r}")
    geo = geometry(X.shape, (kh, kw), padding=(ph, pw), stride=stride)
    fill = -math.inf if mode == "max" else 0.0
    _check_size([(X.shape[0] + 2 * ph, X.shape[1] + 2 * pw), geo.output], geo.output[0] * geo.output[1])
    grid = _padded_grid(X, geo.padding, fill)
    steps = []
    for i, j in itertools.product(range(geo.output[0]), range(geo.output[1])):
        cells = [(i * stride[0] + a, j * stride[1] + b) for a in range(kh) for b in range(kw)]
        values = [grid[r][q] for r, q in cells]
        terms = ", ".join(_text(v) for v in values)
        if mode == "max":
            value, arithmetic = max(values), f"max({terms})"
        else:
            value = math.fsum(values) / len(values)
            arithmetic = f"({terms.replace(', ', ' + ')}) / {len(values)}"
        steps.append(((i, j), {(0, r, q) for r, q in cells}, value,
                      f"Y[{i}, {j}] = {arithmetic} = {_text(value)}"))
    return Animation(mode, (grid,), (), (kh, kw), geo.padding, geo.stride, geo.dilation, fill,
                     _fill_in(steps, geo.output))


def transposed_convolution(X, K, *, stride=1, padding=0):
    """Animate ``conv_transpose2d`` in its scatter form, one input pixel per frame.

    Each input pixel ``X[i, j]`` adds the kernel scaled by ``X[i, j]`` to the
    output, with its top-left corner at ``(i * s_h, j * s_w)``; overlapping
    contributions add up, on an output that starts as zeros (with a stride
    larger than the kernel, some cells are never reached and stay 0). The drawn
    output is the full ``(H - 1) s + k`` grid;
    PyTorch's ``padding`` then crops ``padding`` rows and columns from each side,
    which the drawing shades.

    Parameters
    ----------
    X : torch.Tensor
        An ``(H, W)`` image.
    K : torch.Tensor
        An ``(kh, kw)`` kernel.
    stride, padding : int or pair of int
        As in ``torch.nn.functional.conv_transpose2d``.

    Examples
    --------
    d2l's example of a transposed convolution:

    >>> X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> anim = transposed_convolution(X, X.clone())
    >>> anim.frames[-1].output
    ((0.0, 0.0, 1.0), (0.0, 4.0, 6.0), (4.0, 12.0, 9.0))
    >>> anim.frames[1].caption
    'X[0, 1] = 1: add 1·K to Y[0:2, 1:3]'
    """
    check_tensor(X, "X", ndim=2)
    check_tensor(K, "K", ndim=2)
    geo = transposed_geometry(X.shape, K.shape, padding=padding, stride=stride)
    (sh, sw), (ph, pw) = geo.stride, geo.padding
    (h, w), (kh, kw) = X.shape, K.shape
    full = (geo.output[0] + 2 * ph, geo.output[1] + 2 * pw)   # before PyTorch's crop
    _check_size([(h, w), (kh, kw), full], h * w)
    grid, kernel = _grid_of(X), _grid_of(K)
    # The output starts as zeros: cells that no input reaches (stride > kernel) stay 0.
    sums = [[0.0] * full[1] for _ in range(full[0])]
    frames = []
    for i, j in itertools.product(range(h), range(w)):
        x = grid[i][j]
        target = {(i * sh + a, j * sw + b) for a in range(kh) for b in range(kw)}
        for a, b in itertools.product(range(kh), range(kw)):
            r, q = i * sh + a, j * sw + b
            sums[r][q] += x * kernel[a][b]
        caption = (f"X[{i}, {j}] = {_text(x)}: add {_factor(x)}·K to "
                   f"Y[{i * sh}:{i * sh + kh}, {j * sw}:{j * sw + kw}]")
        frames.append(Frame(frozenset({(0, i, j)}), frozenset(target), x,
                            tuple(map(tuple, sums)), caption))
    return Animation("transpose", (grid,), (kernel,), (kh, kw), (ph, ph, pw, pw), (sh, sw), (1, 1), 0.0,
                     tuple(frames))


# ---------------------------------------------------------------------------
# Helpers


def _fill_in(steps, shape):
    """Frames from ``(cell, window, value, caption)`` steps that fill an output of ``shape``."""
    output = [[None] * shape[1] for _ in range(shape[0])]
    frames = []
    for (i, j), window, value, caption in steps:
        output[i][j] = value
        frames.append(Frame(frozenset(window), frozenset({(i, j)}), value,
                            tuple(map(tuple, output)), caption))
    return tuple(frames)


def _grid_of(T):
    """A 2-D tensor as rows of Python floats."""
    return tuple(tuple(float(v) for v in row) for row in T.detach().double().tolist())


def _padded_grid(T, sides, fill):
    top, bottom, left, right = sides
    rows = [list(r) for r in _grid_of(T)]
    width = len(rows[0]) + left + right
    rows = [[fill] * left + r + [fill] * right for r in rows]
    rows = [[fill] * width for _ in range(top)] + rows + [[fill] * width for _ in range(bottom)]
    return tuple(map(tuple, rows))


def _check_size(grids, frames):
    """Refuse an example too large to read: ``grids`` are the (height, width) drawn in each frame."""
    for size in grids:
        if max(size) > MAX_SIDE:
            raise ValueError(f"a drawn grid would be {size[0]}x{size[1]}; an animation draws at most "
                             f"{MAX_SIDE}x{MAX_SIDE} cells: use a smaller X or less padding")
    if frames > MAX_FRAMES:
        raise ValueError(f"the animation would have {frames} frames; at most {MAX_FRAMES}: "
                         f"use a smaller X or a larger stride")
    cells = frames * sum(h * w for h, w in grids)
    if cells > MAX_CELLS:
        raise ValueError(f"the animation would draw {cells} cells ({frames} frames of "
                         f"{cells // frames}); at most {MAX_CELLS}: use a smaller X")


def _text(v):
    """A number as drawn: integers without a decimal point, else two decimals."""
    if math.isinf(v):
        return "-∞" if v < 0 else "∞"
    if abs(v - round(v)) < 1e-9:
        return str(int(round(v)))
    return f"{v:.2f}"


def _factor(v):
    """A number as a factor of a product: negative ones in parentheses."""
    return f"({_text(v)})" if v < 0 else _text(v)


def _exact(v):
    return repr(float(v))


def _words(v):
    return " ".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _grid(rows, label, role, channel, *, window=(), current=(), pad=(0, 0, 0, 0)):
    """One grid as an HTML table inside a figure."""
    top, bottom, left, right = pad
    height, width = len(rows), len(rows[0])
    out = []
    for r, row in enumerate(rows):
        cells = []
        for q, v in enumerate(row):
            classes = []
            if r < top or r >= height - bottom or q < left or q >= width - right:
                classes.append("p")
            if (r, q) in window:
                classes.append("w")
            if (r, q) in current:
                classes.append("c")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            if v is None:
                cells.append(f"<td{cls}></td>")
            else:
                cells.append(f'<td{cls} data-value="{_exact(v)}">{html.escape(_text(v))}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    chan = f' data-channel="{channel}"' if channel is not None else ""
    return (f'<figure><figcaption>{html.escape(label)}</figcaption><table data-role="{role}"{chan}>'
            f'{"".join(out)}</table></figure>')


_COUNTER = itertools.count()

# Light window (blue), light current output (orange), grey padding; numbers are not coloured.
_CSS = (
    ".convlab-anim{margin:.5em 0 1em;max-width:100%;overflow-x:auto}"
    ".convlab-anim .ca-grids{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}"
    ".convlab-anim figure{margin:0}"
    ".convlab-anim figcaption{font-size:.85em;margin-bottom:.2em}"
    ".convlab-anim table{border-collapse:collapse;margin:0;width:auto}"
    ".convlab-anim td{border:1px solid #999;min-width:2.3em;height:2.3em;padding:0 .25em;"
    "text-align:center;vertical-align:middle;font-variant-numeric:tabular-nums;"
    "background:#fff;color:#111}"
    ".convlab-anim td.p{background:#ececec;color:#666}"
    ".convlab-anim td.w{background:#cfe5fb}"
    ".convlab-anim td.p.w{background:#b9d3ec}"
    ".convlab-anim td.c{background:#ffdcae;font-weight:bold}"
    ".convlab-anim .ca-caption{margin:.6em 0 0;font-variant-numeric:tabular-nums}"
    ".convlab-anim .ca-controls{margin-bottom:.6em}"
    ".convlab-anim button{margin-right:.3em;padding:.15em .7em}"
)

# Show one frame at a time once the script runs; without it every frame stays visible.
# The animation is the same HTML in every edition of the book; on a page whose language is
# Chinese (<html lang="zh-CN">) the script shows its words in Chinese (ZH below).
_SCRIPT = """(function () {
  var root = document.getElementById(%s), interval = %d;
  var frames = root.querySelectorAll('.ca-frame'), n = frames.length, k = 0, timer = null;
  var counter = root.querySelector('.ca-counter');
  var play = root.querySelector('[data-action=play]');
  var zh = /^zh/i.test(document.documentElement.lang || '');
  var ZH = {'Previous': '上一步', 'Next': '下一步', 'Play': '播放', 'Pause': '暂停', 'input': '输入',
            'padded input': '填充后的输入', 'kernel': '卷积核', 'output': '输出',
            'output (cropped cells shaded)': '输出（阴影处被裁掉）'};
  function t(words) { return zh && ZH[words] || words; }
  if (zh) {
    root.querySelectorAll('button').forEach(function (b) { b.textContent = t(b.textContent); });
    root.querySelectorAll('figcaption').forEach(function (c) {
      var m = /^(.*?)(, channel (\\d+))?$/.exec(c.textContent);
      c.textContent = t(m[1]) + (m[3] ? '，通道' + m[3] : '');
    });
    root.querySelectorAll('.ca-caption').forEach(function (c) {
      var m = /^(.*): add (.*) to (.*)$/.exec(c.textContent);
      if (m) c.textContent = m[1] + '：把' + m[2] + '加到' + m[3] + '上';
    });
  }
  function show(i) {
    k = (i + n) %% n;
    for (var f = 0; f < n; f++) frames[f].hidden = (f !== k);
    counter.textContent = zh ? '第' + (k + 1) + '步，共' + n + '步' : 'step ' + (k + 1) + ' of ' + n;
  }
  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.textContent = t('Play');
  }
  root.querySelector('[data-action=prev]').addEventListener('click', function () { stop(); show(k - 1); });
  root.querySelector('[data-action=next]').addEventListener('click', function () { stop(); show(k + 1); });
  play.addEventListener('click', function () {
    if (timer !== null) { stop(); return; }
    if (k === n - 1) show(0);
    play.textContent = t('Pause');
    timer = setInterval(function () { if (k >= n - 1) stop(); else show(k + 1); }, interval);
  });
  root.querySelector('.ca-controls').hidden = false;
  show(0);
})();"""
