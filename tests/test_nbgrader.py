"""The grading round trip: nbgrader on a temporary copy of the course, with a real gradebook.

For every assignment in solutions/: generate the release and compare it with the
committed exercises/; validate the solutions (all tests pass) and the releases (no
test passes); hand in, as students, the solution (full marks on every autograded
cell), the untouched release (zero) and every notebook of the corpus
tests/submissions/<assignment>/ (the score and failing cells in its expected.json, and
words its messages must contain); and the Chinese release exercises/zh_CN/<a>/<a>.ipynb,
once with the solution's answers and once blank, under the assignment's name (the same
scores as the English notebooks, by nbgrader and by the class grader);
autograde, generate feedback and export grades, as an instructor would.
"""

import concurrent.futures
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.grading

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "submissions"
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file())
# Students of every assignment besides the corpus: the instructor's solution and the untouched release;
# and the Chinese release (exercises/zh_CN/), answered as the solution answers, and untouched.
SOLUTION, UNTOUCHED, AGAIN = "solution", "untouched", "again"
ZH_SOLUTION, ZH_UNTOUCHED = "zh_solution", "zh_untouched"
TRANSLATIONS = ("zh_CN",)


def expected_cases(assignment):
    path = CORPUS / assignment / "expected.json"
    return json.loads(path.read_text()) if path.exists() else {}


CASES = [(a, case) for a in ASSIGNMENTS for case in sorted(expected_cases(a))]
# The assignment whose first corpus case is handed in twice (once is enough to show determinism).
TWICE = next((a for a in ASSIGNMENTS if expected_cases(a)), None)


def nbgrader(*args, cwd):
    """Run an nbgrader command with this environment's bin/ first on PATH (for alembic and the kernel)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("JUPYTER_CONFIG_DIR", None)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=1800,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{output}"
    return output


def notebook_name(assignment):
    return f"{assignment}.ipynb"


def autograded_points(notebook):
    """Points of the code grade cells (written answers are graded by hand)."""
    return sum(
        cell.metadata["nbgrader"]["points"]
        for cell in notebook.cells
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
    )


def answered(release, solution):
    """The release ``release`` (a notebook) with each answer cell (nbgrader ``solution``) replaced
    by the solution's cell of the same grade id: what a student who answers as the solution
    hands in."""
    answers = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in solution.cells
               if cell.metadata.get("nbgrader", {}).get("solution")}
    notebook = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
    return notebook


def build_course(root, assignment):
    """Release, hand in, autograde, give feedback and export one assignment in the course ``root``."""
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "solutions" / assignment, root / "solutions" / assignment)
    nbgrader("generate_assignment", assignment, "--force", cwd=root)
    name = notebook_name(assignment)
    # Validation runs here, in the assignment's own thread, and the tests read what it printed.
    (root / "validate.txt").write_text(nbgrader("validate", str(root / "solutions" / assignment / name), cwd=root))
    (root / "validate-invert.txt").write_text(
        nbgrader("validate", "--invert", str(root / "exercises" / assignment / name), cwd=root)
    )
    submissions = {
        SOLUTION: root / "solutions" / assignment / name,
        UNTOUCHED: root / "exercises" / assignment / name,
    }
    cases = sorted(expected_cases(assignment))
    assert not {SOLUTION, UNTOUCHED, AGAIN} & set(cases), "corpus case names clash with the fixed students"
    submissions.update({case: CORPUS / assignment / f"{case}.ipynb" for case in cases})
    if assignment == TWICE:  # the same notebook handed in twice must get the same grade and feedback
        submissions[AGAIN] = CORPUS / assignment / f"{cases[0]}.ipynb"
    for student, source in submissions.items():
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        shutil.copy(source, folder / name)
    chinese = ROOT / "exercises" / TRANSLATIONS[0] / assignment / name
    solution = nbformat.read(root / "solutions" / assignment / name, as_version=4)
    for student in (ZH_SOLUTION, ZH_UNTOUCHED):  # under the assignment's own name, as students hand it in
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        if student == ZH_UNTOUCHED:
            shutil.copy(chinese, folder / name)
        else:
            nbformat.write(answered(nbformat.read(chinese, as_version=4), solution), folder / name)
    nbgrader("autograde", assignment, cwd=root)
    nbgrader("generate_feedback", assignment, cwd=root)
    nbgrader("export", cwd=root)
    return root


@pytest.fixture(scope="session")
def course(request, tmp_path_factory):
    """``course(assignment)``: the folder of a temporary course where that assignment went through
    the whole round trip. On first use, every assignment that the selected tests need is built,
    one course per assignment, as many at a time as there are CPUs (``-k`` on one assignment
    builds only that one)."""
    needed = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if getattr(item, "module", None) is not None and item.module.__name__ == __name__ and "assignment" in params:
            needed.add(params["assignment"])
    built = {}  # assignment -> course folder, or the exception its round trip raised

    def build(assignment):
        try:
            return build_course(tmp_path_factory.mktemp(assignment), assignment)
        except Exception as error:  # reported by the tests of that assignment only
            return error

    def get(assignment):
        if assignment not in built:
            todo = sorted(needed - set(built) | {assignment})
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:
                built.update(zip(todo, pool.map(build, todo)))
        if isinstance(built[assignment], Exception):
            raise built[assignment]
        return built[assignment]

    return get


def scores(root, assignment, student):
    """``(auto, manual)``: {grade_id: (score, max_score)} of the code grade cells, and
    {grade_id: needs manual grade} of the written answers."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        grades = {
            grade.name: (grade.score, grade.max_score, grade.cell_type, grade.needs_manual_grade)
            for notebook in submission.notebooks
            for grade in notebook.grades
        }
    auto = {name: (s, m) for name, (s, m, kind, _) in grades.items() if kind == "code"}
    manual = {name: needs for name, (_, _, kind, needs) in grades.items() if kind == "markdown"}
    return auto, manual


