"""The grader's reading of a submission's source: delegation and escapes, outside the kernel.

The checks of :mod:`convlab.grading` that say *how* a result was computed (no
delegation to ``F.conv2d`` or ``convlab``, at most so many torch calls) watch
the student's code from inside the grading kernel, where the submission runs
and could switch them off (``sys.setprofile(None)``, ``torch._C.DisableTorchFunction``,
``torch.ops.aten.convolution``, a patched module...). The replay
(:mod:`.replay`) confirms the values the student's functions compute, not how.
So the grader also reads the submitted code, as text, in its own process. What
it reads is every line of the submission that can run.

**Code that can run.** The student's cells are the solution cells and the cells
without nbgrader metadata (:func:`student_cells`); a cell that does not parse ran
nothing. From their syntax trees:

1. *Code that runs as the notebook defines and loads things*: every top-level
   statement of every student cell, where a ``def`` contributes what runs when
   it is defined (its decorators, default values, positional and keyword-only,
   and annotations, read even under ``from __future__ import annotations``,
   since ``typing`` can evaluate them later) and a ``class`` contributes its
   decorators, bases, keywords (``metaclass=``) and its whole body, whose own
   ``def``\\ s follow the same rule. A lambda's body, a comprehension and a
   generator are read where they stand (they are anonymous: no name follows them),
   and so is the code that ``%time``, ``%%time`` and ``%timeit`` run.
2. *Definitions reached*: the statements that bind or change a top-level name
   of the student's (a ``def``, a ``class``, an assignment, an import, a
   ``global`` inside a function, ``name.attr = ...`` or ``name.append(...)``)
   are read whole, bodies included, when that name is reached: named by code
   of (1), by the instructor's cells (which run around the tests: a test cell's
   direct call, a provided cell; not the function a grading call watches, its
   first argument), or by a definition already reached, transitively. An alias
   at the top (``old = corr2d``) runs nothing: reaching ``old`` reaches ``corr2d``.
   A class reached is read whole, so its methods are (``__init__``, properties,
   ``__init_subclass__``, ``__set_name__``, ``__class_getitem__``...). A definition is reached from (1) also when its
   object is handed to the student's own code as it is defined, without its
   name: a ``def`` or ``class`` decorated by a student's name, a class whose
   bases, keywords or body name one of the student's definitions or its own
   methods (a base's ``__init_subclass__``, a metaclass, a descriptor's
   ``__set_name__`` receive it; ``plt.connect("draw_event", method)`` in the body
   keeps a method), and a top-level function with a dunder name (a module
   ``__getattr__``).
3. *The watched function*: ``function`` (``'corr2d'`` or ``'Conv2D.forward'``) and
   what it reaches by (2), except the names in ``substitute``, which the test
   binds to the instructor's reference while it runs.

Anything that would make this reading incomplete is itself an escape wherever
it can run: dynamic code and names (``exec``, ``eval``, ``compile``,
``__import__``, ``globals()``, ``getattr`` with a computed name or passed as a
value, a module passed as a value, a dunder attribute, frames such as
``gi_frame``/``f_globals``, a name that an instructor's cell binds, such as
``grading`` or a test's helper, bound again before a later instructor's cell reads
it), files and loaders
(``open``, ``pathlib``, ``io``, ``shutil``, ``os.write``/``os.open``/``os.dup2``,
a ``fileno()``, ``numpy.save``/``load``/``tofile``, ``torch.save``/``load``,
``torch.jit``/``hub``/``package``/``utils``, ``numpy.ctypeslib``, ``importlib``,
``runpy``, ``pickle``, ``marshal``, ``plt.savefig``, matplotlib settings that load
modules or run programs), processes, threads and hooks (``threading``,
``asyncio``, ``signal``, ``atexit``, ``weakref``, ``gc``, ``sys.settrace``/
``setprofile``/``addaudithook``/``modules``, ``torch.multiprocessing``,
``numpy.seterrcall``, module-wide ``register_module_*_hook``, a ``__del__``
method), the IPython kernel (``get_ipython()``, the channels behind ``sys.stdout``,
magics but ``%time``, ``%timeit`` and ``%matplotlib inline``, ``!shell``). Imports and the attributes of
allowed modules are allowed by lists (:data:`ALLOWED_IMPORTS`,
:data:`ALLOWED_MODULES`, :data:`ALLOWED_TREES`, :data:`PLAIN_ATTRIBUTES`):
a submodule of ``torch``, ``numpy``, ``matplotlib`` or ``tqdm`` that is not on
them is an escape, and so is a module that an allowed one re-exports
(``torch.sys``, ``plt.matplotlib``).

**What counts where.** :func:`escapes` with a ``function`` reports what is found
in (1), in (2) and in (3): code that runs as the notebook loads runs before any
test, so it counts for every watched function; an escape inside a definition
that only ``pad2d`` reaches counts for the tests of ``pad2d`` (and of whatever
calls it), not for a test that substitutes the reference ``pad2d``. So does a
``torch.Tensor`` subclass or a ``__torch_function__``, which act through the
values of the code that uses them; a ``__del__`` method runs whenever an object
is collected, and counts everywhere. Without a ``function`` it reports everything
in the student's cells, run or not.
:func:`delegations` reports a forbidden torch function (``F.conv2d``,
``X.unfold``, ``nn.MaxPool2d``...) or a name from ``convlab`` in (3): the
watched function, what it reaches, and the statements that bind it (``corr2d =
make(...)``, a decorator that wraps it, ``from torch.nn.functional import conv2d
as corr2d``).

Straightforward code, right or wrong, uses none of these. A test cell whose
points rest on a watched check keeps them only where both readings are clean
(:func:`classgrade.trusted.verdict.apply_verdicts`): a delegation found costs those
points; an escape withholds them, for the instructor to grade by hand.

>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
...     "import torch.nn.functional as F\\n"
...     "def corr2d(X, K):\\n    return helper(X, K)\\n"
...     "def helper(X, K):\\n    return F.conv2d(X[None, None], K[None, None])[0, 0]")])
>>> delegations(nb, "corr2d", forbidden=("conv2d",))
['cell 1, line 5: F.conv2d']
>>> escapes(nb)
[]
>>> nb.cells.append(nbformat.v4.new_code_cell("import sys\\nsys.setprofile(None)"))
>>> escapes(nb)
['cell 2, line 2: uses sys.setprofile']
>>> nb.cells.append(nbformat.v4.new_code_cell("def shout():\\n    import ctypes\\nprint(shout())"))
>>> escapes(nb, "corr2d")   # shout() runs as the cell runs: its body counts for every test
['cell 2, line 2: uses sys.setprofile', 'cell 3, line 2: imports ctypes']
"""
import ast
import functools
import importlib.util
import os
import re
import symtable
import sys

