"""The OS-level sandbox around each grading kernel: bubblewrap (``bwrap``).

``python -P -m classgrade.trusted.jail --jail DIR --private DIR -f CONNECTION_FILE`` is
the ``argv`` of the kernelspec that :mod:`classgrade.trusted.worker` writes for a
sandboxed submission (``-P``: the kernel's folder, the student's, is not on ``sys.path``); the
grader's kernel manager (:mod:`classgrade.trusted.kernels`) runs that launcher in a fork of the
grading process instead (:class:`ForkedLauncher`). It runs as the grader, outside the sandbox,
for as long as the kernel runs: it reads the limits that the worker left in ``DIR/jail.json`` (:class:`classgrade.protocol.JailOptions`),
puts itself in a ``pids`` cgroup when the grader is root, sets the resource
limits, and starts ``bwrap``, which builds new user, mount, PID, IPC, UTS and network
namespaces and holds them open; the kernel (:mod:`classgrade.sandboxed.kernel`)
is forked into them by the zygote, or by the launcher for a new interpreter:

- **network**: none. The network namespace has only its own loopback, which
  reaches nothing outside the sandbox. The kernel talks to the grader over
  ZeroMQ's ``ipc`` transport: Unix sockets on a small tmpfs of the sandbox's,
  which the grader reaches through ``/proc/PID/root`` (:func:`link_sockets`).
- **files**: the operating system (``/usr``), the Python installation, the
  virtual environment, the ``convlab`` package and of ``classgrade`` only what the
  kernel runs (``__init__.py``, ``protocol.py``, ``sandboxed/``; never ``trusted/``),
  read-only, and so is the rest of the root. Writable: the notebook's folder, a bounded tmpfs that the
  sandbox fills with a copy of the handed-in folder (:data:`INBOX`); a private
  ``/tmp`` of bounded size; and the three files of :data:`~classgrade.protocol.KERNEL_WRITES` in the
  kernel's private folder, which it cannot add to. No user namespace can be
  made inside (``--disable-userns``), so no more can be mounted. Nothing else
  exists: no course source, no gradebook, no other submission, no home folder,
  no ``/etc/passwd`` but a two-line stand-in.
- **processes**: PID 1 of the namespace is bwrap's; the kernel sees only its
  own processes, cannot signal or trace the grader, and every process it
  starts dies with the namespace (``--die-with-parent``, and the worker kills
  what is left in the cgroup).
- **user**: uid/gid 65534 inside, all capabilities dropped, ``no_new_privs``.
- **limits**: address space (in the kernel, :mod:`classgrade.sandboxed.kernel`), file size
  (``RLIMIT_FSIZE``), open files, processes (a ``pids`` cgroup when the grader
  is root, where ``RLIMIT_NPROC`` does not hold; ``RLIMIT_NPROC`` otherwise).

:func:`check` runs one trivial sandbox before a class is graded, so that a
machine without ``bwrap`` or without user namespaces is refused up front, in
one line that says how to fix it. :func:`copy_checked` copies a submission in
and its results out: regular files and folders only, sizes bounded.
"""
import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from classgrade.protocol import ENTRIES, KERNEL_WRITES, JailOptions, KernelRequest, Limits, ZygoteReport

from .errors import SandboxUnavailable
from .namespaces import enter_unprivileged

# what a kernel runs of classgrade: visible (read-only) inside every sandbox; nothing else of it is
PACKAGE = Path(__file__).resolve().parent.parent
SANDBOX_VISIBLE = ("__init__.py", "protocol.py", "sandboxed")
KERNEL_MODULE = ENTRIES["kernel"]

LAUNCHER = ("-P", "-m", "classgrade.trusted.jail")   # after the interpreter: the launcher's command line

SANDBOX_UID = 65534
BWRAP_ENV = "CLASSGRADE_BWRAP"      # path of bwrap, for machines that keep it elsewhere
CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
SCRATCH = "/tmp/scratch"             # the kernel's HOME and TMPDIR, on the sandbox's own /tmp
INBOX = "/run/submission"            # the submission's folder as handed in, read-only, inside
SOCKET_FOLDER_BYTES = 2**20          # the kernel's ZeroMQ sockets, on a tmpfs of its own
IPC_PATH_MAX = 100                  # sun_path holds 108 bytes; ZeroMQ adds "-N"


