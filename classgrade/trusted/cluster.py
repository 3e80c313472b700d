"""Grading on a Dask cluster: ``python -m classgrade ... --scheduler ADDRESS``.

Each submission is one task on the cluster's workers (Dask distributed). The
parent, :func:`classgrade.trusted.run.grade_class`, does everything else as
on one machine: it generates the assignment, collects the submissions, copies
each through :func:`~classgrade.trusted.jail.copy_checked`, and alone merges
the results into the real gradebook. A task receives the submission's files,
the assignment's source and the template gradebook as bytes (no shared
filesystem is needed), grades it on its worker exactly as a local run does
(the same retries, sandbox and warm kernels, one zygote per worker process),
and returns the graded notebook and feedback as bytes, which the parent
copies out through the same check.

A worker that dies takes its running tasks with it; the scheduler gives
them to another worker (up to ``distributed.scheduler.allowed-failures``
times), and a submission that no worker could grade is reported as such.

A scheduler that does not answer within :data:`CONNECT_TIMEOUT` (10 s) ends the run before
anything is graded, in one line (:class:`~classgrade.trusted.errors.ClusterUnavailable`).

The workers need the course environment (convlab, classgrade, nbgrader, torch),
``bwrap``, and a non-daemonic worker process, because grading forks: start
them with ``dask worker ADDRESS --no-nanny`` or with the environment
variable ``DASK_DISTRIBUTED__WORKER__DAEMON=False``.
"""
import atexit
import contextlib
import hashlib
import io
import multiprocessing
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from multiprocessing import forkserver
from pathlib import Path

from distributed import Client, get_worker

from classgrade.protocol import Result, Status

from . import jail
from .errors import ClusterUnavailable, SandboxUnavailable
from .runner import Runner
from .zygote_handle import Zygote

DAEMONIC = ("classgrade: this Dask worker runs tasks in a daemonic process, which cannot "
            "start grading processes; start the workers with 'dask worker ADDRESS --no-nanny', or "
            "set DASK_DISTRIBUTED__WORKER__DAEMON=False in their environment")

_zygote = None          # one per worker process, started by prepare or its first task
_worker_lock = threading.Lock()   # guards this worker process's zygote and staged assignments
_staged = {}            # digest of a run's assignment bytes -> its folder on this worker
STAGED_KEPT = 8
FOLDERS = ("autograded", "feedback")   # a result's folders, returned as tars
CONNECT_TIMEOUT = 10    # s: a scheduler that does not answer by then ends the run, in one line
STAGE_TIMEOUT = 60      # s: sending the assignment to every worker


def pack(folder):
    """The tree ``folder`` as the bytes of a tar (the caller checked its contents)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:   # notebooks: small, and gzip's level 9 is slow
        tar.add(str(folder), arcname=".")
    return buffer.getvalue()


def unpack(data, folder):
    """Extract :func:`pack`'s bytes into ``folder``: regular files and folders inside it only."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(str(folder), members=members, filter="data")


def probe(sandbox):
    """Run on every worker before grading: ``None``, or why this worker cannot grade."""
    if multiprocessing.current_process().daemon:
        return DAEMONIC
    if sandbox:
        try:
            jail.check()
        except SandboxUnavailable as error:
            return str(error)
    return None


def prepare(sandbox, warm):
    """Run on every worker before grading, all at once: :func:`probe`, then start what the
    worker's first task would otherwise start (its zygote, the forkserver of its grading
    processes) without waiting for their imports."""
    why = probe(sandbox)
    if why is None:
        if sandbox and warm:
            _worker_zygote(wait=False)
        Runner(1, 0, context="forkserver")   # sets the forkserver's imports
        forkserver.ensure_running()
    return why


def dask_setup(worker):
    """``dask worker ADDRESS --preload classgrade.trusted.cluster``: the worker starts its
    zygote and the forkserver of its grading processes, and waits for their imports (~2 s),
    before it joins the scheduler; else the first grading run it takes part in waits for
    them. A worker that cannot grade says why when a run checks it (:func:`prepare`)."""
    if prepare(sandbox=True, warm=True) is None:
        _worker_zygote(wait=True)
        with _main_not_rerun():   # a first fork waits until the forkserver has imported its modules
            child = multiprocessing.get_context("forkserver").Process(target=int)
            child.start()
            child.join()


def _worker_zygote(wait=True):
    global _zygote
    with _worker_lock:
        if _zygote is None or _zygote.proc.poll() is not None:
            _zygote = Zygote(tempfile.mkdtemp(prefix="classgrade-zygote-"), wait=False)
            atexit.register(_zygote.close)
        if wait:
            _zygote.ready()
        return _zygote.path


@contextlib.contextmanager
def _main_not_rerun():
    """multiprocessing runs the parent's ``__main__`` again in each forkserver child (the
    `dask worker` script, which imports dask and its CLI: ~0.5 s of CPU per submission;
    preloading "__main__" does not help on Python 3.11). The grading child needs nothing
    of it: hide the script from multiprocessing while this task starts its child."""
    main = sys.modules["__main__"]
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            del main.__spec__


