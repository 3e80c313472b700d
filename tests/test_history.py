"""Runs that keep history, a changed source refused, and feedback that explains itself.

A small class of the ``tiny`` fixture assignment (tests/hostile/course, with a written answer
added) is graded into one output folder; one student is then graded again into the same folder,
and the source's points changed (refused, then ``--regrade-all``). The feedback of the students
whose notebook could not be graded as handed in (unreadable, missing, too large, another
assignment's) says why at its top; no feedback shows an instructor's path.
"""
import csv
import json
import os
import shutil
import sys
from html import unescape
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from classgrade.protocol import Result
from classgrade.trusted import gradebook, history, pipeline, report
from classgrade.trusted.cli import main as classgrade_main
from classgrade.trusted.run import grade_class

sys.path.insert(0, str(Path(__file__).parent))
import classgrade_corpus as corpus  # noqa: E402

HOSTILE = Path(__file__).parent / "hostile"
REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 10
NOTICE = "Your newest file tiny.ipynb was graded; the earlier tiny-1.ipynb was not."
pytestmark = pytest.mark.grading

# a cell of the correct student's that fails inside convlab, and one that prints the grader's paths
FAILS_IN_CONVLAB = "import convlab\nconvlab.corr2d(torch.ones(3, 3), torch.ones(2))"
PRINTS_PATHS = "import os, sys, convlab\nprint('cwd', os.getcwd())\nprint('prefix', sys.prefix)\nprint('file', convlab.__file__)"


def _written_answer(nb):
    """The source notebook with a written answer (graded by hand, 2 points) after the tests."""
    cell = new_markdown_cell("YOUR ANSWER HERE")
    cell.metadata["nbgrader"] = dict(grade=True, solution=True, locked=False, task=False, points=2,
                                     grade_id="explain", schema_version=3)
    nb.cells += [new_markdown_cell("Explain, in a sentence, why `corr2d` needs no padding."), cell]
    return nb


def _set_points(course, grade_id, points):
    path = course / "solutions" / "tiny" / "tiny.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.metadata.nbgrader["points"] = points
    nbformat.write(nb, str(path))


def _hand_in(root, student, nb=None, text=None):
    folder = root / student / "tiny"
    folder.mkdir(parents=True)
    if nb is not None:
        nbformat.write(nb, str(folder / "tiny.ipynb"))
    if text is not None:
        (folder / "tiny.ipynb").write_text(text)
    return folder


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("history") / "course"
    shutil.copytree(HOSTILE / "course", root)
    path = root / "solutions" / "tiny" / "tiny.ipynb"
    nbformat.write(_written_answer(nbformat.read(str(path), as_version=4)), str(path))
    return root


@pytest.fixture(scope="module")
def classroom(course, tmp_path_factory):
    """The first run (six students), then bob graded again alone into the same folder."""
    tmp = tmp_path_factory.mktemp("classroom")
    release = corpus.released(course)
    first = tmp / "first"
    alice = corpus.insert_after(corpus.student(release), "corr2d", FAILS_IN_CONVLAB)
    alice = corpus.insert_after(alice, "corr2d", PRINTS_PATHS)
    alice.cells[corpus.find(alice, "explain")].source = "The kernel slides only where it fits."
    _hand_in(first, "alice", alice)
    _hand_in(first, "bob", corpus.student(release, double="def double(x):\n    return x"))
    _hand_in(first, "carol", text="{ not json")
    (_hand_in(first, "dave") / "README.txt").write_text("forgot the notebook")
    with open(_hand_in(first, "erin") / "tiny.ipynb", "wb") as f:
        f.truncate(51 * 2**20)        # past copy_checked's 50 MiB per file (sparse: nothing written)
    other = corpus.student(release)
    for cell in other.cells:
        meta = cell.metadata.get("nbgrader")
        if meta and meta.get("grade_id"):
            meta["grade_id"] = "other_" + meta["grade_id"]
    _hand_in(first, "frank", other)
    out = tmp / "out"
    jobs = pipeline.ClassRun.jobs

    def with_notice(run, students):   # what the "collect" step tells a student (Job.notices)
        return [job.again(notices=[NOTICE]) if job.student == "alice" else job for job in jobs(run, students)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline.ClassRun, "jobs", with_notice)
        one = grade_class(course, "tiny", first, out, workers=2, timeout=TIMEOUT, memory="2G", wall=240,
                          progress=False)
    again = tmp / "again"
    _hand_in(again, "bob", corpus.student(release))
    two = grade_class(course, "tiny", again, out, workers=1, timeout=TIMEOUT, memory="2G", wall=240,
                      progress=False)
    return dict(out=out, one=one, two=two, release=release, tmp=tmp)


