"""Build the class-grading corpus in tests/hostile/ (run: python tests/classgrade_corpus.py [case ...]).

A tiny nbgrader course (``course/``: one assignment ``tiny`` with two graded
functions, 4 points of autograded tests) and one submission per case in
``submitted/<case>/tiny/tiny.ipynb``: ordinary students (correct, wrong,
partial, blank) and every hostile or broken submission that
``classgrade`` must survive. ``expected.json`` holds, per case, the
points it earned and a phrase its manual-attention reason must contain.
The test (tests/test_classgrade.py) copies the course into a temporary folder.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent / "hostile"

CORRECT = '''def corr2d(X, K):
    """Cross-correlation of the 2-D tensor X with the kernel K (no padding, stride 1)."""
    h, w = K.shape
    Y = torch.zeros(X.shape[0] - h + 1, X.shape[1] - w + 1, dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y'''
WRONG = CORRECT.replace("- h + 1", "- h")          # off by one row
PARTIAL = CORRECT.replace("h, w = K.shape", "h, w = K.shape[0], K.shape[0]")   # square kernels only
DOUBLE = '''def double(x):
    """Twice x."""
    return 2 * x'''


def solution_cell(source, grade_id):
    sig, doc_and_body = source.split("\n", 1)
    doc, impl = doc_and_body.split("\n", 1)
    src = f"{sig}\n{doc}\n    ### BEGIN SOLUTION\n{impl}\n    ### END SOLUTION"
    return code(src, grade_id, solution=True)


def code(source, grade_id=None, *, solution=False, points=0):
    cell = new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = dict(grade=points > 0, grade_id=grade_id, locked=not solution,
                                         schema_version=3, solution=solution, task=False)
        if points:
            cell.metadata["nbgrader"]["points"] = points
    return cell


def source_notebook():
    nb = new_notebook(metadata=dict(kernelspec=dict(name="python3", display_name="Python 3",
                                                    language="python")))
    nb.cells = [
        new_markdown_cell("# Tiny assignment (fixture for classgrade)"),
        code("import torch"),
        new_markdown_cell("## Part A: `corr2d` (3 points)"),
        solution_cell(CORRECT, "corr2d"),
        # the tests call the student's code and compare only through convlab.grading, so that the
        # class grader can replay them (classgrade.trusted.replay)
        code('"""corr2d gives the lecture example."""\n'
             "from convlab import grading\n"
             "X = torch.arange(9.0).reshape(3, 3)\nK = torch.arange(4.0).reshape(2, 2)\n"
             "grading.check_result(grading.call(corr2d, X, K, case='X 3x3, K 2x2'),\n"
             "                     torch.tensor([[19.0, 25.0], [37.0, 43.0]]), case='the lecture example')",
             "test_corr2d_visible", points=1),
        code('"""corr2d agrees with convlab.corr2d on seeded non-square inputs."""\n'
             "import convlab\nfrom convlab import grading\n### BEGIN HIDDEN TESTS\n"
             "g = torch.Generator().manual_seed(0)\n"
             "cases = [dict(X=torch.rand(hw, generator=g, dtype=torch.float64),\n"
             "              K=torch.rand(khw, generator=g, dtype=torch.float64))\n"
             "         for hw, khw in [((5, 7), (2, 3)), ((6, 4), (3, 1))]]\n"
             "grading.check_against(corr2d, convlab.corr2d, cases, forbidden=())\n"
             "### END HIDDEN TESTS", "test_corr2d_hidden", points=2),
        new_markdown_cell("## Part B: `double` (1 point)"),
        solution_cell(DOUBLE, "double"),
        code('"""double doubles."""\n'
             "from convlab import grading\n"
             "grading.check_result(grading.call(double, torch.ones(3)), torch.full((3,), 2.0), case='ones(3)')",
             "test_double", points=1),
    ]
    return nb


def released(course):
    env = dict(__import__("os").environ)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "tiny", "--force",
                    "--CourseDirectory.db_url=sqlite:///" + str(course / "tmp.db")],
                   cwd=course, check=True, capture_output=True, env=env)
    nb = nbformat.read(str(course / "exercises" / "tiny" / "tiny.ipynb"), as_version=4)
    shutil.rmtree(course / "exercises")
    (course / "tmp.db").unlink()
    return nb


def find(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells)
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def student(release, corr=CORRECT, double=DOUBLE):
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    nb.cells[find(nb, "corr2d")].source = corr
    nb.cells[find(nb, "double")].source = double
    return nb


def insert_after(nb, grade_id, source):
    nb.cells.insert(find(nb, grade_id) + 1, new_code_cell(source))
    return nb


# %d MiB printed, a flushed MiB at a time (an unflushed flood is one message, which the grader drops)
PRINT_FLOOD = "chunk = 'x' * 2**20\nfor _ in range(%d):\n    print(chunk, flush=True)"
# what the sandbox writes to its file descriptor 2 (ipykernel copies it to its original stderr)
STDERR_MARK = "classgrade-stderr-mark"
STDERR_WRITER = ("import os, threading\n"
                 f"os.write(2, b'{STDERR_MARK} top level\\n')\n"
                 f"thread = threading.Thread(target=os.write, args=(2, b'{STDERR_MARK} thread\\n'))\n"
                 "thread.start(); thread.join()\n"
                 "for _ in range(100):\n"
                 "    os.write(2, b'y' * 2000 + b'\\n')\n"
                 f"os.write(2, b'{STDERR_MARK} last\\n')")


def cases(release):
    """case -> (notebook, or raw text, or None when missing; earned points; reason phrase)."""
    out = {}
    out["correct"] = (student(release), 4, None)
    out["wrong"] = (student(release, WRONG), 1, None)
    out["partial"] = (student(release, PARTIAL), 2, None)
    out["blank"] = (nbformat.from_dict(json.loads(json.dumps(release))), 0, None)

    nb = insert_after(student(release), "corr2d", "while True:\n    pass")
    out["infinite_loop"] = (nb, 4, "per-cell time limit")
    loop = CORRECT.replace("    h, w = K.shape", "    h, w = K.shape\n    while h != w:\n        pass")
    out["infinite_loop_in_function"] = (student(release, loop), 2, "test_corr2d_hidden exceeded the per-cell")

    nb = student(release)
    nb.cells = [c for c in nb.cells if not c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    out["deleted_tests"] = (nb, 4, "was deleted: restored")

    nb = student(release, WRONG)
    copy = nbformat.from_dict(json.loads(json.dumps(nb.cells[find(nb, "test_corr2d_visible")])))
    copy.source = "pass  # my copy of the test"
    copy.pop("id", None)
    nb.cells.insert(find(nb, "corr2d") + 1, copy)
    out["duplicate_grade_id"] = (nb, 1, "appears 2 times")

    nb = student(release, WRONG, "def double(x):\n    return x")
    nb.cells[find(nb, "test_corr2d_visible")].source = "pass"
    hidden = find(nb, "test_corr2d_hidden")
    nb.cells[hidden] = nbformat.from_dict(dict(nb.cells[hidden], cell_type="markdown",
                                               source="tests removed", outputs=None))
    del nb.cells[hidden]["outputs"], nb.cells[hidden]["execution_count"]
    nb.cells[find(nb, "test_double")].source = "double = lambda x: 2 * x"
    out["edited_tests"] = (nb, 0, "was edited: restored")

    out["invalid_json"] = ('{"cells": [ this is not json', 0, "not a valid notebook")
    out["empty"] = ("", 0, "not a valid notebook")
    out["missing"] = (None, 0, "missing from the submission")

    nb = insert_after(student(release), "corr2d", "import sys\nsys.exit()")
    out["sys_exit"] = (nb, 4, "sys.exit()")
    nb = insert_after(student(release), "corr2d", "import os\nos._exit(1)")
    out["os_exit"] = (nb, 4, "stopped the kernel")
    nb = student(release, double="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + DOUBLE)
    out["kill_kernel"] = (nb, 3, "stopped the kernel")

    # item 3 of issue #23: what the grader holds of a kernel's output is bounded, and what the
    # sandbox writes to its stderr stays in the submission's record (tests/test_classgrade.py)
    nb = insert_after(student(release), "corr2d", PRINT_FLOOD % 32)
    out["print_flood"] = (nb, 4, "left out")
    nb = insert_after(student(release), "corr2d", STDERR_WRITER)
    out["stderr_writer"] = (nb, 4, None)

    nb = insert_after(student(release), "corr2d",
                      "blocks = []\nwhile True:\n    blocks.append(torch.ones(2**28))  # 1 GiB at a time, until the machine gives up")
    out["memory_bomb"] = (nb, 4, "memory limit")

    nb = insert_after(student(release, WRONG, "def double(x):\n    return x"), "corr2d",
                      "torch.allclose = lambda *args, **kwargs: True")
    out["monkeypatch_allclose"] = (nb, 0, "modified checking code")
    nb = insert_after(student(release, WRONG), "corr2d",
                      "import convlab\nconvlab.corr2d = corr2d  # the reference now agrees with me")
    out["redefine_reference"] = (nb, 0, "convlab.corr2d")   # every test after the patch: 0
    nb = insert_after(student(release, WRONG, "def double(x):\n    return x"), "corr2d",
                      "get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)")
    out["swallow_errors"] = (nb, 0, "modified checking code")
    nb = insert_after(student(release, WRONG, "def double(x):\n    return x"), "corr2d",
                      "def _drop_asserts(lines):\n"
                      "    return [l for l in lines if not l.lstrip().startswith('assert')]\n"
                      "get_ipython().input_transformers_post.append(_drop_asserts)")
    out["rewrite_tests"] = (nb, 0, "input_transformers_post")
    nb = insert_after(student(release, WRONG, "def double(x):\n    return x"), "corr2d",
                      "import functools\n"
                      "torch.allclose = functools.wraps(torch.allclose)(lambda *args, **kwargs: True)")
    out["monkeypatch_wrapped"] = (nb, 0, "torch.allclose")
    # honest code that makes torch rewrap its own functions (torch.optim -> torch._dynamo)
    nb = insert_after(student(release), "corr2d",
                      "w = torch.zeros(2, requires_grad=True)\n"
                      "torch.optim.SGD([w], lr=0.1).step()\ntorch.manual_seed(0)")
    out["uses_optim"] = (nb, 4, None)

    nb = insert_after(student(release), "corr2d",
                      "for target in ['../../../gradebook.db', '/tmp/classgrade-escape.txt']:\n"
                      "    try:\n        open(target, 'w').write('pwned')\n"
                      "    except OSError as exc:\n        print(exc)\n"
                      "import subprocess\ntry:\n"
                      "    subprocess.run(['touch', '/tmp/classgrade-escape-2.txt'])\n"
                      "except OSError as exc:\n    print(exc)\n"
                      "open('my_notes.txt', 'w').write('allowed: inside my folder')\n"
                      "print('my notes:', open('my_notes.txt').read())")
    out["write_outside"] = (nb, 4, "outside the submission folder")
    out.update(os_level_attacks(release))
    out.update(forged_reports(release))
    out["zz_correct_after"] = (student(release), 4, None)   # graded last: the attacks left nothing behind
    return out


# What the OS-level attacks look for; tests/test_classgrade.py plants these secrets and listens.
SECRET_ENV = "CLASSGRADE_TEST_SECRET"
SECRET_FILE = "/tmp/classgrade-secret.txt"
ESCAPE = "/tmp/classgrade-escape-3.txt"
LISTEN_PORT = 47391
OUTLIVE = "classgrade-outlive-marker"
ATTACKS = {
    # everything a submission might read: the grader's environment and command lines (the gradebook
    # and other kernels' connection files are named there), the instructor's home, the course,
    # other submissions, planted secrets. It prints what it finds into its own feedback.
    "read_outside": f"""import glob, os
