"""Grade one submission in a private nbgrader course (runs in a forked child).

Each submission gets its own folder: a copy of the template gradebook (the
assignment, generated once by the parent), the assignment's source, the
student's files after :func:`sanitize`, and a kernelspec that starts
:mod:`convlab.classgrade.sandbox`. nbgrader's own ``Autograde`` does the
grading (so grades are nbgrader's), then :func:`apply_integrity` removes the
points of tests that ran under a monkeypatch, :func:`apply_ledger` those whose
checks' values the grader does not confirm (:mod:`.ledger`) or whose function's
source it does not (:mod:`.audit`), and
``generate_feedback`` writes the feedback. Nothing here writes to the real gradebook: the parent merges.
"""
import json
import os
import shutil
import sys
import time
import uuid
import warnings
from pathlib import Path
from queue import Empty

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

from . import audit, jail, ledger, sandbox

# nbgrader's gradebook code warns about its own autoflush for every new submission
warnings.filterwarnings("ignore", message=r"Object of type <Submitted", module=r"nbgrader\.api")

CHECK_PREFIX = "# Added by convlab.classgrade"


# The kernel handshake and shutdown of jupyter_client wait on fixed timers: its
# wait_for_ready left ~0.23 s between the kernel being up and the first cell (measured with
# timestamps in both processes; this one, ~5 ms), and a killed kernel is polled every 0.1 s.
class KernelClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as IOPub has delivered the kernel_info request's
    own ``idle`` status (so IOPub is connected and that request's messages are drained; a
    later message of an earlier request is one nbclient ignores, by its parent id)."""

    def _context_default(self):
        context = super()._context_default()
        # the kernel binds its sockets some ms after this client connects to them, and libzmq
        # tries a refused connection again only after 100 ms: try every 5 ms
        context.setsockopt(zmq.RECONNECT_IVL, 5)
        return context

    async def wait_for_ready(self, timeout=None):
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            msg_id = self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                iopub_deadline = time.monotonic() + 0.2   # as jupyter_client: else start over
                while True:
                    try:
                        msg = await self.iopub_channel.get_msg(timeout=max(0.0, iopub_deadline - time.monotonic()))
                    except Empty:
                        break
                    if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                            and msg["content"].get("execution_state") == "idle":
                        self._handle_kernel_info_reply(reply)
                        return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class KernelManager(AsyncKernelManager):
    """jupyter_client's manager with :class:`KernelClient`, and a killed kernel's exit
    noticed within 5 ms instead of 100 ms."""

    # client() builds client_factory; client_class only names it (a changed client_class
    # sets client_factory, its default does not)
    client_class = DottedObjectName(f"{__name__}.KernelClient")
    client_factory = Type(KernelClient, klass=AsyncKernelClient)

    async def _async_wait(self, pollinterval=0.1):
        await super()._async_wait(pollinterval=0.005)


def _scratch_sqlite_connect(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()


def _one_engine_per_database():
    """nbgrader opens a new ``Gradebook``, and so a new SQLAlchemy engine, about ten times per
    submission (in its preprocessors, and in ours), and each engine compiled the same SQL
    again: in a grading child, which opens one database, engines are made once per URL.
    (``Gradebook.close`` disposes of the engine's connections; the engine stays usable.)"""
    import nbgrader.api
    if getattr(nbgrader.api.create_engine, "classgrade_shared", False):
        return
    create, engines = nbgrader.api.create_engine, {}

    def create_engine(url, **options):
        key = (str(url), tuple(sorted(options.items())))
        if key not in engines:
            engines[key] = create(url, **options)
        return engines[key]

    create_engine.classgrade_shared = True
    nbgrader.api.create_engine = create_engine


def _scratch_sqlite():
    """This process's sqlite connections skip fsync: a grading child opens only its private
    copy of the gradebook, deleted after the run (the parent writes the real one)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    if not event.contains(Engine, "connect", _scratch_sqlite_connect):
        event.listen(Engine, "connect", _scratch_sqlite_connect)


# what each grading child would otherwise import again: the kernel machinery (jupyter_client's
# kernelspec imports IPython), nbgrader's converters and preprocessors, nbconvert's exporters
WARM_IMPORTS = ["IPython", "jupyter_client.kernelspec", "nbclient", "nbconvert.exporters",
                "nbconvert.preprocessors", "nbgrader.apps", "nbgrader.converters", "nbgrader.preprocessors",
                "pygments.formatters.html", "pygments.lexers.python"]


_COMPILED_TEMPLATES = {}   # Jinja bytecode cache key -> (source checksum, code)


def _share_compiled_templates():
    """nbconvert compiles its Jinja templates again in every exporter, so every child
    compiled the feedback templates (~0.2 s): give every exporter's environment one
    in-memory bytecode cache, filled once in the grader before it forks. A template whose
    source changed has another checksum and is compiled again."""
    import jinja2
    from nbconvert.exporters.templateexporter import TemplateExporter
    if getattr(TemplateExporter._create_environment, "classgrade_cache", False):
        return

    class Cache(jinja2.BytecodeCache):
        @staticmethod
        def _key(bucket):
            env = bucket.environment
            return bucket.key, env.is_async, tuple(sorted(env.extensions))

        def load_bytecode(self, bucket):
            hit = _COMPILED_TEMPLATES.get(self._key(bucket))
            if hit is not None and hit[0] == bucket.checksum:
                bucket.code = hit[1]

        def dump_bytecode(self, bucket):
            _COMPILED_TEMPLATES[self._key(bucket)] = (bucket.checksum, bucket.code)

    cache, create = Cache(), TemplateExporter._create_environment

    def _create_environment(self):
        environment = create(self)
        environment.bytecode_cache = cache
        return environment

    _create_environment.classgrade_cache = True
    TemplateExporter._create_environment = _create_environment


def _feedback_exporter():
    """An HTML exporter configured as nbgrader's GenerateFeedback configures its own."""
    import nbgrader.converters
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import Config
    here = Path(nbgrader.converters.__file__).resolve().parent.parent / "server_extensions" / "formgrader"
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(here / "templates")]
    config.HTMLExporter.extra_template_paths = [str(here / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    return HTMLExporter(config=config)


def warm_up(notebooks=(), feedback=False):
    """Import :data:`WARM_IMPORTS`, in the grader before it forks the grading children; with
    ``feedback``, compile the feedback templates once by rendering ``notebooks``."""
    for name in WARM_IMPORTS:
        __import__(name)
    # nbgrader's ORM mappers are configured on first use (~0.25 s), sqlite's dialect loaded
    import nbgrader.api  # noqa: F401
    import sqlalchemy
    from sqlalchemy.orm import configure_mappers
    configure_mappers()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect():
        pass
    engine.dispose()
    # nbformat builds a schema validator on first use: strict, and relaxed (nbconvert's)
    notebooks = list(notebooks) or [nbformat.v4.new_notebook()]
    for nb in notebooks:
        for relax in (False, True):
            nbformat.validate(nbformat.from_dict(json.loads(json.dumps(nb))), relax_add_props=relax)
    if feedback:
        _share_compiled_templates()
        for nb in notebooks:
            nb = nbformat.from_dict(json.loads(json.dumps(nb)))
            for cell in nb.cells:   # as nbgrader's GetGrades leaves them
                if "nbgrader" in cell.get("metadata", {}):
                    cell.metadata.nbgrader.update(score=0.0, points=cell.metadata.nbgrader.get("points", 0.0),
                                                  comment="")
            try:
                _feedback_exporter().from_notebook_node(
                    nb, dict(nbgrader=dict(score=0.0, max_score=0.0, late_penalty=0.0, notebook="warm-up")))
            except Exception:  # noqa: BLE001 - the templates compiled so far are cached anyway
                pass


def grade_cells(nb):
    """grade_id -> cell for cells nbgrader tracks (grade, solution or locked)."""
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            cells.setdefault(meta["grade_id"], cell)
    return cells


def _is_autograded_test(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def sanitize(path, release_nb, baseline_path, flags):
    """Make the submitted notebook at ``path`` gradable; append reasons to ``flags``.

    A missing, empty or unreadable notebook is replaced by the released one
    (it scores what a blank notebook scores). Deleted grade/test cells are put
    back where the released notebook has them; edited test cells are noted
    (nbgrader's OverwriteCells restores their source from the gradebook);
    duplicate grade ids are noted (nbgrader's DeduplicateIds keeps the last).
    A check cell (see :mod:`convlab.classgrade.sandbox`) follows each test cell.
    """
    name = path.name
    nb = None
    if not path.exists():
        flags.append(f"{name} is missing from the submission: graded as the blank released notebook")
    else:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            if not text.strip():
                raise ValueError("the file is empty")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is handled alike
            reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            flags.append(f"{name} is not a valid notebook ({reason}): graded as the blank released notebook")
            nb = None
    if nb is None:
        nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))

    # duplicate grade ids
    seen = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if gid and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            seen[gid] = seen.get(gid, 0) + 1
    for gid, count in seen.items():
        if count > 1:
            flags.append(f"{name}: cell '{gid}' appears {count} times (copied cell): "
                         "the last copy is graded, the others run as ordinary cells")
    # keep the last copy, like nbgrader's DeduplicateIds, but remove the metadata of the
    # others entirely: DeduplicateIds leaves an empty `nbgrader` dict that fails autograde
    kept = set()
    for cell in reversed(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid and seen.get(gid, 0) > 1 and (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            if gid in kept:
                for key in ("nbgrader", "editable", "deletable"):
                    cell.metadata.pop(key, None)
            kept.add(gid)

    released = grade_cells(release_nb)
    present = grade_cells(nb)
    # restore deleted cells, in release order, after the cell that precedes them
    order = [c.metadata.nbgrader.grade_id for c in release_nb.cells
             if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") in released]
    for i, gid in enumerate(order):
        if gid in present:
            continue
        cell = nbformat.from_dict(json.loads(json.dumps(released[gid])))
        position = 0
        for prev in reversed(order[:i]):
            if prev in present:
                position = next(k for k, c in enumerate(nb.cells) if c is present[prev]) + 1
                break
        nb.cells.insert(position, cell)
        present[gid] = cell
        kind = "test cell" if _is_autograded_test(cell) else "graded cell"
        flags.append(f"{name}: {kind} '{gid}' was deleted: restored from the release")
    # edited locked cells (OverwriteCells restores them; we only report it)
    for gid, cell in present.items():
        meta = cell.metadata.nbgrader
        if meta.get("locked") and gid in released:
            if cell.source.strip() != released[gid].source.strip() or \
                    cell.cell_type != released[gid].cell_type:
                flags.append(f"{name}: locked cell '{gid}' was edited: restored from the gradebook")
    # check cells after every autograded test cell
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECK_PREFIX):
            continue  # a student cannot plant a fake check cell
        cells.append(cell)
        if _is_autograded_test(cell):
            cells.append(nbformat.v4.new_code_cell(sandbox.check_cell_source(baseline_path)))
    nb.cells = cells
    ids = set()
    for cell in nb.cells:  # nbformat 4.5 wants unique ids; copies may lack or repeat them
        if nb.get("nbformat_minor", 0) >= 5:
            if not cell.get("id") or cell["id"] in ids:
                cell["id"] = uuid.uuid4().hex[:12]
            ids.add(cell["id"])
        else:
            cell.pop("id", None)
    path.write_text(nbformat.writes(nb), encoding="utf-8")


def _output_text(cell):
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append("ERROR " + out.get("ename", ""))
    return "".join(parts)


def apply_integrity(nb_path, gradebook, assignment, student, flags):
    """Zero the tests that ran under a monkeypatch; drop the check cells that passed.

    Returns the grade ids whose points were removed.
    """
    nb = nbformat.read(str(nb_path), as_version=4)
    zeroed, cells, last_test = [], [], None
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECK_PREFIX):
            verdict = _output_text(cell).strip()
            if verdict == sandbox.CHECK_MARK + ": ok":
                continue
            if last_test is not None:
                gid = last_test.metadata.get("nbgrader", {}).get("grade_id")
                what = verdict.split(": modified ", 1)[-1] if ": modified " in verdict else \
                    "the integrity check did not report (" + (verdict[:80] or "no output") + ")"
                zeroed.append((gid, what))
                last_test.outputs.append(nbformat.v4.new_output(
                    "error", ename="IntegrityError",
                    evalue=f"this test ran with modified checking code ({what}); no points",
                    traceback=[f"IntegrityError: this test ran with modified checking code: {what}"]))
            cells.append(cell)
            continue
        if _is_autograded_test(cell):
            last_test = cell
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, str(nb_path))
    if zeroed:
        from nbgrader.api import Gradebook
        with Gradebook(gradebook) as gb:
            for gid, what in zeroed:
                grade = gb.find_grade(gid, nb_path.stem, assignment, student)
                lost = f": its {grade.auto_score:g} points removed" if grade.auto_score else ""
                flags.append(f"{nb_path.name}: test '{gid}' ran with modified checking code ({what}){lost}")
                grade.auto_score = 0.0
            gb.db.commit()
    return [gid for gid, _ in zeroed]


def _test_cells(nb):
    """``(grade id, cell)`` of the autograded test cells of ``nb``."""
    return [(cell.metadata.nbgrader.grade_id, cell) for cell in nb.cells if _is_autograded_test(cell)]


def apply_ledger(nb_path, gradebook, assignment, student, reference, records, flags):
    """Zero the tests whose checks the grader does not confirm: by the ledger (see :mod:`.ledger`),
    and for tests that watch *how* a function computes, by reading its source (:mod:`.audit`).

    ``reference``: grade id -> the reference's checks of that test cell (cells the
    reference did not pass are absent and keep nbgrader's score); ``records``: the
    kernel's checks by cell hash. Returns the grade ids whose points were removed.
    """
    from nbgrader.api import Gradebook
    nb = nbformat.read(str(nb_path), as_version=4)
    zeroed = []
    with Gradebook(gradebook) as gb:
        for gid, cell in _test_cells(nb):
            if gid not in reference:
                continue
            grade = gb.find_grade(gid, nb_path.stem, assignment, student)
            if not grade.auto_score:
                continue
            why = ledger.agree(reference[gid], records.get(sandbox.cell_hash(cell.source), []))
            if why is not None:
                flag = (f"test '{gid}' passed in the kernel, but the grader's own comparison with the "
                        f"solution's values does not confirm it ({why})")
            else:
                why = _audit_verdict(nb, [r["options"] for r in reference[gid] if r.get("kind") == "watched"])
                if why is None:
                    continue
                flag = f"test '{gid}' passed in the kernel, but {why}"
            flags.append(f"{nb_path.name}: {flag}: its {grade.auto_score:g} points removed")
            grade.auto_score = 0.0
            zeroed.append(gid)
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="NotConfirmed", evalue=f"{flag}; no points",
                traceback=[f"NotConfirmed: {flag}; no points"]))
        gb.db.commit()
    if zeroed:
        nbformat.write(nb, str(nb_path))
    return zeroed


