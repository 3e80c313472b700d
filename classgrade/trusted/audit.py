"""The grader's reading of a submission's source: delegation and escapes, outside the kernel.

The checks of :mod:`convlab.grading` that say *how* a result was computed (no
delegation to ``F.conv2d`` or ``convlab``, at most so many torch calls) watch
the student's code from inside the grading kernel, where the submission runs
and could switch them off (``sys.setprofile(None)``, ``torch._C.DisableTorchFunction``,
``torch.ops.aten.convolution``, a patched module...). The ledger
(:mod:`.ledger`) confirms the values those checks saw, not how they were made.
So the grader also reads the submitted code, as text, in its own process:

- :func:`delegations`: the function a watched check named (in the instructor's
  own run, so the name is the grader's, not the submission's), and every
  function, class or name of the student's cells it refers to, must not mention a
  forbidden torch function (``F.conv2d``, ``X.unfold``, ``nn.MaxPool2d``...) or a
  name imported from ``convlab``;
- :func:`escapes`: the student's cells must not use a way around the watch: an
  import outside :data:`ALLOWED_IMPORTS` (``sys``, ``ctypes``, ``gc``, ``inspect``,
  ``importlib``...), a private or dunder attribute (``torch._C``, ``f.__code__``,
  ``F.__dict__``), ``torch.ops`` or ``torch.overrides``, a dynamic name (``eval``,
  ``exec``, ``globals()``, ``getattr`` with a computed name), an assignment to an
  attribute of an imported module (a monkeypatch), a subclass of ``torch.Tensor``,
  or the IPython kernel (``get_ipython()``, magics but ``%matplotlib``, ``%time``,
  ``%timeit``).

Straightforward code, right or wrong, uses none of these. A test cell whose
points rest on a watched check keeps them only where both readings are clean
(:func:`classgrade.trusted.worker.apply_ledger`): a delegation found costs those
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
"""
import ast
import functools

# Top-level modules a submission may import (torch without its low-level parts, below).
ALLOWED_IMPORTS = frozenset({
    "__future__", "torch", "numpy", "math", "cmath", "itertools", "functools", "collections", "typing",
    "dataclasses", "random", "time", "warnings", "statistics", "fractions", "numbers", "string", "copy",
    "matplotlib", "tqdm", "convlab",
})
# Modules of which a submission may use only these attributes (printing to stderr, paths).
PLAIN_ATTRIBUTES = {
    "sys": frozenset({"stdout", "stderr", "version", "version_info", "float_info", "maxsize", "platform"}),
    "os": frozenset({"path", "sep", "getcwd", "listdir", "makedirs", "cpu_count"}),
}
# Parts of torch that reach around a TorchFunctionMode or the dispatcher.
TORCH_INTERNALS = frozenset({"ops", "overrides", "library", "fx", "jit", "compiler"})
DYNAMIC = frozenset({"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
                     "open", "setattr", "delattr", "get_ipython", "__builtins__"})
PLAIN_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__qualname__"})
MAGICS = frozenset({"matplotlib", "time", "timeit"})


def student_cells(nb):
    """``[(cell number, syntax tree)]`` of the code the student wrote: solution cells and their own.

    Test and locked cells are the instructor's (nbgrader restores them before grading). IPython
    syntax is read as IPython runs it; a cell that does not parse ran nothing, and is left out.
    """
    cells = []
    for number, cell in enumerate(nb.cells, 1):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and (meta.get("solution") or not (meta.get("grade") or meta.get("locked"))):
            tree = _parse(cell.get("source", ""))
            if tree is not None:
                cells.append((number, tree))
    return cells