def errors(notebook_path):
    """{grade_id: error text} of the grade cells that raised, in an autograded notebook."""
    notebook = nbformat.read(notebook_path, as_version=4)
    found = {}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found[grade_id] = output["evalue"]
    return found


def outputs(notebook_path):
    notebook = nbformat.read(notebook_path, as_version=4)
    return [
        [{k: v for k, v in out.items() if k != "execution_count"} for out in cell.get("outputs", [])]
        for cell in notebook.cells
    ]


# --- authoring: the committed notebooks --------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_hold_one_clean_notebook(assignment):
    """Nothing but the notebook is released from solutions/<a>/, and it is committed without outputs."""
    folder = ROOT / "solutions" / assignment
    assert sorted(p.name for p in folder.iterdir() if p.name != ".ipynb_checkpoints") == [notebook_name(assignment)]
    notebook = nbformat.read(folder / notebook_name(assignment), as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {cell.id} has outputs"
    grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells if "nbgrader" in c.metadata]
    assert len(grade_ids) == len(set(grade_ids)), "grade ids must be unique"


def test_every_release_has_a_source():
    """exercises/ holds a release per assignment, and the translations (exercises/zh_CN/<a>/)."""
    assert sorted(p.name for p in (ROOT / "exercises").iterdir()
                  if p.is_dir() and p.name not in TRANSLATIONS) == ASSIGNMENTS
    for language in TRANSLATIONS:
        assert sorted(p.name for p in (ROOT / "exercises" / language).iterdir()) == ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_exactly_what_nbgrader_generates(course, assignment):
    generated, committed = course(assignment) / "exercises" / assignment, ROOT / "exercises" / assignment
    files = sorted(p.relative_to(generated) for p in generated.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    for path in files:
        assert (generated / path).read_bytes() == (committed / path).read_bytes(), (
            f"exercises/{assignment}/{path} is out of date: run `make exercises` and commit the result"
        )


def test_answered_fills_every_answer_cell_and_nothing_else():
    solution = nbformat.read(ROOT / "solutions" / ASSIGNMENTS[0] / notebook_name(ASSIGNMENTS[0]), as_version=4)
    release = nbformat.read(ROOT / "exercises" / ASSIGNMENTS[0] / notebook_name(ASSIGNMENTS[0]), as_version=4)
    filled = answered(release, solution)
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in solution.cells if "nbgrader" in c.metadata}
    changed = [c for c, r in zip(filled.cells, release.cells) if c.source != r.source]
    assert changed and all(c.metadata["nbgrader"]["solution"] for c in changed)
    assert all(c.source == by_id[c.metadata["nbgrader"]["grade_id"]].source for c in changed)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_passes_nbgrader_validate(course, assignment):
    output = (course(assignment) / "validate.txt").read_text()
    assert "Success! Your notebook passes all the tests." in output, output


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_fails_nbgrader_validate_invert(course, assignment):
    output = (course(assignment) / "validate-invert.txt").read_text()
    assert "Success! The notebook does not pass any tests." in output, output


