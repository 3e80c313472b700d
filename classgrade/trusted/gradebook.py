"""nbgrader's gradebook and assignment, from the grader: generate, merge, export.

Runs as the grader. The assignment is generated once into a template gradebook (each grading
process grades into a copy) and into the real one; :func:`merge` writes each graded
submission into the real gradebook from the grader alone (one writer ever touches it), with its
timestamp and late penalties (:mod:`.late`); :func:`set_duedate` puts the assignment's due date
in both; :func:`export_csv` writes ``grades.csv`` with nbgrader's exporter.
"""
import functools
import shutil
from pathlib import Path

import nbgrader.api
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.dbutil import ALEMBIC_DIR
from nbgrader.plugins.export import CsvExportPlugin
from nbgrader.utils import parse_utc
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from .errors import InstructorError
from classgrade.protocol import CellGrade, NotebookGrades


def load_course_config(course):
    path = Path(course) / "nbgrader_config.py"
    if not path.exists():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def alembic_head_in_process():
    """nbgrader stamps a new gradebook with its alembic head revision, which
    ``nbgrader.api.get_alembic_version`` finds by running the ``alembic heads``
    command: a new interpreter, ~3 s CPU, paid for the template gradebook and
    again for a new real one. Read the same head from nbgrader's migration
    scripts in-process instead (once); fall back to nbgrader's own function."""
    original = getattr(nbgrader.api.get_alembic_version, "__wrapped__", nbgrader.api.get_alembic_version)

    @functools.lru_cache(maxsize=None)
    def get_alembic_version():
        try:
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", ALEMBIC_DIR)
            heads = ScriptDirectory.from_config(cfg).get_heads()
        except Exception:  # noqa: BLE001 - nbgrader's way still works
            heads = []
        return heads[0] if len(heads) == 1 else original()

    get_alembic_version.__wrapped__ = original
    nbgrader.api.get_alembic_version = get_alembic_version


def generate(course_config, source_dir, assignment, root, db_url, course_id=""):
    """nbgrader generate_assignment in a scratch course writing into ``db_url``."""
    root = Path(root)
    shutil.copytree(source_dir, root / "source" / assignment, dirs_exist_ok=True)
    config = Config(course_config)
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.source_directory = "source"
    config.CourseDirectory.release_directory = "release"
    config.CourseDirectory.db_url = db_url
    config.CourseDirectory.course_id = course_id
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        log = (result.get("log") or "") + (result.get("error") or "")
        refusal = [line for line in log.splitlines() if "Cannot add or remove cells" in line]
        if refusal:   # the instructor's to fix: one line
            why = refusal[0].split("Cannot add or remove cells", 1)[1].strip()[:300]
            raise InstructorError(f"the assignment's source changed its test cells, and nbgrader refuses "
                                  f"(Cannot add or remove cells {why}): the gradebook holds submissions graded "
                                  "against the old ones; regrade the whole class (--regrade-all) or grade into a new gradebook "
                                  "(another --out, or --db-url)")
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{log}")
    return root / "release" / assignment


def set_duedate(db_url, assignment, duedate=None, course_id=""):
    """Write ``duedate`` (naive UTC) into ``assignment`` of the gradebook ``db_url``, unless None;
    return the due date the gradebook holds now (None: none)."""
    with Gradebook(db_url, course_id) as gb:
        row = gb.find_assignment(assignment)
        if duedate is not None and row.duedate != duedate:
            row.duedate = duedate
            gb.db.commit()
        return row.duedate


def merge(gb, assignment, student, result):
    """Write one graded submission into the real gradebook ``gb`` (the only writer): its cells'
    scores and comments, its timestamp (that of the graded hand-in: none clears an earlier one)
    and each notebook's late penalty, as the grading process computed them on the final scores.

    One :class:`nbgrader.api.Gradebook` serves the whole run: a new one per submission
    cost ~0.1 CPU s (its engine, schema checks, and SQL compiled again without a cache).
    """
    gb.update_or_create_student(student)
    submission = gb.update_or_create_submission(assignment, student)
    submission.timestamp = parse_utc(result.timestamp) if result.timestamp else None
    for nb_name, nb in result.notebooks.items():
        for gid, cell in nb.cells.items():
            grade = gb.find_grade(gid, nb_name, assignment, student)
            grade.auto_score = cell.auto_score
            grade.needs_manual_grade = cell.needs_manual_grade
        for cid, text in nb.comments.items():
            comment = gb.find_comment(cid, nb_name, assignment, student)
            comment.auto_comment = text
        row = gb.find_submission_notebook(nb_name, assignment, student)
        row.late_submission_penalty = nb.late_penalty
        if result.flags:
            row.flagged = True
    gb.db.commit()


