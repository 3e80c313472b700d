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


def test_a_method_called_on_a_result_changes_nothing():
    nb = notebook("def pad2d(X, p):\n    return X\ndef corr2d(X, K):\n    return pad2d(X, 1).unfold(0, 2, 1)")
    assert audit.delegations(nb, "pad2d", forbidden=DELEGATION) == []   # pad2d(X).unfold is not pad2d's
    assert audit.delegations(nb, "corr2d", forbidden=DELEGATION) == ["cell 1, line 4: (...).unfold"]


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
    ("import torch\nfor torch.allclose in [print]:\n    pass", "changes torch.allclose"),
    ("import torch\nflags = [0 for torch.allclose in [print]]", "changes torch.allclose"),
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


# --- every line of the submission that can run (issue #23) -------------------------------------
# Each route runs code as the notebook defines or loads things, or through a file, a thread, a hook:
# its escape counts for every watched function, named by cell and line.
SETPROFILE = "import sys\ndef forge():\n    sys.setprofile(None)\n"   # line 3 of the cell
CORR2D = "def corr2d(X, K):\n    return X[:1, :1] * 0"
WRITE = "def write():\n    with open('forge.py', 'w') as f:\n        f.write('import sys')\nwrite()"


@pytest.mark.parametrize("cells, found", [
    # code that runs as the notebook defines things
    ((SETPROFILE + "forge()", CORR2D), "cell 1, line 3: uses sys.setprofile"),                  # a helper called
    ((SETPROFILE + "def quiet(f):\n    forge()\n    return f\n@quiet\ndef other(x):\n    return x", CORR2D),
     "cell 1, line 3: uses sys.setprofile"),                                                     # a decorator
    ((SETPROFILE + "def g(x=forge()):\n    return x", CORR2D), "cell 1, line 3: uses sys.setprofile"),  # a default
    ((SETPROFILE + "def g(*, x=[forge][0]()):\n    return x", CORR2D), "cell 1, line 3: uses sys.setprofile"),
    ((SETPROFILE + "def g(x: forge()):\n    return x", CORR2D), "cell 1, line 3: uses sys.setprofile"),  # annotation
    ((SETPROFILE + "class Setup:\n    done = forge()", CORR2D), "cell 1, line 3: uses sys.setprofile"),  # class body
    ((SETPROFILE + "class Setup:\n    class Inner:\n        def f(self, x=forge()):\n            pass", CORR2D),
     "cell 1, line 3: uses sys.setprofile"),
    ((SETPROFILE + "def base():\n    forge()\n    return object\nclass A(base()):\n    pass", CORR2D),
     "cell 1, line 3: uses sys.setprofile"),                                                     # a base class
    (("import sys\nclass Meta(type):\n    def __new__(mcs, *args):\n        sys.setprofile(None)\n"
      "        return type.__new__(mcs, *args)\nclass A(metaclass=Meta):\n    pass", CORR2D),
     "cell 1, line 4: uses sys.setprofile"),                                                     # a metaclass
    (("import sys\nclass Base:\n    def __init_subclass__(cls):\n        sys.setprofile(None)\n"
      "class Child(Base):\n    pass", CORR2D), "cell 1, line 4: uses sys.setprofile"),           # __init_subclass__
    (("import sys\nclass Hook:\n    def __set_name__(self, owner, name):\n        owner.run()\n"
      "class Owner:\n    hook = Hook()\n    @staticmethod\n    def run():\n        sys.setprofile(None)", CORR2D),
     "cell 1, line 9: uses sys.setprofile"),                                 # a descriptor runs its owner's method
    (("import sys\nHOOKS = []\ndef register(f):\n    HOOKS.append(f)\n    return f\n"
      "@register\ndef forge():\n    sys.setprofile(None)",
      "def corr2d(X, K):\n    for hook in HOOKS:\n        hook()\n    return X"),
     "cell 1, line 8: uses sys.setprofile"),                                 # a decorator keeps what it decorates
    (("import sys\ndef __getattr__(name):\n    sys.setprofile(None)", CORR2D),
     "cell 1, line 3: uses sys.setprofile"),                                 # a module __getattr__
    (("import sys\ncorr2d = lambda X, K: sys.setprofile(None) or X",), "cell 1, line 2: uses sys.setprofile"),
    (("import sys\nforge = lambda: sys.setprofile(None)\nresults = [forge() for _ in range(1)]", CORR2D),
     "cell 1, line 2: uses sys.setprofile"),
    ((SETPROFILE, CORR2D, "print(forge)"), "cell 1, line 3: uses sys.setprofile"),       # named in another cell
    (("import torch\ndef off():\n    torch._C._disabled_torch_function_impl\noff()", CORR2D),
     "cell 1, line 3: uses torch._C, a private attribute"),
    (("import torch\ndef off():\n    return torch.sys.setprofile(None)\noff()", CORR2D),
     "cell 1, line 3: uses torch.sys.setprofile"),                                 # a module re-exported by torch
    (("import sys\ndef off():\n    getattr(sys, 'setprofile')(None)\noff()", CORR2D),
     "cell 1, line 3: uses sys.setprofile"),                                       # getattr with a constant name
    (("def off():\n    return get_ipython()\noff()", CORR2D), "cell 1, line 2: uses get_ipython"),
    # a file written, then loaded
    ((WRITE, "import forge", CORR2D), "cell 1, line 2: uses open"),
    ((WRITE, "import forge", CORR2D), "cell 2, line 1: imports forge"),
    (("from pathlib import Path\nPath('forge.py').write_text('x = 1')", CORR2D), "cell 1, line 1: imports pathlib"),
    (("import io, shutil", CORR2D), "cell 1, line 1: imports io"),
    (("%%writefile forge.py\nimport sys\nsys.setprofile(None)", "from forge import *", CORR2D),
     "cell 1, line 1: uses the IPython magic %writefile"),
    (("%run forge.py", CORR2D), "cell 1, line 1: uses the IPython magic %run"),
    (("%load forge.py", CORR2D), "cell 1, line 1: uses the IPython magic %load"),
    (("import numpy as np\nnp.savetxt('forge.py', [[1]], header='import sys')", CORR2D), "uses np.savetxt"),
    (("import numpy as np\nnp.array([1]).tofile('forge.bin')", CORR2D), "cell 1, line 2: uses (...).tofile"),
    (("import torch\ntorch.save({'code': 'x'}, 'forge.pt')", CORR2D), "cell 1, line 2: uses torch.save"),
    (("import torch\ndef restore():\n    return torch.load('forge.pt', weights_only=False)\nstate = restore()", CORR2D),
     "cell 1, line 3: uses torch.load"),
    (("import numpy as np\nstate = np.load('forge.npy', allow_pickle=True)", CORR2D), "cell 1, line 2: uses np.load"),
    (("import importlib\nimportlib.import_module('forge')", CORR2D), "cell 1, line 1: imports importlib"),
    (("import runpy, pickle, marshal, shelve, zipimport, site", CORR2D), "imports runpy"),
    (("mod = __import__('forge')", CORR2D), "cell 1, line 1: uses __import__"),
    (("exec(open('forge.py').read())", CORR2D), "cell 1, line 1: uses exec"),
    (("import torch\nscripted = torch.jit.load('forge.pt')", CORR2D), "cell 1, line 2: uses torch.jit"),
    (("from torch.utils.cpp_extension import load_inline", CORR2D), "imports torch.utils.cpp_extension"),
    (("import torch\ntorch.hub.load('x', 'y')", CORR2D), "cell 1, line 2: uses torch.hub"),
    (("import torch.package", CORR2D), "cell 1, line 1: imports torch.package"),
    (("import numpy.ctypeslib", CORR2D), "imports numpy.ctypeslib"),
    (("import numpy as np\nview = np.lib.stride_tricks.as_strided", CORR2D), "uses np.lib"),
    (("import matplotlib\nmatplotlib.use('module://forge')", CORR2D), "cell 1, line 2: uses matplotlib.use"),
    (("import matplotlib.pyplot as plt\nplt.rcParams['figure.hooks'] = ['forge:run']", CORR2D),
     "cell 1, line 2: uses plt.rcParams"),
    (("import matplotlib.pyplot as plt\nplt.matplotlib.use('module://forge')", CORR2D),
     "cell 1, line 2: uses plt.matplotlib.use"),
    (("import matplotlib.pyplot as plt\nplt.plot([1])\nplt.savefig('forge.py')", CORR2D), "uses plt.savefig"),
    (("%matplotlib module://forge", CORR2D), "uses the IPython magic %matplotlib module://forge"),
    (("import torch\ndef alias(m):\n    return m\nalias(torch).save", CORR2D), "uses the module torch as a value"),
    (("import torch\nt = torch\nt.jit.script", CORR2D), "uses the module torch as a value"),
    # low-level file descriptors: the kernel's report channels
    (("import os\nos.write(3, b'{}')", CORR2D), "cell 1, line 2: uses os.write"),
    (("import os\nos.dup2(1, 3)", CORR2D), "cell 1, line 2: uses os.dup2"),
    (("import os\nfd = os.open('x', 0)", CORR2D), "cell 1, line 2: uses os.open"),
    (("import sys\nfd = sys.stdout.fileno()", CORR2D), "cell 1, line 2: uses sys.stdout.fileno"),
    (("import os\nos.makedirs('forge')", CORR2D), "cell 1, line 2: uses os.makedirs"),
    # threads, processes, hooks
    (("import threading\nthreading.Thread(target=print).start()", CORR2D), "cell 1, line 1: imports threading"),
    (("import _thread, concurrent.futures, asyncio", CORR2D), "imports _thread"),
    (("import torch.multiprocessing as mp", CORR2D), "imports torch.multiprocessing"),
    (("from torch.utils.data import DataLoader", CORR2D), "imports torch.utils.data"),
    (("import signal, atexit, weakref, gc", CORR2D), "imports signal"),
    (("from tqdm.contrib.concurrent import thread_map", CORR2D), "imports tqdm.contrib.concurrent"),
    (("import sys\nsys.settrace(None)", CORR2D), "uses sys.settrace"),
    (("import sys\nsys.addaudithook(print)", CORR2D), "uses sys.addaudithook"),
    (("import sys\nsys.modules['torch'] = None", CORR2D), "uses sys.modules"),
    (("ip = get_ipython()\nip.events.register('pre_run_cell', print)", CORR2D), "cell 1, line 1: uses get_ipython"),
    (("%config InlineBackend.figure_format = 'svg'", CORR2D), "uses the IPython magic %config"),
    (("class Forge:\n    def __del__(self):\n        pass\nkeep = Forge()", CORR2D), "cell 1, line 2: defines __del__"),
    (("import numpy as np\nnp.seterrcall(print)", CORR2D), "uses np.seterrcall"),
    (("from torch.nn.modules.module import register_module_forward_hook", CORR2D),
     "imports register_module_forward_hook from torch.nn.modules.module"),
    (("import sys\n%timeit -n1 -r1 sys.setprofile(None)", CORR2D), "cell 1, line 2: uses sys.setprofile"),
    (("%%timeit sys.setprofile(None)\npass", CORR2D), "cell 1, line 1: uses sys.setprofile"),   # %%timeit's setup
    (("import matplotlib.pyplot as plt\nplt.title('x', usetex=True)", CORR2D), "uses usetex="),
    (("class Forge:\n    __del__ = print\nkeep = Forge()", CORR2D), "cell 1, line 2: uses __del__"),
    (("loader = __loader__", CORR2D), "cell 1, line 1: uses __loader__"),
    (("from numpy import *", CORR2D), "imports * from numpy"),
    (("from numpy import save as keep", CORR2D), "imports save from numpy"),
    (("from functools import singledispatch", CORR2D), "imports singledispatch from functools"),  # evaluates strings
    (("import string\nfield = string.Formatter().get_field", CORR2D), "uses string.Formatter"),
    (("from torch import nn\nclass Agreeable(nn.Parameter):\n    pass\nprint(Agreeable)", CORR2D),
     "a subclass of nn.Parameter"),
    (("import torch\ny = torch.cond(True, print, print, ())", CORR2D), "uses torch.cond"),
    (("def gen():\n    yield\nchecks = gen().gi_frame.f_back.f_globals", CORR2D),
     "cell 1, line 3: uses (...).gi_frame"),
    (("import sys\nout = sys.stdout\nout.session.send(None, 'x')", CORR2D), "uses out.session (sys.stdout.session)"),
    (("import sys\nimport matplotlib.pyplot as plt\nclass Drawn:\n    def on_draw(event):\n"
      "        sys.setprofile(None)\n    plt.connect('draw_event', on_draw)", CORR2D),
     "cell 1, line 5: uses sys.setprofile"),                                 # a class body keeps its own method
    (("Forge = type('Forge', (), {'__del__': print})", CORR2D), "cell 1, line 1: builds a class with type("),
    (("import matplotlib.pyplot as plt\nplt.imshow([[1]]).write_png('forge.png')", CORR2D), "uses (...).write_png"),
])
def test_code_that_runs_as_the_notebook_loads_counts_for_every_watched_function(cells, found):
    nb = notebook(*cells)
    lines = audit.escapes(nb, "corr2d")
    assert any(found in line for line in lines), lines
    assert set(lines) <= set(audit.escapes(nb))   # and the whole reading finds it too