def _audit_verdict(nb, watched):
    """Why the source does not confirm the watched checks of one test cell, or ``None``."""
    for options in watched:
        function, substitute = options["function"], options.get("substitute", ())
        found = audit.delegations(nb, function, forbidden=options.get("forbidden", ()), substitute=substitute)
        if found:
            return (f"the grader finds in the source that {function} uses what this part forbids "
                    f"({'; '.join(found[:3])})")
        found = audit.escapes(nb, function, substitute=substitute)
        if found:
            return (f"the grader cannot confirm from the source how {function} computes its result, because "
                    f"the notebook reaches around the checks ({'; '.join(found[:3])}); grade this test by hand")
    return None


def reference_checks(nb_path, records):
    """grade id -> reference checks, for each test cell of the graded source that earned all its points."""
    nb = nbformat.read(str(nb_path), as_version=4)
    passed = {}
    for gid, cell in _test_cells(nb):
        if not any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            passed[gid] = ledger.reference_of(records.get(sandbox.cell_hash(cell.source), []))
    return passed


def scan_outputs(nb_path, timeout, flags):
    """Report timeouts, memory errors and exits seen in the autograded notebook."""
    nb = nbformat.read(str(nb_path), as_version=4)
    for index, cell in enumerate(nb.cells):
        label = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
            text = ename + " " + evalue + " " + " ".join(out.get("traceback", []))
            if ename in ("CellTimeoutError", "KeyboardInterrupt") or "CellTimeoutError" in text:
                flags.append(f"{nb_path.name}: {label} exceeded the per-cell time limit "
                             f"({timeout} s) and was interrupted")
            elif ename in ("MemoryError", "OutOfMemoryError") or "can't allocate memory" in text \
                    or "not enough memory" in text:
                flags.append(f"{nb_path.name}: {label} exceeded the memory limit")
            elif ename == "SystemExit":
                flags.append(f"{nb_path.name}: {label} called sys.exit()")
            elif "convlab.classgrade did not run this cell" in text:
                flags.append(f"{nb_path.name}: {label} was not run: {evalue.split(': ', 1)[-1]}")
            # a refused write or process start is reported from the kernel log instead


