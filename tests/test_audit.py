"""The grader's reading of a submission's source (classgrade.trusted.audit): delegation and escapes."""
from pathlib import Path

import nbformat
import pytest

from classgrade.trusted import audit
from convlab.grading import DELEGATION

ROOT = Path(__file__).resolve().parents[1]
# Every notebook a student or the instructor wrote honestly, right or wrong: none reaches around the checks.
HONEST = sorted([*ROOT.glob("solutions/*/*.ipynb"), *ROOT.glob("exercises/*/*.ipynb"),
                 *ROOT.glob("tests/submissions/*/*.ipynb")])


def notebook(*sources, locked=()):
    """A notebook of student cells, after ``locked`` instructor cells."""
    cells = [nbformat.v4.new_code_cell(s, metadata=dict(nbgrader=dict(locked=True, grade_id=f"setup{i}")))
             for i, s in enumerate(locked)]
    return nbformat.v4.new_notebook(cells=cells + [nbformat.v4.new_code_cell(s) for s in sources])


@pytest.mark.parametrize("path", HONEST, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_honest_notebooks_reach_around_nothing(path):
    assert audit.escapes(nbformat.read(str(path), as_version=4)) == []


def watched_functions(nb):
    """Names of the functions the test cells watch for delegation (a check without ``forbidden=()``)."""
    import ast
    names = set()
    for cell in nb.cells:
        if not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        for node in ast.walk(audit._parse(cell.source) or ast.Module(body=[], type_ignores=[])):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                    and node.func.attr in ("check_against", "check_no_delegation", "check_few_calls") \
                    and not any(k.arg == "forbidden" and isinstance(k.value, ast.Tuple) and not k.value.elts
                                for k in node.keywords):
                names.add(getattr(node.args[0], "id", None) or ast.unparse(node.args[0]))
    return names


def test_the_solutions_delegate_nothing_they_are_watched_for():
    watched = {}
    for path in ROOT.glob("solutions/*/*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        watched[path.stem] = watched_functions(nb)
        for name in watched[path.stem]:
            assert audit.delegations(nb, name, forbidden=DELEGATION) == [], (path.name, name)
    assert {"corr2d", "conv2d"} <= watched["cross_correlation"] and "pad2d" in watched["shapes_padding_stride"]


@pytest.mark.parametrize("source, found", [
    ("import torch.nn.functional as F\ndef corr2d(X, K):\n    return F.conv2d(X, K)", "line 3: F.conv2d"),
    ("from torch.nn.functional import conv2d as c\ndef corr2d(X, K):\n    return c(X, K)",
     "c (from torch.nn.functional.conv2d)"),
    ("from torch import nn\ndef corr2d(X, K):\n    return nn.Conv2d(1, 1, 2)(X)", "nn.Conv2d"),
    ("def corr2d(X, K):\n    return X.unfold(0, 2, 1)", "X.unfold"),
    ("import convlab\ndef corr2d(X, K):\n    return convlab.corr2d(X, K)", "convlab (from convlab)"),
    ("from convlab import corr2d as reference\ndef corr2d(X, K):\n    return reference(X, K)",
     "reference (from convlab.corr2d)"),
    ("import torch\ndef corr2d(X, K):\n    return torch.ops.aten.convolution.default(X, K)",
     "torch.ops.aten.convolution"),
    # through a helper, a class and a module-level alias
    ("import torch.nn.functional as F\ndef corr2d(X, K):\n    return helper(X, K)\nhelper = lambda X, K: F.conv2d(X, K)",
     "line 4: F.conv2d"),
    ("import torch.nn.functional as F\nclass Engine:\n    def run(self, X, K):\n        return F.conv2d(X, K)\n"
     "def corr2d(X, K):\n    return Engine().run(X, K)", "line 4: F.conv2d"),
])
def test_a_delegation_is_found_where_it_is(source, found):
    lines = audit.delegations(notebook(source), "corr2d", forbidden=DELEGATION)
    assert any(found in line for line in lines), lines


def test_only_what_the_function_reaches_counts():
    nb = notebook("import torch.nn.functional as F\n"
                  "def corr2d(X, K):\n    return X[:1, :1] * K.sum()\n"      # wrong, but its own
                  "def check(X, K):\n    return F.conv2d(X, K)\n",           # never called by corr2d
                  "def conv2d(X, K):\n    return corr2d(X, K.flip(0, 1))",
                  "class Layer:\n    def forward(self, X):\n        return self.conv2d(X)")
    assert audit.delegations(nb, "corr2d", forbidden=DELEGATION) == []
    # a substituted name runs the trusted reference during the test: not followed
    assert audit.delegations(nb, "conv2d", forbidden=DELEGATION, substitute=("corr2d",)) == []
    assert audit.delegations(nb, "Layer.forward", forbidden=DELEGATION) == []   # self.conv2d is the layer's own
    # the instructor's locked cells are not the student's
    locked = notebook("def conv2d(X, K):\n    return corr2d(X, K.flip(0, 1))",
                      locked=["import torch.nn.functional as F\ndef corr2d(X, K):\n    return F.conv2d(X, K)"])
    assert audit.delegations(locked, "conv2d", forbidden=DELEGATION) == []


@pytest.mark.parametrize("source, found", [
    ("import sys\nsys.setprofile(None)", "uses sys.setprofile"),
    ("from sys import settrace", "imports settrace from sys"),
    ("import ctypes", "imports ctypes"),
    ("import gc, inspect", "imports gc"),
    ("import importlib", "imports importlib"),
    ("import torch\nwith torch._C.DisableTorchFunction():\n    pass", "torch._C, a private attribute"),
    ("from torch._C import DisableTorchFunction", "imports torch._C"),
    ("from torch.overrides import TorchFunctionMode", "imports torch.overrides"),
    ("import torch\nop = torch.ops.aten.convolution", "uses torch.ops"),
    ("import torch.nn.functional as F\nf = getattr(F, 'conv' + '2d')", "getattr with a computed"),
    ("import torch.nn.functional as F\nf = F.__dict__['conv2d']", "uses F.__dict__"),
    ("def f():\n    pass\nf.__code__ = (lambda: 1).__code__", "uses f.__code__"),
    ("x = eval('1 + 1')", "uses eval"),
    ("exec('x = 1')", "uses exec"),
    ("g = globals()", "uses globals"),
    ("from convlab import grading\ngrading.check_result = lambda *a, **k: None", "changes grading.check_result"),
    ("import torch\ntorch.allclose = lambda *a, **k: True", "changes torch.allclose"),
    ("import torch\nclass Agreeable(torch.Tensor):\n    pass", "a subclass of torch.Tensor"),
    ("get_ipython().kernel.session", "uses get_ipython"),
    ("!ls /", "uses the IPython kernel (get_ipython().system)"),
    ("%load_ext autoreload", "uses the IPython magic %load_ext"),
    ("%time x = eval('2')", "line 1: uses eval"),    # what %time runs is read too
    ("def corr2d(X, K):\n    import os\n    os.system('true')", "uses os.system"),
])
def test_an_escape_is_named_with_its_line(source, found):
    lines = audit.escapes(notebook(source))
    assert any(found in line for line in lines), lines


@pytest.mark.parametrize("source", [
    "import torch\nimport torch.nn.functional as F\nimport numpy as np\nimport math, itertools",
    "import sys\nprint('loss', 1.0, file=sys.stderr)",
    "import os\npath = os.path.join('a', 'b')",
    "import warnings\nwarnings.warn('slow')",
    "from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass",
    "%matplotlib inline\n%time y = sum(range(10))",
    "x = getattr(object(), 'weight', None)",
    "from torch import nn\nclass Conv2D(nn.Module):\n    def __init__(self, k):\n        super().__init__()\n"
    "        self._k = k\n    def forward(self, X):\n        return X * self._k",
    "def corr2d(X, K):\n    return (X[:1, :1] * K).sum()  # wrong, not an escape",
    "def broken(:\n    pass",   # does not parse: it ran nothing in the kernel either
])
def test_plain_code_is_no_escape(source):
    assert audit.escapes(notebook(source)) == []


def test_an_escape_counts_for_the_functions_it_can_affect():
    nb = notebook("import sys\n"
                  "def pad2d(X, padding):\n    sys.setprofile(None)\n    return X\n"
                  "def corr2d(X, K):\n    return X\n"
                  "def conv2d(X, K):\n    return pad2d(X, 0)")
    assert audit.escapes(nb, "corr2d") == []
    assert audit.escapes(nb, "pad2d") == audit.escapes(nb, "conv2d") == ["cell 1, line 3: uses sys.setprofile"]
    assert audit.escapes(nb, "conv2d", substitute=("pad2d",)) == []
    top_level = notebook("import sys\nsys.setprofile(None)", "def corr2d(X, K):\n    return X")
    assert audit.escapes(top_level, "corr2d") == ["cell 1, line 2: uses sys.setprofile"]   # code at the top runs anyway
