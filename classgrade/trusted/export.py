"""``python -m classgrade export LMS``: the gradebook's scores in an LMS's import format.

Runs as the grader, on the gradebook a run wrote (``grading/gradebook.db``, or ``--db-url``).
Each LMS is an nbgrader export plugin (:class:`nbgrader.plugins.export.ExportPlugin`), in
:data:`EXPORTERS`, so that nbgrader runs it too::

    python -m classgrade export canvas --out grading/ --roster roster.csv [-o canvas.csv]
    nbgrader export --exporter=classgrade.trusted.export.CanvasExportPlugin \\
        --CanvasExportPlugin.roster=roster.csv --to=canvas.csv

The scores are nbgrader's after its late penalties: ``max(0, score - late_submission_penalty)``,
as in its ``grades.csv``.

**Canvas** (:class:`CanvasExportPlugin`) joins on the roster, the gradebook CSV that Canvas
exports (Grades > Export), whose ``ID`` column (the Canvas user id) is the nbgrader student id;
it writes a file for Grades > Import in the form Canvas's own exporter writes (``lib/gradebook_exporter.rb``):
``Student, ID, SIS User ID, SIS Login ID, Section`` from the roster, then one
``Title (assignment id)`` column per assignment, a ``    Points Possible`` row, scores with two
decimals, quoted only where needed, UTF-8 with a byte order mark, the roster's delimiter (``,``
or ``;``). An assignment keeps the roster's column (and so its Canvas id and points possible)
when one has its title (the nbgrader name, or ``CanvasExportPlugin.titles``); otherwise it is a
new column, which Canvas creates as a new assignment. A student of the roster with no
submission gets a blank cell, not 0 (Canvas leaves a blank ungraded: its current score ignores
it, its final score counts it as 0); students graded but not on the roster are named in a
warning. Read-only columns (``Current Score`` and the like), custom columns, other
assignments and the ``Manual Posting`` row are left out; the importer ignores what is absent.
"""
import argparse
import csv
import io
import logging
import re
import sys
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins.export import ExportPlugin
from traitlets import Dict, Unicode

from . import gradebook
from .errors import InstructorError

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"      # as Canvas writes it (the importer looks for "Points Possible")
TITLE_WITH_ID = re.compile(r"^(?P<title>.*) \((?P<id>\d+)\)$")
# the columns Canvas's importer never reads as assignments (GradebookImporter's NON_ASSIGNMENT_COLUMN_HEADERS)
NOT_ASSIGNMENT = re.compile("Current Score|Current Points|Current Grade|Final Score|Final Points|Final Grade|"
                            "Override Score|Override Grade|Override Status")
TEST_STUDENT = {"Student, Test", "Test Student"}   # Canvas's student view: its row is last


def score_of(gb, assignment, student):
    """nbgrader's score of a submission after its late penalty (as in its CSV); None: no submission."""
    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    return max(0.0, submission.score - (submission.late_submission_penalty or 0.0))


def number(value):
    """A number as Canvas's exporter writes it: two decimals, no thousands separator."""
    return f"{value:.2f}"


