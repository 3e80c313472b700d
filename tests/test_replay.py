"""The replay: a test's points need the student's own functions to compute the right values in a
process that holds no expected value (classgrade.sandboxed.replay), compared outside
(classgrade.trusted.replay) with what the instructor's checks expected (classgrade.sandboxed.record).

The quick tests build replies by hand and record a small notebook; the ``grading`` tests record
every assignment's solution and replay it, its release and its submissions corpus (no nbgrader,
no sandbox: tests/test_classgrade.py grades through both).
"""
import base64
import json
import struct
import sys
from pathlib import Path

import nbformat
import pytest

from classgrade.protocol import CallRecord, CallReply, CheckKind, CheckRecord, Encoded, Link, ReferenceCell
from classgrade.trusted import replay

sys.path.insert(0, str(Path(__file__).parent))
import replay_harness as harness  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


def tensor(values, shape, dtype="float32"):
    data = base64.b64encode(struct.pack(f"{len(values)}d", *values)).decode()
    return Encoded(kind="tensor", shape=list(shape), dtype=dtype, data=data)


def one_check(kind=CheckKind.RESULT, **check):
    link = Link(call=0, path=["result"], convert="ints" if kind == CheckKind.EQUAL else None)
    ref = ReferenceCell("test_f", calls=[CallRecord(cell="c", number=0, name="f", blob="x")],
                               checks=[CheckRecord(cell="c", kind=kind, link=link, **check)])
    return ref


def replies_of(*replies):
    return replay.parse_replies(b"\n".join(r.to_json().encode() for r in replies))


EXPECTED = tensor([1.0, 2.0], [2])


@pytest.mark.parametrize("got, why", [
    (tensor([1.0, 2.0], [2]), None),
    (tensor([1.0, 2.000001], [2]), None),                       # within the check's tolerances
    (tensor([1.0, 2.1], [2]), "values other than the expected ones"),
    (tensor([1.0, 2.0], [1, 2]), "shape (1, 2) where (2,) was expected"),
    (tensor([1.0, 2.0], [2], "float64"), "dtype float64 where float32 was expected"),
    (tensor([1.0, float("nan")], [2]), "values other than the expected ones"),
    (Encoded(kind="other", text="list"), "gave list where a tensor was expected"),
    (Encoded(kind="tensor", shape=[2], dtype="float32", data="!!"), "values that cannot be read"),
])
def test_a_result_check_is_made_again_outside_with_its_own_tolerances(got, why):
    ref = one_check(expected=EXPECTED, atol=1e-5, rtol=1e-4)
    verdict = replay.verdict(ref, replies_of(CallReply(number=0, values=[got])))
    assert (verdict is None) if why is None else (why in verdict), verdict


def test_dtype_is_not_compared_where_the_check_says_so():
    ref = one_check(expected=EXPECTED, atol=1e-5, rtol=1e-4, dtype=False)
    assert replay.verdict(ref, replies_of(CallReply(number=0, values=[tensor([1, 2], [2], "int64")]))) is None


def test_equal_and_raises_checks():
    ref = one_check(CheckKind.EQUAL, expected=Encoded(kind="ints", ints=[2, 3]))
    assert replay.verdict(ref, replies_of(CallReply(number=0, values=[Encoded(kind="ints", ints=[2, 3])]))) is None
    assert "gave (3, 2) where (2, 3)" in replay.verdict(
        ref, replies_of(CallReply(number=0, values=[Encoded(kind="ints", ints=[3, 2])])))
    ref = one_check(CheckKind.RAISES, error="ValueError")
    mine = ["ShapeError", "ValueError", "Exception", "BaseException", "object"]   # a subclass counts
    assert replay.verdict(ref, replies_of(CallReply(number=0, raised=mine))) is None
    assert "should raise ValueError; it returned" in replay.verdict(ref, replies_of(CallReply(number=0)))
    assert "it raised KeyError: 'a'" in replay.verdict(
        ref, replies_of(CallReply(number=0, raised=["KeyError", "Exception"], message="KeyError: 'a'")))


def test_a_call_that_raised_not_reached_or_answered_twice_confirms_nothing():
    ref = one_check(expected=EXPECTED, atol=0.0, rtol=0.0)
    raised = CallReply(number=0, raised=["NotImplementedError"], message="NotImplementedError: ")
    assert "f raised NotImplementedError" in replay.verdict(ref, replies_of(raised))
    assert "did not reach the call of f" in replay.verdict(ref, replies_of())
    twice = replies_of(CallReply(number=0, values=[EXPECTED]), CallReply(number=0, values=[EXPECTED]))
    assert "two replies for one call" in replay.verdict(ref, twice)


