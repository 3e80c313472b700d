"""The late policy and the LMS export of ``classgrade`` (classgrade/trusted/late.py, export.py).

The penalty plugin and the Canvas export run on gradebooks built with nbgrader's API (fast);
one small grading run of three hand-ins (on time, late, and later than the cap) checks that
the hand-in's time, the due date and the penalty reach the real gradebook, ``grades.csv``,
the report, the feedback and the Canvas file alike.
"""
import csv
import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties
from traitlets import TraitError
from traitlets.config import Config

from classgrade.trusted import gradebook, late
from classgrade.trusted.cli import main as classgrade_main
from classgrade.trusted.errors import InstructorError
from classgrade.trusted.export import IDENTITY, POINTS_POSSIBLE, CanvasExportPlugin, Roster

sys.path.insert(0, str(Path(__file__).parent))
from test_classgrade import HOSTILE, TIMEOUT, course  # noqa: E402,F401 - the hostile corpus's course fixture

ROSTER = Path(__file__).parent / "data" / "canvas_gradebook.csv"
DUE = datetime.datetime(2026, 12, 1, 23, 59)
HOUR, DAY = 3600, 24 * 3600
PLUGIN = "classgrade.trusted.late.PercentPerDay"


def policy(percent=None, cap=None):
    config = Config()
    config.AssignLatePenalties.plugin_class = PLUGIN
    if percent is not None:
        config.PercentPerDay.percent = percent
    if cap is not None:
        config.PercentPerDay.cap = cap
    return config


# ---------------------------------------------------------------- the penalty plugin

@pytest.mark.parametrize("seconds, percent", [
    (0, None), (1, 10), (HOUR, 10), (DAY, 10), (DAY + 1, 20), (2 * DAY, 20), (4 * DAY + 1, 50),
    (5 * DAY, 50), (30 * DAY, 50)])
def test_percent_per_started_day_capped(seconds, percent):
    plugin = late.penalty_plugin(policy()).plugin_inst
    assert isinstance(plugin, late.PercentPerDay) and (plugin.percent, plugin.cap) == (10, 50)
    penalty = plugin.late_submission_penalty("s", 8.0, seconds)
    assert penalty == (None if percent is None else pytest.approx(8.0 * percent / 100))


def test_the_policy_comes_from_the_config_and_is_checked():
    plugin = late.penalty_plugin(policy(percent=25, cap=100)).plugin_inst
    assert plugin.late_submission_penalty("s", 4.0, 3 * DAY + 5) == 4.0      # 4 days: 100 %
    assert plugin.late_submission_penalty("s", 4.0, 1) == 1.0
    assert plugin.late_submission_penalty("s", 0.0, DAY) is None           # nothing to take
    with pytest.raises(InstructorError, match="PercentPerDay.cap must be between 0 and 100"):
        late.penalty_plugin(policy(cap=150))
    with pytest.raises(TraitError):
        late.PercentPerDay(percent=-1)
    # no plugin configured: nbgrader's own, which takes nothing
    none = late.penalty_plugin(Config()).plugin_inst
    assert none.late_submission_penalty("s", 4.0, 10 * DAY) is None


def test_due_dates_from_the_config_as_nbgrader_reads_them():
    config = Config()
    config.ClassGrade.duedates = {"a": "2026-12-01 23:59:00 UTC", "b": "2026-12-02 00:59:00 Europe/Paris",
                                  "c": "2026-12-01T18:59:00-05:00"}
    for name in "abc":
        assert late.configured_duedate(config, name) == DUE
    assert late.configured_duedate(config, "other") is None
    config.ClassGrade.duedates = {"a": "the first of December"}
    with pytest.raises(InstructorError, match=r"duedates\['a'\].*2026-12-01 23:59:00 UTC"):
        late.configured_duedate(config, "a")