def bwrap_path():
    return os.environ.get(BWRAP_ENV) or shutil.which("bwrap")


def _mount_os():
    """bwrap arguments for the read-only system and Python, nothing of the grader's."""
    args = []
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def _python_trees():
    """The folders of the Python installation, the virtual environment and convlab."""
    package = importlib.util.find_spec("convlab").submodule_search_locations  # not imported
    trees = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix, *package)}
    trees.add(os.path.dirname(os.path.realpath(sys.executable)))
    return trees


def _mount_python():
    """bwrap arguments for the read-only Python environment, convlab, and what the kernel runs
    of classgrade (after /tmp: a virtual environment or a clone may lie below it)."""
    args, trees = [], _python_trees()
    for tree in sorted(trees):   # a parent before its children
        if not any(tree != other and tree.startswith(other + os.sep) for other in trees) \
                and not tree.startswith("/usr/"):
            args += ["--ro-bind", tree, tree]
    return args + _mount_classgrade(trees)


def _mount_classgrade(trees):
    """bwrap arguments that show, of classgrade, :data:`SANDBOX_VISIBLE` alone, read-only.

    Installed into site-packages (a bound tree) the whole package would be visible: an empty
    tmpfs covers it first (read-only once the visible parts are bound on it); an editable
    install's folder (a clone's ``classgrade/``) is outside the bound trees, and only the
    visible parts are bound there."""
    where = os.path.realpath(PACKAGE)
    covered = any(where == tree or where.startswith(tree + os.sep) for tree in trees)
    args = ["--size", "65536", "--tmpfs", where] if covered else []
    for name in SANDBOX_VISIBLE:
        args += ["--ro-bind", os.path.join(where, name), os.path.join(where, name)]
    return args + (["--remount-ro", where] if covered else [])


def sandbox_env():
    """The whole environment of a sandboxed kernel (bwrap starts from an empty one)."""
    return dict(PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin", HOME=SCRATCH + "/home",
                TMPDIR=SCRATCH, MPLCONFIGDIR=SCRATCH + "/mpl", IPYTHONDIR=SCRATCH + "/ipython",
                MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYDEVD_DISABLE_FILE_VALIDATION="1", LANG="C.UTF-8", PYTHONDONTWRITEBYTECODE="1",
                # as nbgrader sets it for its kernels: a notebook's summary cell stays quiet
                NBGRADER_EXECUTION="autograde")


