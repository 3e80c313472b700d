"""Grading processes on this machine: ``workers`` at a time, with retries.

Runs as the grader (and in a Dask worker's task, one at a time, :mod:`.cluster`). Each
:class:`~classgrade.protocol.Job` is graded in a forked child (:func:`_child`, which runs
:func:`classgrade.trusted.worker.grade_one`) that sends back its
:class:`~classgrade.protocol.Result` as JSON; a child past the wall-clock limit is killed with
its kernel; a submission whose kernel died or hung is graded again without the cell that did
it, at most ``max_attempts`` times, then as the blank release.
"""
import gc
import json
import multiprocessing
import os
import signal
import time
import traceback
from multiprocessing.connection import wait
from pathlib import Path

from classgrade.protocol import KERNEL_LOG, Job, Result, Status, cell_hash, read_kernel_log

from . import jail

KERNEL_NEEDLES = (b"classgrade.sandboxed.kernel", b"bwrap")   # in the command line of a kernel's processes


def _child(job_json, conn):
    """A grading process: grade the job, send its result as JSON, exit."""
    # Imported here only, not at the top: a Dask worker's own process imports this module (for
    # Runner) but never grades, and the worker module costs ~1 s (nbgrader, jupyter_client);
    # a forked child finds it already imported by its parent (classgrade.trusted.warm).
    from . import worker
    os.setsid()
    job = Job.from_json(job_json)
    try:
        result = worker.grade_one(job)
    except BaseException:  # noqa: BLE001 - reported, never raised into the batch
        result = Result.failed(job, Status.ERROR, traceback.format_exc()[-2000:])
    try:
        conn.send(result.to_json())
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
            if any(k in cmdline for k in KERNEL_NEEDLES) and needle in cmdline:
                pids.append(int(entry.name))
    return pids


def _private(job):
    return Path(job.work) / "private"


def describe_cell(job, digest):
    """Which cell of the handed-in notebooks has the hash ``digest``, for the report."""
    sub = Path(job.work) / "course" / "submitted" / job.student / job.assignment
    for nb_path in sorted(sub.glob("*.ipynb")):
        try:
            cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for i, cell in enumerate(cells):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            if cell.get("cell_type") == "code" and cell_hash(source) == digest:
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                return f"{nb_path.name}: " + (f"cell '{gid}'" if gid else f"cell {i + 1}")
    return "a cell"


class Runner:
    """Runs jobs in forked children, ``workers`` at a time, with retries."""

    def __init__(self, workers, wall, max_attempts=3, context="fork"):
        self.workers, self.wall, self.max_attempts = workers, wall, max_attempts
        # "forkserver" where this process has threads (a Dask worker): the children are forks
        # of a single-threaded server that imported nbgrader once
        self.ctx = multiprocessing.get_context(context)
        if context == "forkserver":
            self.ctx.set_forkserver_preload(["classgrade.trusted.runner", "classgrade.trusted.warm"])

    def run(self, jobs, on_result):
        """Grade ``jobs``; ``on_result(job, result)`` in this process for each, once."""
        running = {}   # sentinel -> (proc, conn, job, start)
        try:
            self._loop(list(jobs), running, on_result)
        finally:  # an error in on_result must not leave graders running in a deleted folder
            for proc, _, job, _ in running.values():
                _kill(proc, _private(job))

    def _start(self, job, running):
        recv, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=_child, args=(job.to_json(), send), daemon=False)
        # The child's collector leaves alone what it inherits: a full collection there would walk
        # (and, copy-on-write, copy) this process's ~200k objects, ~40 % of a child's CPU.
        gc.freeze()
        try:
            proc.start()
        finally:
            gc.unfreeze()
        send.close()
        running[proc.sentinel] = (proc, recv, job, time.monotonic())

    def _loop(self, pending, running, on_result):
        finished = []  # merged after the freed slots are refilled, so no worker waits
        while pending or running or finished:
            while pending and len(running) < self.workers:
                self._start(pending.pop(0), running)
            while finished:
                on_result(*finished.pop(0))
            if not running:
                continue
            ready = wait(list(running) + [r[1] for r in running.values()], timeout=1.0)
            for key in list(running):
                result = self._poll(running[key], key in ready or running[key][1] in ready)
                if result is None:
                    continue
                proc, recv, job, _ = running.pop(key)
                proc.join(10)
                recv.close()
                if proc.is_alive():
                    _kill(proc, _private(job))
                retry = self._retry(job, result)
                if retry is not None:
                    pending.insert(0, retry)
                else:
                    finished.append((job, result))

    def _poll(self, entry, ready):
        """The result of one running child, or ``None`` while it still runs."""
        proc, recv, job, start = entry
        if ready:
            result = None
            try:
                if recv.poll(0.5):
                    result = Result.from_json(recv.recv())
            except (EOFError, OSError):
                result = None
            if result is None and proc.is_alive():
                return None
            return result or Result.failed(job, Status.ERROR,
                                           f"the grading process died (exit code {proc.exitcode})")
        if time.monotonic() - start > self.wall:
            _kill(proc, _private(job))
            starts = read_kernel_log(_private(job) / KERNEL_LOG).starts
            return Result.failed(job, Status.WALL_TIMEOUT, starts=starts)
        return None

    def _retry(self, job, result):
        """The job to run again after ``result``, or ``None`` (its flags are then in ``result``)."""
        if result.status == Status.OK:
            return None
        flags, skip = list(job.flags), dict(job.skip)
        if result.status in (Status.DEAD_KERNEL, Status.WALL_TIMEOUT) and result.starts:
            culprit = result.starts[-1]
            why = ("it stopped the kernel (exit, crash or memory) in an earlier grading attempt"
                   if result.status == Status.DEAD_KERNEL else
                   f"grading exceeded the wall-clock limit ({self.wall:g} s) while it ran")
            flags.append(f"{describe_cell(job, culprit)}: {why}; graded again without running it")
            skip[culprit] = why
        elif result.status == Status.WALL_TIMEOUT:
            flags.append(f"grading exceeded the wall-clock limit ({self.wall:g} s)")
        else:
            flags.append("grading failed: " + (result.error or "unknown error").strip().splitlines()[-1][:200])
        if job.blank:
            result.flags = flags
            return None
        return job.again(attempt=job.attempt + 1, flags=flags, skip=skip,
                         blank=job.attempt >= self.max_attempts)
