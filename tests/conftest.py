"""Shared fixtures: ``built_book`` builds the Jupyter Book once per test session.

The book is built the way ``make book`` builds it (``book/_ext/editions.py build``: both
editions, each ``-W -n --keep-going``) but into a temporary folder, never into the
repository's ``_build``. Tests read the result from the returned object:

- ``.html``: ``pathlib.Path`` of the HTML folder (``<tmp>/_build/html``), the English
  edition; ``.html / "zh_CN"`` is the Chinese one (``built_book.edition("zh_CN")``);
  ``.html.parent`` holds ``jupyter_execute/``, the executed notebooks;
- ``.log``: the full build output (stdout and stderr, colour codes removed);
- ``.returncode``: the exit status of ``jupyter-book build``.

Under pytest-xdist the workers share one build: the first one to get the lock
builds, the others read its result.
"""

import dataclasses
import fcntl
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The venv's bin folder: that of the interpreter running pytest. nbgrader and the
# notebook kernels look up `jupyter`, `alembic` and `python` on PATH, so it goes first.
BIN = Path(sys.executable).parent
BUILD_TIMEOUT = 40 * 60  # seconds; a normal build takes a few minutes on 2 busy cores
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclasses.dataclass(frozen=True)
class BuiltBook:
    html: Path
    log: str
    returncode: int

    def edition(self, language):
        """The HTML folder of one edition of the book ("en" is the root of the build)."""
        return self.html if language == "en" else self.html / language


def build_book(output):
    """Build both editions of the book into ``output`` as ``make book`` does; return a ``BuiltBook``."""
    command = [sys.executable, str(REPO / "book" / "_ext" / "editions.py"), "build", "--path-output", str(output)]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    try:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=BUILD_TIMEOUT)
        log, returncode = done.stdout, done.returncode
    except subprocess.TimeoutExpired as timeout:
        partial = timeout.stdout or ""
        if isinstance(partial, bytes):
            partial = partial.decode(errors="replace")
        log, returncode = f"{partial}\n[built_book] timed out after {BUILD_TIMEOUT} s", -1
    return BuiltBook(html=Path(output) / "_build" / "html", log=ANSI.sub("", log), returncode=returncode)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Build the book once (per session, shared by xdist workers) and return a ``BuiltBook``."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build_book(tmp_path_factory.mktemp("book"))
    shared = tmp_path_factory.getbasetemp().parent / "built_book"
    shared.mkdir(exist_ok=True)
    result = shared / "result.json"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not result.exists():
                book = build_book(shared / "output")
                result.write_text(json.dumps(dict(html=str(book.html), log=book.log, returncode=book.returncode)))
            data = json.loads(result.read_text())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return BuiltBook(html=Path(data["html"]), log=data["log"], returncode=data["returncode"])
