"""The students' feedback: nbgrader's ``generate_feedback``, with what it leaves unsaid said.

Runs in a grading process, as the grader. The feedback is rendered with a template of ours,
``templates/feedback`` (it shadows nbgrader's template of that name, which nbgrader's API insists on) (nbgrader's ``feedback`` template, changed where marked
"classgrade"): it shows, at the top, the notes to the student (:class:`FeedbackGrades` puts
:attr:`~classgrade.protocol.Job.notices`, how the hand-in was collected, and
:attr:`~classgrade.protocol.Result.explained`, why a notebook was not graded as handed in, into
the notebook's metadata), and "not graded yet" for a written answer awaiting grading by hand
instead of "Score: 0.0 / 2.0". :func:`scrub_notebook` takes the instructor's paths (the course
folder, the grader's temporary folders, the Python installation, home folders) out of the
autograded notebook's outputs, :class:`ScrubPaths` out of every output the feedback shows (if it
is generated from another notebook), and :func:`scrub_file` out of the written HTML.
"""
import importlib.util
import os
import pwd
import re
import sys
import sysconfig
import tempfile
from pathlib import Path

import nbformat
import nbgrader.converters
from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import GetGrades
from traitlets import List, Unicode

TEMPLATE_NAME = "feedback"   # the name nbgrader's API insists on: ours comes first in the search path
TEMPLATES = Path(__file__).resolve().parent / "templates"
_NBGRADER = Path(nbgrader.converters.__file__).resolve().parent.parent / "server_extensions" / "formgrader"
# the real home folder, read before a grading process points $HOME at its scratch folder
_HOME = os.path.expanduser("~")


def configure(config):
    """Point ``config``'s HTML exporter at our feedback template (and nbgrader's CSS)."""
    config.HTMLExporter.template_name = TEMPLATE_NAME
    config.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(_NBGRADER / "templates")]
    config.HTMLExporter.extra_template_paths = [str(_NBGRADER / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    return config


class FeedbackGrades(GetGrades):
    """nbgrader's ``GetGrades``, and: each graded cell's ``needs_manual_grade``; the notes to
    the student (``notes``) in ``nb.metadata.classgrade.notes``, for the template."""

    notes = List(Unicode(), default_value=[]).tag(config=True)

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        nb.metadata["classgrade"] = {"notes": list(self.notes)}
        return nb, resources

    def _get_score(self, cell, resources):
        grade = self.gradebook.find_grade(cell.metadata.nbgrader["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        cell.metadata.nbgrader["score"] = grade.score
        cell.metadata.nbgrader["points"] = grade.max_score
        cell.metadata.nbgrader["needs_manual_grade"] = bool(grade.needs_manual_grade)


def _prefixes(paths):
    """``[(prefix, replacement)]``, longest first, of the folders no student may see."""
    pairs = []
    for key in ("purelib", "platlib"):
        pairs.append((sysconfig.get_paths()[key], ""))          # site-packages/x.py -> x.py
    spec = importlib.util.find_spec("convlab")
    if spec and spec.origin:
        pairs.append((str(Path(spec.origin).resolve().parent.parent), ""))   # <repo>/convlab/x.py -> convlab/x.py
    if sys.prefix != sys.base_prefix:     # a virtual environment's folder (the system's Python is no secret)
        pairs.append((sys.prefix, "[python]"))
    pairs += [(str(p), replacement) for p, replacement in paths]
    for home in {_HOME, pwd.getpwuid(os.getuid()).pw_dir}:
        if home and home != "/":
            pairs.append((home, "~"))
    seen, out = set(), []
    for prefix, replacement in pairs:
        prefix = str(prefix).rstrip("/")
        if len(prefix) > 1 and prefix not in seen:
            seen.add(prefix)
            out.append((prefix, replacement))
            real = os.path.realpath(prefix)
            if real != prefix and real not in seen:
                seen.add(real)
                out.append((real, replacement))
    return sorted(out, key=lambda pair: -len(pair[0]))


# what is left of a grader's temporary folder or a home folder once the known prefixes are gone
_LEFT = re.compile(r"(?:" + re.escape(tempfile.gettempdir().rstrip("/")) + r"|/tmp)/classgrade-[^\s/'\"<>:]*"
                   r"|/home/[^\s/'\"<>:]+")


class Scrubber:
    """Replaces the instructor's paths in text (see :func:`_prefixes`)."""

    def __init__(self, paths=()):
        self.pairs = _prefixes(paths)

    def __call__(self, text):
        if not isinstance(text, str):
            return text
        for prefix, replacement in self.pairs:
            if prefix in text:
                # a folder's own name, or the folder followed by a path: "<prefix>/x" -> "x"
                text = text.replace(prefix + "/", replacement + "/" if replacement else "")
                text = text.replace(prefix, replacement or ".")
        return _LEFT.sub("[grader]", text)


def scrub_outputs(cell, scrub):
    """Scrub a cell's outputs in place: tracebacks, streams, text and HTML data."""
    for out in cell.get("outputs", []):
        if "text" in out:
            out["text"] = scrub(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
        if "traceback" in out:
            out["traceback"] = [scrub(line) for line in out["traceback"]]
        if "evalue" in out:
            out["evalue"] = scrub(out["evalue"])
        for mime, value in (out.get("data") or {}).items():
            if mime.startswith("text/") or mime == "application/javascript":
                out["data"][mime] = scrub(value if isinstance(value, str) else "".join(value))


class ScrubPaths(Preprocessor):
    """Take the instructor's paths out of every output the feedback shows."""

    paths = List(default_value=[]).tag(config=True)   # [(folder, replacement)] besides the usual ones

    def preprocess(self, nb, resources):
        self._scrub = Scrubber([tuple(p) for p in self.paths])
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        scrub_outputs(cell, self._scrub)
        return cell, resources


def scrub_notebook(path, scrubber):
    """Scrub the outputs of the (autograded) notebook at ``path`` in place."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        scrub_outputs(cell, scrubber)
    nbformat.write(nb, str(path))


def scrub_file(path, scrubber):
    """Scrub a written feedback file in place (what the template itself wrote, e.g. comments)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    clean = scrubber(text)
    if clean != text:
        path.write_text(clean, encoding="utf-8")