def escapes(nb, function=None, *, substitute=()):
    """One line for each way around the in-kernel checks in the student's cells; ``[]`` if none.

    With ``function``, only those that can affect it: in code run at the top level of a
    cell, or in the definitions it refers to (see :func:`delegations`).
    """
    found, modules = [], _imports(tree for _, tree in _all_cells(nb))
    reach = None if function is None else _reach(_definitions(nb), function, substitute)
    for number, tree in student_cells(nb):
        for node in tree.body:
            names = _defined(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else []
            if reach is not None and names and not set(names) & reach:
                continue
            reader = _EscapeReader(modules)
            reader.visit(node)
            found += [f"cell {number}, line {n}: {why}" for n, why in reader.found]
    return list(dict.fromkeys(found))


def delegations(nb, function, *, forbidden, substitute=()):
    """Where ``function`` (``'name'`` or ``'Class.method'``) or what it refers to uses a forbidden function.

    Follows the names of the student's own top-level functions, classes and assignments
    that the definition refers to, except those in ``substitute`` (trusted during the test).
    """
    defs = _definitions(nb)
    imported = _imports(tree for _, tree in _all_cells(nb))
    bad = {_normal(name) for name in forbidden}
    found = []
    for name in sorted(_reach(defs, function, substitute)):
        for number, node in defs.get(name, []):
            local = _locals(node)
            for sub in ast.walk(node):
                what = None
                if isinstance(sub, ast.Name) and sub.id not in local:
                    origin = imported.get(sub.id, "")
                    if origin.split(".")[0] == "convlab" or (origin and _normal(origin.split(".")[-1]) in bad):
                        what = f"{sub.id} (from {origin})"
                elif isinstance(sub, ast.Attribute) and _normal(sub.attr) in bad and _root(sub) not in ("self", "cls"):
                    what = _dotted(sub)
                line = f"cell {number}, line {getattr(sub, 'lineno', '?')}: {what}"
                if what and line not in found:
                    found.append(line)
    return found


def _definitions(nb):
    """``{name: [(cell number, statement)]}``: the student's top-level definitions of each name."""
    defs = {}
    for number, tree in student_cells(nb):
        for node in tree.body:
            for name in _defined(node):
                defs.setdefault(name, []).append((number, node))
    return defs


def _reach(defs, function, substitute):
    """The names of ``defs`` that ``function`` refers to, directly or through others (itself included)."""
    seen, queue = set(), [function.split(".")[0]]
    while queue:
        name = queue.pop()
        if name in seen or name in substitute or name not in defs:
            continue
        seen.add(name)
        for _, node in defs[name]:
            local = _locals(node)
            queue += [sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id not in local]
    return seen


def _locals(node):
    """Names that a definition binds inside itself (arguments, assignments): they hide the notebook's."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return set()
    names = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}
    return names | {sub.arg for sub in ast.walk(node) if isinstance(sub, ast.arg)}


# --- reading ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)   # each test cell reads the same cells again; nothing changes a tree
def _parse(source):
    from IPython.core.inputtransformer2 import TransformerManager
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def _all_cells(nb):
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            tree = _parse(cell.get("source", ""))
            if tree is not None:
                yield None, tree


def _normal(name):
    return name.lower().replace("_", "")


def _root(node):
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "(...)")
    return ".".join(reversed(parts))


def _imports(trees):
    """``{local name: module path}`` bound by the imports of ``trees``."""
    names = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    names[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"
    return names


def _defined(node):
    """Top-level names a statement defines."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return [sub.id for target in targets if target is not None for sub in ast.walk(target)
            if isinstance(sub, ast.Name)]