def with_test(nb, source):
    test = nbformat.v4.new_code_cell(source, metadata=dict(nbgrader=dict(grade=True, grade_id="t", points=1)))
    nb.cells.append(test)
    return nb


def test_replacing_the_instructors_checks_is_an_escape():
    fake = "class Fake:\n    def check_against(self, *args, **kwargs):\n        pass\ngrading = Fake()"
    test = "grading.check_against(corr2d, reference, cases)"
    nb = with_test(notebook(CORR2D, fake, locked=["from convlab import grading"]), test)
    assert audit.escapes(nb, "corr2d") == ["cell 3, line 4: rebinds grading, which the instructor's cell 1 binds "
                                           "and cell 4 uses"]
    helper = with_test(notebook(CORR2D, locked=["def check_step(got):\n    assert got == 1"]), "check_step(1)")
    helper.cells.insert(2, nbformat.v4.new_code_cell("check_step = print"))   # between the helper and its use
    assert audit.escapes(helper, "corr2d") == ["cell 3, line 1: rebinds check_step, which the instructor's "
                                               "cell 1 binds and cell 4 uses"]
    # a name the instructor does not bind, the same module imported again, a name the tests bind again
    # before they read it, or a rebinding after the last use replace nothing
    assert audit.escapes(with_test(notebook(fake, CORR2D, locked=["import torch"]), test), "corr2d") == []
    assert audit.escapes(with_test(notebook("from convlab import grading", locked=["from convlab import grading"]),
                                   test)) == []
    assert audit.escapes(with_test(notebook("X = 1", locked=["X = 2"]), "X = 3\nprint(X)")) == []
    assert audit.escapes(notebook(CORR2D, fake, locked=["from convlab import grading"])) == []


