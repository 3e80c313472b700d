"""What the class grader does once instead of in every grading process, and its forked launcher.

Each saving must change nothing but the time: the same rows, the same errors, the same
process as before. How much each saves is measured by ``benchmarks/bench_grading.py``, not here.
"""
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import nbformat
import nbgrader.api
import nbgrader.nbgraderformat.common
import pytest
from nbconvert.exporters import NotebookExporter
from nbconvert.preprocessors import Preprocessor
from sqlalchemy import event

from classgrade.protocol import Job, Result, Status
from classgrade.trusted import jail, runner, warmup, worker


@pytest.fixture
def fresh_gradebook_patches(monkeypatch):
    """nbgrader's ``create_engine`` and ``Gradebook.__init__``, and the shared engine, as they
    were before the test (the grading child's patches are for its own process)."""
    monkeypatch.setattr(nbgrader.api, "create_engine", nbgrader.api.create_engine)
    monkeypatch.setattr(nbgrader.api.Gradebook, "__init__", nbgrader.api.Gradebook.__init__)
    monkeypatch.setattr(worker, "_COMPILED", {})
    # a new gradebook runs `alembic` from PATH, as the grader puts its interpreter's bin first
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])


def _template(path):
    """A gradebook with an assignment ``a`` of one notebook ``n``: a graded cell, a solution cell."""
    with nbgrader.api.Gradebook(f"sqlite:///{path}") as gb:
        gb.add_assignment("a")
        gb.add_notebook("n", "a")
        gb.add_grade_cell("test", "n", "a", max_score=2.0, cell_type="code")
        gb.add_solution_cell("answer", "n", "a")
        for name in ("test", "answer"):
            gb.add_source_cell(name, "n", "a", cell_type="code", source="pass", checksum=name)
    return path


def _statements(engine):
    """The SQL that ``engine`` runs from now on, in a list."""
    ran = []
    event.listen(engine, "before_cursor_execute", lambda *args: ran.append(args[2]))
    return ran


def test_a_grading_child_compiles_only_what_the_grader_did_not(tmp_path, fresh_gradebook_patches):
    """The grader runs one submission's gradebook steps on a scratch copy of the template before
    it forks; a child's engine takes that engine's dialect and compiled statements, so the same
    steps on its own gradebook compile nothing, and they change only its own file."""
    template = _template(tmp_path / "template.db")
    original = nbgrader.api.create_engine
    worker.warm_gradebook(template, "a", {"n.ipynb": {}})
    assert nbgrader.api.create_engine is original   # the grader's own engines are made as before
    warm = worker._COMPILED["engine"]
    compiled = len(warm._compiled_cache)
    assert compiled >= 10

    worker._one_engine_per_database()   # as a grading child does
    url = f"sqlite:///{shutil.copy(template, tmp_path / 'child.db')}"
    with nbgrader.api.Gradebook(url) as gb:
        assert gb.engine.dialect is warm.dialect and gb.engine._compiled_cache is warm._compiled_cache
        gb.update_or_create_student("alice")
        gb.update_or_create_submission("a", "alice")
        gb.find_grade("test", "n", "a", "alice").auto_score = 2.0
        gb.db.commit()
    grades = worker.read_grades(url, "a", "alice")
    assert grades["n"].cells["test"].auto_score == 2.0 and grades["n"].cells["test"].max_score == 2.0
    assert len(warm._compiled_cache) == compiled
    with nbgrader.api.Gradebook(f"sqlite:///{template}") as gb:   # the warm-up worked on a copy
        assert gb.students == []


def test_other_engines_keep_their_own_dialect(tmp_path, fresh_gradebook_patches):
    """Only sqlite engines with nbgrader's own options share: any other option could change what
    the dialect compiles."""
    worker._one_engine_per_database()
    first = nbgrader.api.create_engine(f"sqlite:///{tmp_path / 'one.db'}", echo=False, future=True)
    second = nbgrader.api.create_engine(f"sqlite:///{tmp_path / 'two.db'}", echo=False, future=True)
    other = nbgrader.api.create_engine(f"sqlite:///{tmp_path / 'three.db'}", echo=False, future=True,
                                       isolation_level="SERIALIZABLE")
    assert second.dialect is first.dialect
    assert other.dialect is not first.dialect and other._compiled_cache is not first._compiled_cache


def test_a_gradebook_opened_again_only_connects(tmp_path, fresh_gradebook_patches):
    """In a grading child the first ``Gradebook`` of a URL checks the tables and the course;
    the later ones run no SQL as they open, and work as nbgrader's."""
    url = f"sqlite:///{_template(tmp_path / 'gradebook.db')}"
    worker._one_engine_per_database()
    worker._gradebook_checked_once()
    with nbgrader.api.Gradebook(url) as gb:
        ran = _statements(gb.engine)
    with nbgrader.api.Gradebook(url) as gb:
        assert ran == []
        gb.add_student("bob")
    with nbgrader.api.Gradebook(url) as gb:
        assert [s.id for s in gb.students] == ["bob"] and gb.course_id == "default_course"


