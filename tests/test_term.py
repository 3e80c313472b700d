"""An instructor's term, as the README walks through it: the commands of its "A term, step by
step" blocks, run in their order in a copy of the course, on a Canvas download.

The README's blocks are read, not copied here: the config block is appended to the course's
``nbgrader_config.py`` and each command line of the commands block is run as written (from the
course's folder), so the README cannot drift from what is tested. Between the steps the test makes
what an instructor's term brings: a later hand-in, a test's points changed in the source.
"""
import csv
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from test_collect import make_zip        # a zip written as Canvas writes it (no UTF-8 flag)
from test_similarity import cases, hand_in   # honest and copied answers of tests/similarity/

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "shapes_padding_stride"
ROSTER = ROOT / "tests" / "data" / "canvas_gradebook.csv"
pytestmark = pytest.mark.grading


def readme_block(marker):
    """The fenced block that follows the README's ``<!-- term: marker ... -->`` comment."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- term: " + marker + r"\b[^>]*-->\n```\w*\n(.*?)```", text, re.S)
    assert found, f"README.md has no block after <!-- term: {marker} -->"
    return found.group(1)


def commands():
    return [line for line in readme_block("commands").splitlines() if line.strip() and not line.startswith("#")]


def _notebook(nb):
    return nbformat.writes(nb).encode()


def _written_by(student):
    """The notebook of ``student`` of the similarity corpus (eli and ivan: a disguised copy)."""
    (nb,) = hand_in(ASSIGNMENT, cases(ASSIGNMENT)[student]).values()
    return _notebook(nb)


def _blank():
    return (ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes()


def _off_by_one():
    return (ROOT / "tests" / "submissions" / ASSIGNMENT / "off_by_one_output.ipynb").read_bytes()


BEFORE, LATE_BY_26_H = (2026, 12, 1, 20, 0, 0), (2026, 12, 3, 1, 59, 0)   # due 2026-12-01 23:59 UTC


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """The course copied, the README's config appended, and the five steps run in order."""
    course = tmp_path_factory.mktemp("term") / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    shutil.copytree(ROOT / "exercises" / ASSIGNMENT, course / "exercises" / ASSIGNMENT)
    with open(course / "nbgrader_config.py", "a") as config:
        config.write("\n" + readme_block("config"))
    shutil.copy(ROSTER, course / "roster.csv")
    name = f"{ASSIGNMENT}.ipynb"
    make_zip(course / "submissions.zip", [
        (f"doejane_101_5001_{name}", _written_by("eli"), BEFORE),
        (f"müllerjürgen_LATE_102_5002_{name}", _written_by("ben"), LATE_BY_26_H),
        (f"ngmeiling_103_5003_{name}", _blank(), BEFORE),
        (f"ngmeiling_103_5004_{ASSIGNMENT}-1.ipynb", _off_by_one(), BEFORE),   # the newest: graded
        (f"zhangwei张伟_105_5005_{name}", _written_by("ivan"), BEFORE),        # Jane Doe's, disguised
        ("zhangwei张伟_105_5006_notes.py", b"print('my notes')\n", BEFORE),
    ], flag=False)
    make_zip(course / "resubmission.zip", [(f"ngmeiling_103_5010_{ASSIGNMENT}-2.ipynb", _written_by("ada"),
                                            BEFORE)], flag=False)
    steps = commands()
    assert [shlex.split(c)[4] for c in steps[:3]] == [ASSIGNMENT] * 3, steps
    done = {}

    def run(i, line=None):
        line = line or steps[i]
        argv = shlex.split(line)
        assert argv[:3] == ["python", "-m", "classgrade"], line
        proc = subprocess.run([sys.executable, "-m", "classgrade", *argv[3:], *(
            ["--workers", "2", "--no-progress"] if argv[3] == "grade" else [])],
            cwd=course, capture_output=True, text=True, timeout=1200)
        return proc

    for i in (0, 1):
        done[i] = run(i)
        assert done[i].returncode == 0, done[i].stderr[-3000:]
        done[f"class{i}"] = (course / "grading" / "report.md").read_text()
    # a test's points change in the source: step 2 again is refused, naming step 3's command
    source = course / "solutions" / ASSIGNMENT / name
    nb = nbformat.read(str(source), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_output_shape_visible":
            cell.metadata.nbgrader.points = 2
    nbformat.write(nb, str(source))
    done["refused"] = run(1)
    for i in (2, 3, 4):
        done[i] = run(i)
        assert done[i].returncode == 0, done[i].stderr[-3000:]
    return dict(course=course, out=course / "grading", done=done, steps=steps)


def _scores(out):
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        return {s.student.id: (s.score, s.max_score, s.late_submission_penalty)
                for s in gb.assignment_submissions(ASSIGNMENT)}


def test_the_readme_shows_the_five_steps_of_a_term():
    steps = [shlex.split(c) for c in commands()]
    assert [s[3] for s in steps] == ["grade", "grade", "grade", "export", "similarity"], steps
    assert "--regrade-all" in steps[2] and "--regrade-all" not in steps[1]
    assert "ClassGrade.duedates" in readme_block("config")


def test_step_1_grades_every_student_of_the_download(term):
    report = (term["out"] / "runs").iterdir()
    first = sorted(report)[0]
    md = (first / "report.md").read_text()
    collection = json.loads((first / "collection.json").read_text())
    assert set(collection["students"]) == {"101", "102", "103", "105"}
    text = json.dumps(collection, ensure_ascii=False)
    assert "notes.py" in text and "张伟" in text and "müllerjürgen" in text     # named, and decoded
    assert f"ngmeiling_103_5003_{ASSIGNMENT}.ipynb" in text                    # the older file, named
    assert "Handed in late (1)" in md and "| 102 |" in md.split("Handed in late")[1]
    scores = json.loads((first / "results.json").read_text())
    assert scores["102"]["seconds_late"] > 24 * 3600


def test_step_2_regrades_one_student_and_keeps_the_class(term):
    before, after = term["done"]["class0"], term["done"]["class1"]
    for student in ("101", "102", "103", "105"):
        assert f"| {student} |" in before and f"| {student} |" in after
    assert len(list((term["out"] / "runs").iterdir())) == 3   # steps 1, 2 and 3; the refusal made none
    row = lambda md: next(line for line in md.splitlines() if line.startswith("| 103 |"))  # noqa: E731
    assert row(before) != row(after)


def test_a_changed_source_is_refused_with_the_command_of_step_3(term):
    refused = term["done"]["refused"]
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "test 'test_output_shape_visible' now 2 points, 1 in the gradebook" in lines[0]
    assert term["steps"][2] in lines[0]


def test_step_3_regrades_everyone_against_the_new_points(term):
    scores = _scores(term["out"])
    assert set(scores) == {"101", "102", "103", "105"}
    # 1 point more for test_output_shape_visible: 11
    assert {m for _, m, _ in scores.values()} == {11.0}
    score, _, penalty = scores["102"]          # the gradebook's score is before the penalty, as nbgrader's
    assert score > 0 and penalty == pytest.approx(0.2 * score)   # 2 started days late, 10 % each
    with Gradebook(f"sqlite:///{term['out'] / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(ASSIGNMENT):
            for nb in sub.notebooks:
                for grade in nb.grades:
                    assert grade.score <= grade.max_score, (sub.student.id, grade.name)


def test_step_4_writes_canvas_s_import_file(term):
    rows = list(csv.reader((term["course"] / "canvas.csv").read_text(encoding="utf-8-sig").splitlines()))
    header = rows[0]
    column = next(i for i, h in enumerate(header) if h.startswith(ASSIGNMENT))
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    by_id = {row[1]: row[column] for row in rows[1:] if row[1]}
    scores = _scores(term["out"])
    assert float(by_id["102"]) == pytest.approx(scores["102"][0] - scores["102"][2])   # after the penalty
    assert float(by_id["101"]) == pytest.approx(scores["101"][0]) and scores["101"][2] == 0
    assert by_id["104"] == "" and by_id["106"] == ""                # no hand-in: blank, not 0


def test_step_5_finds_the_copied_pair_and_no_other(term):
    found = json.loads((term["out"] / "similarity.json").read_text())
    assert (term["out"] / "similarity.html").is_file()
    assert [sorted(pair_students(p)) for p in found["pairs"]] == [["101", "105"]], found["pairs"]


def pair_students(pair):
    return [pair[k] for k in ("a", "b")]
