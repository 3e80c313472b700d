"""The grader's ledger: each check's values, compared outside the student's kernel.

A test cell calls the student's code in the grading kernel, where the
submission runs and could rewrite anything: the checks, their messages,
nbgrader's view of the cell. So the checks of :mod:`convlab.grading`
(``check_result``, ``check_equal``, ``check_raises`` and ``check_against``,
which uses the first two) also write what they were given to a file of the
grader's (:class:`classgrade.sandboxed.ledger.Writer`, one JSON line per check: the value as plain
numbers with its shape and dtype, and the cell it came from). Nothing of the
kernel is believed but those numbers:

- before the class, the grader grades the assignment's *source* (the
  instructor's solutions) the same way; its checks' ``expected`` values are
  the reference (:func:`reference_of`);
- after a submission is graded, :func:`agree` compares, for every test cell
  that nbgrader gave points, the values that submission's kernel produced
  (``got``) with the reference's ``expected``, check by check, with the
  reference's tolerances. A cell whose checks are missing, extra, or
  different loses its points (:func:`classgrade.trusted.worker.apply_ledger`).

What this guarantees: a test cell's points need the values that the
instructor's own solution produced, on the instructor's own cases, to have
been given to the checks. Tampering with the checks (replacing ``_fail``,
a function's code, ``sys.stdout``, the kernel's session, a tensor subclass,
...) therefore earns nothing. What it cannot see: *how* the kernel obtained
those values; for the checks that watch how (delegation, call counts), the
grader reads the submission's source instead (:mod:`.audit`). A test cell's
plain ``assert``, which is not a check of :mod:`convlab.grading`, is not seen.

A check's ``expected`` must therefore come from the test's own inputs, never
from the student's code (the reference run cannot know the student's
values).
"""
import array
import base64
import json
import math

from classgrade.protocol import LEDGER as FILE  # noqa: F401 - in the kernel's private folder

MAX_BYTES = 64 * 2**20      # a kernel's ledger beyond this is not read (RLIMIT_FSIZE bounds it too)


def read(path):
    """``{cell hash: [record, ...]}`` from a kernel's ledger file (a missing file is empty)."""
    cells = {}
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        return cells
    if len(data) > MAX_BYTES:
        return {None: [dict(kind="too large")]}
    for line in data.splitlines():
        try:
            record = json.loads(line)
            cell = record["cell"]
        except (ValueError, KeyError, TypeError):
            continue
        cells.setdefault(cell if isinstance(cell, str) else None, []).append(record)
    return cells


def reference_of(records):
    """The reference of one test cell: each check's kind, expected value and options."""
    return [dict(kind=r.get("kind"), expected=r.get("expected"), options=r.get("options") or {})
            for r in records]


def agree(reference, records):
    """``None`` if the kernel's ``records`` of a cell match its ``reference``, else why not."""
    if len(records) != len(reference):
        return f"{len(reference)} checks expected, {len(records)} reported"
    for index, (want, have) in enumerate(zip(reference, records), 1):
        why = _differs(want, have if isinstance(have, dict) else {})
        if why:
            return f"check {index} of {len(reference)}: {why}"
    return None


def _differs(want, have):
    if have.get("kind") != want["kind"]:
        return f"a {have.get('kind')!r} check where {want['kind']!r} was expected"
    expected, got = want["expected"] or {}, have.get("got")
    if not isinstance(got, dict):
        return "no value"
    if expected.get("type") != "tensor":
        return None if got == expected else "a different value"
    if got.get("type") != "tensor":
        return f"a {got.get('type')} where a tensor was expected"
    if got.get("shape") != expected["shape"]:
        return f"shape {got.get('shape')} where {expected['shape']} was expected"
    options = want["options"]
    if options.get("dtype", True) and got.get("dtype") != expected["dtype"]:
        return f"dtype {got.get('dtype')} where {expected['dtype']} was expected"
    a, b = _numbers(got), _numbers(expected)
    if a is None or len(a) != len(b) or len(b) != math.prod(expected["shape"]):
        return "values that cannot be read"
    atol, rtol = float(options.get("atol", 0.0)), float(options.get("rtol", 0.0))
    for x, y in zip(a, b):
        if not (math.isfinite(x) and math.isfinite(y) and abs(x - y) <= atol + rtol * abs(y)) and not (x == y):
            return "different values"
    return None


def _numbers(described):
    try:
        raw = base64.b64decode(described["data"], validate=True)
        values = array.array("d")
        values.frombytes(raw)
    except (KeyError, TypeError, ValueError):
        return None
    return values   # native float64: the kernel runs on the grader's machine