def test_replies_are_read_as_untrusted_data():
    good = CallReply(number=3, values=[EXPECTED]).to_json().encode()
    data = b"\n".join([b"not json", b"[1, 2]", b'{"number": "3"}', b'{"values": []}', good, b"\xff\xfe"])
    replies = replay.parse_replies(data)
    assert list(replies.calls) == [3] and not replies.duplicated


def test_the_replay_process_is_bounded_in_output_and_time(monkeypatch):
    plan = replay.ReplayPlan(steps=[])
    monkeypatch.setattr(replay, "MAX_REPLY_BYTES", 2**20)
    flood = [sys.executable, "-c", "import os\nwhile True: os.write(1, b'x' * 65536)"]
    assert "larger than" in replay.run(flood, plan, wall=60).problem
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    assert "wall-clock limit" in replay.run(sleeper, plan, wall=1).problem


# A small notebook of every kind of call and check the recorder links: a result, a module argument
# changed in place (a parameter and its gradient), a list of floats made into a tensor, a tuple of ints,
# an error, an object returned by one call and called by the next, a substitute, and one derived value.
SOURCE_CELLS = [
    ("code", None, "import torch\nfrom torch import nn"),
    ("solution", "f", "def double(X):\n    return 2 * X\n\n"
                      "def fit(layer, steps):\n    losses = []\n    for _ in range(steps):\n"
                      "        layer.weight.grad = None\n        loss = (layer.weight ** 2).sum()\n        loss.backward()\n"
                      "        with torch.no_grad():\n            layer.weight -= 0.1 * layer.weight.grad\n"
                      "        losses.append(loss.item())\n    return losses\n\n"
                      "def shape_of(X):\n    return tuple(X.shape)\n\n"
                      "def positive(x):\n    if x <= 0:\n        raise ValueError(x)\n    return x\n\n"
                      "class Scale(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                      "        self.weight = nn.Parameter(torch.rand(2))\n"
                      "    def forward(self, X):\n        return X * self.weight\n\n"
                      "def helper(X):\n    return X + 1\n\n"
                      "def shifted(X):\n    return 2 * helper(X)"),
    ("test", "test_all", "from convlab import grading\n"
                         "X = torch.tensor([1.0, 2.0])\n"
                         "grading.check_result(grading.call(double, X), torch.tensor([2.0, 4.0]), case='x')\n"
                         "layer = nn.Linear(2, 1)\n"
                         "with torch.no_grad():\n    layer.weight.fill_(1.0)\n"
                         "losses = grading.call(fit, layer, 3)\n"
                         "grading.check_result(torch.tensor(losses, dtype=torch.float64), "
                         "torch.tensor([2.0, 1.28, 0.8192], dtype=torch.float64), case='losses')\n"
                         "grading.check_result(layer.weight, torch.full((1, 2), 0.512), case='w')\n"
                         "grading.check_result(layer.weight.grad, torch.full((1, 2), 1.28), case='g')\n"
                         "grading.check_equal(grading.call(shape_of, torch.ones(2, 3)), (2, 3), case='s')\n"
                         "grading.check_raises(positive, -1, case='-1')\n"
                         "torch.manual_seed(0)\n"
                         "scale = grading.call(Scale)\n"
                         "with torch.no_grad():\n    scale.weight.copy_(torch.tensor([3.0, -1.0]))\n"
                         "grading.check_result(grading.call(scale, X), torch.tensor([3.0, -2.0]), case='scale')\n"
                         "grading.check_result(grading.call(shifted, X, substitute={'helper': lambda X: X - 1}),"
                         " torch.tensor([0.0, 2.0]), case='shifted')\n"),
    ("test", "test_derived", "from convlab import grading\n"
                             "grading.check_result(grading.call(double, torch.ones(2)).sum(), torch.tensor(4.0), "
                             "case='sum')\n"),
]


def small_notebook(solution=True, replace=None):
    cells = []
    for kind, gid, source in SOURCE_CELLS:
        if kind == "solution" and replace:
            source = replace(source)
        cell = nbformat.v4.new_code_cell(source)
        if gid:
            cell.metadata.nbgrader = dict(grade_id=gid, grade=kind == "test", solution=kind == "solution",
                                          locked=kind == "test", points=1 if kind == "test" else None,
                                          schema_version=3)
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    nbformat.write(small_notebook(), str(folder / "small.ipynb"))
    return folder / "small.ipynb", harness.record(folder / "small.ipynb", folder / "records.jsonl")


