"""Checks before a run grades anything, and the lock on its output folder.

Runs as the grader, first thing in :func:`classgrade.trusted.run.grade_class`, before the
kernels start: the options' values, the submissions' path, the course folder and its
``nbgrader_config.py``, the assignment's source, and the output folder. Each problem ends
the run as an :class:`~.errors.InstructorError`: one line, saying what is wrong and what to
do. Standard library and traitlets only (the database's checks need SQLAlchemy and come
later, in :mod:`.database`).

:class:`FileLock` keeps two runs from writing one output folder (and its sqlite gradebook)
at once: the second refuses at once, naming the first (it does not wait).
"""
import fcntl
import os
import socket
import tempfile
import time
import zipfile
from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from .errors import BadValue, GradebookInUse, InstructorError

LOCK_NAME = ".classgrade.lock"  # in the output folder


def options(workers, timeout, wall):
    """The numeric options' values: each a positive number."""
    for name, value, kind in (("--workers", workers, int), ("--timeout", timeout, int), ("--wall", wall, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or (kind is int and value != int(value)):
            what = "a whole number" if kind is int else "a number"
            raise BadValue(f"{name} {value}: give {what} greater than 0 "
                                  "(see python -m classgrade grade --help)")


def submissions(path):
    """The submissions: a readable folder, or a zip file that is whole."""
    path = Path(path)
    if not path.exists():
        raise InstructorError(f"submissions {path}: no such file or folder; give nbgrader's submitted/ "
                              "folder or the LMS download (.zip or folder)")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise InstructorError(f"submissions {path}: not readable by you; change its permissions "
                              "(chmod -R u+rX) or run as its owner")
    if path.is_dir():
        try:
            next(os.scandir(path), None)
        except OSError as error:
            raise InstructorError(f"submissions {path}: cannot be read ({error.strerror}); check its "
                                  "permissions") from None
        return
    if not path.is_file():
        raise InstructorError(f"submissions {path}: neither a folder nor a zip file; give nbgrader's "
                              "submitted/ folder or the LMS download (.zip or folder)")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        raise InstructorError(f"submissions {path}: neither a folder nor a readable zip file ({error}); "
                              "download it again, or give nbgrader's submitted/ folder") from None
    if broken is not None:
        raise InstructorError(f"submissions {path}: the zip file is damaged ({broken} fails its checksum); "
                              "download it again")


def course(course_dir, assignment):
    """The course folder, its ``nbgrader_config.py`` and the assignment's source folder."""
    root = Path(course_dir).resolve()
    if not root.is_dir():
        raise InstructorError(f"course folder {root}: no such folder; give --course the folder that "
                              "holds nbgrader_config.py")
    config_file = root / "nbgrader_config.py"
    if not config_file.is_file():
        raise InstructorError(f"course folder {root} holds no nbgrader_config.py; give --course the "
                              "course's folder (default: the current folder)")
    try:
        config = PyFileConfigLoader(config_file.name, path=str(root)).load_config()
    except Exception as error:  # noqa: BLE001 - whatever the instructor's config file raises
        raise InstructorError(f"{config_file} cannot be read: {type(error).__name__}: "
                              f"{_one_line(error)}; correct it") from None
    source_name = config.CourseDirectory.get("source_directory", "source")
    source = root / source_name
    if not source.is_dir():
        raise InstructorError(f"the course's source folder {source} (CourseDirectory.source_directory in "
                              "nbgrader_config.py) does not exist; correct --course or the config")
    if not assignment or Path(assignment).name != assignment or not (source / assignment).is_dir():
        names = sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
        known = ", ".join(names) if names else "none"
        raise InstructorError(f"no assignment {assignment!r} in the course's source folder {source}; "
                              f"its assignments: {known}")
    if not any((source / assignment).glob("*.ipynb")):
        raise InstructorError(f"the source of assignment {assignment!r} ({source / assignment}) holds no "
                              "notebook; put the assignment's notebooks there")


def out_folder(out):
    """The output folder: created if missing; a folder this user can write."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InstructorError(f"--out {out}: a file, not a folder; give a folder (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise InstructorError(f"--out {out}: cannot write there ({error.strerror}); give a folder you can "
                              "write, or change its permissions") from None


class FileLock:
    """An exclusive ``flock`` on ``folder/.classgrade.lock`` for a whole run, or
    :class:`~.errors.GradebookInUse` at once (no waiting) if another run holds it.
    ``what`` names what the lock guards in the message, ``instead`` the other way out."""

    def __init__(self, path, what, instead="give another --out"):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip() or "another run"
            os.close(self.fd)
            raise GradebookInUse(f"{what} is in use by another classgrade run ({holder}); this run refuses "
                                 f"rather than waits: run again when that one has finished, or {instead}") from None
        os.ftruncate(self.fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n".encode(), 0)

    def close(self):
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)   # releases the lock; the file stays (removing it would race)
            self.fd = None


def check(settings):
    """Everything a run can check before its kernels start; the lock on its output folder
    (:class:`FileLock`), which the caller closes after the run."""
    options(settings.workers, settings.timeout, settings.wall)
    submissions(settings.submissions)
    course(settings.course, settings.assignment)
    out_folder(settings.out)
    return FileLock(Path(settings.out) / LOCK_NAME, f"the output folder {settings.out}")


def _one_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__