from IPython.core.inputtransformer2 import TransformerManager

# Top-level modules a submission may import (below them, only ALLOWED_MODULES and ALLOWED_TREES).
ALLOWED_IMPORTS = frozenset({
    "__future__", "torch", "numpy", "math", "cmath", "itertools", "functools", "collections", "typing",
    "dataclasses", "random", "time", "warnings", "statistics", "fractions", "numbers", "string", "copy",
    "matplotlib", "tqdm", "convlab",
})
# Submodules a submission may import or reach: exactly these...
ALLOWED_MODULES = frozenset({
    "torch.nn", "torch.autograd", "torch.testing", "torch.func", "torch.sparse", "torch.masked",
    "numpy.testing", "collections.abc", "os.path",
})
# ... and these with everything below them. Any other submodule of an allowed import is an escape
# (torch.jit, torch.hub, torch.package, torch.utils, torch.multiprocessing, torch.distributed,
# numpy.lib, numpy.ctypeslib, numpy.f2py, matplotlib.animation, matplotlib.backends, tqdm.contrib...).
ALLOWED_TREES = frozenset({
    "torch.nn.functional", "torch.nn.init", "torch.nn.modules", "torch.nn.parameter", "torch.nn.utils",
    "torch.nn.common_types", "torch.optim", "torch.linalg", "torch.fft", "torch.special", "torch.random",
    "torch.distributions", "torch.types", "torch.functional", "torch.return_types", "torch.signal", "torch.nn.grad",
    "torch.autograd.functional", "torch.autograd.forward_ad", "torch.autograd.grad_mode",
    "torch.autograd.function", "torch.autograd.gradcheck", "torch.autograd.graph",
    "torch.autograd.anomaly_mode", "torch.autograd.variable",
    "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "numpy.polynomial", "numpy.typing",
    "numpy.dtypes", "numpy.exceptions", "numpy.emath", "numpy.lib.scimath",
    "matplotlib.pyplot", "matplotlib.colors", "matplotlib.cm", "matplotlib.ticker", "matplotlib.patches",
    "matplotlib.gridspec", "matplotlib.lines", "matplotlib.figure", "matplotlib.axes", "matplotlib.colorbar",
    "matplotlib.collections", "matplotlib.markers", "matplotlib.text", "matplotlib.path",
    "matplotlib.transforms", "matplotlib.colormaps", "matplotlib.legend", "matplotlib.axis", "matplotlib.contour",
    "matplotlib.quiver", "matplotlib.table", "matplotlib.image", "matplotlib.scale", "matplotlib.hatch",
    "matplotlib.artist", "matplotlib.colorizer", "matplotlib.spines", "matplotlib.dates", "matplotlib.units",
    "matplotlib.category", "matplotlib.container", "matplotlib.offsetbox", "matplotlib.projections",
    "matplotlib.streamplot", "matplotlib.tri", "matplotlib.bezier", "matplotlib.legend_handler",
    "matplotlib.mathtext", "matplotlib.patheffects", "matplotlib.layout_engine", "matplotlib.widgets",
    "matplotlib.cycler", "matplotlib.stackplot",
    "tqdm.auto", "tqdm.autonotebook", "tqdm.notebook", "tqdm.std",
    "convlab",
})
DENIED_MODULES = frozenset({"convlab.classgrade"})   # below an allowed tree, still not (the grader itself)
# Attributes of a module that is not allowed, that a submission may use all the same.
ALLOWED_PATHS = frozenset({"torch.cuda.is_available", "torch.cuda.device_count"})
# Modules of which a submission may use only these attributes (printing to stderr, reading paths).
PLAIN_ATTRIBUTES = {
    "sys": frozenset({"stdout", "stderr", "version", "version_info", "float_info", "maxsize", "platform"}),
    "os": frozenset({"path", "sep", "getcwd", "listdir", "cpu_count"}),
    **{f"sys.{stream}": frozenset({"write", "flush", "writelines", "isatty", "encoding"})
       for stream in ("stdout", "stderr")},
    "os.path": frozenset({"join", "exists", "isfile", "isdir", "dirname", "basename", "splitext", "abspath",
                          "normpath", "relpath", "split", "sep"}),
}
# Attributes of torch itself that reach around a TorchFunctionMode or the dispatcher, or reach
# files, processes, compilers or the interpreter (also when torch is not installed where this runs).
TORCH_INTERNALS = frozenset({
    "ops", "overrides", "library", "fx", "jit", "compiler", "hub", "package", "multiprocessing", "distributed",
    "utils", "classes", "serialization", "export", "profiler", "backends", "load", "save", "from_file",
    "compile", "set_default_device", "import_ir_module", "import_ir_module_from_buffer", "storage",
    "UntypedStorage", "TypedStorage", "Storage", "cond", "while_loop", "cpp",
})
# Exact paths of an allowed module that are escapes: matplotlib's settings and styles name backends
# and hooks (modules it imports: "backend", "figure.hooks") and programs it runs ("text.usetex");
# typing and singledispatch evaluate string annotations as code; string.Formatter looks attributes up by name.
DENIED_PATHS = frozenset({
    f"{module}.{name}" for module in ("matplotlib", "matplotlib.pyplot")
    for name in ("use", "rc", "rc_file", "rc_file_defaults", "rc_context", "rcdefaults", "rcParams",
                 "rcParamsDefault", "rcParamsOrig", "switch_backend", "style")
} | {"typing.get_type_hints", "typing.ForwardRef", "functools.singledispatch", "functools.singledispatchmethod",
     "string.Formatter"})
