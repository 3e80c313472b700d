"""The hints of the graded notebooks name the mistake that was made, and no other.

Each case below is one classic mistake, written as a student writes it. The solution
notebook (hidden tests included, so every example input a hint can fire on) runs with
that function replaced, in this process, and every failing test cell's message is read:
- the hint of that mistake appears in the cells named (the visible ones, where a student
  reads it before handing in);
- no failing cell carries the hint of a different mistake (two mistakes that give the same
  output on an example must be told apart by another example of the same cell).
Every hint of convlab.mistakes is the expected hint of at least one case.
"""

import json
import re
import textwrap
from pathlib import Path

import pytest

from convlab import mistakes

ROOT = Path(__file__).resolve().parents[1]

# Hints that do not come from convlab.mistakes: convlab.grading's own, and the messages of rules.
OTHER_HINTS = {
    "integer_input_dtype": "create the result with the input's dtype",
    "integer_floats": "write the numbers as floats (1.0, not 1)",
    "not_written": "this function is not written yet",
    "in_place": "in place for",
    "vertical_only": "Part C uses only the vertical kernel",
}
ALL_HINTS = {hint for name in mistakes.__all__ for _, hint in getattr(mistakes, name)} | set(OTHER_HINTS.values())


def hint(name, index):
    return getattr(mistakes, name)[index][1]


LOOPS = """
def corr2d(X, K):
    kh, kw = K.shape
    Y = {zeros}
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = {window}
    return Y
"""

STRIDED = """
def corr2d(X, K, padding=0, stride=1):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    kh, kw = K.shape
    oh, ow = output_shape(tuple(X.shape), (kh, kw), padding=padding, stride=stride)
    P = {padded}
    Y = torch.zeros(oh, ow, dtype=X.dtype)
    for i in range(0, oh{step_i}):
        for j in range(0, ow{step_j}):
            Y[i, j] = (P[{row} : {row} + kh, {col} : {col} + kw] * K).sum()
    return Y
"""

POOL = """
def pool2d(X, pool_size, *, mode="max", padding=0, stride=None):
    kh, kw = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    {no_padding}
    if stride is None:
        stride = (kh, kw)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    fill = float("-inf") if mode == "max" else 0.0
    P = torch.full((X.shape[0] + 2 * ph, X.shape[1] + 2 * pw), fill, dtype=X.dtype)
    P[ph : ph + X.shape[0], pw : pw + X.shape[1]] = X
    oh, ow = (P.shape[0] - kh) // sh {plus_one}, (P.shape[1] - kw) // sw {plus_one}
    Y = torch.zeros(oh, ow, dtype=X.dtype)
    for i in range(oh):
        for j in range(ow):
            window = P[i * sh : i * sh + kh, j * sw : j * sw + kw]
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y
"""

MAGNITUDE = """
def edge_magnitude(X):
    Gx = corr2d(X, edge_kernel("vertical").to(X.dtype)){crop_x}
    Gy = corr2d(X, edge_kernel("horizontal").to(X.dtype)){crop_y}
    return torch.sqrt(Gx**2 + Gy**2)
"""

TRAIN = """
def train(layer, X, Y, *, lr=0.01, num_epochs=50, weight_decay=0.0):
    params = [layer.weight, layer.bias]
    losses = []
    for _ in range(num_epochs):
        loss = squared_loss(layer(X), Y)
        loss.backward()
        sgd(params, lr, {weight_decay})
        {zero_grad}
        losses.append({loss})
    return losses
"""

SGD = """
def sgd(params, lr, weight_decay=0.0):
    with torch.no_grad():
        for p in params:
            p -= lr * (p.grad + {decay} * p)
"""

COST = """
def conv_cost(input_hw, c_in, c_out, kernel_size, padding=0, stride=1, groups=1, bias=True):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    oh = (input_hw[0] + 2 * ph - kh) // sh + 1
    ow = (input_hw[1] + 2 * pw - kw) // sw + 1
    weights = c_out * {channels} * kh * kw
    params = {params}
    return (params, {macs}, c_out * oh * ow)
"""

FIELD = """
def receptive_field(layers):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    field, jump = [1, 1], [1, 1]
    for layer in layers:
        k, s, d = pair(layer["kernel_size"]), pair(layer.get("stride", 1)), pair(layer.get("dilation", 1))
        for axis in range(2):
            {update}
    return tuple(field)
"""

