"""The grading kernel: an IPython kernel that a submission cannot escape lightly.

``python -m convlab.classgrade.sandbox --private DIR -f CONNECTION_FILE``
is the ``argv`` of the kernelspec that :mod:`convlab.classgrade.worker`
writes for each submission. Before any student code runs it

1. sets ``RLIMIT_AS`` (the memory limit: an allocation beyond it raises
   ``MemoryError``/``RuntimeError`` in the student's cell instead of taking
   the machine down) and switches core dumps off;
2. imports torch, numpy and convlab, then records a *baseline*: the identity
   of every callable in those modules, in ``builtins`` and in the IPython
   machinery that reports errors (see :data:`FINGERPRINT_SOURCE`). The check
   cell that the worker places after each test cell compares against it, so a
   submission that monkeypatches ``torch.allclose`` or the checking helpers
   loses the points of every test that ran under the patch;
3. installs a Python audit hook (it cannot be removed) that refuses writes
   outside the submission's folder and the private scratch folder, starting
   processes, and signalling other processes, and logs each refusal;
4. hands the values of every check of :mod:`convlab.grading` to the grader's
   ledger (:mod:`convlab.classgrade.ledger`), tagged with the running cell;
5. logs the hash of each cell as it starts, so a cell that kills the kernel
   or hangs it past the wall-clock limit can be named, and skips the cells
   listed in ``skip.txt`` (the worker lists them there before retrying).
"""
import hashlib
import json
import os
import resource
import sys

# What every grading kernel imports before the first cell (and before its fingerprints)
PREIMPORT = ["torch", "numpy", "convlab", "convlab.grading"]


def preimport(names):
    """Import ``names``; convlab's public names too (its ``__init__`` loads them lazily), so
    that a later ``convlab.corr2d`` adds nothing to the fingerprinted namespace."""
    for name in names:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module is fine
            continue
        if name == "convlab":
            sys.modules[name].load_all()


# Executed verbatim here (baseline) and in every check cell (current state).
# Maps "what" -> "identity". Identities are ids within this one process, plus
# a type/qualname so that a recycled id cannot pass for the original.
FINGERPRINT_SOURCE = r'''
def _classgrade_fingerprints():
    import builtins, sys, types
    out = {}
    # torch rewraps a few of its own functions on first use (torch._dynamo wraps
    # torch.manual_seed when torch.optim loads): a functools.wraps wrapper whose code lives
    # inside torch or numpy stands for what it wraps; a student's wrapper does not.
    trusted = tuple(m.__file__.rsplit("/", 1)[0] + "/" for m in
                    (sys.modules.get("torch"), sys.modules.get("numpy"))
                    if m is not None and getattr(m, "__file__", None))
    def unwrap(obj):
        for _ in range(8):
            if not isinstance(obj, types.FunctionType) or not trusted:
                return obj
            inner = obj.__dict__.get("__wrapped__")
            if inner is None or not obj.__code__.co_filename.startswith(trusted):
                return obj
            obj = inner
        return obj
    def ident(obj):
        obj = unwrap(obj)
        return "%d:%s:%s" % (id(obj), type(obj).__name__, getattr(obj, "__qualname__", ""))
    def walk(prefix, namespace, only_callables=True):
        for name, obj in list(namespace.items()):
            if name.startswith("_") and not name.startswith("__"):
                continue
            if only_callables and not callable(obj):
                continue
            out[prefix + name] = ident(obj)
    watched = ["torch", "torch.testing", "torch.nn.functional", "numpy", "numpy.testing",
               "math", "operator", "functools", "importlib", "json", "io", "os"]
    watched += sorted(m for m in sys.modules if m == "convlab" or m.startswith("convlab.")
                      and not m.startswith("convlab.classgrade"))
    for mod in watched:
        module = sys.modules.get(mod)
        out["sys.modules[%s]" % mod] = ident(module)
        if module is not None:
            walk(mod + ".", vars(module))
    for name in ("__import__", "__build_class__"):
        out["builtins." + name] = ident(getattr(builtins, name))
    # ipykernel rebinds input/getpass per request, and exit/quit at start
    walk("builtins.", {k: v for k, v in vars(builtins).items()
                       if not k.startswith("_") and k not in ("input", "exit", "quit")})
    torch = sys.modules.get("torch")
    if torch is not None:
        for cls in (torch.Tensor, torch._C.TensorBase):
            walk("%s." % cls.__name__, dict(vars(cls)), only_callables=False)
    try:
        shell = get_ipython()
    except NameError:
        shell = None
    if shell is not None:
        out["shell"] = ident(shell)
        out["shell.custom_exceptions"] = repr(shell.custom_exceptions)
        out["shell.CustomTB"] = ident(shell.CustomTB)
        # hooks and transformers could rewrite or undo around a test cell; matplotlib's
        # inline backend legitimately adds post_execute callbacks, so only others count
        trusted = ("IPython.", "ipykernel.", "matplotlib_inline.", "matplotlib.")
        out["shell.events"] = repr(sorted(
            (event, [ident(f) for f in fs if not str(getattr(f, "__module__", "")).startswith(trusted)])
            for event, fs in shell.events.callbacks.items()))
        for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            out["shell." + attr] = repr([ident(f) for f in getattr(shell, attr, [])])
        manager = getattr(shell, "input_transformer_manager", None)
        for attr in ("cleanup_transforms", "line_transforms", "token_transformers"):
            out["shell.input_transformer_manager." + attr] = repr(
                [ident(f) for f in getattr(manager, attr, [])])
    out["sys.gettrace()"] = ident(sys.gettrace())
    out["sys.getprofile()"] = ident(sys.getprofile())
    if shell is not None:
        for owner, label in ((shell, "shell"), (getattr(shell, "kernel", None), "kernel"),
                             (getattr(getattr(shell, "kernel", None), "session", None), "session"),
                             (getattr(shell, "displayhook", None), "displayhook")):
            if owner is None:
                continue
            out[label + ".__dict__ overrides"] = repr(sorted(
                k for k, v in vars(owner).items() if callable(v) and hasattr(type(owner), k)))
            for klass in type(owner).__mro__:
                for name, obj in vars(klass).items():
                    if callable(obj) and not name.startswith("__"):
                        out.setdefault("%s.%s.%s" % (label, klass.__name__, name), ident(obj))
    return out
'''