# Attribute names that are escapes on any object: files and file descriptors, loaders, memory,
# hooks that fire anywhere, the interpreter.
DENIED_ATTRIBUTES = frozenset({
    "setprofile", "settrace", "addaudithook", "excepthook", "displayhook", "meta_path", "path_hooks",
    "fileno", "save", "load", "loads", "dump", "dumps", "savez", "savez_compressed", "savetxt", "loadtxt",
    "genfromtxt", "fromfile", "fromregex", "tofile", "from_file", "memmap", "open_memmap", "ctypes", "ctypeslib",
    "as_strided", "stride_tricks", "seterrcall", "set_string_function", "share_memory_", "share_memory",
    "savefig", "imsave", "write_png", "open",
    "imread", "switch_backend", "rc_file", "new_timer", "system", "popen", "spawn", "fork",
    "print_figure", "print_png", "print_jpg", "print_jpeg", "print_pdf", "print_svg", "print_svgz", "print_ps",
    "print_eps", "print_raw", "print_rgba", "print_tif", "print_tiff", "print_webp", "print_pgf", "print_gif",
    "cffi",
    # frames and code: a generator's frame reaches its caller's globals (the checks' own)
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "f_back",
    "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next", "co_code", "co_consts",
    # the kernel's own channels, reached from its output streams
    "pub_thread", "parent_header", "iopub_socket", "iopub_thread",
    # modules that allowed ones hold under these names (plt.cbook, typing.stdlib_re): not on the lists
    "cbook", "mlab", "rcsetup", "stdlib_re", "hooks", "Image",
    "extbuild",   # numpy.testing.extbuild compiles C extensions
})
DENIED_PREFIXES = ("register_module_",)   # torch.nn.modules.module.register_module_forward_hook: every module
DENIED_KEYWORDS = frozenset({"usetex"})   # matplotlib text through LaTeX: a program run
DYNAMIC = frozenset({"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
                     "open", "setattr", "delattr", "get_ipython", "__builtins__"})
PLAIN_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__qualname__"})
PLAIN_NAMES = PLAIN_DUNDERS | {"__file__", "__slots__", "__all__"}   # dunder names, not attributes
MAGICS = frozenset({"matplotlib", "time", "timeit"})
MATPLOTLIB_MAGIC = frozenset({"", "inline"})
# The instructor's calls whose first argument is the function under test, run under its watch.
GRADING_CALLS = frozenset({"check_against", "check_no_delegation", "check_few_calls", "call", "check_raises",
                           "count_torch_calls"})
# Names of modules that an allowed module may re-export as an attribute (torch.sys, plt.np): reached that
# way, they are read as the module itself. A few also name common functions (np.array, torch.select).
_ATTRIBUTE_NOT_MODULE = frozenset({"array", "select", "copy", "code", "math", "cmath", "string", "time",
                                   "random", "numbers", "fractions", "statistics", "functools",
                                   "itertools", "collections", "typing", "dataclasses", "warnings", "token",
                                   "test", "trace", "cycler", "chunk", "arrow"})
# The names modules go by inside others (torch.nn.functional.np is numpy): reached that way, an escape.
_MODULE_ALIASES = frozenset({"np", "plt", "mpl", "F", "pd", "sp", "tf", "th", "npt"})
_NOT_MODULES = frozenset(f"tqdm{sub}.tqdm" for sub in ("", ".auto", ".autonotebook", ".notebook", ".std"))
_PACKAGES = frozenset({"torch", "numpy", "matplotlib", "tqdm", "convlab", "IPython", "ipykernel",
                       "jupyter_client", "jupyter_core", "zmq", "nbformat", "nbclient", "nbgrader", "traitlets",
                       "psutil", "dill", "cloudpickle", "scipy", "PIL", "pandas", "sympy", "jinja2", "tornado",
                       "requests", "urllib3", "setuptools", "pkg_resources", "mpl_toolkits", "fsspec", "filelock",
                       "triton", "functorch", "pyparsing", "packaging", "sqlalchemy", "dask", "distributed"})
