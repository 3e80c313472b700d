"""Grade one submission in a private nbgrader course (runs in a grading process, as the grader).

Each submission gets its own folder (:func:`prepare`): a copy of the template gradebook (the
assignment, generated once by the parent), the assignment's source, the student's files
after :func:`classgrade.trusted.notebooks.sanitize`, the kernel's options, and a kernelspec
that starts the sandbox's launcher (:mod:`.jail`) around :mod:`classgrade.sandboxed.kernel`.
nbgrader's own ``Autograde`` does the grading (so grades are nbgrader's; the outputs it
holds are bounded, :mod:`.bounded`), then :func:`classgrade.trusted.notebooks.apply_integrity`
removes the points of tests that ran under a monkeypatch, :mod:`.verdict` those that a replay
of the submission's own functions does not confirm or whose function's source does not
(:mod:`.audit`), the late penalty is computed again on the final scores (:mod:`.late`), and
``generate_feedback`` writes the feedback. What the sandbox
wrote to its stdout and stderr is in the result, bounded (:func:`kernel_output`). Nothing
here writes to the real gradebook: the parent merges. :func:`grade_one` takes a
:class:`~classgrade.protocol.Job` and returns a :class:`~classgrade.protocol.Result`.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nbformat
import nbgrader.api
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import parse_utc
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import scoped_session, sessionmaker
from traitlets.config import Config

from classgrade.protocol import (BASELINE, KERNEL_LOG, KERNEL_OPTIONS, KERNEL_OUTPUT, KERNEL_OUTPUT_KEPT, KERNEL_PREIMPORT,
                                 CellGrade, KernelOptions, NotebookGrades, Result, Status, read_kernel_log)

from . import feedback, jail, late, verdict
from .bounded import autograde_preprocessors
from .kernels import KernelManager
from .notebooks import apply_integrity, sanitize, scan_outputs

# nbgrader's gradebook code warns about its own autoflush for every new submission
warnings.filterwarnings("ignore", message=r"Object of type <Submitted", module=r"nbgrader\.api")


def _scratch_sqlite_connect(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()


_COMPILED = {}   # "engine": the sqlite engine whose dialect and compiled statements every later one shares
NBGRADER_ENGINE = {"echo": False, "future": True}   # the options of nbgrader's engines
WARM_UP_STUDENT = "classgrade-warm-up"


def _one_engine_per_database():
    """nbgrader opens a new ``Gradebook``, and so a new SQLAlchemy engine, about ten times per
    submission (in its preprocessors, and in ours), and each engine compiled the same SQL
    again: in a grading child, which opens one database, engines are made once per URL, and
    they compile only what the grader has not compiled before it forked (:func:`_share_compiled`).
    (``Gradebook.close`` disposes of the engine's connections; the engine stays usable.)"""
    if getattr(nbgrader.api.create_engine, "classgrade_shared", False):
        return
    create, engines = nbgrader.api.create_engine, {}

    def create_engine(url, **options):
        key = (str(url), tuple(sorted(options.items())))
        if key not in engines:
            engines[key] = _share_compiled(create(url, **options), options)
        return engines[key]

    create_engine.classgrade_shared = True
    nbgrader.api.create_engine = create_engine


def _share_compiled(engine, options):
    """``engine``, given the dialect and the statement cache of the first sqlite engine made
    with nbgrader's options (SQLAlchemy caches a compiled statement per dialect object, so
    each engine compiled every statement again: ~0.1 CPU s a submission). Safe because they
    differ only in the file they open: same driver, same options, no options in the URL."""
    if engine.dialect.name != "sqlite" or engine.url.query or options != NBGRADER_ENGINE:
        return engine
    shared = _COMPILED.setdefault("engine", engine)
    engine.dialect, engine._compiled_cache = shared.dialect, shared._compiled_cache
    return engine


def warm_gradebook(template_db, assignment, notebooks):
    """Compile, in the grader before it forks, the statements that a grading child runs on its
    private gradebook: one submission's steps (nbgrader's autograde, our reading of the grades
    and the late penalty), on a scratch copy of the template gradebook, through the engine
    whose dialect and cache every child's engine then takes (:func:`_share_compiled`).
    Nothing else of this process changes: its own engines are made as before."""
    original = nbgrader.api.create_engine
    with tempfile.TemporaryDirectory(prefix="classgrade-warm-") as tmp:
        url = f"sqlite:///{shutil.copy(template_db, tmp)}"
        _one_engine_per_database()
        try:
            _one_submission(url, assignment, [name.removesuffix(".ipynb") for name in notebooks])
            read_grades(url, assignment, WARM_UP_STUDENT)
        except Exception:  # noqa: BLE001 - a saving only: the children compile what was not compiled
            pass
        finally:
            nbgrader.api.create_engine = original
            if "engine" in _COMPILED:
                _COMPILED["engine"].dispose()


def _one_submission(url, assignment, notebooks):
    """What nbgrader's autograde asks of the gradebook for one submission (see :func:`warm_gradebook`)."""
    with Gradebook(url) as gb:
        gb.update_or_create_student(WARM_UP_STUDENT)
        gb.find_assignment(assignment)
        gb.update_or_create_submission(assignment, WARM_UP_STUDENT)
        for name in notebooks:
            notebook = gb.find_notebook(name, assignment)
            for cell in notebook.source_cells:
                gb.find_source_cell(cell.name, name, assignment)
            for cell in notebook.grade_cells:
                gb.find_graded_cell(cell.name, name, assignment)
                gb.find_grade(cell.name, name, assignment, WARM_UP_STUDENT).auto_score = 0.0
            for cell in notebook.solution_cells:
                gb.find_comment(cell.name, name, assignment, WARM_UP_STUDENT)
            gb.db.commit()
            gb.find_submission_notebook(name, assignment, WARM_UP_STUDENT)
        late.assign_penalties(gb, assignment, WARM_UP_STUDENT, late.penalty_plugin({}))


def _gradebook_checked_once():
    """nbgrader's ``Gradebook``, at every open (about 12 a submission), lists the database's
    tables, creates the missing ones and looks the course up: about 20 queries. A grading child
    opens only its private gradebook, whose tables and course it does not remove, so only the
    first open of each URL and course does that; the others only connect, as nbgrader does."""
    if getattr(Gradebook.__init__, "classgrade_once", False):
        return
    init, checked = Gradebook.__init__, set()

    def __init__(self, db_url, course_id="default_course", authenticator=None):
        if (db_url, course_id) not in checked:
            init(self, db_url, course_id, authenticator)
            checked.add((db_url, course_id))
            return
        self.engine = nbgrader.api.create_engine(db_url, echo=False, future=True)
        self.db = scoped_session(sessionmaker(autoflush=True, bind=self.engine, future=True))
        self.course_id, self.authenticator = course_id, authenticator

    __init__.classgrade_once = True
    Gradebook.__init__ = __init__


def _scratch_sqlite():
    """This process's sqlite connections skip fsync: a grading child opens only its private
    copy of the gradebook, deleted after the run (the parent writes the real one)."""
    if not event.contains(Engine, "connect", _scratch_sqlite_connect):
        event.listen(Engine, "connect", _scratch_sqlite_connect)


class FeedbackWithoutHiddenTests(ClearHiddenTests):
    """Remove the hidden tests from the feedback: their source, and the traceback of a
    test cell that had them (IPython prints the failing lines); the error's last line,
    the message written for the student, stays."""

    enforce_metadata = False

    def preprocess_cell(self, cell, resources, index):
        removed = cell.cell_type == "code" and self._remove_hidden_test_region(cell)
        if removed:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources


def read_grades(gradebook, assignment, student):
    """notebook name -> :class:`~classgrade.protocol.NotebookGrades` of one graded submission."""
    out = {}
    with Gradebook(gradebook) as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            cells = {grade.name: CellGrade(
                max_score=grade.max_score, auto_score=grade.auto_score, manual_score=grade.manual_score,
                score=grade.score, needs_manual_grade=bool(grade.needs_manual_grade),
                cell_type=grade.cell.cell_type) for grade in nb.grades}
            comments = {c.name: c.auto_comment for c in nb.comments if c.auto_comment}
            out[nb.name] = NotebookGrades(cells=cells, comments=comments, late_penalty=nb.late_submission_penalty)
    return out


def kernel_output(path, kept=KERNEL_OUTPUT_KEPT):
    """The last ``kept`` bytes of what the sandbox wrote to its stdout and stderr, as text."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - kept))
            tail = f.read(kept)
    except OSError:
        return ""
    cut = f"[classgrade: the first {size - kept} bytes left out]\n" if size > kept else ""
    return cut + tail.decode(errors="replace")


class Paths:
    """The folders of one submission's private course (under ``job.work``).

    ``private`` (the kernel's log and options) and ``runtime`` (its connection file and
    sockets) are bound into the sandbox; ``jail`` (the sandbox's limits and cgroup) is not.
    """

    def __init__(self, job):
        self.work = Path(job.work)
        self.course, self.private, self.scratch = self.work / "course", self.work / "private", self.work / "scratch"
        self.runtime, self.jail = self.work / "rt", self.work / "jail"
        self.dest = self.course / "submitted" / job.student / job.assignment
        self.kernelspec = self.work / "share" / "jupyter" / "kernels" / "classgrade"
        self.output = self.work / KERNEL_OUTPUT
        self.db = f"sqlite:///{self.course / 'gradebook.db'}"


def prepare(job):
    """Lay out the private course of one submission; ``(paths, lines left out of it)``."""
    paths = Paths(job)
    if paths.work.exists():
        shutil.rmtree(paths.work)
    for d in (paths.course, paths.private, paths.runtime, paths.dest, *(
            paths.scratch / name for name in ("home", "tmp", "mpl", "ipython"))):
        d.mkdir(parents=True)
    shutil.copy(job.template_db, paths.course / "gradebook.db")
    shutil.copytree(job.source_dir, paths.course / "source" / job.assignment)
    skipped = []
    if job.submission_dir and Path(job.submission_dir).is_dir():
        skipped = jail.copy_checked(job.submission_dir, paths.dest)
    _write_kernel(job, paths)
    return paths, skipped


def _write_kernel(job, paths):
    """The kernel's options, and the kernelspec that starts it (in the sandbox, or not)."""
    options = KernelOptions(memory_bytes=job.memory_bytes, skip=dict(job.skip), preimport=KERNEL_PREIMPORT,
                            record=job.record_reference,
                            scratch=jail.SCRATCH if job.sandbox else str(paths.scratch))
    (paths.private / KERNEL_OPTIONS).write_text(options.to_json())
    kernel = ["-m", jail.KERNEL_MODULE, "--private", str(paths.private), "-f", "{connection_file}"]
    if job.sandbox:
        jail.write_jail(paths.jail, job.limits, zygote=job.zygote)
        jail.write_private(paths.private)
        # -P: the launcher runs as the grader, in the student's folder, which must not be on its sys.path
        kernel = [*jail.LAUNCHER, "--jail", str(paths.jail)] + kernel[2:]
    paths.kernelspec.mkdir(parents=True)
    # a signal to bwrap does not reach the kernel in its PID namespace: interrupt by message
    (paths.kernelspec / "kernel.json").write_text(json.dumps(dict(
        argv=[sys.executable] + kernel, interrupt_mode="message" if job.sandbox else "signal",
        display_name="Python 3 (classgrade sandbox)", language="python")))


def _environment(paths):
    """This grading process's environment (the kernel's, unsandboxed) and sqlite settings."""
    scratch = paths.scratch
    os.environ.update(JUPYTER_PATH=str(paths.work / "share" / "jupyter"), HOME=str(scratch / "home"),
                      TMPDIR=str(scratch / "tmp"), MPLCONFIGDIR=str(scratch / "mpl"),
                      IPYTHONDIR=str(scratch / "ipython"), MPLBACKEND="Agg",
                      OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    _scratch_sqlite()
    _one_engine_per_database()
    _gradebook_checked_once()


LEFT_OUT = "left out of the submission: "   # the flags of what the copy of the hand-in left out


def _left_out(flags):
    """file name -> why the copy of the hand-in left it out, from the ``LEFT_OUT`` flags."""
    out = {}
    for flag in flags:
        if flag.startswith(LEFT_OUT):
            what, _, why = flag[len(LEFT_OUT):].partition(": ")
            out.setdefault(what, why.removesuffix(", not copied"))
    return out


def _sanitize_all(job, paths, flags):
    """Make each notebook gradable; ``[sentences to the student]``: why a notebook was not graded
    as handed in, and what was graded instead (said atop the feedback)."""
    baseline, told = paths.private / BASELINE, []
    left_out = _left_out(flags)
    for name, release_nb in job.release.items():
        if job.blank:
            nbformat.write(nbformat.from_dict(release_nb), str(paths.dest / name))
        sanitize(paths.dest / name, nbformat.from_dict(release_nb), baseline, flags, [] if job.blank else told,
                 left_out)
    if job.blank:
        flags.append("grading the submission failed repeatedly: graded as the blank released notebook")
        told.append("Grading your notebooks stopped or hung the grader on every attempt: the blank released "
                    "notebooks were graded in their place, so they score what unanswered notebooks score. "
                    "Your instructor has been told.")
    return told


def _nbgrader(job, paths, told=()):
    """nbgrader's API on the private course, configured for the sandbox; ``told``: the
    sentences to the student atop the feedback, after the job's notices."""
    config = Config(job.config)
    config.CourseDirectory.root = str(paths.course)
    config.CourseDirectory.source_directory = "source"
    config.CourseDirectory.submitted_directory = "submitted"
    config.CourseDirectory.autograded_directory = "autograded"
    config.CourseDirectory.feedback_directory = "feedback"
    config.CourseDirectory.db_url = paths.db
    config.Execute.timeout = job.timeout
    # nbconvert checks the notebook against nbformat's schema once, after the last preprocessor,
    # instead of after each of the dozen (~2 % of a grading process's CPU)
    config.Exporter.optimistic_validation = True
    config.Execute.kernel_name = "classgrade"
    # the outputs are in once the last cell ran: kill the kernel (SIGKILL to its process
    # group) instead of a graceful shutdown, which waits ~1 s for the interpreter to tear
    # torch down and would also run any atexit hook a submission registered
    config.Execute.shutdown_kernel = "immediate"
    config.Execute.kernel_manager_class = KernelManager
    config.KernelManager.output_file = str(paths.output)
    config.Autograde.autograde_preprocessors = autograde_preprocessors()
    config.OverwriteCells.add_missing_cells = True
    # nbgrader's feedback shows the hidden tests' source (nbgrader #917): clear them first; then
    # the notes to the student and "not graded yet" (our template), the instructor's paths out
    config.GenerateFeedback.preprocessors = [feedback.FeedbackGrades, FeedbackWithoutHiddenTests,
                                             feedback.ScrubPaths, CSSHTMLHeaderPreprocessor]
    config.FeedbackGrades.notes = list(job.notices) + list(told)
    config.ScrubPaths.paths = _private_paths(job, paths)
    feedback.configure(config)
    # the sandbox has no network, not even the grader's loopback: Unix sockets in work/rt
    config.KernelManager.transport = "ipc"
    config.KernelManager.connection_file = str(paths.runtime / "kernel.json")
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _autograde(job, paths, api, flags):
    """nbgrader's autograde; ``(its result, the kernel log)``, refusals added to ``flags``."""
    try:
        result = api.autograde(job.assignment, job.student, force=True, create=True)
    finally:
        jail.release(paths.jail)
    log = read_kernel_log(paths.private / KERNEL_LOG)
    for what in dict.fromkeys(log.refused):
        flags.append(f"refused: {what}")
    return result, log


def _failure(result):
    """``(status, error)`` of an autograde that did not succeed."""
    text = (result.get("error") or "") + (result.get("log") or "")
    dead = "DeadKernel" in text or "Kernel died" in text or "kernel died" in text
    return (Status.DEAD_KERNEL if dead else Status.ERROR), (result.get("error") or result.get("log") or "")[-2000:]


def _confirm(job, paths, out):
    """The verdicts outside the kernel (:mod:`.verdict`): integrity, the replay, the source, and
    the outputs' flags; for the instructor's source, the reference instead."""
    graded_dir = paths.course / "autograded" / job.student / job.assignment
    if job.record_reference:
        out.reference = verdict.record_reference(job, paths, graded_dir)
    for name in job.release:
        nb_path = graded_dir / name
        if not nb_path.exists():
            continue
        apply_integrity(nb_path, paths.db, job.assignment, job.student, out.flags)
        if job.reference is not None:
            reference = verdict.reference_of(job, name)
            replies = verdict.replay_notebook(job, paths, name, reference)
            verdict.apply_verdicts(nb_path, paths.db, job.assignment, job.student, reference, replies, out.flags)
        scan_outputs(nb_path, job.timeout, out.flags)
        if not job.record_reference:   # what feeds the feedback shows no path of the instructor's
            feedback.scrub_notebook(nb_path, feedback.Scrubber(_private_paths(job, paths)))
    out.autograded = str(graded_dir)


def _check_timestamp(paths, flags):
    """A ``timestamp.txt`` nbgrader cannot read would fail the whole autograde: grade the
    submission as on time instead, and say so."""
    path = paths.dest / "timestamp.txt"
    if path.is_file():
        text = path.read_text(errors="replace").strip()[:100]
        try:
            if text:
                parse_utc(text)
        except (ValueError, OverflowError):
            path.unlink()
            flags.append(f"timestamp.txt is not a date ({text!r}): graded as handed in on time")


def _late(job, paths, out):
    """nbgrader's late penalty again, on the scores after the verdicts (nbgrader's own ran before
    them), so that the feedback and the gradebook show the same; the hand-in's time in ``out``."""
    penalties = late.penalty_plugin(job.config)
    with Gradebook(paths.db) as gb:
        late.assign_penalties(gb, job.assignment, job.student, penalties)
        submission = gb.find_submission(job.assignment, job.student)
        out.timestamp = submission.timestamp.isoformat() if submission.timestamp else None
        out.seconds_late = submission.total_seconds_late
def _private_paths(job, paths):
    """``[(folder, replacement)]``: the grader's folders of this submission and the course's,
    which no feedback shows (besides those :mod:`.feedback` always takes out)."""
    graded = paths.course / "autograded" / job.student / job.assignment   # where nbgrader runs the notebook
    pairs = [(paths.dest, ""), (graded, ""), (paths.work, "[grader]"), (Path(job.work).parent, "[grader]")]
    if job.source_dir:
        source = Path(job.source_dir).resolve()
        pairs += [(source, "[source]"), (source.parent.parent, "[course]")]
    return [(str(p), r) for p, r in pairs]


def _feedback(job, paths, api, out):
    folder = paths.course / "feedback" / job.student / job.assignment
    if job.feedback:
        fb = api.generate_feedback(job.assignment, job.student, force=True)
        if not fb.get("success"):
            out.flags.append("feedback could not be generated: " + (fb.get("error") or "")[-300:])
        scrub = feedback.Scrubber(_private_paths(job, paths))
        for page in folder.glob("*.html"):
            feedback.scrub_file(page, scrub)
    out.feedback = str(folder)


def grade_one(job):
    """Autograde one submission (a :class:`~classgrade.protocol.Job`); its
    :class:`~classgrade.protocol.Result` (see the module's docstring)."""
    t0 = time.monotonic()
    flags = list(job.flags)
    paths, skipped = prepare(job)
    flags += [LEFT_OUT + line for line in skipped]
    _environment(paths)
    told = _sanitize_all(job, paths, flags)
    _check_timestamp(paths, flags)
    api = _nbgrader(job, paths, told)
    t1 = time.monotonic()
    result, log = _autograde(job, paths, api, flags)
    t2 = time.monotonic()
    out = Result(student=job.student, status=Status.OK, flags=flags, starts=log.starts, explained=told,
                 timings=dict(prepare=t1 - t0, autograde=t2 - t1), kernel_output=kernel_output(paths.output))
    if not result.get("success"):
        out.status, out.error = _failure(result)
    else:
        _confirm(job, paths, out)
        _late(job, paths, out)
        t3 = time.monotonic()
        _feedback(job, paths, api, out)
        out.timings.update(verdicts=t3 - t2, feedback=time.monotonic() - t3)   # verdicts: the replay in it
        out.notebooks = read_grades(paths.db, job.assignment, job.student)
    out.flags = list(dict.fromkeys(out.flags))
    return out
