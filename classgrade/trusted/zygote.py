"""Warm grading kernels: import torch once, fork a fresh kernel into each sandbox.

Starting a kernel costs an interpreter and ``import torch, numpy, convlab,
ipykernel``: about 2 s of CPU, most of the time grading a notebook takes. The
*zygote* pays it once: ``python -m classgrade.trusted.zygote SOCKET`` imports
those modules, starts no thread, runs no student code, and waits for requests
on a Unix socket that only the grader's own processes can reach.

Each request comes from :func:`classgrade.trusted.jail.launch`, the kernel's
launcher, once bubblewrap has built that submission's sandbox and is holding
it open. The zygote forks; the fork

1. takes the launcher's stdin, stdout and stderr and closes everything else;
2. joins the sandbox's pids cgroup;
3. enters the sandbox's namespaces with ``setns(2)`` (:mod:`.namespaces`), as ``nsenter(1)`` does
   (mount, network, IPC, UTS, cgroup and PID, then the user namespace whose
   uid 65534 it becomes): from here on it sees only what bwrap put there;
4. drops every capability, sets ``no_new_privs`` and the resource limits;
5. forks the kernel (the first process that lives in the sandbox's PID
   namespace), which runs :func:`classgrade.sandboxed.kernel.main` with the
   imports already done, waits for it and reports its exit status to the
   launcher.

So each submission still has a process and a sandbox of its own, and the
zygote never changes: nothing of one submission reaches the next. bwrap
builds every sandbox; the zygote only enters one.
"""
import os
import random
import select
import signal
import socket
import sys
import traceback

import numpy
import torch
from convlab import grading
from ipykernel.zmqshell import ZMQInteractiveShell
from IPython.core.ultratb import AutoFormattedTB

from classgrade.protocol import ENTRIES, KernelRequest, ZygoteReport
from classgrade.sandboxed import kernel, replay

from .namespaces import assert_unprivileged, enter_unprivileged

# the kernel's own imports (this module's, above: classgrade.sandboxed.kernel imports torch,
# numpy, convlab and ipykernel) and those of the kernel's start (they need no sandbox;
# ipykernel.debugger: the kernel imports it, and debugpy, as it starts; no thread), and what
# its shell (and the replay's) imports as it starts: ~15 ms of each
PREIMPORT = ["ipykernel.debugger", "IPython.core.completerlib", "IPython.core.debugger", "IPython.core.oinspect",
             "IPython.extensions.storemagic", "IPython.utils.wildcard", "faulthandler", "pdb",
             "tornado.platform.asyncio"]


def _kernel(request):
    """In the fork of the fork: become the kernel (never returns)."""
    code = 1
    try:
        assert_unprivileged()
        random.seed()            # a fork would share the zygote's state
        numpy.random.seed()
        sys.argv = [sys.executable, "-m", ENTRIES[request.entry]] + request.argv
        if request.entry == "replay":
            replay.main()
        else:
            kernel.main(request.argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported on the kernel's stderr
        traceback.print_exc()
    finally:
        os._exit(code)


def _report(conn, **fields):
    conn.sendall(ZygoteReport(**fields).to_json().encode() + b"\n")


def _take_over(conn, fds):
    """The fork's first steps: default signals, the launcher's stdin/out/err, nothing else open."""
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    keep = conn.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    os.setsid()


def _child(conn, fds, request):
    """The zygote's fork: set up, enter the sandbox, run the kernel in a fork, report."""
    status = 127
    try:
        _take_over(conn, fds)
        if request.cgroup:
            with open(os.path.join(request.cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        enter_unprivileged(request)
        os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update(request.env)
        pid = os.fork()
        if pid == 0:
            conn.close()
            _kernel(request)
        _report(conn, started=True)
        _, wait_status = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(wait_status)
    except BaseException as exc:  # noqa: BLE001 - the launcher reports it
        try:
            os.write(2, f"classgrade.trusted.zygote: could not start the kernel: {exc}\n".encode())
        except OSError:
            pass
    finally:
        try:
            _report(conn, status=status)
        except OSError:
            pass
        os._exit(0)


def _warm_tracebacks():
    """Format a failed check's traceback once, as a kernel's shell formats one, so that every
    kernel shares what the first traceback loads (IPython's frame records, pygments' lexer, the
    parsed source of ``convlab.grading``): ~0.13 CPU s of each kernel whose notebook fails a test."""
    try:
        grading.check_result(torch.zeros(1), torch.ones(1), case="a warm-up")
    except AssertionError:
        formatter = AutoFormattedTB(mode=ZMQInteractiveShell.xmode.default_value,
                                    theme_name=ZMQInteractiveShell.colors.default_value)
        formatter.structured_traceback(*sys.exc_info())


def _listen(path):
    """Import once, then listen on ``path`` (the grader's processes alone can connect)."""
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"   # debugpy's warning on import
    for name in PREIMPORT:
        __import__(name)
    kernel.preimport(kernel.PREIMPORT)
    _warm_tracebacks()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    return listener


def _accept(listener):
    """``(conn, fds, request)`` of one request, or ``None``."""
    conn, _ = listener.accept()
    try:
        message, fds, _, _ = socket.recv_fds(conn, 65536, 3)
        return conn, fds, KernelRequest.from_json(message)
    except (OSError, ValueError, TypeError):
        conn.close()
        return None


def serve(path):
    """The zygote's main loop: import once, then fork a kernel per request."""
    listener = _listen(path)
    parent = os.getppid()
    print("ready", flush=True)
    stopping = []
    # SIGTERM wakes the select at once (it would otherwise run to its timeout)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    while os.getppid() == parent and not stopping:   # the grader is gone: so is the zygote
        try:
            ready, _, _ = select.select([listener, wake_read], [], [], 1.0)
        except InterruptedError:
            continue
        _reap()
        if listener not in ready or stopping:
            if wake_read in ready:
                os.read(wake_read, 4096)
            continue
        accepted = _accept(listener)
        if accepted is None:
            continue
        conn, fds, request = accepted
        if os.fork() == 0:
            listener.close()
            signal.set_wakeup_fd(-1)
            os.close(wake_read)
            os.close(wake_write)
            _child(conn, fds, request)
        conn.close()
        for fd in fds:
            os.close(fd)
    listener.close()
    _reap(block=True)   # so that the kernels' CPU time reaches the grader's own accounts
    sys.stdout.flush()
    os._exit(0)   # nothing to save: skip the interpreter's teardown of torch (~0.5 s)


def _reap(block=False):
    """Wait for finished forks (so that their CPU time is counted as the zygote's children's)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    serve(sys.argv[1])
