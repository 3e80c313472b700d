"""The integrity check around each test cell: fingerprints of what the checks rely on.

Runs in the grading kernel, inside the sandbox. :data:`FINGERPRINT_SOURCE` is executed
verbatim by the kernel before any student code (its baseline, :mod:`.kernel`) and in the
check cell that the grader places after each test cell (:func:`check_cell_source`), which
prints one verdict line (:data:`CHECK_MARK`) that the grader reads in the graded notebook.
"""

CHECK_PREFIX = "# Added by classgrade"   # a check cell's first line; a student's copy is removed
CHECK_MARK = "classgrade-integrity"     # starts the verdict line

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
    watched += sorted(m for m in sys.modules if m == "convlab" or m.startswith("convlab."))
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

def check_cell_source(baseline_path):
    """Source of the cell placed after each test cell: prints one verdict line."""
    return (
        CHECK_PREFIX + ": checks that the test above ran with the\n"
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