def _scores_table(md):
    """student -> score, from a report's Scores section."""
    table = md.split("## Scores", 1)[1]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {r[0].strip(): float(r[1]) for r in rows[1:]}


STUDENTS = {"alice", "bob", "carol", "dave", "erin", "frank"}


def test_each_run_keeps_its_report_and_the_class_report_keeps_everyone(classroom):
    out, one, two = classroom["out"], classroom["one"], classroom["two"]
    runs = sorted(p for p in (out / "runs").iterdir())
    assert [str(p.relative_to(out)) for p in runs] == [one.run, two.run]
    for folder in runs:
        for name in ("report.html", "report.md", "results.json", "score_distribution.png", "run.json"):
            assert (folder / name).is_file(), (folder, name)
    # the first run's report is kept as it was: six students, bob with 3
    first = _scores_table((runs[0] / "report.md").read_text())
    assert set(first) == STUDENTS and first["bob"] == 3 and first["alice"] == 4
    assert set(json.loads((runs[0] / "results.json").read_text())) == STUDENTS
    # the second run's report: bob alone, now 4
    assert _scores_table((runs[1] / "report.md").read_text()) == {"bob": 4}
    assert set(json.loads((runs[1] / "results.json").read_text())) == {"bob"}
    # the class report: everyone, bob updated, the others kept (with their reasons)
    md = (out / "report.md").read_text()
    scores = _scores_table(md)
    assert set(scores) == STUDENTS and scores["bob"] == 4 and scores["alice"] == 4 and scores["carol"] == 0
    assert md.startswith("# Class report: tiny") and "6 students in the gradebook" in md
    assert "**carol**" in md and "is not a valid notebook" in md
    records = json.loads((out / "results.json").read_text())
    assert set(records) == STUDENTS and report.totals({"b": Result.from_dict(records["bob"])})["b"][0] == 4
    html = (out / "report.html").read_text()
    assert "Class report: tiny" in html and 'src="score_distribution.png"' in html
    assert (out / "score_distribution.png").stat().st_size > 1000
    with open(out / "grades.csv") as f:
        assert {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(f)}["bob"] == 4
    assert set(two.whole_class.results) == STUDENTS and set(two.results) == {"bob"}


def test_each_hand_in_is_kept_for_a_regrade(classroom):
    out = classroom["out"]
    kept = out / "submitted"
    assert sorted(p.name for p in kept.iterdir()) == sorted(STUDENTS)
    assert (kept / "carol" / "tiny" / "tiny.ipynb").read_text() == "{ not json"
    assert sorted(p.name for p in (kept / "dave" / "tiny").iterdir()) == ["README.txt"]
    # bob's second hand-in replaced his first
    assert "return 2 * x" in (kept / "bob" / "tiny" / "tiny.ipynb").read_text()
    # the oversized file is not kept, but why it was left out is
    assert not (kept / "erin" / "tiny" / "tiny.ipynb").exists()
    assert "past the size limits" in (kept / "erin" / "tiny.left-out.json").read_text()


def _feedback(out, student):
    return (out / "feedback" / student / "tiny" / "tiny.html").read_text()


def _notes(html):
    """The text of the notes atop the feedback (before the notebook's first cell)."""
    assert 'id="classgrade-notes"' in html
    start = html.index('id="classgrade-notes"')
    assert start < html.index("Test cell")
    return unescape(html[start:html.index("</div>", start)])