def read_grades(gradebook, assignment, student):
    from nbgrader.api import Gradebook
    out = {}
    with Gradebook(gradebook) as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            cells = {}
            for grade in nb.grades:
                cells[grade.name] = dict(
                    max_score=grade.max_score, auto_score=grade.auto_score,
                    manual_score=grade.manual_score, score=grade.score,
                    needs_manual_grade=bool(grade.needs_manual_grade),
                    cell_type=grade.cell.cell_type)
            comments = {c.name: c.auto_comment for c in nb.comments if c.auto_comment}
            out[nb.name] = dict(cells=cells, comments=comments)
    return out


def kernel_log(private):
    """``(starts, refused)``: hashes of the cells the sandbox started, and what it refused."""
    path = Path(private) / "kernel.log"
    lines = path.read_text().splitlines() if path.exists() else []
    starts = [line.split()[1] for line in lines if line.startswith("start ")]
    refused = [line[len("refused "):] for line in lines if line.startswith("refused ")]
    return starts, refused


def prepare(job):
    """Lay out the private course of one submission; return its paths.

    ``private`` (the kernel's log and options) and ``runtime`` (its connection
    file and sockets) are bound into the sandbox; ``jail`` (the sandbox's
    limits and cgroup) is not.
    """
    work = Path(job["work"])
    if work.exists():
        shutil.rmtree(work)
    course, private, scratch = work / "course", work / "private", work / "scratch"
    runtime, jail_dir = work / "rt", work / "jail"
    for d in (course, private, runtime, scratch / "home", scratch / "tmp", scratch / "mpl", scratch / "ipython"):
        d.mkdir(parents=True)
    shutil.copy(job["template_db"], course / "gradebook.db")
    shutil.copytree(job["source_dir"], course / "source" / job["assignment"])
    dest = course / "submitted" / job["student"] / job["assignment"]
    dest.mkdir(parents=True)
    skipped = []
    if job.get("submission_dir") and Path(job["submission_dir"]).is_dir():
        skipped = jail.copy_checked(job["submission_dir"], dest)
    (private / "skip.txt").write_text("".join(f"{h} {r}\n" for h, r in job.get("skip", {}).items()))
    sandboxed = job.get("sandbox", True)
    (private / "sandbox.json").write_text(json.dumps(dict(
        memory_bytes=job.get("memory_bytes"), scratch=jail.SCRATCH if sandboxed else str(scratch),
        preimport=sandbox.PREIMPORT)))
    kernel = ["-m", "convlab.classgrade.sandbox", "--private", str(private), "-f", "{connection_file}"]
    if sandboxed:
        jail.write_jail(jail_dir, job.get("limits"), zygote=job.get("zygote"))
        jail.write_private(private)
        # run by path: ``-m`` would import convlab (and torch) just to start bwrap
        kernel = [jail.__file__, "--jail", str(jail_dir)] + kernel[2:]
    kernel_dir = work / "share" / "jupyter" / "kernels" / "classgrade"
    kernel_dir.mkdir(parents=True)
    # a signal to bwrap does not reach the kernel in its PID namespace: interrupt by message
    (kernel_dir / "kernel.json").write_text(json.dumps(dict(
        argv=[sys.executable] + kernel, interrupt_mode="message" if sandboxed else "signal",
        display_name="Python 3 (convlab.classgrade sandbox)", language="python")))
    return work, course, private, scratch, dest, skipped