def test_nbgrader_metadata_is_checked_as_jsonschema_checks_it():
    """One validator per schema raises what ``jsonschema.validate`` raises, message included."""
    schema = json.loads((Path(nbgrader.nbgraderformat.common.root) / "v3.json").read_text())
    good = {"grade": True, "grade_id": "test", "locked": True, "points": 1.0, "schema_version": 3,
            "solution": False, "task": False}
    checked = warmup._CheckedSchemas()
    checked.validate(good, schema)
    jsonschema.validate(good, schema)
    for bad in (dict(good, points="many"), dict(good, grade_id="no spaces"),
                {k: v for k, v in good.items() if k != "grade"}):
        with pytest.raises(jsonschema.ValidationError) as ours:
            checked.validate(bad, schema)
        with pytest.raises(jsonschema.ValidationError) as theirs:
            jsonschema.validate(bad, schema)
        assert str(ours.value) == str(theirs.value)
    assert checked.ValidationError is jsonschema.ValidationError   # the rest of the module, as nbgrader uses it


def test_the_forked_launcher_has_the_launcher_s_streams_and_exit_status(tmp_path):
    """A launch that fails (no ``jail.json``) writes its traceback to the submission's output and
    exits with 1, as the launcher's interpreter did; the fork runs in a session of its own."""
    output = tmp_path / "output.txt"
    with open(output, "ab") as out:
        launcher = jail.ForkedLauncher(["--jail", str(tmp_path / "missing"), "--private", str(tmp_path),
                                        "-f", str(tmp_path / "kernel.json")], out, str(tmp_path))
    assert launcher.wait(timeout=60) == 1 and launcher.poll() == 1
    assert "jail.json" in output.read_text()


def test_the_forked_launcher_is_signalled_as_a_process_group(tmp_path, monkeypatch):
    """jupyter_client kills a kernel by its process group: the fork leads its own."""
    monkeypatch.setattr(jail, "launch", lambda argv: time.sleep(120))
    with open(tmp_path / "output.txt", "ab") as out:
        launcher = jail.ForkedLauncher([], out, str(tmp_path))
    try:
        deadline = time.monotonic() + 30
        while os.getpgid(launcher.pid) != launcher.pid and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.getpgid(launcher.pid) == launcher.pid and launcher.poll() is None
        os.killpg(launcher.pid, signal.SIGKILL)
        assert launcher.wait(timeout=30) == -signal.SIGKILL
    finally:
        launcher.kill()


def test_a_warm_up_that_fails_changes_nothing(tmp_path, fresh_gradebook_patches):
    """The warm-up is a saving only: an assignment it cannot find leaves the grader as it was."""
    template = _template(tmp_path / "template.db")
    original = nbgrader.api.create_engine
    worker.warm_gradebook(template, "no-such-assignment", {"n.ipynb": {}})
    assert nbgrader.api.create_engine is original


def test_the_grader_imports_jsonschema_without_rfc3987_syntax():
    """``classgrade.trusted`` marks rfc3987-syntax missing (its import builds 39 parsers, ~1.4 s):
    jsonschema still imports and validates, without it."""
    code = ("import sys, classgrade.trusted, jsonschema, nbformat\n"
            "assert sys.modules.get('rfc3987_syntax') is None\n"
            "jsonschema.validate({'a': 1}, {'type': 'object'})\n"
            "nbformat.validate(nbformat.v4.new_notebook())\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)


def test_the_zygote_formats_a_failed_check_before_it_forks():
    """The warm-up formats a real failed check (raised through convlab.grading), so a fork's first
    traceback finds grading's source already read."""
    code = ("import linecache\n"
            "from convlab import grading\n"
            "from classgrade.trusted import zygote\n"
            "zygote._warm_tracebacks()\n"
            "assert grading.__file__ in linecache.cache, sorted(linecache.cache)[:5]\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)


def _job(tmp_path):
    return Job(student="s", assignment="a", work=str(tmp_path), template_db="", source_dir="", release={})


def _report_frozen(job_json, conn):
    """A grading child's stand-in: reports how many objects its collector leaves alone."""
    job = Job.from_json(job_json)
    conn.send(Result(student=job.student, status=Status.OK, error=str(gc.get_freeze_count())).to_json())
    os._exit(0)


def test_a_grading_child_collects_none_of_what_it_inherits(tmp_path, monkeypatch):
    """Every object of the grader is frozen in the child at its fork (a full collection there walked
    and copied them all), and the grader's own collector has them back after."""
    monkeypatch.setattr(runner, "_child", _report_frozen)
    frozen_before = gc.get_freeze_count()
    done = []
    runner.Runner(workers=1, wall=60).run([_job(tmp_path)], lambda j, r: done.append(r))
    assert [r.status for r in done] == [Status.OK]
    assert int(done[0].error) > max(10_000, frozen_before)
    assert gc.get_freeze_count() == frozen_before


def test_a_dask_worker_s_forkserver_freezes_what_its_warm_up_made():
    """The forkserver's preload (``classgrade.trusted.warm``) warms up, then freezes, so that the
    grading children it forks collect none of it either."""
    code = ("import gc\n"
            "import classgrade.trusted.warm\n"
            "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


class _Nothing(Preprocessor):
    def preprocess(self, nb, resources):
        return nb, resources


def test_nbconvert_validates_a_graded_notebook_once(tmp_path, monkeypatch):
    """The grading process's nbgrader config has nbconvert check the notebook after the last
    preprocessor only (``optimistic_validation``), not after each."""
    job = _job(tmp_path)
    config = worker._nbgrader(job, worker.Paths(job)).config
    assert config.Exporter.optimistic_validation is True
    exporter = NotebookExporter(config=config, preprocessors=[_Nothing(), _Nothing(), _Nothing()])
    checked = []
    monkeypatch.setattr(exporter, "_validate_preprocessor", lambda nb, pre: checked.append(pre))
    exporter.from_notebook_node(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
    assert len(checked) == 1