_DEF = (ast.FunctionDef, ast.AsyncFunctionDef)
# Classes whose subclasses act on every value they touch (a tensor that agrees with everything, a mode).
TENSOR_CLASSES = ("Tensor", "Parameter", "Buffer", "TorchFunctionMode", "TorchDispatchMode")


def student_cells(nb):
    """``[(cell number, syntax tree)]`` of the code the student wrote: solution cells and their own.

    Test and locked cells are the instructor's (nbgrader restores them before grading). IPython
    syntax is read as IPython runs it; a cell that does not parse ran nothing, and is left out.
    """
    cells = []
    for number, cell in enumerate(nb.cells, 1):
        if cell.get("cell_type") == "code" and _is_students(cell):
            tree = _parse(cell.get("source", ""))
            if tree is not None:
                cells.append((number, tree))
    return cells


def escapes(nb, function=None, *, substitute=()):
    """One line for each way around the in-kernel checks in the student's cells; ``[]`` if none.

    With ``function``, only those in code that can run before or during its test: code that
    runs as the notebook loads, what that code and the instructor's cells reach, and what
    ``function`` reaches (see the module's docstring). Without, every one in the cells.
    """
    index = _index(nb)
    found = list(index.rebinds)
    if function is None:
        for number, tree in index.cells:
            found += _read(index, number, tree, whole=True)
        return _ordered(found)
    for number, tree in index.cells:
        for node in tree.body:
            found += _read(index, number, node, whole=False)
    names, nodes = index.loaded()
    for number, node in nodes:
        found += _read(index, number, node, whole=True)
    for name in names | index.reach([function.split(".")[0]], substitute):
        for number, node in index.defs.get(name, []):
            found += _read(index, number, node, whole=True)
    return _ordered(found)


def delegations(nb, function, *, forbidden, substitute=()):
    """Where ``function`` (``'name'`` or ``'Class.method'``) or what it refers to uses a forbidden function.

    Follows the names of the student's own top-level functions, classes and assignments
    that the definition refers to, and the statements that bind or change them (a decorator,
    ``name = make(...)``), except those in ``substitute`` (trusted during the test).
    """
    index = _index(nb)
    imported = index.modules
    bad = {_normal(name) for name in forbidden}

    def forbidden_origin(origin):
        return origin.split(".")[0] == "convlab" or (origin and _normal(origin.split(".")[-1]) in bad)

    found = []
    reached = index.reach([function.split(".")[0]], substitute)
    for name in sorted(reached):
        for number, node in index.defs.get(name, []):
            local = _locals(node)
            for sub in ast.walk(node):
                what = None
                if isinstance(sub, ast.Name) and sub.id not in local:
                    origin = imported.get(sub.id, "")
                    if forbidden_origin(origin):
                        what = f"{sub.id} (from {origin})"
                elif isinstance(sub, ast.Attribute) and _normal(sub.attr) in bad and _root(sub) not in ("self", "cls"):
                    what = _dotted(sub)
                elif isinstance(sub, ast.Call) and _constant_getattr(sub) and _normal(sub.args[1].value) in bad:
                    what = f"getattr({ast.unparse(sub.args[0])}, {sub.args[1].value!r})"
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    for alias, bound, origin in _aliases(sub):
                        if bound in reached and forbidden_origin(origin):
                            what = f"{bound} (from {origin})"
                line = f"cell {number}, line {getattr(sub, 'lineno', '?')}: {what}"
                if what and line not in found:
                    found.append(line)
    return found


# --- the model: what the notebook binds, what runs as it loads, what a name reaches ----------

def _index(nb):
    """The notebook's :class:`_Index`, read once for all the test cells that ask (a grader asks ~20 times)."""
    return _Index.of(tuple((number, cell.get("source", ""), _is_students(cell))
                           for number, cell in enumerate(nb.cells, 1) if cell.get("cell_type") == "code"))


