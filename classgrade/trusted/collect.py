"""Collect the submissions: nbgrader's ``submitted/`` layout, or an LMS download.

Runs as the grader. An LMS download (a zip, or a folder of files) goes through
``nbgrader zip_collect`` with :data:`DEFAULT_REGEX` (Canvas names) or the instructor's.
"""
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_REGEX = r".*/(?P<student_id>[^/_]+)_(?:LATE_)?(?:[0-9]+_)*(?P<file_id>[^/]+?)(?:-[0-9]+)?\.ipynb$"


def collect(submissions, assignment, release_dir, tmp, regex=None):
    """student -> folder holding that student's files for ``assignment``.

    ``submissions`` is nbgrader's ``submitted/`` folder (``<student>/<assignment>/``),
    or an LMS download (a .zip, or a folder of files) given to
    ``nbgrader zip_collect`` with ``regex`` (``FileNameCollectorPlugin.named_regexp``).
    """
    submissions = Path(submissions)
    if submissions.is_dir() and not regex and any(
            (d / assignment).is_dir() for d in submissions.iterdir() if d.is_dir()):
        return {d.name: d / assignment for d in sorted(submissions.iterdir())
                if d.is_dir() and (d / assignment).is_dir()}
    root = Path(tmp) / "zip_collect"
    archive = root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True)
    if submissions.is_file():
        shutil.copy(submissions, archive / submissions.name)
    else:
        shutil.copytree(submissions, archive, dirs_exist_ok=True)
    shutil.copytree(release_dir, root / "release" / assignment)
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
         f"--CourseDirectory.root={root}", "--CourseDirectory.release_directory=release",
         f"--FileNameCollectorPlugin.named_regexp={regex or DEFAULT_REGEX}"],
        cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("nbgrader zip_collect failed:\n" + proc.stderr[-3000:])
    out = root / "submitted"
    return {d.name: d / assignment for d in sorted(out.iterdir())} if out.is_dir() else {}
