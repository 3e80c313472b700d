"""Grade a whole class: parallel, isolated autograde, merged into one gradebook.

:func:`grade_class` is what ``python -m convlab.classgrade`` runs:

1. generate the assignment once into a template sqlite gradebook (and into
   the real gradebook, sqlite or PostgreSQL, if it is not there yet);
2. collect the submissions (nbgrader's ``submitted/`` layout, or an LMS
   download run through ``nbgrader zip_collect``);
3. grade each one in a forked child with its own course folder and gradebook
   (:mod:`convlab.classgrade.worker`), ``workers`` at a time; a child that
   exceeds the wall-clock limit is killed with its kernel, and a submission
   whose kernel dies or hangs is graded again without the cell that did it;
4. merge each result into the real gradebook from this process only, so one
   writer ever touches it; copy autograded notebooks and feedback;
5. export ``grades.csv`` with nbgrader's CSV exporter and write the report.
"""
import functools
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

# nbformat and .worker (jupyter_client, nbgrader: ~1 s) are imported where used, so that
# the zygote's imports start first and run alongside
from . import jail

DEFAULT_REGEX = r".*/(?P<student_id>[^/_]+)_(?:LATE_)?(?:[0-9]+_)*(?P<file_id>[^/]+?)(?:-[0-9]+)?\.ipynb$"


@dataclass
class ClassResult:
    out: Path
    db_url: str
    results: dict = field(default_factory=dict)     # student -> worker result
    wall_seconds: float = 0.0
    sandbox: str = "bwrap"                          # or "none (--no-sandbox)"
    unconfirmed: list = field(default_factory=list)  # tests the ledger cannot confirm, and why

    @property
    def needs_attention(self):
        return {s: r["flags"] for s, r in sorted(self.results.items()) if r.get("flags")}


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
    if size < 0:
        raise ValueError(f"memory must be a number of bytes, optionally with K, M, G or T "
                         f"(e.g. 4G or 512M), or 0 for no limit; got {text!r}")
    return int(size * scale)


def load_course_config(course):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader
    path = Path(course) / "nbgrader_config.py"
    if not path.exists():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def _alembic_head_in_process():
    """nbgrader stamps a new gradebook with its alembic head revision, which
    ``nbgrader.api.get_alembic_version`` finds by running the ``alembic heads``
    command: a new interpreter, ~3 s CPU, paid for the template gradebook and
    again for a new real one. Read the same head from nbgrader's migration
    scripts in-process instead (once); fall back to nbgrader's own function."""
    import nbgrader.api
    original = getattr(nbgrader.api.get_alembic_version, "__wrapped__", nbgrader.api.get_alembic_version)

    @functools.lru_cache(maxsize=None)
    def get_alembic_version():
        try:
            from alembic.config import Config as AlembicConfig
            from alembic.script import ScriptDirectory
            from nbgrader.dbutil import ALEMBIC_DIR
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", ALEMBIC_DIR)
            heads = ScriptDirectory.from_config(cfg).get_heads()
        except Exception:  # noqa: BLE001 - nbgrader's way still works
            heads = []
        return heads[0] if len(heads) == 1 else original()

    get_alembic_version.__wrapped__ = original
    nbgrader.api.get_alembic_version = get_alembic_version