class Roster:
    """A gradebook CSV as Canvas exports it: its header, points possible, and student rows."""

    def __init__(self, path):
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InstructorError(f"no roster at {path}: export the gradebook from Canvas "
                                  "(Grades > Export > Export Entire Gradebook) and give it with --roster") from None
        except UnicodeDecodeError:
            raise InstructorError(f"the roster {path} is not UTF-8: give the CSV file as Canvas exports it") from None
        first = text.split("\n", 1)[0]
        # Canvas writes ';' when the user's settings ask for it, and its importer reads both
        self.delimiter = ";" if first.count(";") > first.count(",") else ","
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter))
        if not rows or len(rows[0]) < 3 or "Student" not in rows[0][0] or "ID" not in rows[0][1]:
            raise InstructorError(f"{path} is not a Canvas gradebook export: its first columns must be "
                                  "'Student, ID, ...' (Grades > Export in Canvas)")
        self.header = rows[0]
        self.index = {name: i for i, name in enumerate(self.header)}
        if "Section" not in self.index:
            raise InstructorError(f"{path} has no 'Section' column: give the gradebook CSV as Canvas exports it")
        self.points, self.students = {}, []
        for row in rows[1:]:
            row = row + [""] * (len(self.header) - len(row))
            if "Points Possible" in row[0]:
                self.points = dict(zip(self.header, row))
            elif all(re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", cell, re.I) for cell in row):
                continue   # blank, or the row of assignments posted manually
            else:
                self.students.append(dict(zip(self.header, row)))

    def column(self, title):
        """The roster's header of the assignment titled ``title`` ("Title (id)", or "Title" over a
        number of points), or None; never a total, override or custom column."""
        for name in self.header[self.index["Section"] + 1:]:
            if NOT_ASSIGNMENT.search(name):
                continue
            match = TITLE_WITH_ID.match(name)
            if (match and match["title"] == title) or (name == title and _float(self.points.get(name, "")) is not None):
                return name
        return None


class CanvasExportPlugin(ExportPlugin):
    """nbgrader's scores as a Canvas gradebook import (see the module's docstring)."""

    roster = Unicode("", help="the gradebook CSV exported from Canvas (its ID column: the nbgrader "
                              "student ids)").tag(config=True)
    titles = Dict(value_trait=Unicode(), help="nbgrader assignment -> the title of its Canvas "
                                              "assignment, when they differ").tag(config=True)

    def export(self, gb):
        if not self.roster:
            raise InstructorError("the Canvas export needs the roster: --roster (CanvasExportPlugin.roster), "
                                  "the gradebook CSV exported from Canvas")
        roster = Roster(self.roster)
        dest = Path(self.to or "canvas.csv")
        self.warnings = []
        columns, points = self._columns(gb, roster)
        rows = self._rows(gb, roster, columns, dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "w", encoding="utf-8-sig", newline="") as f:
            out = csv.writer(f, delimiter=roster.delimiter, lineterminator="\n")
            out.writerow(IDENTITY + [header for _, header in columns])
            out.writerow([POINTS_POSSIBLE] + [""] * (len(IDENTITY) - 1) + points)
            out.writerows(rows)
        for line in self.warnings:
            self.log.warning(line)
        self.log.info("Wrote %s: %d students, %d assignment column(s)", dest, len(rows), len(columns))

    def _columns(self, gb, roster):
        """``([(assignment, its header)], [its points possible])``: the roster's column, or a new one."""
        known = [a.name for a in gb.assignments]
        names = [str(a) for a in self.assignment] or known
        columns, points = [], []
        for name in names:
            if name not in known:
                raise InstructorError(f"the gradebook has no assignment {name!r} (it has: "
                                      f"{', '.join(known) or 'none'})")
            maximum = gb.find_assignment(name).max_score
            title = self.titles.get(name, name)
            header = roster.column(title)
            if header is None:
                header, possible = title, number(maximum)
            else:
                possible = roster.points.get(header, "") or number(maximum)
                if _float(possible) != maximum:
                    self.warnings.append(f"Canvas's '{header}' is worth {possible} points, nbgrader's {name} "
                                         f"{maximum:g}: the scores are nbgrader's points")
            columns.append((name, header))
            points.append(possible)
        return columns, points

    def _rows(self, gb, roster, columns, dest):
        """The roster's students with their scores; the missing and the unknown in the warnings."""
        wanted = {str(s) for s in self.student}
        self.missing = {name: [] for name, _ in columns}
        on_roster, rows = set(), []
        for student in roster.students:
            sid = student.get("ID", "").strip()
            on_roster.add(sid)
            if wanted and sid not in wanted:
                continue
            scores = [score_of(gb, name, sid) if sid else None for name, _ in columns]
            rows.append([student.get(c, "") for c in IDENTITY] + ["" if s is None else number(s) for s in scores])
            if student.get("Student") not in TEST_STUDENT:
                for (name, _), score in zip(columns, scores):
                    if score is None:
                        self.missing[name].append(student.get("Student") or sid or "(no ID)")
        graded = {sub.student.id for name, _ in columns for sub in gb.find_assignment(name).submissions}
        self.unknown = sorted(graded - on_roster - ((graded - wanted) if wanted else set()))
        if self.unknown:
            self.warnings.append(
                f"{len(self.unknown)} graded student(s) not on the roster, left out of {dest}: "
                f"{', '.join(self.unknown)} (the nbgrader student id must be the roster's ID, the Canvas "
                "user id: are they enrolled in the Canvas course?)")
        for name, students in self.missing.items():
            if students:
                self.warnings.append(f"{name}: {len(students)} student(s) of the roster handed nothing in "
                                     f"(blank cells): {', '.join(students)}")
        return rows


def _float(text):
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


# LMS -> its export plugin
EXPORTERS = {"canvas": CanvasExportPlugin}


def parser():
    parser = argparse.ArgumentParser(
        prog="python -m classgrade export",
        description="Write the gradebook's scores (after late penalties) in an LMS's import format.")
    parser.add_argument("lms", choices=sorted(EXPORTERS), help="the LMS")
    parser.add_argument("--out", default="grading", help="the grading folder (default: grading/)")
    parser.add_argument("--db-url", default=None,
                        help="gradebook URL, as given to grade (default: sqlite in --out)")
    parser.add_argument("--course", default=".", help="course root with nbgrader_config.py (default: .)")
    parser.add_argument("--roster", required=True, help="the LMS's gradebook export (Canvas: Grades > Export)")
    parser.add_argument("--assignment", action="append", default=[], metavar="NAME",
                        help="export this assignment (again for more; default: all in the gradebook)")
    parser.add_argument("--title", action="append", default=[], metavar="NAME=TITLE",
                        help="the LMS's title of assignment NAME, when it differs")
    parser.add_argument("-o", "--output", default=None, help="the file to write (default: OUT/<lms>.csv)")
    return parser


def main(argv):
    args = parser().parse_args(argv)
    out = Path(args.out)
    db_url = args.db_url or f"sqlite:///{(out / 'gradebook.db').resolve()}"
    if not args.db_url and not (out / "gradebook.db").exists():
        raise InstructorError(f"no gradebook at {out / 'gradebook.db'}: give the grading folder (--out) "
                              "or the gradebook's --db-url")
    titles = {}
    for pair in args.title:
        name, sep, title = pair.partition("=")
        if not sep or not name or not title:
            raise InstructorError(f"--title {pair!r}: write it as NAME=TITLE")
        titles[name] = title
    config = gradebook.load_course_config(args.course)
    course_id = config.CourseDirectory.get("course_id", "") or ("" if db_url.startswith("sqlite") else "default_course")
    quiet = logging.getLogger("classgrade.export")   # main prints the warnings itself, once
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    plugin = EXPORTERS[args.lms](config=config, log=quiet)
    plugin.roster = args.roster
    plugin.titles = {**plugin.titles, **titles}
    plugin.to = args.output or str(out / f"{args.lms}.csv")
    plugin.assignment = args.assignment
    with Gradebook(db_url, course_id) as gb:
        plugin.export(gb)
    for line in plugin.warnings:
        print(f"classgrade: {line}", file=sys.stderr)
    print(f"wrote {plugin.to}")
    return 0