class _Index:
    """The student's cells of one notebook, read once: definitions and what they refer to."""

    @staticmethod
    @functools.lru_cache(maxsize=32)
    def of(code):
        return _Index(code)

    def __init__(self, code):
        """``code``: ``(cell number, source, whether the student's)`` of each code cell."""
        self.cells, self.others, instructors = [], [], []
        for number, source, students in code:
            tree = _parse(source)
            if tree is not None and students:
                self.cells.append((number, tree))
            elif tree is not None:
                self.others.append(tree)
                instructors.append((number, tree))
        self.modules = {**_imports(self.others), **_imports(tree for _, tree in self.cells)}
        self.read = {}   # (id of a node, whole) -> what _read found there
        self.aliases = _aliases_of_paths([tree for _, tree in self.cells], self.modules)
        statements = [(number, node, _facts(node)) for number, tree in self.cells for node in tree.body]
        # a name the student binds otherwise than by an import: its changes (x.a = ..., x.append()) count
        own = {name for _, _, facts in statements for name in facts.bound}
        self.own = frozenset(own - set(self.aliases))
        self.defs, self.refs = {}, {}
        self.rebinds = _rebinds(statements, instructors)
        for number, node, facts in statements:
            self.refs[id(node)] = facts.refs
            for name in facts.bound | facts.imported | (facts.changed & own):
                self.defs.setdefault(name, []).append((number, node))

    def reach(self, roots, substitute=()):
        """The names of the student's definitions that ``roots`` refer to, directly or through others."""
        seen, queue = set(), list(roots)
        while queue:
            name = queue.pop()
            if name in seen or name in substitute or name not in self.defs:
                continue
            seen.add(name)
            for _, node in self.defs[name]:
                queue += self.refs[id(node)]
        return seen

    @functools.cached_property
    def _loaded(self):
        """``(names, [(cell, node)])``: what runs as the notebook loads, and what that reaches."""
        roots, nodes, aliases = set(), [], set()
        for number, tree in self.cells:
            for node in tree.body:
                if isinstance(node, _DEF) and node.name.startswith("__") and node.name.endswith("__"):
                    roots.add(node.name)
                for sub in _walk(node, whole=False):   # a statement comes before its parts
                    targets = sub.targets if isinstance(sub, ast.Assign) else [getattr(sub, "target", None)]
                    if isinstance(sub, (ast.Assign, ast.AnnAssign)) and isinstance(sub.value, ast.Name) \
                            and all(isinstance(target, ast.Name) for target in targets):
                        aliases.add(id(sub.value))   # old = corr2d runs nothing: reaching old reaches corr2d
                    elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and id(sub) not in aliases:
                        roots.add(sub.id)
                    elif isinstance(sub, (*_DEF, ast.ClassDef)) and self._handed_over(sub):
                        nodes.append((number, sub))
        for tree in self.others:
            roots |= _instructor_names(tree)
        for _, node in nodes:
            roots |= {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}
        return self.reach(roots), nodes

    def loaded(self):
        return self._loaded

    def _handed_over(self, node):
        """Whether a definition's object reaches the student's code as it is defined, without its name."""
        if isinstance(node, _DEF):
            parts, methods = node.decorator_list, set()
        else:   # a class body that names its own method hands it over too (plt.connect("draw_event", m))
            parts = [*node.decorator_list, *node.bases, *node.keywords,
                     *[sub for stmt in node.body for sub in _walk(stmt, whole=False)]]
            methods = {stmt.name for stmt in node.body if isinstance(stmt, _DEF)}
        return any(isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)
                   and ((sub.id in self.defs and sub.id not in self.modules) or sub.id in methods)
                   for part in parts for sub in ast.walk(part))


def _rebinds(statements, instructors):
    """``[(cell, line, why)]``: where the student binds again a name that an instructor's cell bound (an import
    such as ``grading``, a test's helper) and a later instructor's cell reads: the tests run the student's."""
    provided, origins, reads = {}, {}, []
    for number, tree in instructors:
        bound, read = set(), set()
        for node in tree.body:
            facts = _facts(node)
            read |= facts.refs - bound
            bound |= facts.bound | facts.imported
            for name in facts.bound | facts.imported:
                provided.setdefault(name, number)
            origins.update(_imports([node]))
        reads.append((number, read))
    found = []
    for number, node, facts in statements:
        for name in sorted(facts.bound | facts.imported):
            if name in facts.imported and _imports([node]).get(name) == origins.get(name, ""):
                continue   # the same module imported again
            later = [cell for cell, read in reads if cell > number and name in read]
            if provided.get(name, number) < number and later:
                found.append((number, node.lineno, f"rebinds {name}, which the instructor's cell {provided[name]} "
                                                   f"binds and cell {later[0]} uses"))
    return found


class _Facts:
    """What one top-level statement binds (``bound``, ``imported``), changes, and refers to."""

    def __init__(self, bound, imported, changed, refs):
        self.bound, self.imported, self.changed, self.refs = bound, imported, changed, refs


@functools.lru_cache(maxsize=16384)
def _facts_of(source):
    tree = ast.parse(source)
    node = tree.body[0] if len(tree.body) == 1 else tree
    bound, imported, refs = set(), set(), set()
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:   # a statement that parses but that the compiler refuses (e.g. nonlocal at the top)
        table = None
    if table is not None:
        for symbol in table.get_symbols():
            if symbol.is_imported():
                imported.add(symbol.get_name())
            elif symbol.is_assigned():
                bound.add(symbol.get_name())
            if symbol.is_referenced():
                refs.add(symbol.get_name())
        stack = list(table.get_children())
        while stack:
            child = stack.pop()
            stack += child.get_children()
            for symbol in child.get_symbols():
                if symbol.is_declared_global() and (symbol.is_assigned() or symbol.is_imported()):
                    bound.add(symbol.get_name())
                if symbol.is_global() and symbol.is_referenced():
                    refs.add(symbol.get_name())
    else:
        refs = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}
    changed = set()
    for sub in ast.walk(node):
        target = None
        if isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            target = sub
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
            target = sub.func
        root = _root(target) if target is not None else None
        if root in refs:
            changed.add(root)
    return _Facts(frozenset(bound), frozenset(imported), frozenset(changed), frozenset(refs))


def _facts(node):
    return _facts_of(ast.unparse(node))


def _walk(node, whole=True):
    """Like :func:`ast.walk`; with ``whole=False``, a function's body is left out (not its decorators,
    defaults and annotations, which run when it is defined)."""
    todo = [node]
    while todo:
        sub = todo.pop()
        yield sub
        if not whole and isinstance(sub, _DEF):
            todo += _definition_time(sub)
        else:
            todo += ast.iter_child_nodes(sub)


def _definition_time(node):
    """The parts of a ``def`` that run when it is defined."""
    args = node.args
    every = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
    parts = [*node.decorator_list, *args.defaults, *args.kw_defaults, node.returns,
             *[arg.annotation for arg in every if arg is not None]]
    return [part for part in parts if part is not None]


