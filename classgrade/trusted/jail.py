"""The OS-level sandbox around each grading kernel: bubblewrap (``bwrap``).

``python -m convlab.classgrade.jail --jail DIR --private DIR -f CONNECTION_FILE`` is
the ``argv`` of the kernelspec that :mod:`convlab.classgrade.worker` writes for a
sandboxed submission. It runs as the grader, outside the sandbox, for as long as
the kernel runs: it reads the limits that the worker left in ``DIR/jail.json``,
puts itself in a ``pids`` cgroup when the grader is root, sets the resource
limits, and starts ``bwrap``, which builds new user, mount, PID, IPC, UTS and network
namespaces and holds them open; the kernel (:mod:`convlab.classgrade.sandbox`)
is forked into them by the zygote, or by the launcher for a new interpreter:

- **network**: none. The network namespace has only its own loopback, which
  reaches nothing outside the sandbox. The kernel talks to the grader over
  ZeroMQ's ``ipc`` transport: Unix sockets on a small tmpfs of the sandbox's,
  which the grader reaches through ``/proc/PID/root`` (:func:`link_sockets`).
- **files**: the operating system (``/usr``), the Python installation, the
  virtual environment and the ``convlab`` package, read-only, and so is the
  rest of the root. Writable: the notebook's folder, a bounded tmpfs that the
  sandbox fills with a copy of the handed-in folder (:data:`INBOX`); a private
  ``/tmp`` of bounded size; and the three files of :data:`KERNEL_WRITES` in the
  kernel's private folder, which it cannot add to. No user namespace can be
  made inside (``--disable-userns``), so no more can be mounted. Nothing else
  exists: no course source, no gradebook, no other submission, no home folder,
  no ``/etc/passwd`` but a two-line stand-in.
- **processes**: PID 1 of the namespace is bwrap's; the kernel sees only its
  own processes, cannot signal or trace the grader, and every process it
  starts dies with the namespace (``--die-with-parent``, and the worker kills
  what is left in the cgroup).
- **user**: uid/gid 65534 inside, all capabilities dropped, ``no_new_privs``.
- **limits**: address space (in the kernel, :mod:`.sandbox`), file size
  (``RLIMIT_FSIZE``), open files, processes (a ``pids`` cgroup when the grader
  is root, where ``RLIMIT_NPROC`` does not hold; ``RLIMIT_NPROC`` otherwise).

:func:`check` runs one trivial sandbox before a class is graded, so that a
machine without ``bwrap`` or without user namespaces is refused up front, in
one line that says how to fix it. :func:`copy_checked` copies a submission in
and its results out: regular files and folders only, sizes bounded.
"""
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SANDBOX_UID = 65534
BWRAP_ENV = "CLASSGRADE_BWRAP"      # path of bwrap, for machines that keep it elsewhere
CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
DEFAULT_LIMITS = dict(pids=256, file_bytes=64 * 2**20, tmp_bytes=256 * 2**20, folder_bytes=256 * 2**20,
                      open_files=1024)
SCRATCH = "/tmp/scratch"             # the kernel's HOME and TMPDIR, on the sandbox's own /tmp
INBOX = "/run/submission"            # the submission's folder as handed in, read-only, inside
# The only files of the grader's that a kernel writes (in its private folder, which it cannot add to).
KERNEL_WRITES = ("kernel.log", "baseline.json", "ledger.jsonl")
SOCKET_FOLDER_BYTES = 2**20          # the kernel's ZeroMQ sockets, on a tmpfs of its own
IPC_PATH_MAX = 100                  # sun_path holds 108 bytes; ZeroMQ adds "-N"


class SandboxUnavailable(RuntimeError):
    """The grading sandbox cannot start on this machine (the message says why and what to do)."""


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


def _mount_python():
    """bwrap arguments for the read-only Python environment and convlab (after /tmp: a
    virtual environment or a clone may lie below it)."""
    args = []
    import importlib.util
    package = importlib.util.find_spec("convlab").submodule_search_locations  # not imported
    trees = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix, *package)}
    trees.add(os.path.dirname(os.path.realpath(sys.executable)))
    for tree in sorted(trees):   # a parent before its children
        if not any(tree != other and tree.startswith(other + os.sep) for other in trees) \
                and not tree.startswith("/usr/"):
            args += ["--ro-bind", tree, tree]
    return args