def _stage(common):
    """The folder holding the assignment's bytes ``common`` on this worker: unpacked by the
    run's first task here, read (never written) by the others; the last few runs' are kept."""
    key = hashlib.sha256(common).hexdigest()
    with _worker_lock:
        if key not in _staged:
            folder = Path(tempfile.mkdtemp(prefix="classgrade-assignment-"))
            unpack(common, folder)
            _staged[key] = folder
            if len(_staged) == 1:
                atexit.register(lambda: [shutil.rmtree(f, ignore_errors=True) for f in _staged.values()])
            while len(_staged) > STAGED_KEPT:
                shutil.rmtree(_staged.pop(next(iter(_staged))), ignore_errors=True)
        return _staged[key]


def grade_task(job, files, common):
    """A Dask task: grade one submission (a :class:`~classgrade.protocol.Job`, its handed-in
    files as tar bytes or ``None``) on this worker; ``(its Result, {folder: tar bytes})``."""
    why = probe(False)
    if why:
        raise ClusterUnavailable(why)
    tmp = Path(tempfile.mkdtemp(prefix="classgrade-task-"))
    try:
        common = _stage(common)
        job = job.again(template_db=str(common / "template.db"), source_dir=str(common / "source"),
                        work=str(tmp / "work"), submission_dir=None, zygote=None)
        if files is not None:
            unpack(files, tmp / "submission")
            job.submission_dir = str(tmp / "submission")
        if job.sandbox and job.warm:
            job.zygote = _worker_zygote()
        done = []
        with _main_not_rerun():
            Runner(1, job.wall, context="forkserver").run([job], lambda j, r: done.append(r))
        result = done[0]
        tars = {}
        for kind in FOLDERS:
            folder = getattr(result, kind)
            setattr(result, kind, None)
            if folder and Path(folder).is_dir():
                tars[kind] = pack(folder)
        result.worker = str(get_worker().name)
        return result, tars
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Cluster:
    """One grading run's connection to the Dask scheduler at ``address``.

    Opening it checks every worker and starts what their first task needs (:func:`prepare`),
    so that their imports run alongside the grader's own preparation; :meth:`stage` sends
    the assignment to every worker once; :meth:`run` grades. Raises
    :class:`ClusterUnavailable` when a worker cannot grade.
    """

    def __init__(self, address, *, sandbox, warm, wall):
        self.warm, self.wall, self.common = warm, wall, None
        try:
            self.client = Client(address, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, ValueError, TypeError) as error:   # unreachable, or not an address
            why = " ".join(str(error).split())[:200] or type(error).__name__
            if not isinstance(error, OSError):
                raise ClusterUnavailable(f"--scheduler {address}: not a scheduler's address ({why}); give "
                                         "it as tcp://HOST:PORT, e.g. tcp://head:8786") from None
            raise ClusterUnavailable(f"cannot reach the Dask scheduler at --scheduler {address} within "
                                     f"{CONNECT_TIMEOUT} s ({why}); start it (dask scheduler), or give its "
                                     "address, e.g. tcp://head:8786") from None
        try:
            refusals = {w: why for w, why in self.client.run(prepare, sandbox, warm).items() if why}
            if refusals:
                worker, why = sorted(refusals.items())[0]
                raise ClusterUnavailable(f"{why} (worker {worker}; {len(refusals)} of the cluster's workers)")
        except BaseException:
            self.client.close()
            raise

    def stage(self, template_db, source_dir):
        """Send the template gradebook and the assignment's source to every worker."""
        with tempfile.TemporaryDirectory(prefix="classgrade-common-") as stage:
            shutil.copy(template_db, Path(stage) / "template.db")
            shutil.copytree(source_dir, Path(stage) / "source")
            self.common = self.client.scatter(pack(stage), broadcast=True, timeout=STAGE_TIMEOUT)

    def _submit(self, job):
        """Send one job to the cluster: its handed-in files checked and packed here."""
        remote, files = job.again(warm=self.warm, wall=self.wall), None
        if job.submission_dir and Path(job.submission_dir).is_dir():
            stage = Path(job.work) / "handed-in"
            skipped = jail.copy_checked(job.submission_dir, stage)
            remote.flags = list(job.flags) + [f"left out of the submission: {line}" for line in skipped]
            files = pack(stage)
            shutil.rmtree(stage)
        future = self.client.submit(grade_task, remote, files, self.common, pure=False, retries=1,
                                    key=f"classgrade-{Path(job.work).name}-{job.student}")
        return future, remote

    def _collect(self, future, job):
        """The result of one finished task, its folders unpacked into the job's work folder."""
        try:
            result, tars = future.result()
        except Exception as error:  # noqa: BLE001 - the task's error, or the cluster's
            return Result.failed(job, Status.ERROR,
                                 f"the cluster could not grade it: {type(error).__name__}: {error}")
        for kind, data in tars.items():
            unpack(data, Path(job.work) / "returned" / kind)
            setattr(result, kind, str(Path(job.work) / "returned" / kind))
        return result

    def run(self, jobs, on_result):
        """Grade ``jobs`` on the cluster; ``on_result(job, result)`` in this process."""
        futures = dict(self._submit(job) for job in jobs)
        # not as_completed: its iterator can wait forever for a task whose worker died after
        # finishing it (dask/distributed#6074; seen here with and without with_results). The
        # futures' states are read afresh every 50 ms instead (the client keeps them current, a
        # lost result's future is pending again), and result() waits while the scheduler
        # computes a lost result again.
        while futures:
            done = [future for future in futures if future.done()]
            if not done:
                time.sleep(0.05)
            for future in done:
                job = futures.pop(future)
                result = self._collect(future, job)
                future.release()   # the worker may drop the result now (a class is thousands of them)
                on_result(job, result)

    def close(self):
        self.client.close()