@pytest.mark.parametrize("cells, found", [
    # what the top-level code and corr2d's definition-time code bind to corr2d
    (("import torch.nn.functional as F\ndef make():\n    def inner(X, K):\n        return F.conv2d(X, K)\n"
      "    return inner\ncorr2d = make()",), "cell 1, line 4: F.conv2d"),
    (("import torch.nn.functional as F\ndef fast(f):\n    def wrapper(X, K):\n        return F.conv2d(X, K)\n"
      "    return wrapper\n@fast\ndef corr2d(X, K):\n    return X",), "cell 1, line 4: F.conv2d"),
    (("def corr2d(X, K):\n    return X", "import torch.nn.functional as F\ncorr2d = F.conv2d"),
     "cell 2, line 2: F.conv2d"),                                                  # rebound in a later cell
    (("from torch.nn.functional import conv2d as corr2d",), "cell 1, line 1: corr2d (from torch.nn.functional.conv2d)"),
    (("import torch.nn.functional as F\nOPS = []\nOPS.append(F.conv2d)\ndef corr2d(X, K):\n    return OPS[0](X, K)",),
     "cell 1, line 3: F.conv2d"),                                                  # a container filled at the top
    (("import torch.nn.functional as F\ndef setup():\n    global corr2d\n    corr2d = F.conv2d\nsetup()",),
     "cell 1, line 4: F.conv2d"),                                                  # bound by `global` in a function
    (("import torch.nn.functional as F\nclass Engine:\n    helper = 1\n    def run(self, X, K):\n"
      "        return helper(X, K)\ndef helper(X, K):\n    return F.conv2d(X, K)\n"
      "def corr2d(X, K):\n    return Engine().run(X, K)",), "cell 1, line 7: F.conv2d"),  # a method sees the global
    (("import torch.nn.functional as F\ndef corr2d(X, K, op=lambda X, K: F.conv2d(X, K)):\n    return op(X, K)",),
     "cell 1, line 2: F.conv2d"),
    (("def corr2d(X, K):\n    return getattr(X, 'unfold')(0, 2, 1)",), "cell 1, line 2: getattr(X, 'unfold')"),
    (("import torch.nn.functional as F\nif (corr2d := F.conv2d):\n    pass",), "cell 1, line 2: F.conv2d"),
    (("import torch.nn.functional as F\nOPS = {}\ndef setup():\n    OPS['c'] = F.conv2d\nsetup()\n"
      "def corr2d(X, K):\n    return OPS['c'](X, K)",), "cell 1, line 4: F.conv2d"),   # filled by a function
    (("%%time\nimport torch.nn.functional as F\ndef corr2d(X, K):\n    return F.conv2d(X, K)",),
     "cell 1, line 4: F.conv2d"),                                                  # defined under %%time
])
def test_a_delegation_bound_to_the_function_is_found(cells, found):
    lines = audit.delegations(notebook(*cells), "corr2d", forbidden=DELEGATION)
    assert any(found in line for line in lines), lines