GROUPED = """
def corr2d_grouped(X, K, groups=1):
    c_in, h, w = X.shape
    c_out, per_group, kh, kw = K.shape
    {check}
    outs_per_group = c_out // groups
    Y = torch.zeros(c_out, h - kh + 1, w - kw + 1, dtype=X.dtype)
    for o in range(c_out):
        j = {group}
        block = X[j * per_group : (j + 1) * per_group]
        for i in range(h - kh + 1):
            for k in range(w - kw + 1):
                Y[o, i, k] = (block[:, i : i + kh, k : k + kw] * K[o]).sum()
    return Y
"""
CHECK_GROUPS = """if c_in % groups or c_out % groups or per_group != c_in // groups:
        raise ValueError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}, and K have c_in // groups channels")"""

# (assignment, case, source of the mistaken function(s), the hint it must get, the cells that must show it)
CASES = [
    # cross_correlation
    ("cross_correlation", "conv2d_transposed", "def conv2d(X, K):\n    return corr2d(X, K.T)",
     hint("CONV2D", 3), ["test_conv2d_visible", "test_conv2d_hidden"]),
    ("cross_correlation", "conv2d_no_flip", "def conv2d(X, K):\n    return corr2d(X, K)",
     hint("CONV2D", 0), ["test_conv2d_visible", "test_conv2d_hidden"]),
    ("cross_correlation", "conv2d_flip_rows", "def conv2d(X, K):\n    return corr2d(X, K.flip(0))",
     hint("CONV2D", 1), ["test_conv2d_visible"]),
    ("cross_correlation", "conv2d_flip_columns", "def conv2d(X, K):\n    return corr2d(X, K.flip(1))",
     hint("CONV2D", 2), ["test_conv2d_visible"]),
    ("cross_correlation", "corr2d_flips", LOOPS.format(
        zeros="X.new_zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1)",
        window="(X[i : i + kh, j : j + kw] * K.flip(0, 1)).sum()"),
     hint("CORR2D", 0), ["test_corr2d_visible", "test_corr2d_hidden"]),
    ("cross_correlation", "corr2d_integer_output", LOOPS.format(
        zeros="torch.zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1, dtype=int)",
        window="(X[i : i + kh, j : j + kw] * K).sum()"),
     OTHER_HINTS["integer_input_dtype"], ["test_corr2d_visible", "test_corr2d_hidden"]),
    ("cross_correlation", "corr2d_in_place", LOOPS.format(
        zeros="X.new_zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1)",
        window="X[i : i + kh, j : j + kw].mul_(K).sum()"),
     OTHER_HINTS["in_place"], ["test_corr2d_visible", "test_corr2d_hidden"]),
    ("cross_correlation", "corr2d_not_written", "def corr2d(X, K):\n    raise NotImplementedError()",
     OTHER_HINTS["not_written"], ["test_corr2d_visible", "test_corr2d_hidden"]),
    # shapes_padding_stride
    ("shapes_padding_stride", "output_shape_swapped_padding", """
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    pw, ph = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    (h, w), (kh, kw) = input_hw, kernel_hw
    return ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
""", hint("OUTPUT_SHAPE", 4), ["test_output_shape_visible", "test_output_shape_hidden"]),
    ("shapes_padding_stride", "output_shape_lecture", """
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    (h, w), (kh, kw) = input_hw, kernel_hw
    return (round((h - kh + ph + sh) / sh), round((w - kw + pw + sw) / sw))
""", hint("OUTPUT_SHAPE", 0), ["test_output_shape_visible"]),
    ("shapes_padding_stride", "output_shape_total_padding", """
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    (h, w), (kh, kw) = input_hw, kernel_hw
    return ((h + ph - kh) // sh + 1, (w + pw - kw) // sw + 1)
""", hint("OUTPUT_SHAPE", 1), ["test_output_shape_visible"]),
    ("shapes_padding_stride", "output_shape_rounds", """
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    (h, w), (kh, kw) = input_hw, kernel_hw
    return (round((h + 2 * ph - kh) / sh) + 1, round((w + 2 * pw - kw) / sw) + 1)
""", hint("OUTPUT_SHAPE", 2), ["test_output_shape_visible"]),
    ("shapes_padding_stride", "output_shape_no_plus_one", """
def output_shape(input_hw, kernel_hw, padding=0, stride=1):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    (h, w), (kh, kw) = input_hw, kernel_hw
    return ((h + 2 * ph - kh) // sh, (w + 2 * pw - kw) // sw)
""", hint("OUTPUT_SHAPE", 3), ["test_output_shape_visible"]),
    ("shapes_padding_stride", "pad2d_axes_swapped", """
def pad2d(X, padding):
    pw, ph = (padding, padding) if isinstance(padding, int) else padding
    h, w = X.shape
    Y = torch.zeros(h + 2 * ph, w + 2 * pw, dtype=X.dtype)
    Y[ph : ph + h, pw : pw + w] = X
    return Y
""", hint("PAD2D", 0), ["test_pad2d_visible"]),
    ("shapes_padding_stride", "pad2d_total", """
def pad2d(X, padding):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    h, w = X.shape
    Y = torch.zeros(h + ph, w + pw, dtype=X.dtype)
    Y[ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w] = X
    return Y
""", hint("PAD2D", 1), ["test_pad2d_visible"]),
    ("shapes_padding_stride", "corr2d_lecture_loops",
     STRIDED.format(padded="pad2d(X, padding)", step_i=", sh", step_j=", sw", row="i", col="j"),
     hint("CORR2D_PADDING_STRIDE", 0), ["test_corr2d_visible", "test_corr2d_hidden"]),
    ("shapes_padding_stride", "corr2d_skips_outputs",
     STRIDED.format(padded="pad2d(X, padding)", step_i=", sh", step_j=", sw", row="i * sh", col="j * sw"),
     hint("CORR2D_PADDING_STRIDE", 1), ["test_corr2d_visible", "test_corr2d_hidden"]),
    ("shapes_padding_stride", "corr2d_window_without_stride",
     STRIDED.format(padded="pad2d(X, padding)", step_i="", step_j="", row="i", col="j"),
     hint("CORR2D_PADDING_STRIDE", 2), ["test_corr2d_visible", "test_corr2d_hidden"]),
    ("shapes_padding_stride", "corr2d_ignores_padding",
     STRIDED.format(padded="X", step_i="", step_j="", row="i * sh", col="j * sw"),
     hint("CORR2D_PADDING_STRIDE", 3), ["test_corr2d_visible", "test_corr2d_hidden"]),
    # edge_detection
    ("edge_detection", "integer_kernels", """
def edge_kernel(direction):
    kernels = {"vertical": [[-1, 1]], "horizontal": [[-1], [1]], "diagonal": [[-1, 0], [0, 1]],
               "antidiagonal": [[0, -1], [1, 0]]}
    if direction not in kernels:
        raise ValueError(direction)
    return torch.tensor(kernels[direction])
""", OTHER_HINTS["integer_floats"], ["test_edge_kernel_visible", "test_edge_kernel_hidden"]),
    ("edge_detection", "diagonal_signs", """
def edge_kernel(direction):
    kernels = {"vertical": [[-1.0, 1.0]], "horizontal": [[-1.0], [1.0]], "diagonal": [[1.0, 0.0], [0.0, -1.0]],
               "antidiagonal": [[0.0, 1.0], [-1.0, 0.0]]}
    if direction not in kernels:
        raise ValueError(direction)
    return torch.tensor(kernels[direction])
""", hint("EDGE_KERNEL", 0), ["test_edge_kernel_hidden"]),
    ("edge_detection", "magnitude_uncropped", MAGNITUDE.format(crop_x="", crop_y=""),
     hint("EDGE_MAGNITUDE", 0), ["test_edge_magnitude_visible", "test_edge_magnitude_hidden"]),
    ("edge_detection", "magnitude_wrong_crop", MAGNITUDE.format(crop_x="[1:, :]", crop_y="[:, 1:]"),
     hint("EDGE_MAGNITUDE", 1), ["test_edge_magnitude_visible", "test_edge_magnitude_hidden"]),
    ("edge_detection", "transpose_by_horizontal_kernel", """
def horizontal_edges_by_transpose(X):
    return corr2d(X, torch.tensor([[-1.0], [1.0]], dtype=X.dtype))
""", OTHER_HINTS["vertical_only"], ["test_horizontal_edges_by_transpose_visible",
                                    "test_horizontal_edges_by_transpose_hidden"]),
    # learning_a_kernel
    ("learning_a_kernel", "train_no_zero_grad",
     TRAIN.format(weight_decay="weight_decay", zero_grad="pass", loss="loss.item()"),
     hint("TRAIN", 0), ["test_train_visible", "test_train_hidden", "test_train_weight_decay_hidden"]),
    ("learning_a_kernel", "train_loss_after_step",
     TRAIN.format(weight_decay="weight_decay", zero_grad="[p.grad.zero_() for p in params]",
                  loss="squared_loss(layer(X), Y).item()"),
     hint("TRAIN", 1), ["test_train_visible", "test_train_hidden", "test_train_weight_decay_hidden"]),
    ("learning_a_kernel", "train_drops_weight_decay",
     TRAIN.format(weight_decay="0.0", zero_grad="[p.grad.zero_() for p in params]", loss="loss.item()"),
     hint("TRAIN", 2), ["test_train_weight_decay_hidden"]),
    ("learning_a_kernel", "sgd_without_weight_decay", SGD.format(decay="0.0"), hint("SGD", 0),
     ["test_sgd_visible", "test_sgd_hidden"]),
    ("learning_a_kernel", "sgd_weight_decay_sign", SGD.format(decay="-weight_decay"), hint("SGD", 1),
     ["test_sgd_visible", "test_sgd_hidden"]),
    ("learning_a_kernel", "sgd_half_weight_decay", SGD.format(decay="weight_decay / 2"), hint("SGD", 2),
     ["test_sgd_visible", "test_sgd_hidden"]),
    # channels_pooling
    ("channels_pooling", "pool_no_plus_one", POOL.format(no_padding="", plus_one=""), hint("POOL2D", 3),
     ["test_pool2d_max_visible", "test_pool2d_avg_visible", "test_pool2d_no_delegation"]),
    ("channels_pooling", "pool_ignores_padding", POOL.format(no_padding="ph, pw = 0, 0", plus_one="+ 1"),
     hint("POOL2D", 4), ["test_pool2d_max_visible", "test_pool2d_avg_visible", "test_pool2d_no_delegation"]),
    ("channels_pooling", "pool_max_pads_zeros",
     POOL.format(no_padding="", plus_one="+ 1").replace('float("-inf") if mode == "max" else 0.0', "0.0"),
     hint("POOL2D", 0), ["test_pool2d_max_visible"]),
    ("channels_pooling", "pool_stride_one",
     POOL.format(no_padding="", plus_one="+ 1").replace("stride = (kh, kw)", "stride = 1"),
     hint("POOL2D", 2), ["test_pool2d_max_visible", "test_pool2d_avg_visible"]),
    ("channels_pooling", "one_by_one_transposed", """
def corr2d_multi_in_out_1x1(X, K):
    c_in, h, w = X.shape
    c_out = K.shape[0]
    return (K.reshape(c_in, c_out).T @ X.reshape(c_in, h * w)).reshape(c_out, h, w)
""", hint("CORR2D_MULTI_IN_OUT_1X1", 0), ["test_corr2d_multi_in_out_1x1_visible"]),
    # layer_arithmetic
    ("layer_arithmetic", "cost_bias_forgotten",
     COST.format(channels="(c_in // groups)", params="weights", macs="weights * oh * ow"),
     hint("CONV_COST", 0), ["test_conv_cost_visible", "test_conv_cost_hidden"]),
    ("layer_arithmetic", "cost_multiply_and_add_counted",
     COST.format(channels="(c_in // groups)", params="weights + c_out if bias else weights",
                 macs="2 * weights * oh * ow"),
     hint("CONV_COST", 1), ["test_conv_cost_visible", "test_conv_cost_hidden"]),
    ("layer_arithmetic", "cost_groups_ignored",
     COST.format(channels="c_in", params="weights + c_out if bias else weights", macs="weights * oh * ow"),
     hint("CONV_COST", 2), ["test_conv_cost_visible", "test_conv_cost_hidden"]),
    ("layer_arithmetic", "field_without_strides", FIELD.format(update="field[axis] += d[axis] * (k[axis] - 1)"),
     hint("RECEPTIVE_FIELD", 0), ["test_receptive_field_visible", "test_receptive_field_hidden"]),
    ("layer_arithmetic", "field_own_stride", FIELD.format(
        update="jump[axis] *= s[axis]\n            field[axis] += d[axis] * (k[axis] - 1) * jump[axis]"),
     hint("RECEPTIVE_FIELD", 1), ["test_receptive_field_visible", "test_receptive_field_hidden"]),
    ("layer_arithmetic", "grouped_interleaved", GROUPED.format(check=CHECK_GROUPS, group="o % groups"),
     hint("CORR2D_GROUPED", 0),
     ["test_corr2d_grouped_visible", "test_corr2d_grouped_hidden", "test_corr2d_grouped_depthwise"]),
    ("layer_arithmetic", "grouped_no_divisibility_check",
     GROUPED.format(check="# groups divides the channels", group="o // max(outs_per_group, 1)"),
     mistakes.GROUPS_MUST_DIVIDE, ["test_corr2d_grouped_raises"]),
]