def sandbox_env():
    """The whole environment of a sandboxed kernel (bwrap starts from an empty one)."""
    return dict(PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin", HOME=SCRATCH + "/home",
                TMPDIR=SCRATCH, MPLCONFIGDIR=SCRATCH + "/mpl", IPYTHONDIR=SCRATCH + "/ipython",
                MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYDEVD_DISABLE_FILE_VALIDATION="1", LANG="C.UTF-8", PYTHONDONTWRITEBYTECODE="1")


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
    limits = dict(DEFAULT_LIMITS, **(limits or {}))
    env = sandbox_env()
    runtime = os.path.dirname(os.path.abspath(connection_file))
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
             "--size", str(limits["tmp_bytes"]), "--tmpfs", "/tmp",
             "--dir", SCRATCH, "--dir", SCRATCH + "/home", "--dir", SCRATCH + "/mpl",
             "--dir", SCRATCH + "/ipython"]
    args += _mount_python()
    # after /tmp: they may lie below it
    args += ["--ro-bind", str(private), str(private)]
    for name in KERNEL_WRITES:
        args += ["--bind", str(Path(private) / name), str(Path(private) / name)]
    args += ["--size", str(SOCKET_FOLDER_BYTES), "--tmpfs", runtime,
             "--ro-bind", str(connection_file), str(connection_file),
             "--ro-bind", str(cwd), INBOX,
             "--size", str(limits["folder_bytes"]), "--tmpfs", str(cwd),
             "--remount-ro", "/",
             "--chdir", str(cwd), *options, "--"] + list(command)
    return args


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

    ``zygote``: the socket of a :mod:`convlab.classgrade.zygote` that forks the kernel
    into the sandbox (warm); without it the sandbox starts a new interpreter (cold).
    """
    jail = Path(jail)
    jail.mkdir(parents=True, exist_ok=True)
    (jail / "passwd").write_text(f"student:x:{SANDBOX_UID}:{SANDBOX_UID}:student:{SCRATCH}/home:/bin/false\n")
    (jail / "group").write_text(f"student:x:{SANDBOX_UID}:\n")
    (jail / "jail.json").write_text(json.dumps(dict(DEFAULT_LIMITS, **(limits or {}), zygote=zygote)))


def write_private(private):
    """Create the files of :data:`KERNEL_WRITES` in ``private`` (bound into the sandbox one by one)."""
    for name in KERNEL_WRITES:
        (Path(private) / name).touch()


def _join_pids_cgroup(jail, limit):
    """Move this process into a new ``pids`` cgroup of at most ``limit`` tasks; return its path.

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