LOOK_ALIKES = [
    "import functools\n@functools.lru_cache(maxsize=None)\ndef sizes(n):\n    return n * 2",
    "class Shape:\n    def __init__(self, h):\n        self.h = h\n    @property\n    def area(self):\n"
    "        return self.h\n    @staticmethod\n    def make():\n        return Shape(1)\n    @classmethod\n"
    "    def unit(cls):\n        return cls(1)",
    "import torch\ndef pad2d(X, padding=(0, 0), value=torch.tensor(0.0), *, dtype=torch.float32):\n    return X",
    "import torch\ndef describe(X):\n    return f'{tuple(X.shape)}'\nprint(describe(torch.ones(2, 3)))",
    "import torch\nfrom torch import nn\nclass Conv2D(nn.Module):\n    def __init__(self, kernel_size):\n"
    "        super().__init__()\n        self.weight = nn.Parameter(torch.rand(kernel_size))\n"
    "    def forward(self, X):\n        return X * self.weight.sum()\nlayer = Conv2D((1, 2))",
    "import torch\n%time y = torch.ones(3).sum()\n%timeit -n 3 -r 2 torch.ones(3)\n%matplotlib inline",
    "%%time\nz = sum(range(10))",
    "from tqdm import tqdm\nfor _ in tqdm(range(3)):\n    pass",
    "import torch\nimport torch.nn.functional as F\ndef pad(X):\n    return F.pad(X, (1, 1, 1, 1))\n"
    "Y = pad(torch.ones(2, 2))",
    "import torch\nimport matplotlib.pyplot as plt\nfig, axes = plt.subplots(1, 2, figsize=(6, 3))\n"
    "axes[0].imshow(torch.rand(4, 4), cmap='gray')\naxes[0].set_title('X')\nplt.colorbar(axes[0].images[0])\n"
    "plt.tight_layout()\nplt.show()",
    "import torch\ntorch.manual_seed(0)\ng = torch.Generator().manual_seed(1)\nX = torch.rand(3, 3, generator=g)",
    "import torch\ndef windows(X):\n    return X.unfold(0, 2, 1)\nprint(windows(torch.ones(4, 4)).shape)",
    "import torch\nsquares = [i * i for i in range(4)]\nnorms = {k: torch.tensor(float(k)).sqrt() for k in squares}\n"
    "total = sum(x for x in squares)",
    "import numpy as np\nimport torch\nX = np.array([[1.0, 2.0]])\nY = torch.from_numpy(np.pad(X, 1)).double()",
    "import torch\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'",
    "import math, itertools\nfrom collections import defaultdict\nfrom typing import Tuple\n"
    "def output_shape(i: int, k: int) -> Tuple[int, int]:\n    return math.floor(i - k) + 1, 0",
    "def kernels_of(direction):\n    kernels = {'vertical': 1}\n    return kernels[direction]",   # a local
]