found = []
for pattern in ['/proc/*/environ', '/proc/*/cmdline', '/root/*', '/root/.*', '/home/*/*', '/etc/shadow',
                '/etc/passwd', '/tmp/*', '/tmp/**/*.db', '/tmp/**/kernel*.json', '/tmp/**/*.ipynb',
                '../../../**/*', '/work/**/*.ipynb', {SECRET_FILE!r}]:
    for path in glob.glob(pattern, recursive=True)[:200]:
        try:
            with open(path, 'rb') as f:
                found.append(path + ': ' + f.read(2000).decode('utf-8', 'replace'))
        except OSError:
            pass
print('\\n'.join(found))
print(os.environ)
print(len(os.listdir('/proc')), 'entries in /proc')""",
    # the audit hook sees none of these: libc's system(), open() relative to a directory fd, sqlite
    "escape_ctypes": f"""import ctypes, glob, os, sqlite3
ctypes.CDLL(None).system(b'touch {ESCAPE}; id > whoami.txt')
print('whoami:', open('whoami.txt').read())
fd = os.open('../../..', os.O_RDONLY)
try:
    os.close(os.open('gradebook.db', os.O_WRONLY | os.O_CREAT, dir_fd=fd))
except OSError as exc:
    print(exc)
for db in glob.glob('/tmp/**/*.db', recursive=True) + ['../../../gradebook.db']:
    try:
        con = sqlite3.connect(db)
        con.execute("CREATE TRIGGER pwn AFTER UPDATE ON grade BEGIN UPDATE grade SET auto_score = 99; END")
        con.commit()
        print('changed', db)
    except sqlite3.Error as exc:
        print(db, exc)""",
    "network": f"""import socket