def _generate(course_config, source_dir, assignment, root, db_url, course_id=""):
    """nbgrader generate_assignment in a scratch course writing into ``db_url``."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    root = Path(root)
    shutil.copytree(source_dir, root / "source" / assignment, dirs_exist_ok=True)
    config = Config(course_config)
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.source_directory = "source"
    config.CourseDirectory.release_directory = "release"
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.course_id = course_id
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        log = (result.get("log") or "") + (result.get("error") or "")
        hint = ("\nThe gradebook holds submissions graded against other test cells; grade into a "
                "new gradebook (another --out, or --db-url)." if "Cannot add or remove cells" in log else "")
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{log}{hint}")
    return root / "release" / assignment


def collect(submissions, assignment, release_dir, tmp, regex=None):
    """student -> folder holding that student's files for ``assignment``.

    ``submissions`` is nbgrader's ``submitted/`` folder (``<student>/<assignment>/``),
    or an LMS download (a .zip, or a folder of files) given to
    ``nbgrader zip_collect`` with ``regex`` (``FileNameCollectorPlugin.named_regexp``).
    """
    submissions = Path(submissions)
    if submissions.is_dir() and not regex and any(
            (d / assignment).is_dir() for d in submissions.iterdir() if d.is_dir()):
        return {d.name: d / assignment for d in sorted(submissions.iterdir())
                if d.is_dir() and (d / assignment).is_dir()}
    root = Path(tmp) / "zip_collect"
    archive = root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True)
    if submissions.is_file():
        shutil.copy(submissions, archive / submissions.name)
    else:
        shutil.copytree(submissions, archive, dirs_exist_ok=True)
    shutil.copytree(release_dir, root / "release" / assignment)
    import subprocess
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
         f"--CourseDirectory.root={root}", "--CourseDirectory.release_directory=release",
         f"--FileNameCollectorPlugin.named_regexp={regex or DEFAULT_REGEX}"],
        cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("nbgrader zip_collect failed:\n" + proc.stderr[-3000:])
    out = root / "submitted"
    return {d.name: d / assignment for d in sorted(out.iterdir())} if out.is_dir() else {}


def _child(job, conn):
    from . import worker
    os.setsid()
    try:
        result = worker.grade_one(job)
    except BaseException as exc:  # noqa: BLE001 - reported, never raised into the batch
        import traceback
        result = dict(student=job["student"], status="error", flags=list(job.get("flags", [])),
                      error=traceback.format_exc()[-2000:])
    try:
        conn.send(json.dumps(result))
    finally:
        os._exit(0)


def _kill(proc, private):
    for pid in [proc.pid] + _kernel_pids(private):
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass
    proc.join(5)
    jail.release(Path(private).parent / "jail")


def _kernel_pids(private):
    """Pids of sandbox kernels started for this submission (they run in their own session)."""
    needle, pids = str(private).encode(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if (b"convlab.classgrade.sandbox" in cmdline or b"bwrap" in cmdline) and needle in cmdline:
                pids.append(int(entry.name))
    return pids


class _Runner:
    """Runs jobs in forked children, ``workers`` at a time, with retries."""

    def __init__(self, workers, wall, max_attempts=3, context="fork"):
        self.workers, self.wall, self.max_attempts = workers, wall, max_attempts
        # "forkserver" where this process has threads (a Dask worker): the children are forks
        # of a single-threaded server that imported nbgrader once
        self.ctx = multiprocessing.get_context(context)
        if context == "forkserver":
            self.ctx.set_forkserver_preload(["convlab.classgrade.run", "convlab.classgrade.warm"])

    def run(self, jobs, on_result):
        running = {}   # sentinel -> (proc, conn, job, start)
        try:
            self._loop(list(jobs), running, on_result)
        finally:  # an error in on_result must not leave graders running in a deleted folder
            for proc, _, job, _ in running.values():
                _kill(proc, Path(job["work"]) / "private")

    def _loop(self, pending, running, on_result):
        finished = []  # merged after the freed slots are refilled, so no worker waits
        while pending or running or finished:
            while pending and len(running) < self.workers:
                job = pending.pop(0)
                recv, send = self.ctx.Pipe(duplex=False)
                proc = self.ctx.Process(target=_child, args=(job, send), daemon=False)
                proc.start()
                send.close()
                running[proc.sentinel] = (proc, recv, job, time.monotonic())
            while finished:
                on_result(*finished.pop(0))
            if not running:
                continue
            ready = wait(list(running) + [r[1] for r in running.values()], timeout=1.0)
            now = time.monotonic()
            for key in list(running):
                proc, recv, job, start = running[key]
                result = None
                if recv in ready or key in ready:
                    try:
                        if recv.poll(0.5):
                            result = json.loads(recv.recv())
                    except (EOFError, OSError):
                        result = None
                    if result is None and proc.is_alive():
                        continue
                    if result is None:
                        result = dict(student=job["student"], status="error", flags=list(job.get("flags", [])),
                                      error=f"the grading process died (exit code {proc.exitcode})")
                elif now - start > self.wall:
                    _kill(proc, Path(job["work"]) / "private")
                    from .worker import kernel_log   # here only: a Dask worker's process does not import it
                    starts, _ = kernel_log(Path(job["work"]) / "private")
                    result = dict(student=job["student"], status="wall_timeout", starts=starts,
                                  flags=list(job.get("flags", [])))
                else:
                    continue
                proc.join(10)
                recv.close()
                if proc.is_alive():
                    _kill(proc, Path(job["work"]) / "private")
                del running[key]
                retry = self._retry(job, result)
                if retry is not None:
                    pending.insert(0, retry)
                else:
                    finished.append((job, result))

    def _retry(self, job, result):
        status = result.get("status")
        if status == "ok":
            return None
        attempt = job.get("attempt", 1)
        flags = list(job.get("flags", []))
        skip = dict(job.get("skip", {}))
        if status in ("dead_kernel", "wall_timeout") and result.get("starts"):
            culprit = result["starts"][-1]
            why = ("it stopped the kernel (exit, crash or memory) in an earlier grading attempt"
                   if status == "dead_kernel" else
                   f"grading exceeded the wall-clock limit ({self.wall:g} s) while it ran")
            cell = _describe_cell(job, culprit)
            flags.append(f"{cell}: {why}; graded again without running it")
            skip[culprit] = why
        elif status == "wall_timeout":
            flags.append(f"grading exceeded the wall-clock limit ({self.wall:g} s)")
        else:
            flags.append("grading failed: " + (result.get("error") or "unknown error").strip().splitlines()[-1][:200])
        if attempt >= self.max_attempts or job.get("blank"):
            if job.get("blank"):
                result["flags"] = flags
                return None
            return dict(job, attempt=attempt + 1, flags=flags, skip=skip, blank=True)
        return dict(job, attempt=attempt + 1, flags=flags, skip=skip)


def _describe_cell(job, digest):
    import nbformat
    from .sandbox import cell_hash
    sub = Path(job["work"]) / "course" / "submitted" / job["student"] / job["assignment"]
    for nb_path in sorted(sub.glob("*.ipynb")):
        try:
            nb = nbformat.read(str(nb_path), as_version=4)
        except Exception:  # noqa: BLE001
            continue
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell_hash(cell.source) == digest:
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                return f"{nb_path.name}: " + (f"cell '{gid}'" if gid else f"cell {i + 1}")
    return "a cell"


REFERENCE_STUDENT = "classgrade-reference-solution"


def _reference(dispatch, job):
    """The ledger's reference (notebook -> grade id -> checks) from grading the source ``job``.

    Test cells that the source does not pass keep nbgrader's scores; key ``None`` lists them,
    one line each, for the instructor.
    """
    done = []
    dispatch([dict(job, record_reference=True, feedback=False, flags=[])], lambda j, r: done.append(r))
    res = done[0] if done else {}
    if res.get("status") != "ok":
        why = (res.get("error") or res.get("status") or "no result").strip().splitlines()[-1][:200]
        return {None: [f"grading the assignment's source failed ({why}): every score is nbgrader's alone, "
                       "unconfirmed by the ledger"]}
    reference, unconfirmed = {}, []
    for name, nb in res.get("notebooks", {}).items():
        passed = res.get("reference", {}).get(name, {})
        for gid, cell in nb["cells"].items():
            if gid in passed and cell["auto_score"] == cell["max_score"]:
                reference.setdefault(name, {})[gid] = passed[gid]
            elif cell["cell_type"] == "code" and cell["max_score"] and not cell["needs_manual_grade"]:
                unconfirmed.append(f"{name}: the source fails its own test '{gid}': its scores are "
                                   "nbgrader's alone, unconfirmed by the ledger")
    reference[None] = unconfirmed
    return reference


def merge(gb, assignment, student, result):
    """Write one graded submission into the real gradebook ``gb`` (the only writer).

    One :class:`nbgrader.api.Gradebook` serves the whole run: a new one per submission
    cost ~0.1 CPU s (its engine, schema checks, and SQL compiled again without a cache).
    """
    gb.update_or_create_student(student)
    gb.update_or_create_submission(assignment, student)
    for nb_name, nb in result.get("notebooks", {}).items():
        for gid, cell in nb["cells"].items():
            grade = gb.find_grade(gid, nb_name, assignment, student)
            grade.auto_score = cell["auto_score"]
            grade.needs_manual_grade = cell["needs_manual_grade"]
        for cid, text in nb.get("comments", {}).items():
            comment = gb.find_comment(cid, nb_name, assignment, student)
            comment.auto_comment = text
        if result.get("flags"):
            gb.find_submission_notebook(nb_name, assignment, student).flagged = True
    gb.db.commit()


def export_csv(db_url, path, course_id=""):
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin
    plugin = CsvExportPlugin()
    plugin.to = str(path)
    with Gradebook(db_url, course_id) as gb:
        plugin.export(gb)


def grade_class(course, assignment, submissions, out, *, workers=None, timeout=30,
                memory="4G", wall=600, db_url=None, regex=None, feedback=True,
                progress=None, keep_work=False, sandbox=True, warm=True, scheduler=None):
    """Autograde every submission of ``assignment``; see the module docstring.

    Returns a :class:`ClassResult`; writes into ``out``: ``autograded/``,
    ``feedback/``, ``grades.csv``, ``report.html`` + ``score_distribution.png``,
    ``results.json``, and ``gradebook.db`` unless ``db_url`` is given.

    Each kernel runs in a bubblewrap sandbox (:mod:`convlab.classgrade.jail`);
    :class:`~convlab.classgrade.jail.SandboxUnavailable` is raised before any
    work when it cannot start. ``sandbox=False`` grades in the grader's own
    account, guarded only from inside the kernel, and the report says so.
    ``warm`` (sandboxed only): kernels are forks of one interpreter that imported
    torch once (:mod:`convlab.classgrade.zygote`), not new interpreters.
    ``scheduler``: the address of a Dask scheduler whose workers grade the
    submissions (:mod:`convlab.classgrade.cluster`); ``workers`` is then unused.
    """
    t_start = time.monotonic()
    # nbgrader runs `alembic` (and kernels run python) from PATH: put this interpreter's bin first
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    if not os.environ.get("PATH", "").startswith(bindir + os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    course, out = Path(course).resolve(), Path(out).resolve()
    config = load_course_config(course)
    source_name = config.CourseDirectory.get("source_directory", "source")
    source_dir = course / source_name / assignment
    if not source_dir.is_dir():
        raise FileNotFoundError(f"no source for assignment {assignment!r}: {source_dir} does not exist")
    db_url = db_url or f"sqlite:///{out / 'gradebook.db'}"
    workers = max(1, int(workers or os.cpu_count() or 1))
    # nbgrader leaves course_id empty and creates no course row for it; PostgreSQL enforces
    # the assignment -> course foreign key that sqlite ignores, so name a course there
    course_id = config.CourseDirectory.get("course_id", "") or (
        "" if db_url.startswith("sqlite") else "default_course")
    memory_bytes = parse_bytes(memory)
    zygote = cluster = None
    if scheduler:
        # checks the workers, and starts their zygotes, whose imports run while this process generates
        from .cluster import Cluster
        cluster = Cluster(scheduler, sandbox=sandbox, warm=warm, wall=wall)
    elif sandbox and warm:
        # its imports (~2 s) run while this process imports its own, checks the sandbox and generates
        from .zygote import Zygote
        zygote = Zygote(tempfile.mkdtemp(prefix="classgrade-zygote-"), wait=False)
    try:
        import nbformat
        from tqdm.auto import tqdm
        from . import report as report_mod, worker
        if sandbox and not scheduler:   # a cluster's workers check their own sandboxes
            jail.check()
        out.mkdir(parents=True, exist_ok=True)
        _alembic_head_in_process()
    except BaseException:
        _close(zygote, cluster)
        raise
    tmp = Path(tempfile.mkdtemp(prefix="classgrade-"))
    try:
        template_db = tmp / "template.db"
        release_dir = _generate(config, source_dir, assignment, tmp / "template", f"sqlite:///{template_db}")
        # always, as nbgrader does: a changed source updates the gradebook, or nbgrader refuses
        # ("Cannot add or remove cells ... because there are submissions") before anything is graded
        _generate(config, source_dir, assignment, tmp / "main", db_url, course_id)
        # plain dicts, not nbformat's nodes: a Dask worker would import nbformat (~1.5 s) to unpickle them
        release = {p.name: json.loads(json.dumps(nbformat.read(str(p), as_version=4)))
                   for p in sorted(release_dir.glob("*.ipynb"))}
        students = collect(submissions, assignment, release_dir, tmp, regex)
        plain = {k: v for k, v in config.items() if k not in ("CourseDirectory",)}
        common = dict(assignment=assignment, template_db=str(template_db), sandbox=sandbox,
                      zygote=zygote and zygote.path, source_dir=str(source_dir), release=release,
                      timeout=timeout, memory_bytes=memory_bytes, feedback=feedback,
                      config=json.loads(json.dumps(plain, default=str)))
        jobs = [dict(common, student=s, submission_dir=str(d), work=str(tmp / "work" / str(i)))
                for i, (s, d) in enumerate(students.items())]
        # imports (and feedback templates) every grading child needs, once before the forks
        worker.warm_up(release.values(), feedback=feedback and not scheduler)
        if zygote is not None:
            zygote.ready()
        result = ClassResult(out=out, db_url=db_url,
                             sandbox="bwrap" if sandbox else "none (--no-sandbox)")

        if cluster is not None:
            cluster.stage(template_db, source_dir)
            dispatch = cluster.run
        else:
            dispatch = _Runner(workers, wall).run

        if jobs:  # the ledger's reference: the instructor's source, graded first in the same way
            reference = _reference(dispatch, dict(common, student=REFERENCE_STUDENT, submission_dir=str(source_dir),
                                                  work=str(tmp / "work" / "reference")))
            result.unconfirmed = reference.pop(None)
            for line in result.unconfirmed:
                print(f"convlab.classgrade: {line}", file=sys.stderr)
            for job in jobs:
                job["reference"] = reference
        bar = tqdm(total=len(jobs), desc=f"grading {assignment}", unit="submission",
                   disable=progress is False)

        def on_result(job, res):
            student = job["student"]
            res.setdefault("flags", [])
            if res.get("status") == "ok":
                merge(gradebook, assignment, student, res)
                for kind in ("autograded", "feedback"):
                    src = Path(res[kind]) if res.get(kind) else None  # no feedback with --no-feedback
                    if src and src.is_dir():
                        dest = out / kind / student / assignment
                        shutil.rmtree(dest, ignore_errors=True)
                        # written by the submission: no links or special files out, sizes bounded
                        res["flags"] += [f"not copied to {kind}/: {line}"
                                         for line in jail.copy_checked(src, dest)]
            else:
                res["flags"].append("could not be graded: " + (res.get("error") or res["status"])
                                    .strip().splitlines()[-1][:200])
            if not keep_work:
                shutil.rmtree(job["work"], ignore_errors=True)
            result.results[student] = res
            failed = sum(r.get("status") != "ok" for r in result.results.values())
            bar.set_postfix_str(f"{failed} failed, {len(result.needs_attention)} need attention", refresh=False)
            bar.update(1)
            if res["flags"]:
                bar.write(f"{student}: needs attention ({len(res['flags'])} reason(s))")

        from nbgrader.api import Gradebook
        with Gradebook(db_url, course_id) as gradebook:
            dispatch(jobs, on_result)
        bar.close()
        export_csv(db_url, out / "grades.csv", course_id)
        result.wall_seconds = time.monotonic() - t_start
        (out / "results.json").write_text(json.dumps(
            {s: {k: v for k, v in r.items() if k not in ("starts",)} for s, r in result.results.items()},
            indent=1))
        report_mod.write_report(result, assignment, out)
        return result
    finally:
        _close(zygote, cluster)
        if not keep_work:
            shutil.rmtree(tmp, ignore_errors=True)


def _close(zygote, cluster):
    if zygote is not None:
        zygote.close()
        shutil.rmtree(os.path.dirname(zygote.path), ignore_errors=True)
    if cluster is not None:
        cluster.close()