@pytest.mark.parametrize("source", LOOK_ALIKES)
def test_honest_look_alikes_stay_clean(source):
    nb = notebook(source, "import torch\ndef corr2d(X, K):\n    return (X[:1, :1] * K).sum()",
                  locked=["import torch\nfrom convlab import grading, kernels"])
    assert audit.escapes(nb) == []
    assert audit.escapes(nb, "corr2d") == []
    assert audit.delegations(nb, "corr2d", forbidden=DELEGATION) == []


def test_an_escape_in_a_definition_counts_only_where_it_is_reached():
    nb = notebook("import sys\n"
                  "def pad2d(X, padding):\n    sys.setprofile(None)\n    return X\n"
                  "def conv2d(X, K):\n    return pad2d(X, 0)",
                  "def unused(X):\n    import ctypes\n    return X",
                  CORR2D)
    assert audit.escapes(nb, "corr2d") == []                        # nothing runs pad2d or unused as it loads
    assert audit.escapes(nb, "conv2d", substitute=("pad2d",)) == []
    assert audit.escapes(nb) == ["cell 1, line 3: uses sys.setprofile", "cell 2, line 2: imports ctypes"]
    # the instructor's cells run around the tests: what they call outside a grading check runs unwatched
    called = notebook(*[c.source for c in nb.cells[:3]], locked=["X = pad2d(0, 0)"])
    assert audit.escapes(called, "corr2d") == ["cell 2, line 3: uses sys.setprofile"]
    watched = nbformat.v4.new_code_cell("grading.check_against(pad2d, reference, cases)",
                                        metadata=dict(nbgrader=dict(grade=True, grade_id="t", points=1)))
    nb.cells.append(watched)
    assert audit.escapes(nb, "corr2d") == []                        # under its own watch: counts for pad2d's test
    # a tensor subclass acts through the values of what uses it: here corr2d alone (old = corr2d runs nothing)
    agreeable = notebook("import torch\nclass Agreeable(torch.Tensor):\n    @classmethod\n"
                         "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n        return 0\n"
                         "_zeros = corr2d\ndef corr2d(X, K):\n    return _zeros(X, K).as_subclass(Agreeable)",
                         "def conv2d(X, K):\n    return corr2d(X, K.flip(0, 1))")
    assert audit.escapes(agreeable, "conv2d", substitute=("corr2d",)) == []
    assert audit.escapes(agreeable, "corr2d") == ["cell 1, line 2: defines Agreeable, a subclass of torch.Tensor",
                                                  "cell 1, line 4: defines __torch_function__"]
    # called by the student's code at the top, it runs as the notebook loads: every test
    nb.cells.append(nbformat.v4.new_code_cell("print(conv2d(1, 2))"))
    assert audit.escapes(nb, "corr2d") == ["cell 1, line 3: uses sys.setprofile"]


