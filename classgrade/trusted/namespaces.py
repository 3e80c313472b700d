"""Enter a bubblewrap sandbox from outside it: join its namespaces, drop every privilege.

Runs as the grader, in the fork that becomes a kernel (of the zygote, warm, or of the
launcher, cold; see :mod:`.zygote` and :mod:`.jail`): ``setns(2)`` into the sandbox's
namespaces, as ``nsenter(1)`` does, then no capability, ``no_new_privs`` and the limits of
the :class:`classgrade.protocol.KernelRequest`.
"""
import ctypes
import fcntl
import os
import resource

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
    enter(request.sandbox_pid)
    drop_privileges()
    for name, value in request.rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def assert_unprivileged():
    """Raise unless this process has no capability and ``no_new_privs`` (read in its own /proc)."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f)
    caps = {key: int(status[key], 16) for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb")}
    if any(caps.values()) or status["NoNewPrivs"].strip() != "1":
        raise OSError(f"the kernel is not unprivileged: {caps}, NoNewPrivs {status['NoNewPrivs'].strip()}")