for host in ('127.0.0.1', 'localhost', '::1'):
    try:
        socket.create_connection((host, {LISTEN_PORT}), timeout=2).sendall(b'pwned')
        print('connected to', host)
    except OSError as exc:
        print(host, exc)""",
    # kill(-1, SIGKILL): every process the caller may signal (as root: the machine); in its
    # PID namespace there is none but itself, which kill(-1) spares, and the namespace's init
    "kill_everything": "import ctypes, signal\nctypes.CDLL(None).kill(-1, signal.SIGKILL)",
    "outlive": f"""import ctypes
ctypes.CDLL(None).system(b"setsid sh -c 'sleep 600 # {OUTLIVE}' >/dev/null 2>&1 &")""",
    # dash exits at its first failed fork, so the sleepers are counted from Python afterwards
    "fork_bomb": """import ctypes, os
ctypes.CDLL(None).system(b"n=0; while [ $n -lt 2000 ]; do sleep 20 & n=$((n+1)); done 2>/dev/null")
count = sum(1 for entry in os.listdir('/proc') if entry.isdigit())
open('processes.txt', 'w').write(str(count))
print(count, 'processes')""",
    # files in every folder it can see (by libc: the audit hook refuses Python's writes outside),
    # 48 MiB each (RLIMIT_FSIZE is 64 MiB) until a write fails; each folder emptied afterwards
    "fill_disk": """import ctypes, os, sys