# The modules a submission may use, as installed: what the reader allows of each is what they hold.
LIBRARIES = ["torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.optim", "torch.linalg", "torch.fft",
             "torch.autograd", "torch.special", "torch.testing", "numpy", "numpy.linalg", "numpy.random", "numpy.fft",
             "matplotlib", "matplotlib.pyplot", "tqdm", "tqdm.auto", "math", "functools", "itertools", "collections",
             "typing", "dataclasses", "random", "time", "warnings", "statistics", "fractions", "numbers", "string",
             "copy", "convlab", "convlab.grading", "convlab.kernels", "collections.abc",
             "torch.nn.modules", "torch.nn.modules.module", "torch.nn.utils", "torch.nn.parameter",
             "torch.optim.lr_scheduler", "torch.autograd.graph", "torch.autograd.functional", "torch.autograd.function",
             "torch.autograd.forward_ad", "torch.distributions", "torch.func", "torch.random", "torch.sparse",
             "torch.signal", "numpy.ma", "numpy.polynomial", "numpy.testing", "numpy.typing", "numpy.exceptions",
             "numpy.dtypes", "matplotlib.colors", "matplotlib.cm", "matplotlib.ticker", "matplotlib.patches",
             "matplotlib.gridspec", "matplotlib.lines", "matplotlib.figure", "matplotlib.axes", "matplotlib.colorbar",
             "matplotlib.collections", "matplotlib.markers", "matplotlib.text", "matplotlib.path",
             "matplotlib.transforms", "matplotlib.legend", "matplotlib.image", "matplotlib.artist",
             "matplotlib.contour", "matplotlib.axis", "tqdm.std", "tqdm.notebook", "tqdm.autonotebook"]