def _gradebook(path, students, *, points=(2.0, 4.0), assignments=("cross_correlation",)):
    """A gradebook as a grading run leaves it, built with nbgrader's API:
    ``students``: id -> (seconds after the due date or None, {assignment: scores of its cells}
    ... or the same scores for every assignment)."""
    gradebook.alembic_head_in_process()   # not the `alembic heads` command for every new gradebook
    url = f"sqlite:///{path}"
    with Gradebook(url) as gb:
        for name in assignments:
            gb.add_assignment(name, duedate=DUE)
            gb.add_notebook(name, name)
            for i, p in enumerate(points):
                gb.add_grade_cell(f"test_{i}", name, name, max_score=p, cell_type="code")
                gb.add_solution_cell(f"answer_{i}", name, name)
        for sid, (after, scores) in students.items():
            gb.update_or_create_student(sid)
            for name in assignments:
                cells = scores.get(name) if isinstance(scores, dict) else scores
                if cells is None:
                    continue
                stamp = None if after is None else DUE + datetime.timedelta(seconds=after)
                gb.add_submission(name, sid, timestamp=stamp)
                for i, score in enumerate(cells):
                    grade = gb.find_grade(f"test_{i}", name, name, sid)
                    grade.auto_score = score
                gb.db.commit()
    return url


def test_penalties_are_nbgrader_s_own_computation_on_the_final_scores(tmp_path):
    url = _gradebook(tmp_path / "gb.db", {"ontime": (-60, [2, 4]), "late": (DAY + 1, [2, 3]),
                                           "nostamp": (None, [2, 4]), "zero": (3 * DAY, [0, 0])})
    config = policy(percent=30, cap=80)
    ours = late.penalty_plugin(config)
    with Gradebook(url) as gb:
        totals = {s: late.assign_penalties(gb, "cross_correlation", s, ours)
                  for s in ("ontime", "late", "nostamp", "zero")}
        ours_row = {s: gb.find_submission_notebook("cross_correlation", "cross_correlation", s).late_submission_penalty
                    for s in totals}
    assert totals == {"ontime": 0, "late": pytest.approx(0.6 * 5), "nostamp": 0, "zero": 0}
    assert ours_row == {"ontime": None, "late": pytest.approx(3.0), "nostamp": None, "zero": None}
    # nbgrader's AssignLatePenalties, on the same gradebook, finds the same
    for student in totals:
        resources = dict(nbgrader=dict(notebook="cross_correlation", assignment="cross_correlation",
                                       student=student, db_url=url))
        AssignLatePenalties(config=config).preprocess(nbformat.v4.new_notebook(), resources)
    with Gradebook(url) as gb:
        theirs = {s: gb.find_submission_notebook("cross_correlation", "cross_correlation", s).late_submission_penalty
                  for s in totals}
        assert gb.find_submission("cross_correlation", "late").total_seconds_late == DAY + 1
    assert theirs == ours_row


# ---------------------------------------------------------------- the Canvas export