private = sys.argv[sys.argv.index('--private') + 1]
runtime = os.path.dirname(sys.argv[sys.argv.index('-f') + 1])
ctypes.CDLL(None).system(('for d in . /tmp / /usr ' + private + ' ' + runtime + '; do n=0; '
    'while [ $n -lt 64 ] && head -c 50331648 /dev/zero 2>/dev/null > $d/big$n.bin; do n=$((n+1)); done; '
    'rm -f $d/big*.bin; echo "$d: $n files" >> /tmp/scratch/fill.txt; done').encode())
print(open('/tmp/scratch/fill.txt').read())""",
    # ptrace every process it can see (PTRACE_ATTACH, then PTRACE_DETACH): in its PID namespace,
    # only the sandbox's own
    "trace_everything": """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
for pid in sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()):
    attached = libc.ptrace(16, pid, None, None) == 0
    print('traced' if attached else 'not traced', pid, os.strerror(ctypes.get_errno()) if not attached else '')
    if attached:
        os.waitpid(pid, 0)
        libc.ptrace(17, pid, None, None)""",
    # a user namespace of its own, in which it could mount an unbounded tmpfs
    "nested_namespace": """import ctypes
ctypes.CDLL(None).system(b"unshare -Urm sh -c 'mount -t tmpfs none /tmp && echo mounted' > /tmp/scratch/ns.txt 2>&1")
print(open('/tmp/scratch/ns.txt').read())""",
    # links and a link loop handed in next to the notebook (HANDED_IN_LINKS); the notebook reads them
    "symlinks": """import os