def _instructor_names(tree):
    """Names an instructor's cell refers to, but the function a grading call watches (its first argument)."""
    watched = set()
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Call) and sub.args and isinstance(sub.args[0], ast.Name):
            name = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", None)
            if name in GRADING_CALLS:
                watched.add(id(sub.args[0]))
    return {sub.id for sub in ast.walk(tree)
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and id(sub) not in watched}


def _locals(node):
    """Names that a definition binds inside itself (arguments, assignments): they hide the notebook's."""
    if not isinstance(node, (*_DEF, ast.ClassDef)):
        return set()
    names = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}
    names |= {sub.arg for sub in ast.walk(node) if isinstance(sub, ast.arg)}
    return names - {name for sub in ast.walk(node) if isinstance(sub, ast.Global) for name in sub.names}


# --- reading ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)   # each test cell reads the same cells again; nothing changes a tree
def _parse(source):
    """The cell's syntax tree as IPython runs it, with the code of ``%time``/``%timeit`` statements in
    their place (it runs in the notebook's namespace: a ``def`` there is a definition like any other)."""
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None
    body = []
    for node in tree.body:
        magic = _magic_call(node.value) if isinstance(node, ast.Expr) else None
        inner = _timed_code(node, *magic) if magic and magic[0] in ("time", "timeit") else None
        body += inner if inner is not None else [node]
    tree.body = body
    return tree


def _timed_code(node, name, code):
    """The statements that ``%time``/``%%timeit`` run, numbered as in the cell; None if one does not parse."""
    statements = []
    for i, text in enumerate(code):
        try:
            inner = ast.parse(_TIMEIT_OPTIONS.sub("", text, count=1))
        except SyntaxError:
            return None
        # a line magic's code is on its own line; a cell magic's body starts on the line after it
        ast.increment_lineno(inner, node.lineno - 1 + (1 if i == 1 else 0))
        statements += inner.body
    return statements


def _is_students(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution") or not (meta.get("grade") or meta.get("locked")))


def _read(index, number, node, *, whole):
    key = (id(node), whole)   # the index holds its trees: an id is not reused while it lives
    if key not in index.read:
        reader = _EscapeReader(index.modules, index.aliases, whole=whole, own=index.own)
        reader.visit(node)
        index.read[key] = [(number, line, why) for line, why in reader.found]
    return index.read[key]


def _ordered(found):
    lines = sorted(set(found), key=lambda item: (item[0], item[1] if isinstance(item[1], int) else 0, item[2]))
    return [f"cell {number}, line {line}: {why}" for number, line, why in lines]


def _normal(name):
    return name.lower().replace("_", "")


def _root(node):
    """The name an attribute or item is taken from: ``x`` for ``x.a[0].b``; None for ``f(x).a``."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "(...)")
    return ".".join(reversed(parts))


def _aliases(node):
    """``[(alias, bound name, module path)]`` of an import statement."""
    if isinstance(node, ast.Import):
        return [(alias, alias.asname or alias.name.split(".")[0],
                 alias.name if alias.asname else alias.name.split(".")[0]) for alias in node.names]
    return [(alias, alias.asname or alias.name, f"{node.module or ''}.{alias.name}") for alias in node.names]


def _imports(trees):
    """``{local name: module path}`` bound by the imports of ``trees``."""
    names = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update({bound: origin for _, bound, origin in _aliases(node)})
    return names


def _aliases_of_paths(trees, modules):
    """``{name: path}`` for a name assigned a module's attribute (``T = torch.Tensor``): changing it is
    changing the module's."""
    names = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                path = _path(node.value, modules)
                if path:
                    names[node.targets[0].id] = path
    return names


def _path(node, modules):
    """The module path an expression names (``F.pad`` -> ``'torch.nn.functional.pad'``), or None."""
    if isinstance(node, ast.Name):
        return modules.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _path(node.value, modules)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Call) and _constant_getattr(node):
        base = _path(node.args[0], modules)
        return f"{base}.{node.args[1].value}" if base else None
    return None


def _constant_getattr(node):
    return (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))


@functools.lru_cache(maxsize=None)
def _is_module(path):
    """Whether ``path`` names a module (found on disk, never imported): ``torch.jit`` yes, ``torch.zeros`` no."""
    parts = path.split(".")
    if len(parts) == 1:
        if path in sys.stdlib_module_names or path in _PACKAGES:
            return True
        try:
            return importlib.util.find_spec(path) is not None
        except (ImportError, ValueError):
            return False
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return parts[0] == "os" and parts[1:] == ["path"]
    for location in spec.submodule_search_locations:
        folder = os.path.join(location, *parts[1:-1])
        if os.path.isfile(os.path.join(folder, parts[-1], "__init__.py")) or \
                os.path.isfile(os.path.join(folder, parts[-1] + ".py")):
            return True
        if os.path.isdir(folder) and any(name.startswith(parts[-1] + ".") and name.endswith((".so", ".pyd"))
                                         for name in os.listdir(folder)):
            return True
    return False


def _module_allowed(path):
    parts = path.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    if any(prefix in DENIED_MODULES for prefix in prefixes) or any(part.startswith("_") for part in parts[1:]):
        return False
    if len(parts) == 1:
        return path in ALLOWED_IMPORTS or path in PLAIN_ATTRIBUTES
    return path in ALLOWED_MODULES or path in PLAIN_ATTRIBUTES or any(prefix in ALLOWED_TREES for prefix in prefixes)