def bwrap_argv(*, cwd, private, connection_file, jail, command, limits=None, options=()):
    """The full ``bwrap`` command line that runs ``command`` sandboxed in ``cwd``.

    Nothing the kernel writes reaches the grader's disk but the files of
    :data:`KERNEL_WRITES`, each bounded by ``RLIMIT_FSIZE``: its folder ``cwd`` is a
    tmpfs of ``folder_bytes`` (filled from a read-only view of the handed-in folder,
    :data:`INBOX`, by ``command``), ``/tmp`` one of ``tmp_bytes``, its ZeroMQ sockets
    live on a tmpfs of their own (the grader reaches them through ``/proc``, see
    :func:`link_sockets`), the rest is read-only, and it cannot create a user
    namespace of its own (in which it could mount more).
    """
    limits = limits or Limits()
    env = sandbox_env()
    args = [bwrap_path() or "bwrap",
            "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "grading", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--disable-userns", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += _mount_os()
    args += ["--ro-bind", str(Path(jail) / "passwd"), "/etc/passwd",
             "--ro-bind", str(Path(jail) / "group"), "/etc/group",
             "--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
             "--dir", SCRATCH, "--dir", SCRATCH + "/home", "--dir", SCRATCH + "/mpl",
             "--dir", SCRATCH + "/ipython"]
    args += _mount_python()
    args += _mount_kernel_files(private, connection_file)   # after /tmp: they may lie below it
    args += ["--ro-bind", str(cwd), INBOX,
             "--size", str(limits.folder_bytes), "--tmpfs", str(cwd),
             "--remount-ro", "/",
             "--chdir", str(cwd), *options, "--"] + list(command)
    return args


def _mount_kernel_files(private, connection_file):
    """A kernel's private folder (its options, and the files it writes) and its sockets' folder;
    none for the replay, which reads its plan on stdin and answers on stdout."""
    if private is None:
        return []
    args = ["--ro-bind", str(private), str(private)]
    for name in KERNEL_WRITES:
        args += ["--bind", str(Path(private) / name), str(Path(private) / name)]
    runtime = os.path.dirname(os.path.abspath(connection_file))
    return args + ["--size", str(SOCKET_FOLDER_BYTES), "--tmpfs", runtime,
                   "--ro-bind", str(connection_file), str(connection_file)]


def link_sockets(connection_file, sandbox_pid):
    """Make the kernel's ZeroMQ sockets, inside the sandbox, reachable at the paths the
    connection file names outside: a symbolic link each, through ``/proc/PID/root``."""
    with open(connection_file) as f:
        info = json.load(f)
    for key in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
        path = f"{info['ip']}-{info[key]}"
        if os.path.islink(path):   # left by an earlier kernel of the same connection file
            os.unlink(path)
        os.symlink(f"/proc/{sandbox_pid}/root{path}", path)


def write_jail(jail, limits=None, zygote=None):
    """Lay out the grader-side folder of one sandbox (never visible inside it).

    ``limits``: overrides of :class:`~classgrade.protocol.Limits`; ``zygote``: the socket of a
    :mod:`classgrade.trusted.zygote` that forks the kernel
    into the sandbox (warm); without it the sandbox starts a new interpreter (cold).
    """
    jail = Path(jail)
    jail.mkdir(parents=True, exist_ok=True)
    (jail / "passwd").write_text(f"student:x:{SANDBOX_UID}:{SANDBOX_UID}:student:{SCRATCH}/home:/bin/false\n")
    (jail / "group").write_text(f"student:x:{SANDBOX_UID}:\n")
    options = JailOptions(limits=Limits(**(limits or {})), zygote=zygote)
    (jail / "jail.json").write_text(options.to_json())


def write_private(private):
    """Create the files of :data:`KERNEL_WRITES` in ``private`` (bound into the sandbox one by one)."""
    for name in KERNEL_WRITES:
        (Path(private) / name).touch()


def _join_pids_cgroup(jail, limit, join=True):
    """Make a new ``pids`` cgroup of at most ``limit`` tasks, move this process into it unless
    ``join`` is false (then the zygote's fork joins it), and return its path.

    Only root can (it is also the one case where ``RLIMIT_NPROC`` does not hold).
    The path is written to ``jail/cgroup`` for :func:`release`.
    """
    if os.geteuid() != 0:
        return None
    for root in CGROUP_ROOTS:
        if not os.path.isfile(os.path.join(root, "cgroup.procs")):
            continue
        path = os.path.join(root, "classgrade-" + uuid.uuid4().hex[:12])
        try:
            os.mkdir(path)
        except OSError:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(limit))
            if join:
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
        except OSError:
            os.rmdir(path)
            continue
        (Path(jail) / "cgroup").write_text(path)
        return path
    return None