@pytest.mark.parametrize("student, why", [
    ("carol", "could not be read as a Jupyter notebook"),
    ("dave", "has no file named tiny.ipynb"),
    ("erin", "past the size limits"),
    ("frank", "holds none of this assignment's graded cells"),
])
def test_feedback_says_why_the_blank_release_was_graded(classroom, student, why):
    notes = _notes(_feedback(classroom["out"], student))
    assert why in notes and "blank released notebook was graded in its place" in notes
    result = classroom["one"].results[student]
    assert result.explained and report.totals({student: result})[student][0] == 0
    assert student in classroom["two"].whole_class.explained
    md = (classroom["out"] / "report.md").read_text()
    section = md.split("## Feedback that explains a substitute (4)", 1)[1].split("## ", 1)[0]
    assert f"**{student}**" in section


def test_feedback_shows_the_collection_notices_and_no_notes_when_there_are_none(classroom):
    out = classroom["out"]
    assert NOTICE in _notes(_feedback(out, "alice"))
    assert 'id="classgrade-notes"' not in _feedback(out, "bob")
    assert "alice" not in classroom["two"].whole_class.explained and "bob" not in classroom["one"].explained


def test_no_feedback_shows_an_instructor_path(classroom, course):
    out = classroom["out"]
    forbidden = {str(course), str(course.resolve()), str(REPO), sys.prefix, os.path.expanduser("~"),
                 "/tmp/classgrade-", str(out), str(classroom["tmp"])}
    pages = sorted(out.glob("feedback/*/tiny/*.html"))
    assert len(pages) == len(STUDENTS)
    for page in pages:
        text = page.read_text()
        for path in forbidden:
            assert path not in text, (page, path)
    # alice's traceback went through convlab and still says where, relative to the course
    alice = _feedback(out, "alice")
    assert "convlab/" in alice and "Error" in alice
    assert "prefix [python]" in alice and "file convlab/__init__.py" in alice and "cwd ." in alice
    # nor does the autograded notebook they are made from (nbgrader generate_feedback would show it)
    text = (out / "autograded" / "alice" / "tiny" / "tiny.ipynb").read_text()
    for path in forbidden:
        assert path not in text, path


def test_a_written_answer_awaiting_grading_is_not_graded_yet(classroom):
    html = _feedback(classroom["out"], "alice")
    assert "Score: not graded yet / 2.0" in html and "Written response</a> (Score: not graded yet / 2.0)" in html
    assert "Score: 0.0 / 2.0" not in html
    assert "2.0 of these points not graded yet" in html
    assert "Score: 1.0 / 1.0" in html        # the tests keep their scores
    # an answer left as released is nbgrader's automatic zero, graded: it says so
    bob = _feedback(classroom["out"], "bob")
    assert "Written response</a> (Score: 0.0 / 2.0)" in bob and "not graded yet" not in bob


def test_a_changed_source_is_refused_then_regraded_whole(classroom, course, tmp_path, capsys):
    out = classroom["out"]
    changed = tmp_path / "changed"
    shutil.copytree(course, changed)
    _set_points(changed, "test_corr2d_hidden", 3)
    only_bob = tmp_path / "only_bob"
    _hand_in(only_bob, "bob", corpus.student(classroom["release"]))
    runs_before = sorted((out / "runs").iterdir())
    argv = ["tiny", str(only_bob), "--course", str(changed), "--out", str(out), "--workers", "1",
            "--timeout", str(TIMEOUT), "--memory", "2G", "--no-progress"]
    assert classgrade_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "test 'test_corr2d_hidden' now 3 points, 2 in the gradebook" in err and "--regrade-all" in err
    # nothing was graded or changed
    assert sorted((out / "runs").iterdir()) == runs_before
    db_url = f"sqlite:///{out / 'gradebook.db'}"
    assert gradebook.snapshot(db_url, "tiny")["tiny"]["points"]["test_corr2d_hidden"][0] == 2
    # the flag regrades everyone (bob from the folder given, the others from out/submitted/)
    result = grade_class(changed, "tiny", only_bob, out, workers=2, timeout=TIMEOUT, memory="2G", wall=240,
                         progress=False, regrade_all=True)
    assert set(result.results) == STUDENTS
    from nbgrader.api import Gradebook
    with Gradebook(db_url) as gb:
        grades = [g for s in gb.assignment_submissions("tiny") for nb in s.notebooks for g in nb.grades]
        assert len({g.notebook.student.id for g in grades}) == len(STUDENTS)
        for g in grades:
            assert (g.auto_score or 0) <= g.max_score, (g.notebook.student.id, g.name, g.auto_score, g.max_score)
        hidden = {g.notebook.student.id: (g.auto_score, g.max_score) for g in grades if g.name == "test_corr2d_hidden"}
    assert hidden["alice"] == (3, 3) and hidden["bob"] == (3, 3) and hidden["carol"] == (0, 3)
    scores = _scores_table((out / "report.md").read_text())
    assert scores["alice"] == 5 and scores["bob"] == 5
    # the reasons were graded again too: the oversized file's from the kept note
    assert any("past the size limits" in line for line in result.results["erin"].explained)
    assert json.loads((out / result.run / "run.json").read_text())["regrade_all"] is True
    # a regrade with nothing changed since is no longer refused
    assert gradebook.changes(gradebook.snapshot(db_url, "tiny"),
                             gradebook.snapshot(db_url, "tiny")) == []