def _feedback_preprocessor():
    from nbgrader.preprocessors import ClearHiddenTests

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

    return FeedbackWithoutHiddenTests


def grade_one(job):
    """Autograde one submission; return a JSON-able result (see module doc)."""
    t0 = time.monotonic()
    flags = list(job.get("flags", []))
    work, course, private, scratch, dest, skipped = prepare(job)
    flags += [f"left out of the submission: {line}" for line in skipped]
    env = dict(JUPYTER_PATH=str(work / "share" / "jupyter"), HOME=str(scratch / "home"),
               TMPDIR=str(scratch / "tmp"), MPLCONFIGDIR=str(scratch / "mpl"),
               IPYTHONDIR=str(scratch / "ipython"), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    os.environ.update(env)
    _scratch_sqlite()
    _one_engine_per_database()
    baseline = private / "baseline.json"
    for name, release_nb in job["release"].items():
        if job.get("blank"):
            nbformat.write(nbformat.from_dict(release_nb), str(dest / name))
        sanitize(dest / name, nbformat.from_dict(release_nb), baseline, flags)
    if job.get("blank"):
        flags.append("grading the submission failed repeatedly: graded as the blank released notebook")

    from traitlets.config import Config
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = Config(job.get("config", {}))
    db = f"sqlite:///{course / 'gradebook.db'}"
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.source_directory = "source"
    config.CourseDirectory.submitted_directory = "submitted"
    config.CourseDirectory.autograded_directory = "autograded"
    config.CourseDirectory.feedback_directory = "feedback"
    config.CourseDirectory.db_url = db
    config.Execute.timeout = job["timeout"]
    config.Execute.kernel_name = "classgrade"
    # the outputs are in once the last cell ran: kill the kernel (SIGKILL to its process
    # group) instead of a graceful shutdown, which waits ~1 s for the interpreter to tear
    # torch down and would also run any atexit hook a submission registered
    config.Execute.shutdown_kernel = "immediate"
    config.Execute.kernel_manager_class = KernelManager
    config.OverwriteCells.add_missing_cells = True
    # nbgrader's feedback shows the hidden tests' source (nbgrader #917): clear them first
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades
    config.GenerateFeedback.preprocessors = [GetGrades, _feedback_preprocessor(), CSSHTMLHeaderPreprocessor]
    # the sandbox has no network, not even the grader's loopback: Unix sockets in work/rt
    config.KernelManager.transport = "ipc"
    config.KernelManager.connection_file = str(work / "rt" / "kernel.json")
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    t1 = time.monotonic()
    try:
        result = api.autograde(job["assignment"], job["student"], force=True, create=True)
    finally:
        jail.release(work / "jail")
    t2 = time.monotonic()
    starts, refused = kernel_log(private)
    for what in dict.fromkeys(refused):
        flags.append(f"refused: {what}")
    flags[:] = list(dict.fromkeys(flags))
    out = dict(student=job["student"], flags=flags, starts=starts,
               timings=dict(prepare=t1 - t0, autograde=t2 - t1))
    if not result.get("success"):
        text = (result.get("error") or "") + (result.get("log") or "")
        dead = "DeadKernel" in text or "Kernel died" in text or "kernel died" in text
        out.update(status="dead_kernel" if dead else "error",
                   error=(result.get("error") or result.get("log") or "")[-2000:])
        return out
    graded_dir = course / "autograded" / job["student"] / job["assignment"]
    records = ledger.read(private / ledger.FILE)
    for name in job["release"]:
        nb_path = graded_dir / name
        if nb_path.exists():
            apply_integrity(nb_path, db, job["assignment"], job["student"], flags)
            if job.get("reference") is not None:
                apply_ledger(nb_path, db, job["assignment"], job["student"],
                             job["reference"].get(nb_path.stem, {}), records, flags)
            if job.get("record_reference"):   # by notebook, as the gradebook names them
                out.setdefault("reference", {})[nb_path.stem] = reference_checks(nb_path, records)
            scan_outputs(nb_path, job["timeout"], flags)
    t3 = time.monotonic()
    if job.get("feedback", True):
        fb = api.generate_feedback(job["assignment"], job["student"], force=True)
        if not fb.get("success"):
            flags.append("feedback could not be generated: " + (fb.get("error") or "")[-300:])
    t4 = time.monotonic()
    out["timings"].update(integrity=t3 - t2, feedback=t4 - t3)
    flags[:] = list(dict.fromkeys(flags))
    out.update(status="ok", notebooks=read_grades(db, job["assignment"], job["student"]),
               autograded=str(graded_dir),
               feedback=str(course / "feedback" / job["student"] / job["assignment"]))
    return out