def launch(argv=None):
    """Entry point of the kernelspec: set the limits, build the sandbox, start the kernel in it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    jail = argv[argv.index("--jail") + 1]
    del argv[argv.index("--jail"):argv.index("--jail") + 2]
    private = argv[argv.index("--private") + 1]
    connection_file = os.path.abspath(argv[argv.index("-f") + 1])
    limits = json.loads((Path(jail) / "jail.json").read_text())
    runtime = os.path.dirname(connection_file)
    if len(os.path.join(runtime, "kernel-" + "x" * 36 + "-ipc")) > IPC_PATH_MAX:
        sys.exit(f"convlab.classgrade: the socket folder {runtime} is too long a path for a Unix "
                 "socket; set TMPDIR to a short folder such as /tmp")
    cgroup = _join_pids_cgroup(jail, limits["pids"])
    rlimits = dict(RLIMIT_FSIZE=limits["file_bytes"], RLIMIT_NOFILE=limits["open_files"], RLIMIT_CORE=0)
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if cgroup is None:
        # set in the sandbox only (:func:`enter_and_limit`): there it counts the processes of the
        # sandbox's user namespace, not every process of the grader's account
        rlimits["RLIMIT_NPROC"] = limits["pids"]
    sys.exit(_launch(limits, os.getcwd(), private, connection_file, jail, argv, rlimits, cgroup))


def _launch(limits, cwd, private, connection_file, jail, kernel_argv, rlimits, cgroup):
    """Build the sandbox with bwrap, holding it open with a sleeping process, and start the
    kernel in it; return the kernel's exit status.

    The kernel is forked into the sandbox by the zygote (warm), or by this launcher, which
    then runs a new interpreter (cold); either way it joins the sandbox's namespaces
    (:func:`convlab.classgrade.zygote.enter`) and lives in its PID namespace, so it dies
    with bwrap, which dies with this launcher (``--die-with-parent``), which is what the
    kernel manager kills.
    """
    info_read, info_write = os.pipe()
    # the holder is the namespace's PID 1, which its other processes cannot signal (kill(-1)
    # from the kernel would otherwise end the sandbox under it); it first fills the kernel's
    # folder, a tmpfs, with a copy of the handed-in one
    hold = ["/bin/sh", "-c", f"cp -R {INBOX}/. . && echo ready && exec sleep infinity"]
    args = bwrap_argv(cwd=cwd, private=private, connection_file=connection_file, jail=jail, command=hold,
                      limits=limits, options=["--as-pid-1", "--info-fd", str(info_write)])
    bwrap = subprocess.Popen(args, pass_fds=(info_write,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             env={"PATH": "/usr/bin:/bin"})
    os.close(info_write)
    with os.fdopen(info_read, "rb") as info:
        sandbox_pid = json.loads(info.read() or b"{}").get("child-pid")   # bwrap closes it once the child runs
    if bwrap.stdout.readline().strip() != b"ready" or not sandbox_pid:
        print("convlab.classgrade: the sandbox did not start", file=sys.stderr)
        bwrap.kill()
        return 1
    link_sockets(connection_file, sandbox_pid)
    request = dict(sandbox_pid=sandbox_pid, cwd=cwd, env=sandbox_env(), argv=kernel_argv,
                   rlimits=rlimits, cgroup=cgroup)
    try:
        if limits.get("zygote"):
            return _warm(limits["zygote"], request)
        return _cold(request)
    finally:
        bwrap.kill()
        bwrap.wait()


def _warm(zygote, request):
    """Have the zygote fork the kernel into the sandbox; its exit status."""
    import socket
    status = 1
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(zygote)
            socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
            for line in conn.makefile("rb"):
                status = json.loads(line).get("status", status)
        except OSError as error:
            print(f"convlab.classgrade: no warm kernel ({zygote}): {error}", file=sys.stderr)
    return status


def _cold(request):
    """Join the sandbox in a fork and start a new interpreter there; its exit status."""
    import importlib.util
    # by path: importing the package would import torch, which only the kernel needs
    spec = importlib.util.spec_from_file_location("classgrade_zygote", Path(__file__).with_name("zygote.py"))
    zygote = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zygote)
    child = os.fork()
    if child == 0:
        code = 127
        try:
            zygote.enter_unprivileged(request)
            os.chdir(request["cwd"])
            kernel = os.fork()   # the first process in the sandbox's PID namespace
            if kernel == 0:
                command = [sys.executable, "-m", "convlab.classgrade.sandbox"] + request["argv"]
                os.execve(command[0], command, request["env"])
            code = os.waitstatus_to_exitcode(os.waitpid(kernel, 0)[1])
        except BaseException as exc:  # noqa: BLE001 - reported, as the zygote does
            os.write(2, f"convlab.classgrade: could not start the kernel: {exc}\n".encode())
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])


# what the kernels import, which the check finds in a sandbox (finds: importing torch takes
# a second and more)
SANDBOX_MODULES = ("convlab", "torch", "numpy", "ipykernel")
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
            "convlab.classgrade: cannot sandbox the grading kernels: bubblewrap (bwrap) is not "
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
            raise SandboxUnavailable(f"convlab.classgrade: cannot run {path}: {error}; {fix}") from None
    if proc.returncode != 0 or proc.stdout.strip() != str(SANDBOX_UID):
        said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        hint = ""
        if "namespace" in said or "uid map" in said or "Operation not permitted" in said \
                or "Permission denied" in said:
            hint = (" (user namespaces are switched off: on Ubuntu 24.04 allow them for bwrap with an "
                    "AppArmor profile, or sysctl kernel.apparmor_restrict_unprivileged_userns=0; "
                    "elsewhere sysctl user.max_user_namespaces=15000)")
        raise SandboxUnavailable(
            f"convlab.classgrade: cannot sandbox the grading kernels: bwrap failed: {said}{hint}; {fix}")


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