for name in ('secret.txt', 'up', 'self_a'):
    print(name, os.path.exists(name))""",
}
# files the symlinks case hands in next to its notebook: name -> link target
HANDED_IN_LINKS = {"secret.txt": SECRET_FILE, "up": "../../..", "self_a": "self_b", "self_b": "self_a"}


# Forged reports: code that makes every check pass in nbgrader's kernel (grading's _fail made a no-op),
# run by each route that runs code as a notebook defines or loads things; the same code runs in the
# replay's process, and the last route forges the replay's own channel there. With wrong answers,
# none earns a point (tests/test_classgrade.py grades them on cross_correlation too).
# nbgrader's kernel made to drop its error replies and report every cell as passed
QUIET_SESSION = """kernel = get_ipython().kernel
class Quiet(type(kernel.session)):
    def send(self, stream, msg_or_type, content=None, *args, **kwargs):
        if msg_or_type == "error":
            return None
        if isinstance(content, dict) and content.get("status") == "error":
            content = dict(content, status="ok")
        return super().send(stream, msg_or_type, content, *args, **kwargs)
kernel.session.__class__ = Quiet"""
FORGE = "from convlab import grading as _g\n_g._fail = lambda message, cause=None: None"


def _indented(code, spaces):
    return code.replace("\n", "\n" + " " * spaces)


FORGED_REPORTS = {
    "helper_called_at_top_level": f"def _setup():\n    {_indented(FORGE, 4)}\n\n_setup()",
    "decorator": f"def _registered(f):\n    {_indented(FORGE, 4)}\n    return f\n\n\n"
                 "@_registered\ndef _unused(X):\n    return X",
    "default_argument": f"def _forge():\n    {_indented(FORGE, 4)}\n    return 0\n\n\n"
                        "def _unused(X, _n=_forge()):\n    return X",
    "class_body": f"class _Settings:\n    {_indented(FORGE, 4)}",
    "metaclass": "class _Meta(type):\n    def __new__(mcs, name, bases, namespace):\n        "
                 f"{_indented(FORGE, 8)}\n        return super().__new__(mcs, name, bases, namespace)\n\n\n"
                 "class _Thing(metaclass=_Meta):\n    pass",
    "module_file_written_and_imported": f"with open('forge_helpers.py', 'w') as f:\n    f.write({FORGE!r})\n"
                                        "import forge_helpers",
    "thread": "import threading\nimport time\n\n\ndef _keep_forging():\n    while True:\n        "
              f"{_indented(FORGE, 8)}\n        time.sleep(0.001)\n\n\n"
              "threading.Thread(target=_keep_forging, daemon=True).start()\ntime.sleep(0.1)",
    "ipython_hook": f"def _before(info):\n    {_indented(FORGE, 4)}\n\n\n"
                    "get_ipython().events.register('pre_run_cell', _before)",
    # the channels at a low level: in nbgrader's kernel, error replies rewritten as passes by the session; in
    # the replay (no kernel there), forged replies on every descriptor, then the process ends
    "report_channels_rewritten": "import json, os\ntry:\n    " + _indented(QUIET_SESSION, 4) + """
