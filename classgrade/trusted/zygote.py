"""Warm grading kernels: import torch once, fork a fresh kernel into each sandbox.

Starting a kernel costs an interpreter and ``import torch, numpy, convlab,
ipykernel``: about 2 s of CPU, most of the time grading a notebook takes. The
*zygote* pays it once: ``python -m convlab.classgrade.zygote SOCKET`` imports
those modules, starts no thread, runs no student code, and waits for requests
on a Unix socket that only the grader's own processes can reach.

Each request comes from :func:`convlab.classgrade.jail.launch`, the kernel's
launcher, once bubblewrap has built that submission's sandbox and is holding
it open. The zygote forks; the fork

1. takes the launcher's stdin, stdout and stderr and closes everything else;
2. joins the sandbox's pids cgroup;
3. enters the sandbox's namespaces with ``setns(2)``, as ``nsenter(1)`` does
   (mount, network, IPC, UTS, cgroup and PID, then the user namespace whose
   uid 65534 it becomes): from here on it sees only what bwrap put there;
4. drops every capability, sets ``no_new_privs`` and the resource limits;
5. forks the kernel (the first process that lives in the sandbox's PID
   namespace), which runs :func:`convlab.classgrade.sandbox.main` with the
   imports already done, waits for it and reports its exit status to the
   launcher.

So each submission still has a process and a sandbox of its own, and the
zygote never changes: nothing of one submission reaches the next. bwrap
builds every sandbox; the zygote only enters one.
"""
import ctypes
import fcntl
import json
import os
import select
import signal
import socket
import sys
import time

# the kernel's own imports, and those of the kernel's start (they need no sandbox)
# (ipykernel.debugger: the kernel imports it, and debugpy, as it starts; no thread)
PREIMPORT = ["convlab.classgrade.sandbox", "convlab.classgrade.ledger", "ipykernel.kernelapp", "ipykernel.debugger"]
# setns(2) flags; NS_GET_USERNS (ioctl_ns(2)) names the user namespace that owns a namespace
CLONE = dict(user=0x10000000, mnt=0x00020000, net=0x40000000, ipc=0x08000000,
             uts=0x04000000, cgroup=0x02000000, pid=0x20000000)
NS_GET_USERNS = 0xB701
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
CAP_LAST = 63
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter(pid):
    """Join every namespace of process ``pid`` (a bwrap sandbox) that this process is not in.

    bwrap sets the sandbox up as root of a first user namespace, which owns the mount and
    other namespaces, then drops into a second one for uid 65534: join the owner first
    (so that setns is allowed on the others), the user namespace of ``pid`` last.
    """
    fds = {name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY) for name in CLONE}
    # read before the first setns: once in the sandbox's mount namespace, /proc is the
    # sandbox's, in which this process has no /proc/self
    current = {name: os.stat(f"/proc/self/ns/{name}").st_ino for name in CLONE}
    try:
        owner = fcntl.ioctl(fds["mnt"], NS_GET_USERNS)
        order = [(owner, "user")] + [(fds[n], n) for n in CLONE if n != "user"] + [(fds["user"], "user")]
        for fd, name in order:
            target = os.fstat(fd).st_ino
            if target == current[name]:
                continue   # already in it (setns on one's own user namespace fails)
            _check(_libc.setns(fd, CLONE[name]), f"setns {name}")
            current[name] = target
        os.close(owner)
    finally:
        for fd in fds.values():
            os.close(fd)


def drop_privileges():
    """No capability of any kind, and none to gain (``no_new_privs``)."""
    for cap in range(CAP_LAST + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break   # EINVAL: past the kernel's last capability
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def enter_unprivileged(request):
    """Enter the sandbox of ``request`` with no privilege, under its limits.

    ``RLIMIT_NPROC`` is set once inside: in the sandbox's user namespace it counts the
    processes of that namespace alone (the grader's own are not counted against it).
    """
    import resource
    enter(request["sandbox_pid"])
    drop_privileges()
    for name, value in request.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (value, value))


