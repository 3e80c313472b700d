"""The class grader's layout: its trust boundary, its imports, the size of its functions.

``classgrade/trusted`` runs as the grader, ``classgrade/sandboxed`` inside the sandbox; a
sandbox sees ``classgrade/__init__.py``, ``classgrade/protocol.py`` and ``classgrade/sandboxed``
only, so those import nothing of the trusted side. ``convlab`` imports nothing of the grader,
and the grader's own process no torch. Read with ``ast`` (no import): no function-level import
outside the documented places, no import cycle, no function of more than 60 lines.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "classgrade"
MAX_LINES = 60
# (module, function) -> why an import there is where start-up order needs it
LOCAL_IMPORTS = {
    ("classgrade.trusted.run", "grade_class"):
        "the pipeline's modules after the zygote has started, so that their imports overlap",
    ("classgrade.trusted.run", "start_kernels"): "distributed on the Dask path only",
    ("classgrade.trusted.runner", "_child"): "a Dask worker's own process never grades",
}


def _modules():
    """module name -> (path, tree) of every module of classgrade."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = (path, ast.parse(path.read_text(), str(path)))
    return found


def _functions(tree):
    """``(qualified name, node)`` of every function (methods and nested functions too)."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    return out


def _imported(module, node):
    """The classgrade modules an import node names (relative ones resolved)."""
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    return {n for n in names if n == "classgrade" or n.startswith("classgrade.")}


def _top_level_imports(modules):
    """module -> the classgrade modules it imports at its top level (statements not in a function)."""
    graph = {}
    for name, (_, tree) in modules.items():
        found = set()
        for node in tree.body:
            for sub in ast.walk(node):
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    break
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    found |= _imported(name, sub)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_imports_are_at_the_top_of_modules_outside_the_documented_places():
    found = []
    for name, (_, tree) in _modules().items():
        for qualname, function in _functions(tree):
            imports = [n for n in ast.walk(function) if isinstance(n, (ast.Import, ast.ImportFrom))]
            if imports and (name, qualname.split(".")[-1]) not in LOCAL_IMPORTS:
                found.append(f"{name}.{qualname} (line {imports[0].lineno})")
    assert not found, f"imports inside functions: {found}"


def test_no_import_cycle_among_classgrade_s_modules():
    graph = _top_level_imports(_modules())
    assert graph["classgrade.trusted.zygote"] >= {"classgrade.sandboxed.kernel"}   # the graph is read
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_no_function_of_the_grader_is_longer_than_60_lines():
    long = []
    for name, (path, tree) in _modules().items():
        for qualname, function in _functions(tree):
            lines = function.end_lineno - function.lineno + 1
            if lines > MAX_LINES:
                long.append(f"{name}.{qualname}: {lines} lines")
    assert not long, long


def test_the_sandbox_side_imports_nothing_of_the_trusted_side_by_its_source():
    graph = _top_level_imports(_modules())
    for name in graph:
        if name in ("classgrade", "classgrade.protocol") or name.startswith("classgrade.sandboxed"):
            assert not {m for m in graph[name] if m.startswith("classgrade.trusted")}, name


def _fresh(code):
    """What a new interpreter prints for ``code`` (run outside the repository, so that only
    the installed distributions are importable)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                          timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_convlab_imports_nothing_of_the_grader():
    loaded = _fresh("import json, sys, convlab\nprint(json.dumps(sorted(sys.modules)))")
    assert "convlab.corr2d" not in loaded and "torch" in loaded    # convlab's plain imports
    assert not [m for m in loaded if m == "classgrade" or m.startswith("classgrade.")]


@pytest.mark.parametrize("module", ["classgrade.protocol"] + sorted(
    f"classgrade.sandboxed.{p.stem}" for p in (PACKAGE / "sandboxed").glob("*.py") if p.stem != "__init__"))
def test_what_a_sandbox_sees_imports_nothing_of_the_trusted_side(module):
    loaded = _fresh(f"import json, sys, {module}\nprint(json.dumps(sorted(sys.modules)))")
    assert module in loaded
    assert not [m for m in loaded if m.startswith("classgrade.trusted")]
    if module == "classgrade.protocol":   # stdlib only: no torch, no nbgrader
        assert not [m for m in loaded if m.split(".")[0] in ("torch", "nbgrader", "nbformat", "convlab")]


def test_the_grader_s_process_imports_no_torch():
    """``python -m classgrade`` imports classgrade.trusted.cli and run before it starts a zygote;
    torch (~1.5 s) is the kernels' alone."""
    loaded = _fresh("import json, sys, classgrade.trusted.cli, classgrade.trusted.run\n"
                    "print(json.dumps(sorted(sys.modules)))")
    assert "classgrade.trusted.run" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "convlab")]