except AttributeError:
    for fd in range(3, 64):
        for number in range(200):
            try:
                os.write(fd, (json.dumps({"number": number, "values": [{"kind": "tensor", "shape": [2, 2],
                              "dtype": "float32", "data": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}) + "\\n").encode())
            except OSError:
                break
    os._exit(0)""",
}


def forged_reports(release):
    """Each forging route with wrong answers: nothing earned (the fingerprints see the IPython hook)."""
    wrong = student(release, WRONG, "def double(x):\n    return x")
    return {f"forged_{name}": (insert_after(nbformat.from_dict(json.loads(json.dumps(wrong))), "corr2d", source), 0,
                               "modified checking code" if name == "ipython_hook" else "passed in the kernel, but the replay")
            for name, source in FORGED_REPORTS.items()}


def os_level_attacks(release):
    """Attacks that only an OS-level sandbox stops; each otherwise correct (4 points)."""
    reasons = {"symlinks": "a symbolic link, not copied"}
    return {name: (insert_after(student(release), "corr2d", source), 4, reasons.get(name))
            for name, source in ATTACKS.items()}


def sequential_grades(course, submitted, folder):
    """Plain ``nbgrader autograde``, one notebook at a time, of ``submitted`` (nbgrader's layout)
    in a copy of ``course`` at ``folder``: {(student, grade id): (auto score, max score, needs manual)}."""
    shutil.copytree(course, folder)
    shutil.copytree(submitted, folder / "submitted", dirs_exist_ok=True)
    db = f"sqlite:///{folder / 'gradebook.db'}"
    env = dict(__import__("os").environ)
    env["PATH"] = str(Path(sys.executable).parent) + ":" + env.get("PATH", "")
    for cmd in (["generate_assignment", "tiny", "--force"], ["autograde", "tiny", "--force"]):
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *cmd, f"--CourseDirectory.db_url={db}"],
                              cwd=folder, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return gradebook_grades(db)


def gradebook_grades(db_url):
    """{(student, grade id): (auto score, max score, needs manual)} of every submission of tiny."""
    from nbgrader.api import Gradebook
    with Gradebook(db_url) as gb:
        return {(s.student.id, g.name): (g.auto_score, g.max_score, bool(g.needs_manual_grade))
                for s in gb.notebook_submissions("tiny", "tiny") for g in s.grades}


def main(names=()):
    """Write the corpus; with ``names``, only those cases (the others keep their files and ids)."""
    course = HERE / "course"
    if not names:
        if HERE.exists():
            shutil.rmtree(HERE)
        (course / "solutions" / "tiny").mkdir(parents=True)
        (course / "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            'c.CourseDirectory.source_directory = "solutions"\n'
            'c.CourseDirectory.release_directory = "exercises"\n')
        nbformat.write(source_notebook(), str(course / "solutions" / "tiny" / "tiny.ipynb"))
    release = released(course)
    expected = json.loads((HERE / "expected.json").read_text()) if names else {}
    for name, (nb, points, reason) in cases(release).items():
        if names and name not in names:
            continue
        folder = HERE / "submitted" / name / "tiny"
        if folder.parent.exists():
            shutil.rmtree(folder.parent)
        folder.mkdir(parents=True)
        if nb is None:
            (folder / "README.txt").write_text("I forgot to upload my notebook.\n")
        elif isinstance(nb, str):
            (folder / "tiny.ipynb").write_text(nb)
        else:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            nbformat.write(nb, str(folder / "tiny.ipynb"))
        if name == "symlinks":
            for link, target in HANDED_IN_LINKS.items():
                (folder / link).symlink_to(target)
        expected[name] = dict(score=points, reason=reason)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