def export_csv(db_url, path, course_id=""):
    plugin = CsvExportPlugin()
    plugin.to = str(path)
    with Gradebook(db_url, course_id) as gb:
        plugin.export(gb)


def snapshot(db_url, assignment, course_id=""):
    """What the gradebook holds of ``assignment``'s source, to compare with a fresh generation:
    notebook -> ``{"points": {grade id: (points, cell type)}, "checksums": {cell name: checksum}}``;
    ``None`` if the gradebook has no such assignment."""
    with Gradebook(db_url, course_id) as gb:
        try:
            found = gb.find_assignment(assignment)
        except nbgrader.api.MissingEntry:
            return None
        out = {}
        for nb in found.notebooks:
            points = {c.name: (float(c.max_score or 0), c.cell_type) for c in nb.grade_cells}
            points.update({c.name: (float(c.max_score or 0), c.cell_type) for c in nb.task_cells})
            out[nb.name] = dict(points=points, checksums={c.name: c.checksum for c in nb.source_cells})
        return out


def _kind(gid, cell_type, tests):
    return f"test '{gid}'" if gid in tests else f"{'written answer' if cell_type == 'markdown' else 'cell'} '{gid}'"


def changes(stored, fresh):
    """One line per difference between the gradebook's cells (:func:`snapshot`) and a fresh
    generation's, most telling first: points, then added or removed cells, then edited ones."""
    points, added, edited = [], [], []
    for name in sorted(set(stored) | set(fresh)):
        if name not in fresh:
            added.append(f"notebook '{name}' removed from the source")
            continue
        if name not in stored:
            added.append(f"notebook '{name}' added to the source")
            continue
        old, new = stored[name], fresh[name]
        tests = {g for g, (_, kind) in {**old["points"], **new["points"]}.items() if kind == "code"}
        where = f" (in {name})" if len(fresh) > 1 else ""
        for gid in sorted(set(old["points"]) | set(new["points"])):
            if gid in old["points"] and gid in new["points"] and old["points"][gid][0] != new["points"][gid][0]:
                points.append(f"{_kind(gid, new['points'][gid][1], tests)}{where} now "
                              f"{new['points'][gid][0]:g} points, {old['points'][gid][0]:g} in the gradebook")
        for cell in sorted(set(old["checksums"]) | set(new["checksums"])):
            kind = _kind(cell, (new["points"].get(cell) or old["points"].get(cell) or (0, "code"))[1], tests)
            if cell not in old["checksums"]:
                added.append(f"{kind}{where} added to the source")
            elif cell not in new["checksums"]:
                added.append(f"{kind}{where} removed from the source")
            elif old["checksums"][cell] != new["checksums"][cell] and not any(
                    cell in line.split("'")[1:2] for line in points):
                edited.append(f"{kind}{where} changed in the source")
    return points + added + edited


def structural(lines):
    """Whether ``lines`` (of :func:`changes`) add or remove cells or notebooks, which nbgrader
    refuses while the gradebook holds submissions of the assignment."""
    return any(line.endswith(("added to the source", "removed from the source")) for line in lines)


def submitted_students(db_url, assignment, course_id=""):
    """The students with a submission of ``assignment`` in the gradebook, sorted."""
    with Gradebook(db_url, course_id) as gb:
        try:
            return sorted(s.student.id for s in gb.assignment_submissions(assignment))
        except nbgrader.api.MissingEntry:
            return []


def remove_submissions(db_url, assignment, students, course_id=""):
    """Remove ``students``' submissions of ``assignment`` (their grades and comments)."""
    with Gradebook(db_url, course_id) as gb:
        for student in students:
            gb.remove_submission(assignment, student)


def submissions(db_url, assignment, course_id=""):
    """student -> notebook name -> :class:`~classgrade.protocol.NotebookGrades` of every
    submission of ``assignment`` in the gradebook (the class as it stands)."""
    out = {}
    with Gradebook(db_url, course_id) as gb:
        try:
            found = gb.assignment_submissions(assignment)
        except nbgrader.api.MissingEntry:
            return out
        for sub in found:
            out[sub.student.id] = {nb.name: NotebookGrades(
                cells={g.name: CellGrade(max_score=g.max_score, auto_score=g.auto_score,
                                         manual_score=g.manual_score, score=g.score,
                                         needs_manual_grade=bool(g.needs_manual_grade),
                                         cell_type=g.cell.cell_type) for g in nb.grades},
                comments={c.name: c.auto_comment for c in nb.comments if c.auto_comment},
                late_penalty=nb.late_submission_penalty)
                for nb in sub.notebooks}
    return out
