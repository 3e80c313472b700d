"""Grade a whole class: :func:`grade_class`, what ``python -m classgrade`` runs.

Runs as the grader. It checks the options, paths and course and locks the output folder
(:mod:`.preflight`: a mistake ends the run there, in one line), starts the warm kernels'
zygote (or connects to the Dask scheduler, whose workers start theirs), then imports and
runs the steps of :mod:`.pipeline`: see there for what a run does.
"""
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

from . import preflight
from .errors import BadValue
from .zygote_handle import Zygote


@dataclass
class Settings:
    """The options of one run (see :func:`grade_class`)."""
    course: str
    assignment: str
    submissions: str
    out: str
    workers: int
    timeout: int = 30
    memory_bytes: int | None = None
    wall: float = 600
    db_url: str | None = None
    regex: str | None = None
    feedback: bool = True
    progress: bool | None = None
    keep_work: bool = False
    sandbox: bool = True
    warm: bool = True
    scheduler: str | None = None
    regrade_all: bool = False


class Kernels:
    """What starts the kernels of a run: a zygote on this machine, or a Dask cluster's workers."""

    def __init__(self, zygote=None, cluster=None):
        self.zygote, self.cluster = zygote, cluster

    def close(self):
        if self.zygote is not None:
            self.zygote.close()
            shutil.rmtree(os.path.dirname(self.zygote.path), ignore_errors=True)
        if self.cluster is not None:
            self.cluster.close()


def parse_bytes(text):
    """'4G' -> 4 * 2**30; plain integers are bytes; None/'0' -> None (no limit)."""
    if text in (None, "", "0", 0):
        return None
    digits = str(text).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    scale = units.get(digits[-1:], 1)
    try:
        size = float(digits[:-1] if scale > 1 else digits)
    except ValueError:
        size = -1
    if not 0 <= size < float("inf"):   # also NaN
        raise BadValue(f"memory must be a number of bytes, optionally with K, M, G or T "
                       f"(e.g. 4G or 512M), or 0 for no limit; got {text!r}")
    return int(size * scale)


def _interpreter_first_on_path():
    """nbgrader runs `alembic` (and kernels run python) from PATH: this interpreter's bin first."""
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    if not os.environ.get("PATH", "").startswith(bindir + os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def start_kernels(settings):
    """Start the zygote (or connect to the cluster, whose workers start theirs) without
    waiting: its imports (~2 s) run while this process imports its own and generates."""
    if settings.scheduler:
        # Imported here only: distributed (~0.5 s) is for the Dask path (see grade_class)
        from .cluster import Cluster
        return Kernels(cluster=Cluster(settings.scheduler, sandbox=settings.sandbox, warm=settings.warm,
                                       wall=settings.wall))
    if settings.sandbox and settings.warm:
        return Kernels(zygote=Zygote(tempfile.mkdtemp(prefix="classgrade-zygote-"), wait=False))
    return Kernels()


def grade_class(course, assignment, submissions, out, *, workers=None, timeout=30,
                memory="4G", wall=600, db_url=None, regex=None, feedback=True,
                progress=None, keep_work=False, sandbox=True, warm=True, scheduler=None, regrade_all=False):
    """Autograde every submission of ``assignment`` (see :mod:`.pipeline`).

    Returns the run's :class:`~classgrade.trusted.report.ClassResult` (its ``whole_class``: the
    class as the gradebook holds it); writes into ``out``: ``autograded/``, ``feedback/``,
    ``submitted/`` (a copy of each hand-in), ``grades.csv``, ``runs/<UTC timestamp>/`` (the run's
    report), the class report (``report.html``, ``report.md``, ``score_distribution.png``,
    ``results.json``) rebuilt from the gradebook, and ``gradebook.db`` unless ``db_url`` is given.

    A source changed since the gradebook's submissions were graded is refused
    (:class:`~classgrade.trusted.errors.InstructorError`) unless ``regrade_all``, which grades
    every student of the gradebook (their hand-ins from ``submissions``, else ``out/submitted/``).

    Each kernel runs in a bubblewrap sandbox (:mod:`classgrade.trusted.jail`);
    :class:`~classgrade.trusted.jail.SandboxUnavailable` is raised before any
    work when it cannot start. ``sandbox=False`` grades in the grader's own
    account, guarded only from inside the kernel, and the report says so.
    ``warm`` (sandboxed only): kernels are forks of one interpreter that imported
    torch once (:mod:`classgrade.trusted.zygote`), not new interpreters.
    ``scheduler``: the address of a Dask scheduler whose workers grade the
    submissions (:mod:`classgrade.trusted.cluster`); ``workers`` is then unused.

    A mistake of the caller's (a path, the assignment's name, an option's value, the database,
    the scheduler, an output folder or gradebook another run holds) raises
    :class:`~classgrade.trusted.errors.InstructorError` before anything is graded
    (:mod:`.preflight`, :mod:`.database`).
    """
    started = time.monotonic()
    settings = Settings(course=course, assignment=assignment, submissions=submissions, out=out,
                        workers=(os.cpu_count() or 1) if workers is None else workers, timeout=timeout,
                        memory_bytes=parse_bytes(memory), wall=wall, db_url=db_url, regex=regex,
                        feedback=feedback, progress=progress, keep_work=keep_work, sandbox=sandbox,
                        warm=warm, scheduler=scheduler, regrade_all=regrade_all)
    lock = preflight.check(settings)   # one line and no grading if anything is wrong; the output folder's lock
    try:
        _interpreter_first_on_path()
        kernels = start_kernels(settings)
        try:
            # The one place where start-up order sets where classgrade imports (tests/test_layout.py
            # allows it): the pipeline's modules (nbformat, nbgrader, jupyter_client, matplotlib:
            # ~1 s of CPU) are imported after the zygote has started, so that its imports (torch,
            # ipykernel: ~2 s) run alongside ours on another core instead of after them.
            from . import pipeline
            return pipeline.grade(settings, kernels, started)
        finally:
            kernels.close()
    finally:
        lock.close()
