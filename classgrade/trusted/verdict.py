"""The grader's verdicts on a graded submission, outside every sandbox: the replay and the source.

Runs in a grading process, as the grader, after nbgrader's autograde (whose kernel ran the
tests and wrote the student's feedback). A test that nbgrader gave points keeps them only if

1. the replay confirms its checks (:mod:`.replay`): the submission's own functions, called on
   the inputs of the instructor's run in a fresh sandbox that holds no expected value, no check
   and no test code, give what the instructor's checks expect; and
2. where the test watches *how* a function computes (no delegation), the source reading
   (:mod:`.audit`) finds no forbidden function in what the function reaches and no way around
   the watch in any line of the notebook that can run.

Otherwise its points are removed, the autograded notebook shows why under the test, and the
report lists it. A test whose instructor's run cannot be replayed (said once, at the start of the
run) keeps nbgrader's score.

The instructor's own run (:func:`record_reference`) gives the reference: each test cell's
calls and checks (:class:`~classgrade.protocol.ReferenceCell`), replayed at once on the
instructor's notebook itself, so that a test the replay cannot confirm there is known before
any student's.
"""
import json
import os
import sys

import nbformat
from nbgrader.api import Gradebook

from classgrade.protocol import ENTRIES, RECORDS, ReferenceCell
from classgrade.sandboxed.fingerprints import CHECK_PREFIX

from . import audit, jail, replay
from .notebooks import is_autograded_test, test_cells

REPLAY_OUTPUT = "replay-output.txt"   # what the replays of one submission wrote to stderr (bounded when read)


def replay_notebook(job, paths, name, reference):
    """Replay the notebook ``name`` of one submission, as it was handed in (and sanitized), in a
    sandbox of its own; its :class:`~classgrade.trusted.replay.Replies`."""
    nb = json.loads((paths.dest / name).read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if not _source(c).startswith(CHECK_PREFIX)]
    release = job.release[name]
    tests = {c["metadata"]["nbgrader"]["grade_id"] for c in release["cells"] if is_autograded_test(_node(c))}
    plan = replay.plan(replay.notebook_cells(nb, release, tests), reference, skip=job.skip,
                       timeout=job.timeout, memory_bytes=job.memory_bytes)
    if not any(step.calls for step in plan.steps):
        return replay.Replies()
    with open(paths.work / REPLAY_OUTPUT, "ab") as stderr:
        return _run(job, paths, plan, stderr)


def _run(job, paths, plan, stderr):
    """The replay of ``plan``, in a new sandbox (started from this process when warm), or unsandboxed."""
    jail_dir = paths.work / "replay-jail"
    if not job.sandbox:
        return replay.run([sys.executable, "-m", ENTRIES["replay"]], plan, wall=job.wall, cwd=paths.dest,
                          stderr=stderr, env=dict(os.environ, NBGRADER_EXECUTION="autograde"))
    jail.write_jail(jail_dir, job.limits, zygote=job.zygote)
    try:
        if job.zygote:
            try:
                process = jail.WarmSandbox(jail_dir, paths.dest, stderr)
            except OSError as error:
                return replay.Replies(problem=f"its sandbox did not start ({error})")
            return replay.communicate(process, plan, wall=job.wall)
        argv = [sys.executable, *jail.LAUNCHER, "--jail", str(jail_dir), "--replay"]
        return replay.run(argv, plan, wall=job.wall, cwd=paths.dest, stderr=stderr)
    finally:
        jail.release(jail_dir)


def record_reference(job, paths, graded_dir):
    """The instructor's run: notebook -> grade id -> its :class:`ReferenceCell` as a dict, each
    replayed on the instructor's notebook (``why`` says why one cannot be confirmed)."""
    try:
        records = (paths.private / RECORDS).read_text(encoding="utf-8").splitlines()
    except OSError:
        records = []
    reference = {}
    for name in job.release:
        graded = nbformat.read(str(graded_dir / name), as_version=4)
        cells = replay.reference_cells(records, {gid: cell.source for gid, cell in test_cells(graded)})
        replies = replay_notebook(job, paths, name, cells)
        for ref in cells.values():
            ref.why = replay.unreplayable(ref) or replay.verdict(ref, replies) or ""
        reference[graded_dir.joinpath(name).stem] = {gid: ref.to_dict() for gid, ref in cells.items()}
    return reference


def apply_verdicts(nb_path, gradebook, assignment, student, reference, replies, flags):
    """Zero the tests that nbgrader passed but the replay or the source reading does not confirm.

    ``reference``: grade id -> :class:`ReferenceCell` (one with ``why`` keeps nbgrader's score);
    ``replies``: the replay of this notebook. Returns the grade ids whose points were removed.
    """
    nb = nbformat.read(str(nb_path), as_version=4)
    zeroed = []
    with Gradebook(gradebook) as gb:
        for gid, cell in test_cells(nb):
            ref = reference.get(gid)
            if ref is None or ref.why:
                continue
            grade = gb.find_grade(gid, nb_path.stem, assignment, student)
            if not grade.auto_score:
                continue
            why = _why(nb, ref, replies)
            if why is None:
                continue
            flag = f"test '{gid}' passed in the kernel, but {why}"
            flags.append(f"{nb_path.name}: {flag}: its {grade.auto_score:g} points removed")
            grade.auto_score = 0.0
            zeroed.append(gid)
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="NotConfirmed", evalue=f"{flag}; no points", traceback=[f"NotConfirmed: {flag}; no points"]))
        gb.db.commit()
    if zeroed:
        nbformat.write(nb, str(nb_path))
    return zeroed


def _why(nb, ref, replies):
    why = replay.verdict(ref, replies)
    if why is not None:
        return f"the replay of the notebook's own functions in a fresh sandbox does not confirm it ({why})"
    return _audit_verdict(nb, ref.watched)


def _audit_verdict(nb, watched):
    """Why the source does not confirm the watched calls of one test cell, or ``None``."""
    for watch in watched:
        function, substitute = watch.function, watch.substitute
        found = audit.delegations(nb, function, forbidden=watch.forbidden, substitute=substitute)
        if found:
            return (f"the grader finds in the source that {function} uses what this part forbids "
                    f"({'; '.join(found[:3])})")
        found = audit.escapes(nb, function, substitute=substitute)
        if found:
            return (f"the grader cannot confirm from the source how {function} computes its result, because "
                    f"the notebook reaches around the checks ({'; '.join(found[:3])}); grade this test by hand")
    return None


def reference_of(job, name):
    """grade id -> :class:`ReferenceCell` of the notebook ``name`` (``.ipynb`` or not) in ``job``."""
    cells = (job.reference or {}).get(name.removesuffix(".ipynb"), {})
    return {gid: ReferenceCell.from_dict(data) for gid, data in cells.items()}


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _node(cell):
    return nbformat.from_dict(cell)
