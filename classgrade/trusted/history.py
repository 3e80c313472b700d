"""The runs of an output folder, and the class report rebuilt from the gradebook after each.

Runs as the grader. Every run writes its own report into ``DIR/runs/<UTC timestamp>/``
(``report.html``, ``report.md``, ``score_distribution.png``, ``results.json``, and
``run.json``: the assignment, when, which students); the class report in ``DIR`` itself
(``report.html``, ``report.md``, ``score_distribution.png``, ``results.json``) is then rebuilt
from the gradebook (every student with a submission of the assignment, their grades as it holds
them) and each student's latest record in the runs (flags, reasons, feedback notes), so grading
one student again updates the class view and keeps the others.

Each graded hand-in is also kept in ``DIR/submitted/<student>/<assignment>/`` (nbgrader's
layout, copied with :func:`.jail.copy_checked`; what it left out is in
``DIR/submitted/<student>/<assignment>.left-out.json``), so ``--regrade-all`` needs no
download again (:func:`hand_ins`).
"""
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from classgrade.protocol import Result, Status

from . import gradebook, jail, report
from .errors import InstructorError
from .worker import LEFT_OUT

RUNS = "runs"
KEPT = "submitted"


def new_run_folder(out):
    """A new, empty ``out/runs/<UTC timestamp>/`` (its name sorts by time)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = Path(out) / RUNS / stamp
    folder.mkdir(parents=True)
    return folder


def write_run(result, assignment, folder, *, regrade_all=False):
    """The run's own report, ``results.json`` and ``run.json`` into its folder."""
    folder = Path(folder)
    result.write_json(folder / "results.json")
    (folder / "run.json").write_text(json.dumps(dict(
        assignment=assignment, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        students=sorted(result.results), regrade_all=regrade_all, sandbox=result.sandbox,
        unconfirmed=result.unconfirmed, wall_seconds=result.wall_seconds), indent=1))
    report.write_report(result, assignment, folder)


def runs_of(out, assignment):
    """``[(folder, run.json)]`` of ``assignment``'s runs in ``out``, oldest first."""
    found = []
    for meta in sorted(Path(out).glob(f"{RUNS}/*/run.json")):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if data.get("assignment") == assignment:
            found.append((meta.parent, data))
    return found


def _run_records(runs):
    """``(student, record as a dict)`` of every run's ``results.json``, oldest run first."""
    for folder, _ in runs:
        try:
            records = json.loads((folder / "results.json").read_text())
        except (OSError, ValueError):
            continue
        yield from records.items()


def latest_records(runs):
    """student -> their :class:`~classgrade.protocol.Result` in the latest run that graded them."""
    return {student: Result.from_dict(record) for student, record in _run_records(runs)}


def class_result(out, assignment, db_url, course_id=""):
    """The whole class (:class:`~.report.ClassResult`, scope ``"class"``): every student with a
    submission in the gradebook, graded as it holds them, with the flags of their latest record;
    and the students whose latest grading failed (not in the gradebook, or kept from before)."""
    out = Path(out)
    runs = runs_of(out, assignment)
    latest = latest_records(runs)
    results = {}
    for student, notebooks in gradebook.submissions(db_url, assignment, course_id).items():
        record = latest.get(student) or Result(student=student, status=Status.OK)
        record.notebooks = notebooks
        results[student] = record
    for student, record in latest.items():
        if student not in results:
            results[student] = record
    last = runs[-1][1] if runs else {}
    return report.ClassResult(out=out, db_url=db_url, results=dict(sorted(results.items())),
                              sandbox=last.get("sandbox", "bwrap"), unconfirmed=last.get("unconfirmed", []),
                              scope="class", runs=[str(folder.relative_to(out)) for folder, _ in runs])


def latest_collections(runs):
    """student -> their collection record (:mod:`.collect`) in the latest run that graded them."""
    return {student: record["collection"] for student, record in _run_records(runs)
            if record.get("collection") is not None}


def write_class(out, assignment, db_url, course_id=""):
    """Rebuild the class report and ``results.json`` in ``out`` (each student's record with the
    collection record of their latest run); the class's :class:`~.report.ClassResult`."""
    result = class_result(out, assignment, db_url, course_id)
    path = Path(out) / "results.json"
    result.write_json(path)
    records = json.loads(path.read_text())
    for student, collection in latest_collections(runs_of(out, assignment)).items():
        if student in records:
            records[student]["collection"] = collection
    path.write_text(json.dumps(records, indent=1, ensure_ascii=False))
    report.write_report(result, assignment, out)
    return result


def keep(out, assignment, student, folder):
    """Keep ``student``'s hand-in ``folder`` in ``out/submitted/<student>/<assignment>/`` (a run
    that grades from that very folder keeps it as it is)."""
    dest = Path(out) / KEPT / student / assignment
    left_out = dest.parent / f"{assignment}.left-out.json"
    if folder is None or not Path(folder).is_dir():
        return
    if Path(folder).resolve() == dest.resolve():
        return
    shutil.rmtree(dest, ignore_errors=True)
    left_out.unlink(missing_ok=True)
    skipped = jail.copy_checked(folder, dest)
    if skipped:
        left_out.write_text(json.dumps(skipped, indent=1))


def kept_flags(out, assignment, student):
    """The lines :func:`keep` could not copy of ``student``'s hand-in, as the worker's flags."""
    path = Path(out) / KEPT / student / f"{assignment}.left-out.json"
    try:
        return [LEFT_OUT + line for line in json.loads(path.read_text())]
    except (OSError, ValueError):
        return []


def hand_ins(out, assignment, students, collected):
    """For ``--regrade-all``: student -> the folder to grade, for every student of the gradebook
    (``students``) and of ``collected`` (the SUBMISSIONS given, which win); the kept copy in
    ``out/submitted/`` for the others. Refused (one line) if a student's hand-in is in neither."""
    folders = dict(collected)
    missing = []
    for student in students:
        if student in folders:
            continue
        kept = Path(out) / KEPT / student / assignment
        if kept.is_dir():
            folders[student] = kept
        else:
            missing.append(student)
    if missing:
        names = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InstructorError(
            f"--regrade-all: no hand-in of {names} (in the gradebook) in SUBMISSIONS or in "
            f"{Path(out) / KEPT}/<student>/{assignment}/: give a SUBMISSIONS folder that holds them")
    return dict(sorted(folders.items()))