def _step_problem(path):
    """Why the last step of a module path (``'torch.jit'``, ``'matplotlib.pyplot.sys'``) is an escape, or None."""
    parent, _, attr = path.rpartition(".")
    if parent in PLAIN_ATTRIBUTES:
        return None if attr in PLAIN_ATTRIBUTES[parent] else path
    if parent == "torch" and attr in TORCH_INTERNALS:
        return path
    if path in DENIED_PATHS:
        return path
    if _is_module(path):
        return None if _module_allowed(path) else path
    if _is_module(parent) and attr in _MODULE_ALIASES:   # torch.nn.functional.np: numpy, under another name
        return path
    if parent.split(".")[0] == "matplotlib" and _is_module(parent):   # matplotlib's own, as martist or artist
        for name in (attr, attr[1:] if attr.startswith("m") else ""):
            if name and _is_module(f"matplotlib.{name}"):
                return None if _module_allowed(f"matplotlib.{name}") else path
    if _is_module(parent) and attr not in _ATTRIBUTE_NOT_MODULE and path not in _NOT_MODULES \
            and _is_module(attr):   # a module re-exported by another (torch.sys, torch.ctypes, plt.matplotlib)
        return None if _module_allowed(attr) else path
    return None


def _rebased(path):
    """``'matplotlib.pyplot.matplotlib.use'`` -> ``'matplotlib.use'``: a re-exported module read as itself."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if _is_module(prefix) and parts[i] not in _ATTRIBUTE_NOT_MODULE \
                and ".".join(parts[:i + 1]) not in _NOT_MODULES \
                and not _is_module(f"{prefix}.{parts[i]}") and _is_module(parts[i]):
            return ".".join(parts[i:])
    return path


def _magic_call(node):
    """``get_ipython().run_line_magic('time', 'code')`` -> ``('time', ['code'])``; other nodes -> None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython" and node.func.attr in ("run_line_magic", "run_cell_magic")
            and node.args and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
        return None
    return node.args[0].value, [a.value for a in node.args[1:]]


_TIMEIT_OPTIONS = re.compile(r"^\s*(?:-[nrp]\s*\d+\s*|-[oqtc]\b\s*)*")