def _read(path):
    """The rows of a CSV file as Canvas reads it (BOM, the file's delimiter)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    delimiter = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
    return list(csv.reader(text.splitlines(), delimiter=delimiter))


@pytest.fixture
def graded(tmp_path):
    """A grading folder whose gradebook holds two assignments: cross_correlation, which the
    roster has (worth 6), and edge_detection, which it has not; 101 on time, 102 late by 26 h
    (20 % off with 10 % a day), 103 only edge_detection, 104 nothing, 999 not on the roster."""
    out = tmp_path / "grading"
    out.mkdir()
    students = {"101": (-HOUR, [2, 3.5]), "102": (DAY + 2 * HOUR, [2, 4]),
                "103": (None, {"edge_detection": [1, 1]}), "999": (0, [2, 2])}
    url = _gradebook(out / "gradebook.db", students, assignments=("cross_correlation", "edge_detection"))
    config = policy()
    with Gradebook(url) as gb:
        for name in ("cross_correlation", "edge_detection"):
            for sub in gb.find_assignment(name).submissions:
                late.assign_penalties(gb, name, sub.student.id, late.penalty_plugin(config))
    (tmp_path / "course").mkdir()
    return out


def test_canvas_export_joins_the_roster(graded, tmp_path, capsys):
    dest = tmp_path / "canvas.csv"
    assert classgrade_main(["export", "canvas", "--out", str(graded), "--roster", str(ROSTER),
                            "--course", str(tmp_path / "course"), "-o", str(dest)]) == 0
    said = capsys.readouterr()
    assert dest.read_bytes().startswith(b"\xef\xbb\xbfStudent,ID,")          # UTF-8 with a BOM, as Canvas
    assert b"\r\n" not in dest.read_bytes()
    assert '"Doe, Jane",101,' in dest.read_text(encoding="utf-8-sig")        # quoted only where needed
    rows = _read(dest)
    header, points, students = rows[0], rows[1], rows[2:]
    assert header == IDENTITY + ["cross_correlation (48213)", "edge_detection"]   # keeps Canvas's id; a new column
    assert points == [POINTS_POSSIBLE, "", "", "", "", "6.00", "6.00"]
    by_id = {row[1]: dict(zip(header, row)) for row in students}
    assert [row[1] for row in students] == ["101", "102", "103", "104", "105", "106"]   # the roster's order
    assert by_id["101"]["Student"] == "Doe, Jane" and by_id["101"]["SIS User ID"] == "S0101"
    assert by_id["102"]["Student"] == "Müller, Jürgen" and by_id["102"]["Section"] == "Section B"
    assert by_id["103"]["Section"] == "Section A and Section B"
    assert by_id["105"]["Student"] == "Zhang, Wei (张伟)"
    assert by_id["106"]["Student"] == "Student, Test"
    cc, ed = "cross_correlation (48213)", "edge_detection"
    assert (by_id["101"][cc], by_id["101"][ed]) == ("5.50", "5.50")          # on time: no penalty
    assert (by_id["102"][cc], by_id["102"][ed]) == ("4.80", "4.80")          # 2 started days: 20 % off 6
    assert (by_id["103"][cc], by_id["103"][ed]) == ("", "2.00")              # missing: blank, not 0
    assert all(by_id[s][c] == "" for s in ("104", "105", "106") for c in (cc, ed))
    assert not any("Current Score" in h or h == "Notes" or "Homework 0" in h for h in header)
    # graded but not on the roster: named, not dropped silently; the missing, named (not the Test Student)
    err = said.err.splitlines()
    assert any("not on the roster" in line and "999" in line for line in err), said.err
    missing = next(line for line in err if line.startswith("classgrade: cross_correlation:"))
    assert "Ng, Mei-Ling" in missing and "O'Brien, Seán" in missing and "Test" not in missing
    assert "3 student(s)" in missing


def test_canvas_export_agrees_with_nbgrader_s_csv(graded, tmp_path):
    """The scores of the Canvas file are those of nbgrader's own grades.csv (score after its penalty)."""
    dest = tmp_path / "canvas.csv"
    assert classgrade_main(["export", "canvas", "--out", str(graded), "--roster", str(ROSTER),
                            "--course", str(tmp_path / "course"), "-o", str(dest),
                            "--assignment", "cross_correlation"]) == 0
    rows = _read(dest)
    canvas = {row[1]: row[5] for row in rows[2:]}
    assert rows[0][5:] == ["cross_correlation (48213)"]
    from classgrade.trusted.gradebook import export_csv
    export_csv(f"sqlite:///{graded / 'gradebook.db'}", tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv") as f:
        theirs = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == "cross_correlation"}
    for sid, row in theirs.items():
        if sid in canvas and row["timestamp"]:
            assert float(canvas[sid]) == pytest.approx(float(row["score"]))
    assert float(theirs["102"]["late_submission_penalty"]) == pytest.approx(1.2)


def test_nbgrader_export_runs_the_canvas_plugin(graded, tmp_path):
    """``nbgrader export --exporter=...CanvasExportPlugin`` writes the same file."""
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    assert classgrade_main(["export", "canvas", "--out", str(graded), "--roster", str(ROSTER),
                            "--course", str(tmp_path / "course"), "-o", str(ours)]) == 0
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--exporter=classgrade.trusted.export.CanvasExportPlugin",
         f"--CanvasExportPlugin.roster={ROSTER}", f"--to={theirs}",
         f"--CourseDirectory.db_url=sqlite:///{graded / 'gradebook.db'}"],
        cwd=tmp_path / "course", capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert theirs.read_bytes() == ours.read_bytes()
    assert "not on the roster" in proc.stderr