def test_regrade_all_refuses_when_a_hand_in_is_nowhere(tmp_path):
    (tmp_path / "submitted" / "alice" / "tiny").mkdir(parents=True)
    with pytest.raises(history.InstructorError, match="no hand-in of bob, carol"):
        history.hand_ins(tmp_path, "tiny", ["alice", "bob", "carol"], {})
    assert history.hand_ins(tmp_path, "tiny", ["alice", "bob"], {"bob": tmp_path / "x"}) == \
        {"alice": tmp_path / "submitted" / "alice" / "tiny", "bob": tmp_path / "x"}


def test_changes_name_points_added_removed_and_edited_cells():
    stored = {"nb": dict(points={"t1": (2.0, "code"), "t2": (1.0, "code"), "w": (2.0, "markdown")},
                         checksums={"t1": "a", "t2": "b", "w": "c", "s": "d"})}
    same = json.loads(json.dumps(stored))
    same["nb"]["points"] = {k: tuple(v) for k, v in same["nb"]["points"].items()}
    assert gradebook.changes(stored, same) == []
    fresh = dict(nb=dict(points={"t1": (3.0, "code"), "w": (2.0, "markdown"), "t3": (1.0, "code")},
                         checksums={"t1": "a2", "w": "c2", "s": "d", "t3": "e"}))
    lines = gradebook.changes(stored, fresh)
    assert lines[0] == "test 't1' now 3 points, 2 in the gradebook"
    assert "test 't2' removed from the source" in lines and "test 't3' added to the source" in lines
    assert "written answer 'w' changed in the source" in lines
    assert not any(line.startswith("test 't1' changed") for line in lines)   # said once, as points
    assert gradebook.structural(lines) and not gradebook.structural(lines[:1])
    assert gradebook.changes(stored, {}) == ["notebook 'nb' removed from the source"]


