"""The grader's side of the replay: the plan, and the verdict on what came back.

A test cell's points count only if the student's own functions, called on the reference's
inputs in a fresh sandboxed process that holds no expected value, no check and no test
code (:mod:`classgrade.sandboxed.replay`), return what the instructor's checks expect. This
module never runs student code and never unpickles anything: it reads the recorder's JSON
lines (the instructor's run, :mod:`classgrade.sandboxed.record`), builds the
:class:`~classgrade.protocol.ReplayPlan` for a submission, reads the replies (bounded, as
untrusted data) and compares them with the expected values, with the checks' own tolerances.

So to earn a test's points, a submission needs its functions to compute the right values in
the replay. Nothing it does in nbgrader's kernel (where the checks and expected values are)
reaches the replay: a new sandbox, its folder copied again from the hand-in. Nothing it does in
the replay can read an expected value: there is none there. What stays for the source reading
(:mod:`classgrade.trusted.audit`) is *how* the values were computed (no delegation).
"""
import array
import base64
import math
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from classgrade.protocol import (CallReply, CallRecord, CheckKind, CheckRecord, ReferenceCell, ReplayCall, ReplayPlan,
                                 ReplayStep, WatchRecord, cell_hash, read_records)

MAX_REPLY_BYTES = 64 * 2**20     # what the grader reads of a replay's replies


def unreplayable(ref):
    """Why the test cell ``ref`` (a :class:`ReferenceCell`) cannot be confirmed by a replay, or ``None``."""
    if not ref.checks:
        return "it has no check of convlab.grading (check_result, check_equal, check_raises) to replay"
    for call in ref.calls:
        if call.error:
            return f"its call of {call.name} could not be recorded ({call.error})"
    numbers = {call.number for call in ref.calls}
    for check in ref.checks:
        if check.link is None or check.link.call not in numbers:
            return (f"a {check.kind.value} check compares a value that is no output of a call of "
                    "student code made through convlab.grading in this cell")
    return None


def reference_cells(records, test_cells):
    """``{grade id: ReferenceCell}`` from the recorder's records and the graded source's test
    cells (``{grade id: source}``)."""
    by_hash = {cell_hash(source): gid for gid, source in test_cells.items()}
    cells = {gid: ReferenceCell(gid) for gid in test_cells}
    for record in read_records(records):
        gid = by_hash.get(record.cell)
        if gid is not None:
            kind = {CallRecord: "calls", CheckRecord: "checks", WatchRecord: "watched"}[type(record)]
            getattr(cells[gid], kind).append(record)
    return cells


def plan(cells, reference, *, skip=None, timeout=30.0, memory_bytes=None):
    """The :class:`ReplayPlan` of one notebook.

    ``cells``: ``[(kind, grade id, source)]`` in notebook order, ``kind`` ``"test"`` for a
    test cell of the release (never run: its calls are replayed instead) or ``"code"``;
    ``reference``: ``{grade id: ReferenceCell}`` (the cells the replay confirms); ``skip``:
    ``{cell hash: reason}``, cells that stopped the kernel in nbgrader's run.
    """
    skip = skip or {}
    steps = []
    for kind, gid, source in cells:
        if kind == "test":
            ref = reference.get(gid)
            calls = [ReplayCall(number=c.number, blob=c.blob, paths=ref.paths(c.number))
                     for c in (ref.calls if ref else [])]
            steps.append(ReplayStep(grade_id=gid, calls=calls))
        else:
            steps.append(ReplayStep(source=source, skip=skip.get(cell_hash(source), "")))
    return ReplayPlan(steps=steps, cell_timeout=float(timeout), memory_bytes=memory_bytes)


@dataclass
class Replies:
    """What a replay sent back: one reply per call number, and what was wrong with the rest."""
    calls: dict = field(default_factory=dict)    # number -> CallReply
    duplicated: set = field(default_factory=set)
    problem: str = ""