def test_the_recorder_links_each_check_to_the_output_it_compared(small):
    _, reference = small
    links = [(c.kind, c.link and (c.link.path, c.link.convert)) for c in reference["test_all"].checks]
    assert links == [
        (CheckKind.RESULT, (["result"], None)),
        (CheckKind.RESULT, (["result"], "float64")),                    # a list of floats, made a tensor
        (CheckKind.RESULT, (["arg", 0, "param:weight"], None)),         # the layer fit changed in place
        (CheckKind.RESULT, (["arg", 0, "param:weight", "grad"], None)),
        (CheckKind.EQUAL, (["result"], "ints")),
        (CheckKind.RAISES, (["result"], None)),
        (CheckKind.RESULT, (["result"], None)),
        (CheckKind.RESULT, (["result"], None)),
    ]
    assert replay.unreplayable(reference["test_derived"]).startswith("a result check compares a value that is no output")
    assert replay.unreplayable(reference["test_all"]) is None


def test_a_replay_confirms_the_source_and_not_wrong_answers(small):
    path, reference = small
    assert harness.replay(reference, path, path)["test_all"] == harness.CONFIRMED
    wrong = {   # one mistake each; the replay finds the check it breaks
        "X + X + 0.5": "double gave values other than",
        "abs": "Scale gave values other than",
        "0.1 * layer.weight.grad\n        losses": "fit gave values other than",
        "raise ValueError(x)": "positive should raise ValueError; it returned",
    }
    mistakes = {"return 2 * X": "return X + X + 0.5", "return X * self.weight": "return X * self.weight.abs()",
                "0.1 * layer.weight.grad\n        losses": "0.2 * layer.weight.grad\n        losses",
                "raise ValueError(x)": "pass"}
    for old, new in mistakes.items():
        nb = small_notebook(replace=lambda s: s.replace(old, new))
        verdict = harness.replay(reference, path, nb)["test_all"]
        assert verdict != harness.CONFIRMED and any(w in verdict for w in wrong.values()), (old, verdict)
    # the student's Scale with other initial weights: the test set them, so the replay sets them too;
    # helper is the test's substitute in shifted's call, so a wrong helper costs nothing there
    nb = small_notebook(replace=lambda s: s.replace("torch.rand(2)", "torch.zeros(2)").replace("X + 1", "X * 7"))
    assert harness.replay(reference, path, nb)["test_all"] == harness.CONFIRMED


FORGERS = {
    # replies written on every descriptor the process holds, before any call: wrong values, so the
    # real replies that follow make each call answered twice
    "replies_on_every_descriptor": '''import os, json
for fd in range(3, 64):
    for number in range(40):
        try:
            os.write(fd, (json.dumps({"number": number, "values": []}) + "\\n").encode())
        except OSError:
            pass''',
    # the same, then the process ends before the real replies
    "replies_then_exit": '''import os, json
for fd in range(3, 64):
    for number in range(40):
        try:
            os.write(fd, (json.dumps({"number": number, "raised": ["ValueError"],
                                      "values": [{"kind": "ints", "ints": [2, 3]}]}) + "\\n").encode())
        except OSError:
            pass
os._exit(0)''',
    # the reply channel closed: nothing is confirmed
    "channel_closed": '''import os
for fd in range(3, 64):
    try:
        os.close(fd)
    except OSError:
        pass''',
}


@pytest.mark.parametrize("forger", sorted(FORGERS))
def test_forged_replies_confirm_nothing(small, forger):
    path, reference = small
    zeros = small_notebook(replace=lambda s: s.replace("return 2 * X", "return 0 * X")
                           .replace("return tuple(X.shape)", "return (0, 0)"))
    zeros.cells.insert(2, nbformat.v4.new_code_cell(FORGERS[forger]))
    verdict = harness.replay(reference, path, zeros)["test_all"]
    assert verdict != harness.CONFIRMED, verdict


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recorded")
    return {a: harness.record(REPO / "solutions" / a / f"{a}.ipynb", folder / f"{a}.jsonl") for a in ASSIGNMENTS}


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_solution_is_replayable_and_confirmed_in_full(recorded, assignment):
    reference = recorded[assignment]
    assert {gid: replay.unreplayable(ref) for gid, ref in reference.items()} == dict.fromkeys(reference)
    source = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    assert harness.replay(reference, source, source) == dict.fromkeys(reference, harness.CONFIRMED)
    blank = harness.replay(reference, source, REPO / "exercises" / assignment / f"{assignment}.ipynb")
    assert all(why != harness.CONFIRMED for why in blank.values()), blank


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_replay_fails_no_test_that_a_corpus_submission_passes(recorded, assignment):
    """Fairness: every test that nbgrader passes on a corpus submission, the replay confirms."""
    folder = REPO / "tests" / "submissions" / assignment
    expected = json.loads((folder / "expected.json").read_text())
    source = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    stricter = {}
    for case, want in expected.items():
        verdicts = harness.replay(recorded[assignment], source, folder / f"{case}.ipynb")
        extra = {gid: why for gid, why in verdicts.items() if why != harness.CONFIRMED and gid not in want["failing"]}
        if extra:
            stricter[case] = extra
    assert stricter == {}