class _EscapeReader(ast.NodeVisitor):
    """Notes each way around the in-kernel checks in the code it visits.

    With ``whole=False`` it reads what runs as a statement runs: a function's body is left out
    (its decorators, defaults and annotations are read), a class's body is read.
    """

    def __init__(self, modules, aliases=None, *, whole=True, own=frozenset()):
        self.modules = modules   # local name -> module path, of every cell (a setup cell's imports too)
        self.aliases = aliases or {}
        self.whole = whole
        self.paths = {**self.aliases, **modules}   # what a name stands for, as a module path
        self.hidden = [set(own)]   # names that stand for something else here: the student's, a function's locals
        self.bases = set()   # ids of the nodes whose attribute is taken
        self.plain = set()   # ids of the nodes that ALLOWED_PATHS allows as a base
        self.found = []

    def note(self, node, why):
        self.found.append((getattr(node, "lineno", "?"), why))

    # -- calls, magics, getattr ------------------------------------------------------------

    def visit_Call(self, node):
        magic = _magic_call(node)
        if magic is not None:
            self._magic(node, *magic)
            return
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call) \
                and isinstance(node.func.value.func, ast.Name) and node.func.value.func.id == "get_ipython":
            self.note(node, f"uses the IPython kernel (get_ipython().{node.func.attr})")
            return
        for keyword in node.keywords:
            off = isinstance(keyword.value, ast.Constant) and not keyword.value.value
            if keyword.arg in DENIED_KEYWORDS and not off:
                self.note(node, f"uses {keyword.arg}=, which runs a program")
        if isinstance(node.func, ast.Name) and node.func.id == "type" and len(node.args) == 3:
            self.note(node, "builds a class with type(name, bases, namespace), whose methods no name follows")
        if isinstance(node.func, ast.Name) and node.func.id == "getattr":
            if _constant_getattr(node) and not node.args[1].value.startswith("_"):
                self._attribute(node, node.args[0], node.args[1].value)
            else:
                self.note(node, "uses getattr with a computed or private name")
            if node.args:
                self._base(node.args[0])
            for arg in [*node.args[1:], *node.keywords]:
                self.visit(arg)
            return
        self.generic_visit(node)

    def _magic(self, node, name, code):
        if name not in MAGICS or (name == "matplotlib" and code and code[0].strip() not in MATPLOTLIB_MAGIC):
            self.note(node, f"uses the IPython magic %{name}{' ' + code[0] if name == 'matplotlib' else ''}")
            return
        if name == "matplotlib":
            return
        for text in code:   # the code that %time and %timeit run (and %%timeit's setup line) is read too
            text = _TIMEIT_OPTIONS.sub("", text, count=1)
            tree = _parse(text) if text.strip() else ast.Module(body=[], type_ignores=[])
            if tree is None:
                self.note(node, f"uses %{name} with code the grader cannot read")
                continue
            inner = _EscapeReader(self.modules, self.aliases, whole=self.whole)
            inner.visit(tree)
            self.found += [(node.lineno, why) for _, why in inner.found]

    # -- imports ---------------------------------------------------------------------------

    def visit_Import(self, node):
        for alias in node.names:
            self._module(node, alias.name)

    def visit_ImportFrom(self, node):
        if node.level:
            self.note(node, "imports a relative module")
            return
        if node.module in PLAIN_ATTRIBUTES:
            for alias in node.names:
                if alias.name not in PLAIN_ATTRIBUTES[node.module]:
                    self.note(node, f"imports {alias.name} from {node.module}")
            return
        if self._module(node, node.module):
            for alias in node.names:
                problem = "*" if alias.name == "*" else self._name_problem(alias.name) or _step_problem(
                    f"{node.module}.{alias.name}")
                if problem:
                    self.note(node, f"imports {alias.name} from {node.module}")

    def _module(self, node, path):
        """Note an import of ``path`` that is not allowed; True if it is."""
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if not _module_allowed(prefix) or (i > 1 and _step_problem(prefix)):
                self.note(node, f"imports {path}")
                return False
        return True

    # -- attributes and names --------------------------------------------------------------

    def visit_Attribute(self, node):
        self._attribute(node, node.value, node.attr)
        self._base(node.value)

    def _base(self, node):
        """Visit the object whose attribute is taken: a module there is used, not passed around."""
        self.bases.add(id(node))
        if isinstance(node, ast.Name):
            self._name(node, as_base=True)
        else:
            self.visit(node)

    def _name_problem(self, attr):
        if attr.startswith("__") and attr.endswith("__") and attr not in PLAIN_DUNDERS:
            return "dunder"
        if attr in DENIED_ATTRIBUTES or attr.startswith(DENIED_PREFIXES):
            return "denied"
        return None

    def _attribute(self, node, value, attr):
        dotted = f"{_dotted(value)}.{attr}"
        root = _root(value)
        if attr.startswith("__") and attr.endswith("__") and attr not in PLAIN_DUNDERS:
            self.note(node, f"uses {dotted}")
            return
        if attr.startswith("_") and not attr.startswith("__") and root not in ("self", "cls"):
            self.note(node, f"uses {dotted}, a private attribute")
            return
        if attr in DENIED_ATTRIBUTES or attr.startswith(DENIED_PREFIXES):
            self.note(node, f"uses {dotted}")
            return
        base = None if _root(value) in self.hidden[-1] else _path(value, self.paths)
        if base and f"{base}.{attr}" in ALLOWED_PATHS:
            self.plain.add(id(value))
        elif base and id(node) not in self.plain:
            path = _rebased(f"{base}.{attr}")
            problem = _step_problem(path) if "." in path else (None if _module_allowed(path) else path)
            if problem:
                self.note(node, f"uses {dotted}" + (f" ({problem})" if problem != dotted else ""))
            elif id(node) not in self.bases and _is_module(path):
                self.note(node, f"uses the module {dotted} as a value")

    def visit_Name(self, node):
        self._name(node, as_base=False)

    def _name(self, node, *, as_base):
        if node.id in DYNAMIC:
            self.note(node, f"uses {node.id}")
        elif node.id.startswith("__") and node.id.endswith("__") and node.id not in PLAIN_NAMES:
            self.note(node, f"uses {node.id}"
                            + (", which runs whenever the object is collected" if node.id == "__del__" else ""))
        elif node.id == "getattr":
            self.note(node, "uses getattr as a value")
        elif not as_base and isinstance(node.ctx, ast.Load) and node.id in self.modules \
                and node.id not in self.hidden[-1] \
                and _is_module(_rebased(self.modules[node.id])):
            self.note(node, f"uses the module {node.id} as a value")

    # -- assignments: monkeypatches -----------------------------------------------------------

    def _assigned(self, node, targets):
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, (ast.Attribute, ast.Subscript)):
                    root = _root(sub)
                    if root in self.modules or root in self.aliases:
                        where = root if root in self.modules else f"{root} ({self.aliases[root]})"
                        self.note(node, f"changes {_dotted(sub) if isinstance(sub, ast.Attribute) else root + '[...]'}"
                                        f", in the imported module {where}")
                        break
        self.generic_visit(node)

    def visit_Assign(self, node):
        self._assigned(node, node.targets)

    def visit_AugAssign(self, node):
        self._assigned(node, [node.target])

    def visit_AnnAssign(self, node):
        self._assigned(node, [node.target])

    def visit_Delete(self, node):
        self._assigned(node, node.targets)

    def visit_For(self, node):   # for torch.allclose in [...]: an assignment too
        self._assigned(node, [node.target])

    visit_AsyncFor = visit_For

    def visit_With(self, node):
        self._assigned(node, [item.optional_vars for item in node.items if item.optional_vars is not None])

    visit_AsyncWith = visit_With

    def visit_comprehension(self, node):
        self._assigned(node, [node.target])

    # -- definitions -------------------------------------------------------------------------

    def visit_ClassDef(self, node):
        for base in node.bases if self.whole else ():   # its instances act where the class is reached
            if _dotted(base).split(".")[-1] in TENSOR_CLASSES:
                self.note(node, f"defines {node.name}, a subclass of {_dotted(base)}")
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        if node.name.startswith("__torch_") and self.whole:
            self.note(node, f"defines {node.name}")
        elif node.name == "__del__":   # runs whenever an instance is collected, in any test
            self.note(node, "defines __del__, which runs whenever the object is collected")
        if self.whole:
            self.hidden.append(self.hidden[-1] | _locals(node))
            self.generic_visit(node)
            self.hidden.pop()
        else:
            for part in _definition_time(node):
                self.visit(part)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self.hidden.append(self.hidden[-1] | {sub.arg for sub in ast.walk(node.args) if isinstance(sub, ast.arg)})
        self.generic_visit(node)
        self.hidden.pop()