# --- autograde ----------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_handed_in_gets_full_marks(course, assignment):
    auto, manual = scores(course(assignment), assignment, SOLUTION)
    source = nbformat.read(ROOT / "solutions" / assignment / notebook_name(assignment), as_version=4)
    assert auto and all(score == maximum for score, maximum in auto.values()), auto
    assert sum(maximum for _, maximum in auto.values()) == autograded_points(source)
    assert all(manual.values()), f"written answers must wait for manual grading: {manual}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_gets_zero(course, assignment):
    auto, manual = scores(course(assignment), assignment, UNTOUCHED)
    assert auto and all(score == 0 for score, _ in auto.values()), auto
    assert not any(manual.values()), "unanswered written answers need no manual grading"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_chinese_notebook_scores_as_the_english_one(course, assignment):
    """The Chinese release, answered as the solution answers: every autograded point, as the
    solution; untouched: zero everywhere and nothing to grade by hand, as the English release."""
    root = course(assignment)
    assert scores(root, assignment, ZH_SOLUTION) == scores(root, assignment, SOLUTION)
    assert scores(root, assignment, ZH_UNTOUCHED) == scores(root, assignment, UNTOUCHED)
    auto, _ = scores(root, assignment, ZH_SOLUTION)
    assert auto and all(score == maximum for score, maximum in auto.values()), auto


@pytest.mark.parametrize("assignment", ASSIGNMENTS[:1])
def test_the_class_grader_scores_a_chinese_notebook_as_the_english_one(course, assignment, tmp_path):
    """One run of ``python -m classgrade grade`` (sandboxed) over the English and Chinese hand-ins."""
    from classgrade.protocol import Result
    from classgrade.trusted import report

    root = course(assignment)
    submitted = tmp_path / "submitted"
    students = (SOLUTION, UNTOUCHED, ZH_SOLUTION, ZH_UNTOUCHED)
    for student in students:
        shutil.copytree(root / "submitted" / student, submitted / student)
    done = subprocess.run([sys.executable, "-m", "classgrade", "grade", assignment, str(submitted), "--course",
                           str(root), "--out", str(tmp_path / "out"), "--workers", "2", "--no-progress",
                           "--no-feedback"], cwd=root, capture_output=True, text=True, timeout=1800,
                          env=dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"))
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    totals = report.totals({s: Result.from_dict(results[s]) for s in students})
    maximum = totals[SOLUTION][1]
    assert maximum > 0 and totals[SOLUTION] == totals[ZH_SOLUTION] == (maximum, maximum), totals
    assert totals[UNTOUCHED] == totals[ZH_UNTOUCHED] == (0, maximum), totals


@pytest.mark.parametrize("assignment, case", CASES)
def test_corpus_submission_scores_what_it_does_right(course, assignment, case):
    expected = expected_cases(assignment)[case]
    root = course(assignment)
    auto, _ = scores(root, assignment, case)
    failing = sorted(name for name, (score, maximum) in auto.items() if score < maximum)
    assert failing == sorted(expected["failing"])
    assert sum(score for score, _ in auto.values()) == pytest.approx(expected["score"])
    # The feedback names each failing part and says what went wrong.
    feedback = (root / "feedback" / case / assignment / notebook_name(assignment).replace(".ipynb", ".html"))
    page = feedback.read_text()
    raised = errors(root / "autograded" / case / assignment / notebook_name(assignment))
    for grade_id in expected["failing"]:
        assert f'id="{grade_id}"' in page or f"#{grade_id}" in page
        assert grade_id in raised, f"{grade_id} lost points without an error message"
        message = raised[grade_id].splitlines()[0][:100]
        assert html.escape(message, quote=False) in page or html.escape(message) in page, message
    # Where the corpus says what the message must point at (a hint for a common mistake).
    for grade_id, text in expected.get("messages", {}).items():
        assert text in raised.get(grade_id, ""), f"{grade_id}: {text!r} not in {raised.get(grade_id)!r}"


@pytest.mark.skipif(TWICE is None, reason="no corpus of wrong submissions yet")
def test_grading_twice_gives_the_same_grade_and_feedback(course):
    assignment = TWICE
    root, first = course(assignment), sorted(expected_cases(assignment))[0]
    assert scores(root, assignment, AGAIN) == scores(root, assignment, first)
    name = notebook_name(assignment)
    assert outputs(root / "autograded" / AGAIN / assignment / name) == outputs(
        root / "autograded" / first / assignment / name
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_and_export_cover_every_submission(course, assignment):
    root = course(assignment)
    submitted = sorted(p.relative_to(root / "submitted") for p in (root / "submitted").glob("*/*"))
    for student_assignment in submitted:
        student, assignment = student_assignment.parts
        html_path = root / "feedback" / student / assignment / notebook_name(assignment).replace(".ipynb", ".html")
        assert html_path.stat().st_size > 0
    rows = (root / "grades.csv").read_text().splitlines()
    header = rows[0].split(",")
    exported = {
        (row["student_id"], row["assignment"])
        for row in (dict(zip(header, line.split(","))) for line in rows[1:])
    }
    assert {(p.parts[0], p.parts[1]) for p in submitted} <= exported