# Their public attributes that the reader denies on purpose (files, loaders, compilers, settings that load modules).
DENIED_ON_PURPOSE = {"load", "save", "from_file", "cond", "while_loop", "import_ir_module",
                     "import_ir_module_from_buffer", "set_default_device", "use", "rc", "rc_file",
                     "rc_file_defaults", "rc_context", "rcdefaults",
                     "rcParams", "rcParamsDefault", "rcParamsOrig", "switch_backend", "get_type_hints", "ForwardRef",
                     "singledispatch", "singledispatchmethod", "Formatter", "savefig", "imsave", "imread", "savez",
                     "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile", "fromregex", "memmap",
                     "seterrcall", "ctypeslib", "compile", "style", "Storage", "TypedStorage", "UntypedStorage",
                     "classes", "ops", "library", "overrides", "jit", "hub", "package", "utils", "profiler",
                     "backends", "serialization", "export", "compiler", "fx", "multiprocessing", "distributed",
                     "storage", "system", "open", "io", "re",   # typing.io, typing.re: old aliases
                     "datetime"}   # tqdm.std.datetime, a class named as a module


def problem_of(path):
    path = audit._rebased(path)
    return audit._step_problem(path) if "." in path else (None if audit._module_allowed(path) else path)


@pytest.mark.parametrize("name", LIBRARIES)
def test_what_the_reader_allows_of_a_library_is_what_it_holds(name):
    import importlib
    import types
    module = importlib.import_module(name)
    wrong = []
    for attr in dir(module):
        if attr.startswith("_"):
            continue
        try:
            value = getattr(module, attr)
        except Exception:   # a lazy attribute that cannot load here
            continue
        path = f"{name}.{attr}"
        if attr in audit.DENIED_ATTRIBUTES or attr in DENIED_ON_PURPOSE:
            continue
        found = problem_of(path)
        if isinstance(value, types.ModuleType):
            # another module: allowed only if it is on the lists, under its own name
            real = value.__name__
            if not found and not (audit._module_allowed(real) and audit._rebased(path) in (path, real)):
                wrong.append(f"{path} is the module {real}, allowed")
        elif found:
            wrong.append(f"{path} is no module, but denied ({found})")
    assert wrong == []