CHECK_MARK = "classgrade-integrity"


def check_cell_source(baseline_path):
    """Source of the cell placed after each test cell: prints one verdict line."""
    return (
        "# Added by convlab.classgrade: checks that the test above ran with the\n"
        "# original torch, numpy, convlab and IPython (nothing monkeypatched).\n"
        + FINGERPRINT_SOURCE
        + "\ndef _classgrade_check(path=%r):\n" % str(baseline_path)
        + "    import json\n"
        "    with open(path) as f:\n"
        "        base = json.load(f)\n"
        "    now = _classgrade_fingerprints()\n"
        "    bad = sorted(k for k, v in base.items() if now.get(k) != v)\n"
        "    return %r + (': ok' if not bad else ': modified ' + ', '.join(bad[:20]))\n"
        % CHECK_MARK
        + "print(_classgrade_check())\n"
        "del _classgrade_check, _classgrade_fingerprints\n"
    )


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
        os.write(log_fd, ("refused " + what.replace("\n", " ") + "\n").encode())
        raise PermissionError("convlab.classgrade: not allowed while grading: " + what)

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


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    private = argv[argv.index("--private") + 1]
    del argv[argv.index("--private"):argv.index("--private") + 2]
    with open(os.path.join(private, "sandbox.json")) as f:
        opts = json.load(f)
    memory = opts.get("memory_bytes")
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with open(os.path.join(private, "skip.txt")) as f:  # worker.prepare always writes it
        skip = {line.split()[0]: line.split(None, 1)[1].strip() for line in f if line.strip()}
    log_fd = os.open(os.path.join(private, "kernel.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    # Heavy imports before the baseline: they are what the checks rely on.
    preimport(opts.get("preimport", []))
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    # CRITICAL: no "To connect another client to this kernel" banner on the grader's terminal
    # no history database: an sqlite file and a saving thread that grading never reads
    app.initialize(argv + ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.enabled=False"])
    shell = app.shell
    namespace = {"get_ipython": lambda: shell}
    exec(FINGERPRINT_SOURCE, namespace)
    state = {"baseline": False}
    baseline_fd = os.open(os.path.join(private, "baseline.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)

    # every check of convlab.grading hands its values to the grader's ledger, tagged by cell
    from convlab import grading
    from . import ledger
    writer = ledger.Writer(os.open(os.path.join(private, ledger.FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT))
    grading._ledger = writer

    def pre_run_cell(info):
        writer.cell = cell_hash(info.raw_cell)
        if not state["baseline"]:  # first cell: the kernel is up, no student code has run
            state["baseline"] = True
            os.write(baseline_fd, json.dumps(namespace["_classgrade_fingerprints"]()).encode())
            os.close(baseline_fd)
        os.write(log_fd, ("start %s\n" % cell_hash(info.raw_cell)).encode())

    def skip_transform(lines):
        reason = skip.get(cell_hash("".join(lines)))
        if reason is None:
            return lines
        return ["raise RuntimeError(%r)\n" % ("convlab.classgrade did not run this cell: " + reason)]

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.input_transformers_cleanup.insert(0, skip_transform)
    roots = [os.path.realpath(os.getcwd()), os.path.realpath(opts["scratch"])]
    _install_audit_hook(roots, log_fd)
    app.start()


def cell_hash(source):
    """Short stable hash of a cell's source, as logged by the kernel."""
    return hashlib.sha1(source.strip().encode()).hexdigest()[:16]


if __name__ == "__main__":
    main()