def assert_unprivileged():
    """Raise unless this process has no capability and ``no_new_privs`` (read in its own /proc)."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    caps = {key: int(status[key], 16) for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb")}
    if any(caps.values()) or status["NoNewPrivs"].strip() != "1":
        raise OSError(f"the kernel is not unprivileged: {caps}, NoNewPrivs {status['NoNewPrivs'].strip()}")


def _kernel(request):
    """In the fork of the fork: become the kernel (never returns)."""
    code = 1
    try:
        assert_unprivileged()
        import random
        import numpy
        random.seed()            # a fork would share the zygote's state
        numpy.random.seed()
        from . import sandbox
        sys.argv = [sys.executable, "-m", "convlab.classgrade.sandbox"] + request["argv"]
        sandbox.main(request["argv"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported on the kernel's stderr
        import traceback
        traceback.print_exc()
    finally:
        os._exit(code)


def _child(conn, fds, request):
    """The zygote's fork: set up, enter the sandbox, run the kernel in a fork, report."""
    status = 127
    try:
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        keep = conn.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 65536)
        os.setsid()
        if request.get("cgroup"):
            with open(os.path.join(request["cgroup"], "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        enter_unprivileged(request)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        kernel = os.fork()
        if kernel == 0:
            conn.close()
            _kernel(request)
        conn.sendall(json.dumps(dict(started=True)).encode() + b"\n")
        _, wait_status = os.waitpid(kernel, 0)
        status = os.waitstatus_to_exitcode(wait_status)
    except BaseException as exc:  # noqa: BLE001 - the launcher reports it
        try:
            os.write(2, f"convlab.classgrade.zygote: could not start the kernel: {exc}\n".encode())
        except OSError:
            pass
    finally:
        try:
            conn.sendall(json.dumps(dict(status=status)).encode() + b"\n")
        except OSError:
            pass
        os._exit(0)


def serve(path):
    """The zygote's main loop: import once, then fork a kernel per request."""
    from . import sandbox
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"   # debugpy's warning on import
    for name in PREIMPORT:
        __import__(name)
    sandbox.preimport(sandbox.PREIMPORT)
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
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
        conn, _ = listener.accept()
        try:
            message, fds, _, _ = socket.recv_fds(conn, 65536, 3)
            request = json.loads(message)
        except (OSError, ValueError):
            conn.close()
            continue
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


class Zygote:
    """A running zygote, started by the grader: ``with Zygote(folder) as z: ... z.path``."""

    def __init__(self, folder, wait=True):
        """``wait=False``: return at once; :meth:`ready` waits for the imports (so that the
        grader's own start-up runs meanwhile)."""
        import subprocess
        from .jail import sandbox_env
        self.path = os.path.join(str(folder), "zygote.sock")
        # started from nothing of the grader's: its environment and memory are what every
        # kernel inherits (and can read in /proc/self/environ); the kernel's folders exist
        # only inside a sandbox
        env = {k: v for k, v in sandbox_env().items() if k not in ("HOME", "TMPDIR", "MPLCONFIGDIR", "IPYTHONDIR")}
        self.proc = subprocess.Popen([sys.executable, "-m", "convlab.classgrade.zygote", self.path],
                                     env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     start_new_session=True)
        self.started, self._ready = time.monotonic(), False
        if wait:
            self.ready()

    def ready(self):
        """Wait until the zygote accepts requests (raise if it could not start)."""
        if not self._ready:
            line = self.proc.stdout.readline()
            if line.strip() != b"ready":
                self.close()
                raise RuntimeError(f"convlab.classgrade: the warm-kernel process did not start (exit code "
                                   f"{self.proc.poll()}, after {time.monotonic() - self.started:.1f} s)")
            self._ready = True
        return self

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    serve(sys.argv[1])