def test_report_sections_are_a_list_others_can_extend(tmp_path, monkeypatch):
    res = Result.from_dict(dict(student="s", status="ok", flags=["why"], explained=["told"]))
    result = report.ClassResult(out=tmp_path, db_url="sqlite:///x.db", results={"s": res})
    monkeypatch.setattr(report, "SECTIONS", report.SECTIONS + [
        lambda s: report.Section("Extra", [f"{len(s.totals)} extra"], "<p>extra</p>")])
    report.write_report(result, "tiny", tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Needs manual attention (1)") < md.index("## Feedback that explains a substitute (1)") \
        < md.index("## Extra") and "1 extra" in md
    assert "<h2>Extra</h2>\n<p>extra</p>" in (tmp_path / "report.html").read_text()


# ---- small units ---------------------------------------------------------------------------

def _release():
    return nbformat.read(str(HOSTILE / "submitted" / "blank" / "tiny" / "tiny.ipynb"), as_version=4)


@pytest.mark.parametrize("content, left_out, why", [
    (None, {}, "has no file named tiny.ipynb"),
    (None, {"tiny.ipynb": "53477376 bytes, past the size limits"}, "left out of your hand-in (53477376 bytes"),
    ("", {}, "could not be read as a Jupyter notebook (the file is empty)"),
    ("{ not json", {}, "could not be read as a Jupyter notebook (Notebook does not appear to be JSON"),
    ('{"nbformat": 9, "nbformat_minor": 0, "cells": [], "metadata": {}}', {}, "could not be read as a Jupyter"),
    ("OTHER", {}, "holds none of this assignment's graded cells"),
])
def test_sanitize_tells_the_student_why_the_release_was_graded(tmp_path, content, left_out, why):
    from classgrade.trusted import notebooks
    release, path = _release(), tmp_path / "tiny.ipynb"
    if content == "OTHER":
        nb = corpus.student(release)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id"):
                cell.metadata.nbgrader.grade_id += "_of_another"
        content = nbformat.writes(nb)
    if content is not None:
        path.write_text(content)
    flags, told = [], []
    notebooks.sanitize(path, release, tmp_path / "baseline.json", flags, told, left_out)
    assert len(told) == 1 and why in told[0] and "blank released notebook was graded in its place" in told[0]
    assert flags and "graded as the blank released notebook" in flags[-1]
    graded = nbformat.read(str(path), as_version=4)
    assert [c.source for c in graded.cells if "grade_id" in c.metadata.get("nbgrader", {})] == \
        [c.source for c in release.cells if "grade_id" in c.metadata.get("nbgrader", {})]


def test_sanitize_tells_nothing_of_a_notebook_graded_as_handed_in(tmp_path):
    from classgrade.trusted import notebooks
    release, path = _release(), tmp_path / "tiny.ipynb"
    nbformat.write(corpus.student(release), str(path))
    told = []
    notebooks.sanitize(path, release, tmp_path / "baseline.json", [], told, {})
    assert told == []


def test_a_blank_retry_is_explained(tmp_path):
    from classgrade.protocol import Job
    from classgrade.trusted import worker
    release = json.loads(json.dumps(_release()))   # as the pipeline sends it: plain dicts
    job = Job(student="s", assignment="tiny", work=str(tmp_path / "w"), template_db="", source_dir="",
              release={"tiny.ipynb": release}, blank=True)
    paths = worker.Paths(job)
    paths.dest.mkdir(parents=True)
    paths.private.mkdir(parents=True)
    (paths.dest / "tiny.ipynb").write_text("anything: replaced by the release")
    flags = []
    told = worker._sanitize_all(job, paths, flags)
    assert len(told) == 1 and "on every attempt" in told[0] and "blank released notebooks were graded" in told[0]
    job = job.again(blank=False, flags=[worker.LEFT_OUT + "tiny.ipynb: a symbolic link, not copied"])
    (paths.dest / "tiny.ipynb").unlink()
    told = worker._sanitize_all(job, paths, list(job.flags))
    assert told and "left out of your hand-in (a symbolic link)" in told[0]


def test_the_scrubber_takes_out_every_instructor_path(tmp_path):
    from classgrade.trusted import feedback
    course, work = tmp_path / "course", "/tmp/classgrade-x1y2/work/3"
    scrub = feedback.Scrubber([(str(course), "[course]"), (work + "/course/submitted/s/tiny", ""), (work, "[grader]")])
    site = __import__("sysconfig").get_paths()["purelib"]
    text = (f"File {site}/torch/nn/functional.py:12\n{REPO}/convlab/correlate.py\n{course}/solutions/x\n"
            f"{work}/course/submitted/s/tiny/data.csv\n{sys.prefix}/bin/python\n{os.path.expanduser('~')}/.cache\n"
            "/tmp/classgrade-other-9/x /home/someone/notes.txt")
    clean = scrub(text)
    for path in (site, str(REPO), str(course), work, sys.prefix, "/tmp/classgrade-", "/home/someone"):
        assert path not in clean, (path, clean)
    if os.path.expanduser("~") not in ("/", ""):
        assert os.path.expanduser("~") + "/" not in clean
    assert clean.splitlines()[:4] == ["File torch/nn/functional.py:12", "convlab/correlate.py",
                                      "[course]/solutions/x", "data.csv"]


def test_regrade_all_after_cells_were_added_and_removed(course, tmp_path):
    """A renamed test (one removed, one added): nbgrader refuses to change the cells of an
    assignment with submissions, so --regrade-all removes them first and grades everyone again."""
    release = corpus.released(course)
    first, out = tmp_path / "first", tmp_path / "out"
    _hand_in(first, "alice", corpus.student(release))
    _hand_in(first, "carol", text="{ not json")
    grade_class(course, "tiny", first, out, workers=2, timeout=TIMEOUT, memory="2G", wall=240,
                progress=False, feedback=False)
    changed = tmp_path / "changed"
    shutil.copytree(course, changed)
    notebook = changed / "solutions" / "tiny" / "tiny.ipynb"
    notebook.write_text(notebook.read_text().replace('"grade_id": "test_double"', '"grade_id": "test_twice"'))
    only_alice = tmp_path / "only_alice"
    shutil.copytree(first / "alice", only_alice / "alice")
    with pytest.raises(history.InstructorError, match="test 'test_double' removed from the source"):
        grade_class(changed, "tiny", only_alice, out, timeout=TIMEOUT, memory="2G", progress=False, feedback=False)
    result = grade_class(changed, "tiny", only_alice, out, workers=2, timeout=TIMEOUT, memory="2G", wall=240,
                         progress=False, feedback=False, regrade_all=True)
    assert set(result.results) == {"alice", "carol"}
    db_url = f"sqlite:///{out / 'gradebook.db'}"
    graded = gradebook.submissions(db_url, "tiny")
    assert set(graded) == {"alice", "carol"}
    for student, notebooks in graded.items():
        cells = notebooks["tiny"].cells
        assert "test_twice" in cells and "test_double" not in cells, student
    assert graded["alice"]["tiny"].cells["test_twice"].auto_score == 1
    # her hand-in still has the old test: it ran as an ordinary cell, and the report says so
    assert "tiny.ipynb: cell 'test_double' is not one of the assignment's graded cells: run as an ordinary cell" \
        in result.results["alice"].flags
    assert "is not a valid notebook" in " ".join(result.results["carol"].flags)
    assert _scores_table((out / "report.md").read_text()) == {"alice": 4, "carol": 0}


def test_the_late_and_collection_sections_appear_only_when_they_have_something(tmp_path):
    class Found:   # what collect.Collection gives the report
        def report_lines(self):
            return ["3 hand-ins found", "bob: tiny-1.ipynb not graded (an older copy)"]

    res = Result.from_dict(dict(student="s", status="ok"))
    result = report.ClassResult(out=tmp_path, db_url="sqlite:///x.db", results={"s": res})
    report.write_report(result, "tiny", tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Collection" not in md and "Handed in late" not in md
    result.collection = Found()
    report.write_report(result, "tiny", tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Collection\n\n- 3 hand-ins found\n- bob: tiny-1.ipynb not graded (an older copy)" in md
    assert md.index("## Needs manual attention") < md.index("## Collection") < md.index("## Scores")


def test_late_submissions_get_a_section():
    late = Result.from_dict(dict(student="s", status="ok"))
    late.seconds_late = 2 * 86400 + 3 * 3600 + 5      # the export branch's field of Result
    on_time = Result.from_dict(dict(student="t", status="ok"))
    summary = report.summarize(report.ClassResult(out=Path("."), db_url="", results={"s": late, "t": on_time}), "tiny")
    section = report.late_section(summary)
    assert section.title == "Handed in late (1)" and "| s | 2 d 3 h | 0 |" in section.markdown
    on_time_only = report.summarize(report.ClassResult(out=Path("."), db_url="", results={"t": on_time}), "tiny")
    assert report.late_section(on_time_only) is None
    assert [report.describe_late(x) for x in (42, 610, 5 * 3600 + 600)] == ["42 s", "10 min", "5 h 10 min"]
