"""A notebook downloaded from the book runs anywhere: in a fresh virtual environment holding only what the
chapter's exercise box says to install (the course package's wheel, which brings PyTorch), each released
notebook with a correct solution passes its visible tests and its summary says so; without the package, its
first code cell says in one line what to install and how."""

import json
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

import convlab

pytestmark = pytest.mark.grading  # minutes: a virtual environment and PyTorch installed into it

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from exercise_links import build_wheel, wheel_name  # noqa: E402

ASSIGNMENTS = sorted(p.name for p in (ROOT / "exercises").iterdir() if (p / f"{p.name}.ipynb").is_file())
WHEEL = wheel_name(ROOT, ".")


def release_cells(assignment):
    return json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())["cells"]


def solved(assignment):
    """The released notebook with every function written as in the solution (a correct student's)."""
    notebook = json.loads((ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    source = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution") and c["cell_type"] == "code"}
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = re.sub(r"\n *### (BEGIN|END) SOLUTION", "", answers[grade_id])
    return notebook


def script(notebook):
    return "\n\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code") + "\n"


def test_the_version_is_the_same_everywhere():
    assert any(line.startswith("torch==") for line in (ROOT / "requirements.txt").read_text().splitlines())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert convlab.__version__ == version and WHEEL == f"convlab-{version}-py3-none-any.whl"
    major_minor = ".".join(version.split(".")[:2])
    for assignment in ASSIGNMENTS:
        first = next(c for c in release_cells(assignment) if c["cell_type"] == "code")
        text = "".join(first["source"])
        assert f"pip install {WHEEL}" in text and f'startswith("{major_minor}.")' in text, assignment


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A new virtual environment; what its Python printed running each release's first cell without the
    package; then the wheel installed as the exercise box says."""
    root = tmp_path_factory.mktemp("download")
    build_wheel(ROOT, root)
    venv.create(root / "venv", with_pip=True, clear=True)
    python = root / "venv" / "bin" / "python"
    before = {}
    for assignment in ASSIGNMENTS:
        first = next(c for c in release_cells(assignment) if c["cell_type"] == "code")
        before[assignment] = subprocess.run([str(python), "-c", "".join(first["source"])], cwd=root,
                                            capture_output=True, text=True, timeout=120)
    # What the box says, with torch held to the course's pinned build (never an unpinned torch in a test).
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("torch==")]
    (root / "pins.txt").write_text("\n".join(pins) + "\n")
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", WHEEL, "-c", "pins.txt"], cwd=root,
                               capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return root, python, before


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_without_the_package_the_first_cell_says_what_to_install(fresh, assignment):
    _, _, before = fresh
    done = before[assignment]
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: this notebook needs the course package convlab 0.1 (found none): download "
        f"{WHEEL} from the exercise box of the book's chapter, run pip install {WHEEL} (it installs PyTorch too), "
        "then restart the kernel")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_downloaded_notebook_passes_its_visible_tests_in_a_fresh_environment(fresh, assignment, tmp_path):
    _, python, _ = fresh
    where = subprocess.run([str(python), "-c", "import convlab; print(convlab.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path)
    assert "site-packages" in where.stdout, where  # the installed wheel, not this repository
    notebook = solved(assignment)
    (tmp_path / f"{assignment}.ipynb").write_text(json.dumps(notebook))
    done = subprocess.run([str(python), "-c", script(notebook)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout[done.stdout.index(f"{assignment}.ipynb: "):]
    assert "failed" not in summary and "Every visible test passes." in summary, summary