def solution_cells(assignment):
    """The code cells of the solution notebook: (grade_id, source, is_test)."""
    notebook = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    cells = []
    for cell in notebook["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if cell["cell_type"] != "code" or meta is None or meta.get("grade_id") == "summary":
            continue  # the student's scratch cells (no nbgrader metadata) and the summary are not run
        source = "".join(cell["source"])
        cells.append((meta["grade_id"], source, bool(meta.get("grade")) and not meta.get("solution")))
    return cells


def messages(assignment, replacement, names):
    """{grade_id: message} of the failing test cells that mention one of ``names``, the notebook run with
    ``replacement`` (a student's definitions) after the solution's."""
    namespace = {"__name__": "__main__"}
    cells = solution_cells(assignment)
    for _, source, is_test in cells:
        if not is_test:
            exec(compile(source, "<cell>", "exec"), namespace)
    exec(compile(textwrap.dedent(replacement), "<student>", "exec"), namespace)
    failing = {}
    for grade_id, source, is_test in cells:
        if not is_test or not any(re.search(rf"\b{name}\b", source) for name in names):
            continue
        try:
            exec(compile(source, f"<{grade_id}>", "exec"), namespace)
        except AssertionError as error:
            failing[grade_id] = str(error)
        except Exception as error:  # noqa: BLE001 - a test cell that crashes is a failure of this test
            failing[grade_id] = f"CRASH {type(error).__name__}: {error}"
    return failing


def defined(source):
    return re.findall(r"^def (\w+)", textwrap.dedent(source), re.M)


@pytest.mark.parametrize("assignment, case, source, expected, cells", CASES, ids=[c[1] for c in CASES])
def test_a_mistake_gets_its_own_hint_and_no_other(assignment, case, source, expected, cells, capsys):
    failing = messages(assignment, source, defined(source))
    assert not any(m.startswith("CRASH") for m in failing.values()), failing
    for grade_id in cells:
        assert grade_id in failing, f"{case}: {grade_id} passes"
        assert expected in failing[grade_id], f"{case}: {grade_id} says {failing[grade_id]!r}"
    for grade_id, message in failing.items():
        others = [h for h in ALL_HINTS if h in message and h != expected and h not in expected]
        assert not others, f"{case}: {grade_id} names another mistake: {message!r}"
    capsys.readouterr()


def test_every_hint_has_a_mistake_that_shows_it():
    shown = {expected for *_, expected, _ in CASES} | {hint("POOL2D", 1)}  # avg_excludes_padding: below
    assert ALL_HINTS <= shown, ALL_HINTS - shown


def test_average_pooling_over_real_positions_only_is_named():
    """The mean over the real positions of a window: the corpus' avg_excludes_padding, run here too."""
    corpus = json.loads((ROOT / "tests" / "submissions" / "channels_pooling" / "avg_excludes_padding.ipynb").read_text())
    pool = next("".join(c["source"]) for c in corpus["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade_id") == "pool2d")
    failing = messages("channels_pooling", pool, ["pool2d"])
    assert hint("POOL2D", 1) in failing["test_pool2d_avg_visible"]
    for message in failing.values():
        assert not [h for h in ALL_HINTS if h in message and h != hint("POOL2D", 1)], message


def test_the_solutions_pass_every_test_cell():
    for assignment in sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()):
        assert messages(assignment, "", [r"\w+"]) == {}, assignment