def _magic_call(node):
    """``get_ipython().run_line_magic('time', 'code')`` -> ``('time', ['code'])``; other nodes -> None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython" and node.func.attr in ("run_line_magic", "run_cell_magic")
            and node.args and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
        return None
    return node.args[0].value, [a.value for a in node.args[1:]]


class _EscapeReader(ast.NodeVisitor):
    def __init__(self, modules):
        self.modules = modules   # local name -> module path, of every cell (a setup cell's imports too)
        self.found = []

    def note(self, node, why):
        self.found.append((getattr(node, "lineno", "?"), why))

    def visit_Call(self, node):
        magic = _magic_call(node)
        if magic is not None:
            name, code = magic
            if name not in MAGICS:
                self.note(node, f"uses the IPython magic %{name}")
            elif name != "matplotlib":   # the code that %time and %timeit run is read like any other
                for text in code:
                    inner = _EscapeReader(self.modules)
                    inner.visit(_parse(text) or ast.Module(body=[], type_ignores=[]))
                    self.found += [(node.lineno, why) for _, why in inner.found]
            return
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call) \
                and isinstance(node.func.value.func, ast.Name) and node.func.value.func.id == "get_ipython":
            self.note(node, f"uses the IPython kernel (get_ipython().{node.func.attr})")
            return
        if isinstance(node.func, ast.Name) and node.func.id == "getattr":
            attr = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str) and not attr.value.startswith("_")):
                self.note(node, "uses getattr with a computed or private name")
            for arg in node.args:
                self.visit(arg)
            return
        self.generic_visit(node)

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
        self._module(node, node.module)
        for alias in node.names:
            if alias.name.startswith("_") or (node.module.split(".")[0] == "torch" and alias.name in TORCH_INTERNALS):
                self.note(node, f"imports {alias.name} from {node.module}")

    def _module(self, node, path):
        parts = path.split(".")
        if parts[0] not in ALLOWED_IMPORTS and not (parts[0] in PLAIN_ATTRIBUTES and set(parts[1:]) <= PLAIN_ATTRIBUTES[parts[0]]):
            self.note(node, f"imports {path}")
        elif parts[0] == "torch" and any(p.startswith("_") or p in TORCH_INTERNALS for p in parts[1:]):
            self.note(node, f"imports {path}")

    def visit_Attribute(self, node):
        root = _root(node)
        if node.attr.startswith("__") and node.attr.endswith("__") and node.attr not in PLAIN_DUNDERS:
            self.note(node, f"uses {_dotted(node)}")
        elif node.attr.startswith("_") and not node.attr.startswith("__") and root not in ("self", "cls"):
            self.note(node, f"uses {_dotted(node)}, a private attribute")
        elif isinstance(node.value, ast.Name) and self._module_of(node.value) == "torch" \
                and node.attr in TORCH_INTERNALS:
            self.note(node, f"uses {_dotted(node)}")
        elif isinstance(node.value, ast.Name) and self._module_of(node.value) in PLAIN_ATTRIBUTES \
                and node.attr not in PLAIN_ATTRIBUTES[self._module_of(node.value)]:
            self.note(node, f"uses {_dotted(node)}")
        self.generic_visit(node)

    def _module_of(self, name):
        """The top-level module that the name ``name`` (an ``ast.Name``) was imported as, or ''."""
        path = self.modules.get(name.id, "")
        return path if "." not in path else ("torch" if path.startswith("torch.") else "")

    def visit_Name(self, node):
        if node.id in DYNAMIC:
            self.note(node, f"uses {node.id}")

    def _assigned(self, node, targets):
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute) and _root(sub) in self.modules:
                    self.note(node, f"changes {_dotted(sub)}, in the imported module {_root(sub)}")
        self.generic_visit(node)

    def visit_Assign(self, node):
        self._assigned(node, node.targets)

    def visit_AugAssign(self, node):
        self._assigned(node, [node.target])

    def visit_AnnAssign(self, node):
        self._assigned(node, [node.target])

    def visit_Delete(self, node):
        self._assigned(node, node.targets)

    def visit_ClassDef(self, node):
        for base in node.bases:
            if _dotted(base).split(".")[-1] in ("Tensor", "TorchFunctionMode", "TorchDispatchMode"):
                self.note(node, f"defines {node.name}, a subclass of {_dotted(base)}")
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        if node.name.startswith("__torch_"):
            self.note(node, f"defines {node.name}")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef
