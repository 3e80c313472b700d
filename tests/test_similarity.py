"""``python -m classgrade similarity``: disguised copies flagged, honest look-alikes not.

The corpus ``tests/similarity/<assignment>/`` holds each student's solution cells as a Python
file (``# %% <grade id>`` starts a cell; a line ``\"\"\"...\"\"\"`` stands for the released
docstring of that cell); ``expected.json`` names the copied pairs (each a disguised copy:
names changed, functions reordered, comments, whitespace, loop order, dead code), the honest
look-alikes (written independently, alike because the exercise is short), the blank
hand-ins (the release untouched) and the broken ones (an empty file, a file that is not JSON,
JSON that is no notebook, no notebook at all). The test builds the hand-ins from the released
notebooks in ``exercises/`` and runs the command as an instructor would, on nbgrader's
``submitted/`` layout and on the grader's ``autograded/`` output. No grading runs: fast.
"""
import contextlib
import html
import io
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from classgrade.trusted import similarity
from classgrade.trusted import cli

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "similarity"
ASSIGNMENTS = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.json").is_file())
DOCSTRING = re.compile(r'^[ \t]*"""\.\.\."""[ \t]*$', re.M)


def expected(assignment):
    return json.loads((CORPUS / assignment / "expected.json").read_text())


def cases(assignment):
    """student -> {grade id: cell source as the student wrote it, less the released docstring}."""
    out = {}
    for path in sorted((CORPUS / assignment).glob("*.py")):
        cells, current = {}, None
        for line in path.read_text().splitlines(keepends=True):
            m = re.match(r"# %% (\S+)\s*$", line)
            if m:
                current = m.group(1)
                cells[current] = ""
            else:
                cells[current] += line
        out[path.stem] = cells
    return out


def released_docstring(source):
    """The docstring of the released cell, as written (with its indentation), or ''."""
    m = re.search(r'^[ \t]*""".*?"""[ \t]*$', source, re.S | re.M)
    return m.group(0) if m else ""


def release(assignment):
    return {p.name: nbformat.read(str(p), as_version=4)
            for p in sorted((ROOT / "exercises" / assignment).glob("*.ipynb"))}


def hand_in(assignment, cells):
    """The released notebook(s) with their solution cells replaced by ``cells`` (grade id -> source)."""
    books = {}
    for name, nb in release(assignment).items():
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.metadata.get("nbgrader", {}).get("solution") and gid in cells:
                doc = released_docstring(cell.source)
                cell.source = DOCSTRING.sub(lambda _: doc, cells[gid]).rstrip("\n")
        books[name] = nb
    return books


def build(assignment, root):
    """``root/<student>/<assignment>/`` for every student of the corpus; the folder ``root``."""
    exp = expected(assignment)
    for student, cells in cases(assignment).items():
        for name, nb in hand_in(assignment, cells).items():
            folder = root / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(folder / name))
    for student in exp.get("blank", []):
        for name, nb in release(assignment).items():
            (root / student / assignment).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(root / student / assignment / name))
    for student, text in exp.get("broken", {}).items():
        (root / student / assignment).mkdir(parents=True, exist_ok=True)
        for name in release(assignment):
            if text is not None:
                (root / student / assignment / name).write_text(text)
    return root


def run(*args):
    """``python -m classgrade similarity ARGS`` in this process (the import of copydetect and
    matplotlib is paid once): its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["similarity", *map(str, args), "--course", str(ROOT)])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def pairs_of(data):
    return {frozenset((p["a"], p["b"])) for p in data["pairs"]}


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def reported(request, tmp_path_factory):
    """(assignment, the corpus's submitted/ folder, output folder, similarity.json, report HTML)."""
    assignment = request.param
    tmp = tmp_path_factory.mktemp(assignment)
    submitted = build(assignment, tmp / "submitted")
    out = tmp / "grading"
    done = run(assignment, submitted, "--out", out)
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "similarity.json").read_text())
    return assignment, submitted, out, data, (out / "similarity.html").read_text()


def test_corpus_is_what_it_says():
    """Every student named in expected.json has a case or is blank/broken, and the sets are apart."""
    for assignment in ASSIGNMENTS:
        exp, students = expected(assignment), set(cases(assignment))
        named = {s for pair in exp["copied"] + exp["lookalikes"] for s in pair}
        assert named <= students, named - students
        assert not students & (set(exp.get("blank", [])) | set(exp.get("broken", {})))
        copied = {frozenset(p) for p in exp["copied"]}
        assert copied and exp["lookalikes"] and not copied & {frozenset(p) for p in exp["lookalikes"]}
        for student, cells in cases(assignment).items():   # every case answers every solution cell
            ids = {gid for nb in release(assignment).values() for gid, _ in similarity.solution_sources(nb)}
            assert set(cells) == ids, (student, set(cells) ^ ids)


def test_copies_flagged_and_honest_pairs_not(reported):
    assignment, _, _, data, _ = reported
    exp = expected(assignment)
    flagged = pairs_of(data)
    copied = {frozenset(p) for p in exp["copied"]}
    assert copied <= flagged, f"copies not flagged: {copied - flagged}; closest: {data['closest_unflagged']}"
    assert flagged <= copied, f"honest pairs flagged: {flagged - copied}"
    # the honest look-alikes are indeed alike (else they would test nothing): they share code
    near = {frozenset((p["a"], p["b"])): p for p in data["closest_unflagged"]}
    for pair in map(frozenset, exp["lookalikes"]):
        assert pair in near and near[pair]["score"] >= 0.5, (pair, near.get(pair))


def test_report_shows_shared_lines_side_by_side(reported):
    """Highest score first; each flagged pair's shared lines are in the JSON and the HTML,
    and they are the code the copier took (lines of the original that are not the release)."""
    assignment, _, _, data, page = reported
    scores = [p["score"] for p in data["pairs"]]
    assert scores == sorted(scores, reverse=True)
    code = cases(assignment)
    for p in data["pairs"]:
        assert p["score"] == max(p["share_a"], p["share_b"]) and p["shared"] >= data["settings"]["min_shared"]
        assert p["score"] >= data["settings"]["threshold"]
        for side in "ab":
            lines = p[f"lines_{side}"]
            assert len(lines) >= 5, p
            written = {line.strip() for src in code[p[side]].values()
                       for line in similarity.own_code(src).splitlines()}
            assert set(lines) <= written, set(lines) - written      # the student's own lines
            text = re.sub(r"</?mark>", "", page)
            for line in lines:
                assert html.escape(line) in text
        head = page.index(f"{html.escape(p['a'])} &amp; {html.escape(p['b'])}")
        assert head < len(page)
    # the pairs appear in the page in the JSON's order, each with two code columns and marks
    sections = re.findall(r"<div class='pair' id='pair\d+'><h2>\d+\. (.*?) &amp; (.*?):", page)
    assert [(html.unescape(a), html.unescape(b)) for a, b in sections] == [(p["a"], p["b"]) for p in data["pairs"]]
    assert page.count("<div class='side'>") == len(data["pairs"])
    assert page.count("<mark>") >= 2 * len(data["pairs"])


def test_broken_and_blank_handins_noted_not_flagged(reported):
    assignment, _, _, data, page = reported
    exp = expected(assignment)
    subs = data["submissions"]
    for student in exp.get("blank", []):
        assert subs[student]["own"] == 0 and subs[student]["notes"] == []
    for student, text in exp.get("broken", {}).items():
        assert subs[student]["own"] == 0
        assert subs[student]["notes"], student
        assert html.escape(student) in page
    odd = set(exp.get("blank", [])) | set(exp.get("broken", {}))
    assert not any({p["a"], p["b"]} & odd for p in data["pairs"] + data["closest_unflagged"])
    for student in cases(assignment):
        assert subs[student]["own"] > 0 and subs[student]["notes"] == []


def test_autograded_layout_by_default(reported, tmp_path):
    """Without SUBMISSIONS the command reads OUT/autograded/ (what ``classgrade grade`` writes),
    where each notebook has the grader's check cells; -o names the report."""
    assignment, submitted, _, data, _ = reported
    out = tmp_path / "grading"
    (out / "autograded").mkdir(parents=True)
    for student_dir in submitted.iterdir():
        for nb_path in (student_dir / assignment).glob("*.ipynb"):
            target = out / "autograded" / student_dir.name / assignment / nb_path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                nb = nbformat.read(str(nb_path), as_version=4)
            except Exception:  # noqa: BLE001 - the broken ones are copied as they are
                target.write_bytes(nb_path.read_bytes())
                continue
            for i in range(len(nb.cells) - 1, -1, -1):   # a check cell after each test, as graded
                if nb.cells[i].metadata.get("nbgrader", {}).get("grade"):
                    nb.cells.insert(i + 1, nbformat.v4.new_code_cell("# classgrade check\nx = 1"))
            nbformat.write(nb, str(target))
        (out / "autograded" / student_dir.name / assignment).mkdir(parents=True, exist_ok=True)
    done = run(assignment, "--out", out, "-o", "alike.html")
    assert done.returncode == 0, done.stderr
    again = json.loads((out / "similarity.json").read_text())
    assert (out / "alike.html").is_file() and not (out / "similarity.html").exists()
    assert pairs_of(again) == pairs_of(data)
    assert [p["score"] for p in again["pairs"]] == [p["score"] for p in data["pairs"]]


def test_released_code_alone_is_not_flagged(tmp_path):
    """Blank hand-ins (the release) share nothing with each other, however low the thresholds."""
    for assignment in ASSIGNMENTS:
        root = tmp_path / assignment / "submitted"
        for student in ("blank1", "blank2", "blank3"):
            for name, nb in release(assignment).items():
                (root / student / assignment).mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, str(root / student / assignment / name))
        out = tmp_path / assignment / "out"
        done = run(assignment, root, "--out", out, "--threshold", "0", "--min-shared", "0")
        assert done.returncode == 0, done.stderr
        data = json.loads((out / "similarity.json").read_text())
        assert data["pairs"] == [] and data["closest_unflagged"] == []
        assert all(s["own"] == 0 for s in data["submissions"].values())


BOOK_CORR2D = '''def corr2d(X, K, padding=0, stride=1):
    """..."""
    padding = (padding, padding) if isinstance(padding, int) else padding
    stride = (stride, stride) if isinstance(stride, int) else stride
    (kh, kw), (sh, sw) = K.shape, stride
    X = pad2d(X, padding)
    oh = (X.shape[0] - kh) // sh + 1
    ow = (X.shape[1] - kw) // sw + 1
    Y = X.new_zeros(oh, ow)
    for i in range(oh):
        for j in range(ow):
            Y[i, j] = (X[i * sh : i * sh + kh, j * sw : j * sw + kw] * K).sum()
    return Y
'''


def test_lecture_code_as_boilerplate(tmp_path):
    """Two students who both took the book's corr2d_padding_stride (book/padding_stride.md) share
    it; with --boilerplate book/padding_stride.md that code matches nobody, and the rest stays."""
    assignment = "shapes_padding_stride"
    corpus = cases(assignment)
    root = tmp_path / "submitted"
    for student, other in (("bk1", "chen"), ("bk2", "gus")):
        cells = dict(corpus[other], corr2d=BOOK_CORR2D)
        for name, nb in hand_in(assignment, cells).items():
            (root / student / assignment).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(root / student / assignment / name))
    found = {}
    for extra in ([], ["--boilerplate", ROOT / "book" / "padding_stride.md"]):
        out = tmp_path / f"out{len(extra)}"
        done = run(assignment, root, "--out", out, "--threshold", "0", "--min-shared", "0", *extra)
        assert done.returncode == 0, done.stderr
        found[bool(extra)] = json.loads((out / "similarity.json").read_text())
    without, with_book = found[False]["pairs"], found[True]["pairs"]
    assert len(without) == 1 and without[0]["shared"] >= 150
    loop = "Y[i, j] = (X[i * sh : i * sh + kh, j * sw : j * sw + kw] * K).sum()"
    assert loop in without[0]["lines_a"]
    assert found[True]["settings"]["boilerplate"] == [str(ROOT / "book" / "padding_stride.md")]
    # what stays shared is what they have in common beyond the book (the two isinstance lines)
    assert with_book == [] or (with_book[0]["shared"] < 0.75 * without[0]["shared"]
                               and loop not in with_book[0]["lines_a"] + with_book[0]["lines_b"])
    for student in ("bk1", "bk2"):   # their own code less the book's: still some
        assert 0 < found[True]["submissions"][student]["own"] < found[False]["submissions"][student]["own"]


def test_solution_against_itself_is_flagged_and_release_is_not(tmp_path):
    """Control: the instructor's solution handed in twice is flagged (score 100%); the release
    as boilerplate takes away the def lines and docstrings only, not the solution's own code."""
    assignment = "shapes_padding_stride"
    root = tmp_path / "submitted"
    source = {p.name: nbformat.read(str(p), as_version=4)
              for p in sorted((ROOT / "solutions" / assignment).glob("*.ipynb"))}
    for student in ("one", "two"):
        for name, nb in source.items():
            (root / student / assignment).mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(root / student / assignment / name))
    done = run(assignment, root, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "out" / "similarity.json").read_text())
    assert pairs_of(data) == {frozenset(("one", "two"))}
    assert data["pairs"][0]["score"] == pytest.approx(1.0)
    lines = data["pairs"][0]["lines_a"]
    released = {line.strip() for nb in release(assignment).values()
                for _, src in similarity.solution_sources(nb) for line in src.splitlines()}
    own = {line.strip() for nb in source.values() for _, src in similarity.solution_sources(nb)
           for line in similarity.own_code(src).splitlines()} - released
    assert own and own <= set(lines), own - set(lines)
    assert set(lines) - own <= {line for line in released if line.startswith("def ")}, set(lines) - own


@pytest.mark.parametrize("source, kept", [
    ('def f(x):\n    """Doc\n\n    more."""\n    # comment\n    return x  # trailing\n', "def f(x):\n    return x"),
    ("'''module doc'''\nclass A:\n    'doc'\n    y = '# not a comment'\n", "class A:\n    y = '# not a comment'"),
    ("%timeit f(1)\n# only a comment\n\n!ls\nx = 1\n", "%timeit f(1)\n!ls\nx = 1"),
    ('def f(:\n    """kept: the cell does not parse"""\n    # gone\n', 'def f(:\n    """kept: the cell does not parse"""'),
    ("", ""),
])
def test_own_code_leaves_out_comments_docstrings_and_blank_lines(source, kept):
    assert similarity.own_code(source) == kept


def test_instructor_errors_are_one_line(tmp_path):
    assert cli.COMMANDS["similarity"][0] == "similarity"
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["cross_correlation", empty], ["cross_correlation", tmp_path / "nowhere"],
                 ["no_such_assignment", empty], ["cross_correlation", empty, "--threshold", "2"]):
        done = run(*args, "--out", tmp_path / "out")
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("classgrade: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_command_line(tmp_path):
    """The real entry point: ``--help`` lists the command, and an error is one line, exit 2."""
    done = subprocess.run([sys.executable, "-m", "classgrade", "--help"], capture_output=True, text=True)
    assert "similarity" in done.stdout
    done = subprocess.run([sys.executable, "-m", "classgrade", "similarity", "cross_correlation",
                           str(tmp_path), "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("classgrade: no submission of cross_correlation")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_every_pair_of_the_corpus_compared(reported):
    """The closest unflagged pairs are the highest-scoring of the rest, in order."""
    assignment, _, _, data, _ = reported
    near = [p["score"] for p in data["closest_unflagged"]]
    assert near == sorted(near, reverse=True)
    students = set(data["submissions"])
    assert students == set(cases(assignment)) | set(expected(assignment).get("blank", [])) \
        | set(expected(assignment).get("broken", {}))
    for p in itertools.chain(data["pairs"], data["closest_unflagged"]):
        assert p["a"] in students and p["b"] in students and p["a"] != p["b"]


def test_same_report_whatever_the_hash_seed(tmp_path):
    """copydetect hashes with Python's hash(), seeded anew in each process; with window 1 every
    k-gram is a fingerprint, so the scores and shared lines do not depend on the seed."""
    assignment = "shapes_padding_stride"
    submitted = build(assignment, tmp_path / "submitted")
    found = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}"
        done = subprocess.run([sys.executable, "-m", "classgrade", "similarity", assignment, str(submitted),
                               "--out", str(out), "--course", str(ROOT)],
                              env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        data = json.loads((out / "similarity.json").read_text())
        found.append((data["pairs"], data["closest_unflagged"], data["submissions"]))
    assert found[0] == found[1] and found[0][0]