def release(jail):
    """Kill whatever is left in the sandbox's cgroup and remove the cgroup."""
    marker = Path(jail) / "cgroup"
    if not marker.exists():
        return
    path = marker.read_text().strip()
    for _ in range(50):
        try:
            pids = [int(p) for p in Path(path, "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        time.sleep(0.02)
    try:
        os.rmdir(path)
        marker.unlink()
    except OSError:
        pass


def _arguments(argv):
    """``(jail folder, private folder, connection file, the kernel's argv, entry)`` of the launcher's
    ``argv``: ``--jail DIR --private DIR -f FILE`` for a kernel, ``--jail DIR --replay`` for the replay."""
    argv = list(argv)
    jail = argv[argv.index("--jail") + 1]
    del argv[argv.index("--jail"):argv.index("--jail") + 2]
    if "--replay" in argv:
        return jail, None, None, [], "replay"
    private = argv[argv.index("--private") + 1]
    connection_file = os.path.abspath(argv[argv.index("-f") + 1])
    return jail, private, connection_file, argv, "kernel"


def _set_limits(jail, limits):
    """The launcher's own limits (inherited by bwrap and the kernel); ``(rlimits, cgroup)``,
    which the kernel's fork sets again once inside."""
    cgroup = _join_pids_cgroup(jail, limits.pids)
    rlimits = _limits_inside(limits, cgroup)
    for name, value in rlimits.items():
        if name != "RLIMIT_NPROC":
            resource.setrlimit(getattr(resource, name), (value, value))
    return rlimits, cgroup


def _limits_inside(limits, cgroup):
    """The resource limits that the kernel's (or the replay's) fork sets once inside the sandbox."""
    rlimits = dict(RLIMIT_FSIZE=limits.file_bytes, RLIMIT_NOFILE=limits.open_files, RLIMIT_CORE=0)
    if cgroup is None:
        # set in the sandbox only (namespaces.enter_unprivileged): there it counts the processes
        # of the sandbox's user namespace, not every process of the grader's account
        rlimits["RLIMIT_NPROC"] = limits.pids
    return rlimits


class WarmSandbox:
    """``entry`` (the replay) started in a new sandbox by the zygote, from this process: the
    launcher's work without the launcher's interpreter (~0.08 CPU s a submission).

    Its standard input and output are pipes of this process's (``stdin``, ``stdout``), its
    standard error the file ``stderr``; :meth:`kill` ends the sandbox (its holder is the PID
    namespace's init, so every process in it dies). Raises ``OSError`` if it cannot start.
    """

    def __init__(self, jail, cwd, stderr, entry="replay"):
        options = JailOptions.from_json((Path(jail) / "jail.json").read_text())
        cgroup = _join_pids_cgroup(jail, options.limits.pids, join=False)
        self.bwrap, sandbox_pid = _build(options, str(cwd), None, None, jail)
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        plan_read, plan_write = os.pipe()
        reply_read, reply_write = os.pipe()
        self.stdin, self.stdout = os.fdopen(plan_write, "wb"), os.fdopen(reply_read, "rb")
        try:
            if sandbox_pid is None or not options.zygote:
                raise OSError("the sandbox did not start" if sandbox_pid is None else "no warm kernels")
            request = KernelRequest(sandbox_pid=sandbox_pid, cwd=str(cwd), env=sandbox_env(), argv=[], entry=entry,
                                    rlimits=_limits_inside(options.limits, cgroup), cgroup=cgroup)
            self.conn.connect(options.zygote)
            socket.send_fds(self.conn, [request.to_json().encode()], [plan_read, reply_write, stderr.fileno()])
        except OSError:
            self.kill()
            self.wait()
            raise
        finally:
            os.close(plan_read)
            os.close(reply_write)

    def kill(self):
        self.bwrap.kill()

    def wait(self):
        self.bwrap.wait()
        self.conn.close()


class ForkedLauncher:
    """The launcher (:func:`launch`) in a fork of the grading process that starts the kernel,
    instead of a new interpreter that imports this module again (~0.07 CPU s a kernel). It is
    what jupyter_client's provisioner uses of a :class:`subprocess.Popen`: the process, in a
    session of its own (signalled by process group), with ``/dev/null`` as its stdin and
    ``output`` as its stdout and stderr, in the folder ``cwd``; nothing else of the grading
    process stays open in it.
    """

    stdin = stdout = stderr = None

    def __init__(self, argv, output, cwd):
        sys.stdout.flush()
        sys.stderr.flush()
        self.returncode = None
        self.pid = os.fork()
        if self.pid == 0:
            self._run(list(argv), output.fileno(), cwd)

    @staticmethod
    def _run(argv, output, cwd):
        code = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)   # the grading process's event loop's, not this process's
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
                signal.signal(signum, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            for target, fd in enumerate((null, output, output)):
                os.dup2(fd, target)
            os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            sys.stdout, sys.stderr = (open(fd, "w", buffering=1, closefd=False) for fd in (1, 2))
            os.chdir(cwd)
            launch(argv)
        except SystemExit as exc:   # as the interpreter ends: a message is printed, and its status is 1
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if isinstance(exc.code, str):
                os.write(2, exc.code.encode() + b"\n")
        except BaseException:  # noqa: BLE001 - on the submission's output, as the launcher's own
            os.write(2, traceback.format_exc().encode())
        finally:
            os._exit(code)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(LAUNCHER, timeout)
            time.sleep(0.005)
        return self.returncode

    def send_signal(self, signum):
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)


def launch(argv=None):
    """Entry point of the kernelspec (and of the replay): set the limits, build the sandbox,
    start the kernel (or the replay) in it."""
    jail, private, connection_file, kernel_argv, entry = _arguments(sys.argv[1:] if argv is None else argv)
    options = JailOptions.from_json((Path(jail) / "jail.json").read_text())
    runtime = connection_file and os.path.dirname(connection_file)
    if runtime and len(os.path.join(runtime, "kernel-" + "x" * 36 + "-ipc")) > IPC_PATH_MAX:
        sys.exit(f"classgrade: the socket folder {runtime} is too long a path for a Unix "
                 "socket; set TMPDIR to a short folder such as /tmp")
    rlimits, cgroup = _set_limits(jail, options.limits)
    request = KernelRequest(sandbox_pid=0, cwd=os.getcwd(), env=sandbox_env(), argv=kernel_argv, entry=entry,
                            rlimits=rlimits, cgroup=cgroup)
    sys.exit(_launch(options, private, connection_file, jail, request))


def _build(options, cwd, private, connection_file, jail):
    """Start bwrap holding the sandbox open; ``(bwrap, the sandbox's pid)``, or ``(bwrap, None)``."""
    info_read, info_write = os.pipe()
    # the holder is the namespace's PID 1, which its other processes cannot signal (kill(-1)
    # from the kernel would otherwise end the sandbox under it); it first fills the kernel's
    # folder, a tmpfs, with a copy of the handed-in one
    hold = ["/bin/sh", "-c", f"cp -R {INBOX}/. . && echo ready && exec sleep infinity"]
    args = bwrap_argv(cwd=cwd, private=private, connection_file=connection_file, jail=jail, command=hold,
                      limits=options.limits, options=["--as-pid-1", "--info-fd", str(info_write)])
    bwrap = subprocess.Popen(args, pass_fds=(info_write,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             env={"PATH": "/usr/bin:/bin"})
    os.close(info_write)
    with os.fdopen(info_read, "rb") as info:
        sandbox_pid = json.loads(info.read() or b"{}").get("child-pid")   # bwrap closes it once the child runs
    if bwrap.stdout.readline().strip() != b"ready" or not sandbox_pid:
        return bwrap, None
    return bwrap, sandbox_pid


def _launch(options, private, connection_file, jail, request):
    """Build the sandbox with bwrap, holding it open with a sleeping process, and start the
    kernel in it; return the kernel's exit status.

    The kernel is forked into the sandbox by the zygote (warm), or by this launcher, which
    then runs a new interpreter (cold); either way it joins the sandbox's namespaces
    (:func:`classgrade.trusted.namespaces.enter`) and lives in its PID namespace, so it dies
    with bwrap, which dies with this launcher (``--die-with-parent``), which is what the
    kernel manager kills. The launcher's stdout and stderr, which bwrap and the kernel
    inherit, are the submission's output file (:class:`classgrade.trusted.kernels.KernelManager`).
    """
    bwrap, sandbox_pid = _build(options, request.cwd, private, connection_file, jail)
    try:
        if sandbox_pid is None:
            print("classgrade: the sandbox did not start", file=sys.stderr)
            return 1
        if connection_file:
            link_sockets(connection_file, sandbox_pid)
        request.sandbox_pid = sandbox_pid
        return _warm(options.zygote, request) if options.zygote else _cold(request)
    finally:
        bwrap.kill()
        bwrap.wait()


def _warm(zygote, request):
    """Have the zygote fork the kernel into the sandbox; its exit status."""
    status = 1
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(zygote)
            socket.send_fds(conn, [request.to_json().encode()], [0, 1, 2])
            for line in conn.makefile("rb"):
                report = ZygoteReport.from_json(line)
                status = status if report.status is None else report.status
        except OSError as error:
            print(f"classgrade: no warm kernel ({zygote}): {error}", file=sys.stderr)
    return status


def _cold(request):
    """Join the sandbox in a fork and start a new interpreter there; its exit status."""
    child = os.fork()
    if child == 0:
        code = 127
        try:
            enter_unprivileged(request)
            os.chdir(request.cwd)
            kernel = os.fork()   # the first process in the sandbox's PID namespace
            if kernel == 0:
                command = [sys.executable, "-m", ENTRIES[request.entry]] + request.argv
                os.execve(command[0], command, request.env)
            code = os.waitstatus_to_exitcode(os.waitpid(kernel, 0)[1])
        except BaseException as exc:  # noqa: BLE001 - reported, as the zygote does
            os.write(2, f"classgrade: could not start the kernel: {exc}\n".encode())
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])