def test_canvas_export_keeps_canvas_s_points_and_delimiter(graded, tmp_path, capsys):
    """A title given for an assignment picks Canvas's column; points possible stay Canvas's
    (an import would change the assignment's), with a warning when they differ; a roster
    written with ';' gives a file with ';'."""
    semicolons = tmp_path / "roster.csv"
    rows = _read(ROSTER)
    with open(semicolons, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, delimiter=";", lineterminator="\n").writerows(rows)
    dest = tmp_path / "canvas.csv"
    assert classgrade_main(["export", "canvas", "--out", str(graded), "--roster", str(semicolons),
                            "--course", str(tmp_path / "course"), "-o", str(dest),
                            "--assignment", "edge_detection", "--title", "edge_detection=Quiz 1"]) == 0
    assert dest.read_text(encoding="utf-8-sig").startswith("Student;ID;SIS User ID;")
    out = _read(dest)
    assert out[0][5:] == ["Quiz 1 (48250)"] and out[1][5:] == ["5.00"]
    assert "'Quiz 1 (48250)' is worth 5.00 points, nbgrader's edge_detection 6" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["--roster", "no-such-roster.csv"], "no roster at no-such-roster.csv"),
    (["--roster", str(Path(__file__))], "is not a Canvas gradebook export"),
    (["--roster", str(ROSTER), "--assignment", "nope"], "the gradebook has no assignment 'nope'"),
    (["--roster", str(ROSTER), "--title", "oops"], "--title 'oops': write it as NAME=TITLE"),
])
def test_export_mistakes_end_in_one_line(graded, tmp_path, capsys, argv, says):
    code = classgrade_main(["export", "canvas", "--out", str(graded), "--course", str(tmp_path / "course"),
                            "-o", str(tmp_path / "x.csv")] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and says in err[0], err
    assert classgrade_main(["export", "canvas", "--out", str(tmp_path / "nowhere"), "--roster", str(ROSTER)]) == 2
    assert "no gradebook at" in capsys.readouterr().err


def test_the_roster_reads_canvas_s_rows():
    roster = Roster(ROSTER)
    assert roster.delimiter == "," and roster.header[:5] == IDENTITY
    assert [s["ID"] for s in roster.students] == ["101", "102", "103", "104", "105", "106"]   # no Manual Posting row
    assert roster.points["cross_correlation (48213)"] == "6.00"
    assert roster.column("cross_correlation") == "cross_correlation (48213)"
    for other in ("Current Score", "Notes", "Final Score", "Assignments Current Score", "Override Score"):
        assert roster.column(other) is None, other
    assert roster.column("Homework 0") == "Homework 0 (48190)"
    assert isinstance(CanvasExportPlugin(), CanvasExportPlugin)


# ---------------------------------------------------------------- one grading run

@pytest.mark.grading
def test_late_hand_ins_are_penalised_in_the_gradebook_grades_csv_and_canvas(course, tmp_path, capsys):  # noqa: F811
    """Three correct hand-ins of the tiny assignment (4 points), due 2026-12-01 23:59 UTC, 20 %
    a started day, at most 50 %: on time (101), 26 h late (102: 2 days, 40 %), 9 days late (104:
    capped at 50 %)."""
    from classgrade.trusted.run import grade_class
    root = tmp_path / "course"
    shutil.copytree(course, root)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f'\nc.ClassGrade.duedates = {{"tiny": "2026-12-01 23:59:00 UTC"}}\n'
                f'c.AssignLatePenalties.plugin_class = "{PLUGIN}"\n'
                'c.PercentPerDay.percent = 20\nc.PercentPerDay.cap = 50\n')
    submitted = tmp_path / "submitted"
    stamps = {"101": "2026-12-01 23:58:00.000000 UTC", "102": "2026-12-03 01:59:00 UTC",
              "104": "2026-12-10 23:59:00 UTC"}
    for sid, stamp in stamps.items():
        shutil.copytree(HOSTILE / "submitted" / "correct", submitted / sid)
        (submitted / sid / "tiny" / "timestamp.txt").write_text(stamp + "\n")
    out = tmp_path / "grading"
    result = grade_class(root, "tiny", submitted, out, workers=2, timeout=TIMEOUT, memory="2G",
                         wall=240, progress=False)
    expected = {"101": (0, None), "102": (26 * HOUR, 1.6), "104": (9 * DAY, 2.0)}
    assert {s: (r.seconds_late, r.notebooks["tiny"].late_penalty) for s, r in result.results.items()} == expected
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert gb.find_assignment("tiny").duedate == DUE
        for sid, (seconds, penalty) in expected.items():
            sub = gb.find_submission("tiny", sid)
            assert sub.total_seconds_late == seconds and sub.score == 4
            assert sub.late_submission_penalty == pytest.approx(penalty or 0)
    with open(out / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert {s: float(r["score"]) for s, r in rows.items()} == {"101": 4.0, "102": pytest.approx(2.4), "104": 2.0}
    assert rows["102"]["duedate"] == "2026-12-01 23:59:00" and rows["102"]["timestamp"] == "2026-12-03 01:59:00"
    report = (out / "report.md").read_text()
    assert "## Handed in late (2)" in report and "| 102 | 1 d 2 h | 1.6 |" in report and "| 104 | 9 d 0 h | 2 |" in report
    feedback = (out / "feedback" / "102" / "tiny" / "tiny.html").read_text()
    assert "Late submission penalty (Score: -1.6)" in feedback
    assert "Late submission penalty" not in (out / "feedback" / "101" / "tiny" / "tiny.html").read_text()
    capsys.readouterr()
    assert classgrade_main(["export", "canvas", "--out", str(out), "--roster", str(ROSTER),
                            "--course", str(root)]) == 0
    canvas = _read(out / "canvas.csv")
    assert canvas[0] == IDENTITY + ["tiny"] and canvas[1] == [POINTS_POSSIBLE, "", "", "", "", "4.00"]
    assert {row[1]: row[5] for row in canvas[2:]} == {"101": "4.00", "102": "2.40", "103": "", "104": "2.00",
                                                      "105": "", "106": ""}


def test_an_unreadable_timestamp_is_named_and_graded_as_on_time(tmp_path):
    from types import SimpleNamespace

    from classgrade.trusted import worker
    flags = []
    paths = SimpleNamespace(dest=tmp_path)
    (tmp_path / "timestamp.txt").write_text("2026-12-03 01:59:00 UTC\n")
    worker._check_timestamp(paths, flags)
    assert flags == [] and (tmp_path / "timestamp.txt").exists()
    (tmp_path / "timestamp.txt").write_text("late, sorry\n")
    worker._check_timestamp(paths, flags)
    assert not (tmp_path / "timestamp.txt").exists()
    assert flags == ["timestamp.txt is not a date ('late, sorry'): graded as handed in on time"]


def test_a_plugin_class_given_as_a_class_reaches_the_grading_processes():
    """``c.AssignLatePenalties.plugin_class = PercentPerDay`` (a class, not its name) survives the
    job's JSON config."""
    import json

    from classgrade.trusted import pipeline
    config = Config()
    config.AssignLatePenalties.plugin_class = late.PercentPerDay
    plain = json.loads(json.dumps(dict(config), default=pipeline._plain_value))
    assert plain["AssignLatePenalties"]["plugin_class"] == PLUGIN
    assert isinstance(late.penalty_plugin(plain).plugin_inst, late.PercentPerDay)


def test_the_config_s_due_date_goes_into_the_gradebook_else_the_gradebook_s_stays(tmp_path):
    url = _gradebook(tmp_path / "gb.db", {"101": (DAY, [1, 1])})
    assert gradebook.set_duedate(url, "cross_correlation", None) == DUE            # formgrader's stays
    later = DUE + datetime.timedelta(days=2)
    assert gradebook.set_duedate(url, "cross_correlation", later) == later       # the config's wins
    with Gradebook(url) as gb:
        assert gb.find_assignment("cross_correlation").duedate == later
        assert gb.find_submission("cross_correlation", "101").total_seconds_late == 0