def run(argv, plan, *, wall, cwd=None, env=None, stderr=subprocess.DEVNULL):
    """Run the replay command ``argv`` (in a session of its own) on ``plan``; its :class:`Replies`."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=env,
                            start_new_session=True)

    def stop():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return communicate(proc, plan, wall=wall, stop=stop)


def communicate(proc, plan, *, wall, stop=None):
    """Give the replay process ``proc`` its plan and read its replies; its :class:`Replies`.

    ``proc`` has ``stdin`` and ``stdout`` pipes, ``kill()`` and ``wait()`` (a
    :class:`subprocess.Popen`, or :class:`classgrade.trusted.jail.WarmSandbox`). Its output is
    read as untrusted data: at most :data:`MAX_REPLY_BYTES` are kept, and it is stopped past
    ``wall`` seconds (by ``stop``, else ``proc.kill``).
    """
    feeder = threading.Thread(target=_feed, args=(proc.stdin, plan.to_json().encode()), daemon=True)
    feeder.start()
    try:
        data, problem = _read_bounded(proc.stdout, time.monotonic() + wall)
    finally:
        (stop or proc.kill)()
        proc.wait()
        proc.stdout.close()
    feeder.join(5)
    return parse_replies(data, problem)


def _feed(pipe, data):
    try:
        pipe.write(data)
        pipe.close()
    except OSError:   # it stopped reading (it died): what it did not get, it does not reply to
        pass


def _read_bounded(stdout, deadline):
    chunks, size, problem = [], 0, ""
    fd = stdout.fileno()
    os.set_blocking(fd, False)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            problem = "it ran past the wall-clock limit"
            break
        if not select.select([fd], [], [], min(left, 1.0))[0]:
            continue
        chunk = os.read(fd, 2**16)
        if not chunk:
            break
        if size + len(chunk) > MAX_REPLY_BYTES:
            problem = f"its replies were larger than {MAX_REPLY_BYTES // 2**20} MiB"
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), problem


def parse_replies(data, problem=""):
    """:class:`Replies` from the replay's output ``data``, read as untrusted data (malformed lines skipped)."""
    replies = Replies(problem=problem)
    for line in data.splitlines():
        try:
            reply = CallReply.parse(line)
        except (ValueError, TypeError, KeyError):
            continue
        if reply.number in replies.calls:
            replies.duplicated.add(reply.number)
        replies.calls[reply.number] = reply
    return replies


def verdict(ref, replies):
    """``None`` if the replay confirms the test cell ``ref``, else why not (one line)."""
    names = {call.number: call.name for call in ref.calls}
    for check in ref.checks:
        number = check.link.call
        name = names.get(number, "the function")
        if number in replies.duplicated:
            return f"the replay sent two replies for one call of {name} (its replies were tampered with)"
        reply = replies.calls.get(number)
        if reply is None:
            why = f": {replies.problem}" if replies.problem else " (it stopped or ran out of time before)"
            return f"the replay did not reach the call of {name}{why}"
        why = _check(check, reply, ref.paths(number))
        if why:
            return f"{name} {why}"
    return None


def _check(check, reply, paths):
    if check.kind == CheckKind.RAISES:
        if check.error in reply.raised:
            return None
        return f"should raise {check.error}; it " + (f"raised {reply.message}" if reply.raised else "returned")
    if reply.raised:
        return f"raised {reply.message}"
    index = paths.index(check.link)
    if index >= len(reply.values):
        return "sent back no value"
    got = reply.values[index]
    if check.kind == CheckKind.EQUAL:
        return None if got.kind == "ints" and got.ints == check.expected.ints else \
            f"gave {_show(got)} where {tuple(check.expected.ints)} was expected"
    return _differs(check, got)


def _differs(check, got):
    expected = check.expected
    if got.kind != "tensor":
        return f"gave {_show(got)} where a tensor was expected"
    if got.shape != expected.shape:
        return f"gave shape {tuple(got.shape)} where {tuple(expected.shape)} was expected"
    if check.dtype and got.dtype != expected.dtype:
        return f"gave dtype {got.dtype} where {expected.dtype} was expected"
    a, b = _numbers(got), _numbers(expected)
    if a is None or b is None or len(a) != len(b) or len(b) != math.prod(expected.shape):
        return "gave values that cannot be read"
    for x, y in zip(a, b):
        if not (x == y or (math.isfinite(x) and math.isfinite(y) and abs(x - y) <= check.atol + check.rtol * abs(y))):
            return "gave values other than the expected ones"
    return None


def _numbers(encoded):
    try:
        values = array.array("d")
        values.frombytes(base64.b64decode(encoded.data, validate=True))
    except (TypeError, ValueError):
        return None
    return values   # native float64: the replay runs on this machine


def _show(encoded):
    if encoded.kind == "ints":
        return str(tuple(encoded.ints))
    if encoded.kind == "tensor":
        return f"a tensor of shape {tuple(encoded.shape)}"
    return encoded.text or encoded.kind



def notebook_cells(nb, release_nb, test_ids):
    """``[(kind, grade id, source)]`` of the notebook ``nb`` (a graded submission) for :func:`plan`.

    A cell with the grade id of a test cell of the release (``test_ids``) is ``"test"``, never
    run; a locked cell runs with the release's source, as nbgrader restores it; every other
    code cell runs as the student left it.
    """
    released = {}
    for cell in release_nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            released[gid] = _source(cell)
    cells = []
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id") or ""
        if gid in test_ids and meta.get("grade") and not meta.get("solution"):
            cells.append(("test", gid, ""))
        elif meta.get("locked") and gid in released:
            cells.append(("code", gid, released[gid]))
        else:
            cells.append(("code", gid, _source(cell)))
    return cells


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source