# what the kernels import, which the check finds in a sandbox (finds: importing torch takes
# a second and more)
SANDBOX_MODULES = ("convlab", "torch", "numpy", "ipykernel", "classgrade.protocol", KERNEL_MODULE)
CHECK_SOURCE = ("import importlib.util, os, sys\n"
                "missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]\n"
                "if missing: raise SystemExit('the sandbox cannot import ' + ', '.join(missing))\n"
                "print(os.getuid())")


def check():
    """Start one trivial sandbox; raise :class:`SandboxUnavailable` saying why it cannot start."""
    path = bwrap_path()
    fix = "or grade without a sandbox with --no-sandbox (only for code you trust)"
    if not path or not os.access(path, os.X_OK):
        raise SandboxUnavailable(
            "classgrade: cannot sandbox the grading kernels: bubblewrap (bwrap) is not "
            f"installed; install it (Debian/Ubuntu: apt-get install bubblewrap), {fix}")
    with tempfile.TemporaryDirectory(prefix="classgrade-check-") as tmp:
        jail = Path(tmp) / "jail"
        write_jail(jail)
        folders = [Path(tmp) / name for name in ("cwd", "private", "runtime")]
        for folder in folders:
            folder.mkdir()
        write_private(folders[1])
        (folders[2] / "kernel.json").write_text("{}")
        args = bwrap_argv(cwd=folders[0], private=folders[1], connection_file=folders[2] / "kernel.json",
                          jail=jail, command=[sys.executable, "-c", CHECK_SOURCE, *SANDBOX_MODULES])
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
        except OSError as error:
            raise SandboxUnavailable(f"classgrade: cannot run {path}: {error}; {fix}") from None
    if proc.returncode != 0 or proc.stdout.strip() != str(SANDBOX_UID):
        said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        hint = ""
        if "namespace" in said or "uid map" in said or "Operation not permitted" in said \
                or "Permission denied" in said:
            hint = (" (user namespaces are switched off: on Ubuntu 24.04 allow them for bwrap with an "
                    "AppArmor profile, or sysctl kernel.apparmor_restrict_unprivileged_userns=0; "
                    "elsewhere sysctl user.max_user_namespaces=15000)")
        raise SandboxUnavailable(
            f"classgrade: cannot sandbox the grading kernels: bwrap failed: {said}{hint}; {fix}")


