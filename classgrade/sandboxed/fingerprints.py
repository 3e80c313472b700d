"""The integrity check around each test cell: fingerprints of what the checks rely on.

Runs in the grading kernel, inside the sandbox. The kernel records :func:`fingerprints`
before any student code runs (its baseline, :mod:`.kernel`). The check cell that the grader
places after each test cell (:func:`check_cell_source`) executes this file afresh, from its
read-only copy in the sandbox, in a namespace of its own: the functions that compare are new
objects each time, not ones the notebook could have replaced; it prints one verdict line
(:data:`CHECK_MARK`), which the grader reads in the graded notebook. (A tripwire for the
naive patch: what decides a test's points is the replay, outside the kernel.)
"""
import builtins
import json
import sys
import types

CHECK_PREFIX = "# Added by classgrade"   # a check cell's first line; a student's copy is removed
CHECK_MARK = "classgrade-integrity"     # starts the verdict line
RUN_AS_CHECK = "classgrade-check"       # this file's __name__ when a check cell executes it


WATCHED = ["torch", "torch.testing", "torch.nn.functional", "numpy", "numpy.testing",
           "math", "operator", "functools", "importlib", "json", "io", "os"]   # and convlab's modules
# hooks and transformers could rewrite or undo around a test cell; matplotlib's inline
# backend legitimately adds post_execute callbacks, so only others count
TRUSTED_HOOKS = ("IPython.", "ipykernel.", "matplotlib_inline.", "matplotlib.")


def fingerprints():
    """``{what: identity}`` of everything the checks rely on, in this process now."""
    ipython = sys.modules.get("IPython")   # loaded in a kernel; not imported here for the grader's sake
    shell = ipython.get_ipython() if ipython is not None else None
    prints = _Fingerprints()
    prints.modules()
    prints.builtins()
    prints.tensor()
    if shell is not None:
        prints.shell(shell)
    prints.out["sys.gettrace()"] = prints.ident(sys.gettrace())
    prints.out["sys.getprofile()"] = prints.ident(sys.getprofile())
    if shell is not None:
        prints.shell_methods(shell)
    return prints.out


class _Fingerprints:
    """Maps "what" -> "identity". Identities are ids within this one process, plus a
    type/qualname so that a recycled id cannot pass for the original."""

    def __init__(self):
        self.out = {}
        # torch rewraps a few of its own functions on first use (torch._dynamo wraps
        # torch.manual_seed when torch.optim loads): a functools.wraps wrapper whose code lives
        # inside torch or numpy stands for what it wraps; a student's wrapper does not.
        self.trusted = tuple(m.__file__.rsplit("/", 1)[0] + "/" for m in
                             (sys.modules.get("torch"), sys.modules.get("numpy"))
                             if m is not None and getattr(m, "__file__", None))

    def unwrap(self, obj):
        for _ in range(8):
            if not isinstance(obj, types.FunctionType) or not self.trusted:
                return obj
            inner = obj.__dict__.get("__wrapped__")
            if inner is None or not obj.__code__.co_filename.startswith(self.trusted):
                return obj
            obj = inner
        return obj

    def ident(self, obj):
        obj = self.unwrap(obj)
        return "%d:%s:%s" % (id(obj), type(obj).__name__, getattr(obj, "__qualname__", ""))

    def walk(self, prefix, namespace, only_callables=True):
        for name, obj in list(namespace.items()):
            if name.startswith("_") and not name.startswith("__"):
                continue
            if only_callables and not callable(obj):
                continue
            self.out[prefix + name] = self.ident(obj)

    def modules(self):
        watched = WATCHED + sorted(m for m in sys.modules if m == "convlab" or m.startswith("convlab."))
        for mod in watched:
            module = sys.modules.get(mod)
            self.out["sys.modules[%s]" % mod] = self.ident(module)
            if module is not None:
                self.walk(mod + ".", vars(module))

    def builtins(self):
        for name in ("__import__", "__build_class__"):
            self.out["builtins." + name] = self.ident(getattr(builtins, name))
        # ipykernel rebinds input/getpass per request, and exit/quit at start
        self.walk("builtins.", {k: v for k, v in vars(builtins).items()
                                if not k.startswith("_") and k not in ("input", "exit", "quit")})

    def tensor(self):
        torch = sys.modules.get("torch")
        if torch is not None:
            for cls in (torch.Tensor, torch._C.TensorBase):
                self.walk("%s." % cls.__name__, dict(vars(cls)), only_callables=False)

    def shell(self, shell):
        """What reports a cell's errors and what rewrites a cell before it runs."""
        out, ident = self.out, self.ident
        out["shell"] = ident(shell)
        out["shell.custom_exceptions"] = repr(shell.custom_exceptions)
        out["shell.CustomTB"] = ident(shell.CustomTB)
        out["shell.events"] = repr(sorted(
            (event, [ident(f) for f in fs if not str(getattr(f, "__module__", "")).startswith(TRUSTED_HOOKS)])
            for event, fs in shell.events.callbacks.items()))
        for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            out["shell." + attr] = repr([ident(f) for f in getattr(shell, attr, [])])
        manager = getattr(shell, "input_transformer_manager", None)
        for attr in ("cleanup_transforms", "line_transforms", "token_transformers"):
            out["shell.input_transformer_manager." + attr] = repr(
                [ident(f) for f in getattr(manager, attr, [])])

    def shell_methods(self, shell):
        """The methods of the shell, the kernel, its session and the display hook."""
        kernel = getattr(shell, "kernel", None)
        for owner, label in ((shell, "shell"), (kernel, "kernel"), (getattr(kernel, "session", None), "session"),
                             (getattr(shell, "displayhook", None), "displayhook")):
            if owner is None:
                continue
            self.out[label + ".__dict__ overrides"] = repr(sorted(
                k for k, v in vars(owner).items() if callable(v) and hasattr(type(owner), k)))
            for klass in type(owner).__mro__:
                for name, obj in vars(klass).items():
                    if callable(obj) and not name.startswith("__"):
                        self.out.setdefault("%s.%s.%s" % (label, klass.__name__, name), self.ident(obj))


def verdict(baseline_path):
    """The check cell's verdict line: :data:`CHECK_MARK` and ``ok``, or what changed."""
    with open(baseline_path) as f:
        base = json.load(f)
    now = fingerprints()
    bad = sorted(k for k, v in base.items() if now.get(k) != v)
    return CHECK_MARK + (": ok" if not bad else ": modified " + ", ".join(bad[:20]))


def check_cell_source(baseline_path):
    """Source of the cell placed after each test cell: executes this file, which prints one verdict line."""
    path = __file__
    return (
        CHECK_PREFIX + ": checks that the test above ran with the\n"
        "# original torch, numpy, convlab and IPython (nothing monkeypatched).\n"
        f"with open({path!r}) as _classgrade_file:\n"
        f"    exec(compile(_classgrade_file.read(), {path!r}, 'exec'),\n"
        f"         {{'__name__': {RUN_AS_CHECK!r}, 'BASELINE': {str(baseline_path)!r}}})\n"
        "del _classgrade_file\n"
    )


if __name__ == RUN_AS_CHECK:   # executed by a check cell
    print(verdict(BASELINE))  # noqa: F821 - BASELINE: given by the check cell
