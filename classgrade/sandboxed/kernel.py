"""The grading kernel: an IPython kernel that a submission cannot escape lightly.

Runs inside the sandbox, as the student. ``python -m classgrade.sandboxed.kernel --private
DIR -f CONNECTION_FILE`` is the ``argv`` of the kernelspec that
:mod:`classgrade.trusted.worker` writes for each submission (a warm kernel runs
:func:`main` in a fork of the zygote instead). Before any student code runs it

1. sets ``RLIMIT_AS`` (the memory limit: an allocation beyond it raises
   ``MemoryError``/``RuntimeError`` in the student's cell instead of taking
   the machine down) and switches core dumps off;
2. has torch, numpy and convlab imported (at the top of this module), then records a
   *baseline*: the identity of every callable in those modules, in ``builtins`` and in
   the IPython machinery that reports errors (:mod:`.fingerprints`). The check cell that
   the worker places after each test cell compares against it, so a submission that
   monkeypatches ``torch.allclose`` or the checking helpers loses the points of every
   test that ran under the patch;
3. installs a Python audit hook (it cannot be removed) that refuses writes
   outside the submission's folder and the private scratch folder, starting
   processes, and signalling other processes, and logs each refusal;
4. in the kernel that grades the instructor's own source (never a student's), records
   every call of student code that a test makes and every check, for the replay
   (:mod:`.record`);
5. logs the hash of each cell as it starts, so a cell that kills the kernel
   or hangs it past the wall-clock limit can be named, and skips the cells
   listed in its options (the worker lists them there before retrying).

Its options and its log are the records of :mod:`classgrade.protocol`.
"""
import json
import os
import resource
import sys

import convlab  # noqa: F401 - imported before the baseline: what the checks rely on (.record imports its grading)
from ipykernel.kernelapp import IPKernelApp

from classgrade.protocol import (BASELINE, KERNEL_LOG, KERNEL_OPTIONS, KERNEL_PREIMPORT, NOT_RUN, RECORDS,
                                 KernelOptions, LogKind, cell_hash, log_line)

from .fingerprints import fingerprints
from .record import Recorder

PREIMPORT = KERNEL_PREIMPORT   # also imported at the top of this module: its own imports


def preimport(names):
    """Import ``names`` (a missing optional module is fine)."""
    for name in names:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001
            continue


def _write_checks(allowed_roots):
    flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def writable_path(path):
        if isinstance(path, int) or path is None:
            return True
        path = os.fsdecode(path)
        if path in ("/dev/null",):
            return True
        full = os.path.realpath(os.path.join(os.getcwd(), path))
        return any(full == root or full.startswith(root + os.sep) for root in allowed_roots)

    def is_write(mode, oflags):
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return True
        return isinstance(oflags, int) and bool(oflags & flags) and oflags != -1

    return writable_path, is_write


def _install_audit_hook(allowed_roots, log_fd):
    writable_path, is_write = _write_checks(allowed_roots)
    busy = []
    # event -> positions of the paths to check: a copy only reads its source, but a link
    # to an outside file would let later writes through it reach that file
    mutating = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
                "os.replace": (0, 1), "os.link": (0, 1), "os.symlink": (0, 1), "os.chmod": (0,),
                "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,),
                "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (0, 1),
                "os.chflags": (0,), "os.mkfifo": (0,), "os.mknod": (0,)}
    processes = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
                 "os.fork", "os.forkpty", "pty.spawn", "os.startfile"}
    me = os.getpid()

    def refuse(what):
        os.write(log_fd, log_line(LogKind.REFUSED, what))
        raise PermissionError("classgrade: not allowed while grading: " + what)

    def hook(event, args):
        if busy:
            return
        busy.append(1)
        try:
            if event == "open":
                path, mode, oflags = (tuple(args) + (None, None, None))[:3]
                if is_write(mode, oflags) and not writable_path(path):
                    refuse("writing %s (outside the submission folder)" % os.fsdecode(path))
            elif event in mutating:
                for p in (args[i] for i in mutating[event]):
                    if not writable_path(p):
                        refuse("%s %s (outside the submission folder)" % (event, os.fsdecode(p)))
            elif event in processes:
                refuse("starting a process (%s)" % event)
            elif event in ("os.kill", "os.killpg") and args[0] not in (me, 0):
                refuse("%s(%s) (signalling another process)" % (event, args[0]))
        finally:
            busy.pop()

    sys.addaudithook(hook)


def _options(argv):
    """The kernel's options (from its private folder), and ``argv`` without ``--private DIR``."""
    private = argv[argv.index("--private") + 1]
    del argv[argv.index("--private"):argv.index("--private") + 2]
    with open(os.path.join(private, KERNEL_OPTIONS)) as f:
        return private, KernelOptions.from_json(f.read())


def _limit(options):
    if options.memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (options.memory_bytes, options.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _start_app(argv):
    app = IPKernelApp.instance()
    # CRITICAL: no "To connect another client to this kernel" banner on the kernel's output
    # no history database: an sqlite file and a saving thread that grading never reads
    app.initialize(argv + ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.enabled=False"])
    return app


def _recorder(shell, private, options):
    """The instructor's source only: a recorder of its calls and checks, for the replay."""
    if not options.record:
        return None
    recorder = Recorder(os.open(os.path.join(private, RECORDS), os.O_WRONLY | os.O_APPEND | os.O_CREAT),
                        shell.user_ns)
    recorder.install()   # before the baseline: convlab.grading's functions as the fingerprints see them
    return recorder


def _watch_cells(shell, private, options, log_fd):
    """Baseline at the first cell, each cell's start logged (and given to the recorder),
    the cells of ``options.skip`` replaced by an error."""
    state = {"baseline": False}
    baseline_fd = os.open(os.path.join(private, BASELINE), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    recorder = _recorder(shell, private, options)

    def pre_run_cell(info):
        if recorder is not None:
            recorder.start_cell(cell_hash(info.raw_cell))
        if not state["baseline"]:  # first cell: the kernel is up, no student code has run
            state["baseline"] = True
            os.write(baseline_fd, json.dumps(fingerprints()).encode())
            os.close(baseline_fd)
        os.write(log_fd, log_line(LogKind.START, cell_hash(info.raw_cell)))

    def skip_transform(lines):
        reason = options.skip.get(cell_hash("".join(lines)))
        if reason is None:
            return lines
        return ["raise RuntimeError(%r)\n" % (NOT_RUN + ": " + reason)]

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.input_transformers_cleanup.insert(0, skip_transform)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    private, options = _options(argv)
    _limit(options)
    log_fd = os.open(os.path.join(private, KERNEL_LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    preimport(options.preimport)   # before the baseline: they are what the checks rely on
    app = _start_app(argv)
    _watch_cells(app.shell, private, options, log_fd)
    roots = [os.path.realpath(os.getcwd()), os.path.realpath(options.scratch)]
    _install_audit_hook(roots, log_fd)
    app.start()


if __name__ == "__main__":
    main()