def copy_checked(src, dst, *, max_file_bytes=50 * 2**20, max_total_bytes=200 * 2**20,
                 max_files=2000, skip=(".ipynb_checkpoints",)):
    """Copy the tree ``src`` to ``dst``: regular files and folders only, sizes bounded.

    Symbolic links (even inside the tree), devices, sockets and pipes are not
    followed or copied, nor files past the bounds; returns one line per thing
    left out, for the report. Files are opened with ``O_NOFOLLOW``, so a link
    swapped in during the copy is not followed either.
    """
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    skipped, total, count = [], 0, 0
    for root, dirs, files in os.walk(src, followlinks=False):
        rel = Path(root).relative_to(src)
        for name in sorted(dirs):
            full = Path(root) / name
            if name in skip:
                dirs.remove(name)
            elif full.is_symlink():
                skipped.append(f"{rel / name}: a symbolic link, not copied")
                dirs.remove(name)
            else:
                (dst / rel / name).mkdir(exist_ok=True)
        for name in sorted(files):
            full, what = Path(root) / name, rel / name
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                skipped.append(f"{what}: {kind}, not copied")
                continue
            if st.st_size > max_file_bytes or total + st.st_size > max_total_bytes or count >= max_files:
                skipped.append(f"{what}: {st.st_size} bytes, past the size limits, not copied")
                continue
            try:
                fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                skipped.append(f"{what}: could not be read safely, not copied")
                continue
            with os.fdopen(fd, "rb") as fin, open(dst / what, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            total += st.st_size
            count += 1
    return skipped


if __name__ == "__main__":
    launch()
