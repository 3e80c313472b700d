"""Grading a whole class with ``classgrade`` (the corpus is tests/hostile/).

One parallel run grades the whole corpus (ordinary, hostile and broken
submissions of a tiny fixture assignment); the tests check each case's score
and reason, that nothing escaped the sandbox, and that the grades equal
sequential ``nbgrader autograde`` on the same submissions. A second run takes
an LMS download (zip_collect) into a PostgreSQL gradebook on a throwaway
server.
"""
import csv
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import nbformat
import pytest

from classgrade.protocol import Job, Limits, Result, Status
from classgrade.sandboxed.fingerprints import CHECK_PREFIX
from classgrade.sandboxed import kernel as sandbox
from classgrade.trusted import jail, kernels, notebooks, report, run, runner, worker
from classgrade.trusted.cli import main as classgrade_main
from classgrade.trusted.errors import InstructorError
from classgrade.trusted.run import grade_class

sys.path.insert(0, str(Path(__file__).parent))
import classgrade_corpus as corpus  # noqa: E402
from classgrade_postgres import postgres_server  # noqa: E402

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED = json.loads((HOSTILE / "expected.json").read_text())
ESCAPES = [Path("/tmp/classgrade-escape.txt"), Path("/tmp/classgrade-escape-2.txt"), Path(corpus.ESCAPE)]
BENIGN = ["correct", "wrong", "partial", "blank", "zz_correct_after"]
SECRET = "s3cret-of-the-instructor-8d1f"   # planted where read_outside looks; must reach no output
TIMEOUT = 10      # per-cell seconds: the loops in the corpus hit it
pytestmark = pytest.mark.grading


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("classgrade") / "course"
    shutil.copytree(HOSTILE / "course", root)
    return root


class _Listener(threading.Thread):
    """A TCP server on the grader's loopback that records whether anything connected."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.connections, self.stopped = 0, False

    def run(self):
        while not self.stopped:
            try:
                self.sock.accept()[0].close()
                self.connections += 1
            except OSError:
                pass


@pytest.fixture(scope="module")
def corpus_run(course, tmp_path_factory):
    """The whole corpus graded in one sandboxed run, with secrets planted and a listener on loopback."""
    for path in ESCAPES:
        path.unlink(missing_ok=True)
    Path(corpus.SECRET_FILE).write_text(SECRET)
    (course / "instructor_notes.txt").write_text(SECRET)
    listener = _Listener(corpus.LISTEN_PORT)
    listener.start()
    out = tmp_path_factory.mktemp("graded")
    os.environ[corpus.SECRET_ENV] = SECRET
    try:
        result = grade_class(course, "tiny", HOSTILE / "submitted", out, workers=2, timeout=TIMEOUT,
                             memory="2G", wall=240, progress=False)
    finally:
        del os.environ[corpus.SECRET_ENV]
        listener.stopped = True
        Path(corpus.SECRET_FILE).unlink()
    result.listener_connections = listener.connections
    yield result, out


def _score(res):
    """A result's automatic score (a Result, or its record in results.json)."""
    res = Result.from_dict(res) if isinstance(res, dict) else res
    return report.totals({"student": res})["student"][0]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_submission_is_graded_with_its_reason(corpus_run, case):
    result, _ = corpus_run
    res = result.results[case]
    expected = EXPECTED[case]
    assert res.status == Status.OK, res.error
    assert _score(res) == expected["score"], res.flags
    if expected["reason"] is None:
        assert res.flags == []
    else:
        assert any(expected["reason"] in flag for flag in res.flags), res.flags


def test_outputs_grades_csv_feedback_and_report(corpus_run):
    result, out = corpus_run
    with open(out / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(EXPECTED)
    for case, expected in EXPECTED.items():
        assert float(rows[case]["raw_score"]) == expected["score"]
        assert float(rows[case]["max_score"]) == 4
    for case in EXPECTED:
        assert (out / "autograded" / case / "tiny" / "tiny.ipynb").exists()
        assert (out / "feedback" / case / "tiny" / "tiny.html").exists()
    html = (out / "report.html").read_text()
    assert (out / "score_distribution.png").stat().st_size > 1000
    assert 'src="score_distribution.png"' in html
    flagged = [c for c, e in EXPECTED.items() if e["reason"]]
    assert f"Needs manual attention ({len(flagged)})" in html
    md = (out / "report.md").read_text()
    for case in flagged:
        assert f"**{case}**" in md
    # the hidden test fails most often: wrong, partial, blank, loops, tamperers...
    assert report.failure_rates(result.results)[0][1] == "test_corr2d_hidden"


def test_nothing_escaped_the_submission_folder(corpus_run):
    _, out = corpus_run
    for path in ESCAPES:
        assert not path.exists(), f"{path} was written by a submission"
    graded = out / "autograded" / "write_outside" / "tiny"
    assert "my notes: allowed: inside my folder" in _outputs(out, "write_outside")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:   # still a gradebook
        assert len(gb.assignment_submissions("tiny")) == len(EXPECTED)


def test_sandbox_kept_every_attack_inside(corpus_run):
    """What only the OS sandbox stops: reads, libc calls, sqlite, the network, signals, processes."""
    result, out = corpus_run
    assert result.sandbox == "bwrap" and "Sandbox: bwrap." in (out / "report.md").read_text()
    assert result.listener_connections == 0
    leaks = [p for p in out.rglob("*") if p.is_file() and p.suffix in (".ipynb", ".html", ".md", ".json")
             and SECRET in p.read_text(errors="replace")]
    assert leaks == []
    read = _outputs(out, "read_outside")
    assert "entries in /proc" in read and "student:x:65534" in read   # the stand-in /etc/passwd
    assert "root:x:0:0" not in read and "manual_seed(0)" not in read   # not the real one, no solutions
    # libc's system() ran, inside: as the sandbox's user, in its folder
    assert "whoami: uid=65534" in _outputs(out, "escape_ctypes")
    assert "changed" not in _outputs(out, "escape_ctypes")
    # nothing of outlive's background process survived the run
    survivors = [e for e in Path("/proc").iterdir() if e.name.isdigit() and corpus.OUTLIVE.encode()
                 in _read(e / "cmdline")]
    assert survivors == []
    bomb = int(re.search(r"(\d+) processes", _outputs(out, "fork_bomb")).group(1))
    assert 10 < bomb <= 256   # the sandbox's pids limit
    # what a kernel writes stays in the sandbox, bounded in sum: 256 MiB in its folder and in /tmp
    # (5 files of 48 MiB), nothing in the read-only rest, its private folder or its sockets' tmpfs
    filled = dict(line.split(": ") for line in _outputs(out, "fill_disk").splitlines() if ": " in line)
    # (the grader's own folders show as "[grader]/...": no output keeps the grader's paths)
    private = ("/tmp/classgrade", "[grader]")
    assert {d: n for d, n in filled.items() if not d.startswith(private)} == \
        {".": "5 files", "/tmp": "5 files", "/": "0 files", "/usr": "0 files"}, filled
    assert sorted(n for d, n in filled.items() if d.startswith(private)) == ["0 files", "0 files"], filled
    assert sorted(p.name for p in (out / "autograded" / "fill_disk" / "tiny").iterdir()) == ["tiny.ipynb"]
    assert "mounted" not in _outputs(out, "nested_namespace")
    # ptrace reaches the sandbox's own processes at most: the holder and the kernel's, numbered
    # from 1 in its PID namespace, none of the grader's
    seen = [int(pid) for pid in re.findall(r"traced (\d+)", _outputs(out, "trace_everything"))]
    assert seen and max(seen) < 20, seen
    links = out / "autograded" / "symlinks" / "tiny"
    assert sorted(p.name for p in links.iterdir()) == ["tiny.ipynb"]
    assert not any(p.is_symlink() for p in out.rglob("*"))


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _outputs(out, case):
    nb = nbformat.read(str(out / "autograded" / case / "tiny" / "tiny.ipynb"), 4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_feedback_shows_no_hidden_test(corpus_run):
    """nbgrader's own feedback prints the hidden tests' source (nbgrader #917); ours does not."""
    _, out = corpus_run
    for case in EXPECTED:
        html = (out / "feedback" / case / "tiny" / "tiny.html").read_text()
        assert "manual_seed(0)" not in html and "HIDDEN TESTS" not in html, case


def test_refuses_to_grade_without_a_working_sandbox(course, tmp_path, monkeypatch, capsys):
    """No bwrap, or a bwrap that cannot create namespaces: one line saying why and how to fix it."""
    one = tmp_path / "submitted"
    shutil.copytree(HOSTILE / "submitted" / "correct", one / "correct")
    argv = ["tiny", str(one), "--course", str(course), "--out", str(tmp_path / "out"), "--no-progress"]
    monkeypatch.setenv(jail.BWRAP_ENV, str(tmp_path / "no-such-bwrap"))
    assert classgrade_main(argv) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "bubblewrap (bwrap) is not installed" in said[0] and "--no-sandbox" in said[0]
    fake = tmp_path / "bwrap"   # what bwrap prints where user namespaces are switched off
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(jail.BWRAP_ENV, str(fake))
    assert classgrade_main(argv) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "user namespaces are switched off" in said[0]
    monkeypatch.delenv(jail.BWRAP_ENV)   # the real bwrap, but a sandbox without a module the kernels need
    monkeypatch.setattr(jail, "SANDBOX_MODULES", jail.SANDBOX_MODULES + ("no_such_module_for_kernels",))
    assert classgrade_main(argv) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "the sandbox cannot import no_such_module_for_kernels" in said[0]
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_no_sandbox_says_so_and_marks_the_report(course, tmp_path, capsys):
    one = tmp_path / "submitted"
    shutil.copytree(HOSTILE / "submitted" / "correct", one / "correct")
    argv = ["tiny", str(one), "--course", str(course), "--out", str(tmp_path / "out"), "--no-progress",
            "--no-feedback", "--timeout", str(TIMEOUT), "--memory", "2G", "--no-sandbox"]
    assert classgrade_main(argv) == 0
    assert "--no-sandbox" in capsys.readouterr().err
    assert "ran unsandboxed" in (tmp_path / "out" / "report.md").read_text()
    assert _score(json.loads((tmp_path / "out" / "results.json").read_text())["correct"]) == 4


def test_copy_checked_copies_only_regular_files_within_bounds(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    (src / "big.bin").write_bytes(bytes(2000))
    (src / "link").symlink_to("/etc/passwd")
    (src / "dirlink").symlink_to(src / "sub")
    (src / "loop").symlink_to("loop")
    os.mkfifo(src / "fifo")
    skipped = jail.copy_checked(src, dst, max_file_bytes=1000)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    assert len(skipped) == 5 and sum("symbolic link" in s for s in skipped) == 3
    assert any(s.startswith("big.bin: 2000 bytes") for s in skipped)
    assert any(s.startswith("fifo: not a regular file") for s in skipped)


def test_tampered_tests_show_as_failed_in_the_feedback(corpus_run):
    _, out = corpus_run
    nb = nbformat.read(str(out / "autograded" / "monkeypatch_allclose" / "tiny" / "tiny.ipynb"), 4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_double")
    assert any(o.get("ename") == "IntegrityError" for o in test.outputs)
    html = (out / "feedback" / "monkeypatch_allclose" / "tiny" / "tiny.html").read_text()
    assert "IntegrityError" in html and "torch.allclose" in html
    # a clean notebook keeps no trace of the check cells
    clean = nbformat.read(str(out / "autograded" / "correct" / "tiny" / "tiny.ipynb"), 4)
    assert not any(c.source.startswith(CHECK_PREFIX) for c in clean.cells)


def test_parallel_grades_equal_sequential_nbgrader_autograde(corpus_run, course, tmp_path):
    """Plain `nbgrader autograde`, one notebook at a time, on the ordinary submissions."""
    _, out = corpus_run
    benign = tmp_path / "submitted"
    for case in BENIGN:
        shutil.copytree(HOSTILE / "submitted" / case, benign / case)
    sequential = corpus.sequential_grades(course, benign, tmp_path / "course")
    parallel = {key: grade for key, grade in corpus.gradebook_grades(f"sqlite:///{out / 'gradebook.db'}").items()
                if key[0] in BENIGN}
    assert len(sequential) == 3 * len(BENIGN)
    assert parallel == sequential


@pytest.fixture(scope="module")
def lms_postgres_run(course, tmp_path_factory):
    """Canvas-style download (a zip of '<student>_<ids>_<file>') into a PostgreSQL gradebook."""
    tmp = tmp_path_factory.mktemp("lms")
    archive = tmp / "canvas.zip"
    with postgres_server() as url, zipfile.ZipFile(archive, "w") as z:
        z.write(HOSTILE / "submitted" / "correct" / "tiny" / "tiny.ipynb", "alice_1234_5678_tiny.ipynb")
        z.write(HOSTILE / "submitted" / "partial" / "tiny" / "tiny.ipynb", "bob_LATE_2345_6789_tiny-1.ipynb")
        z.write(HOSTILE / "submitted" / "invalid_json" / "tiny" / "tiny.ipynb", "carol_3456_7890_tiny.ipynb")
        # dave knows the gradebook's address and password (as if leaked) and tries to give himself 99
        nb = nbformat.read(str(HOSTILE / "submitted" / "correct" / "tiny" / "tiny.ipynb"), as_version=4)
        corpus.insert_after(nb, "corr2d", f"""import psycopg2
try:
    with psycopg2.connect({url.replace('postgresql+psycopg2', 'postgresql')!r}, connect_timeout=3) as db:
        db.cursor().execute("UPDATE grade SET auto_score = 99")
    print('gradebook changed')
except psycopg2.Error as exc:
    print('no gradebook:', exc)""")
        z.writestr("dave_4567_8901_tiny.ipynb", nbformat.writes(nb))
        z.close()
        result = grade_class(course, "tiny", archive, tmp / "out", workers=2, timeout=TIMEOUT,
                             memory="2G", wall=240, db_url=url, progress=False)
        from nbgrader.api import Gradebook
        with Gradebook(url) as gb:
            stored = {s.student.id: s.score for s in gb.assignment_submissions("tiny")}
            flagged = {nb.student.id for nb in gb.find_notebook("tiny", "tiny").submissions if nb.flagged}
        yield result, stored, flagged, tmp / "out"


def test_lms_download_is_collected_and_graded(lms_postgres_run):
    result, _, _, out = lms_postgres_run
    # the student ids are Canvas's user ids; the names are kept in the collection's record
    assert sorted(result.results) == ["1234", "2345", "3456", "4567"]
    assert {s: r.name for s, r in result.collection.records.items()} == {
        "1234": "alice", "2345": "bob", "3456": "carol", "4567": "dave"}
    assert {s: _score(r) for s, r in result.results.items()} == {"1234": 4, "2345": 2, "3456": 0, "4567": 4}
    nb = nbformat.read(str(out / "autograded" / "4567" / "tiny" / "tiny.ipynb"), as_version=4)
    said = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "no gradebook:" in said and "gradebook changed" not in said, said
    assert any("not a valid notebook" in f for f in result.results["3456"].flags)
    assert (out / "feedback" / "2345" / "tiny" / "tiny.html").exists()


def test_postgresql_gradebook_holds_the_merged_grades(lms_postgres_run):
    result, stored, flagged, out = lms_postgres_run
    assert stored == {"1234": 4, "2345": 2, "3456": 0, "4567": 4}
    attention = result.needs_attention
    assert flagged == set(attention), attention     # formgrader shows them as flagged
    assert "3456" in flagged
    assert not (out / "gradebook.db").exists()
    with open(out / "grades.csv") as f:
        assert {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)} == stored


def test_regrading_updates_the_gradebook_or_refuses_a_changed_test(corpus_run, course, tmp_path):
    """Grading again (here through the command line) into the same gradebook works; a source
    whose test cells changed is refused before anything is graded, instead of failing half-way
    through the merge (tests/test_history.py: the refusal and --regrade-all)."""
    _, out = corpus_run
    db_url = f"sqlite:///{out / 'gradebook.db'}"
    one = tmp_path / "submitted"
    shutil.copytree(HOSTILE / "submitted" / "correct", one / "correct")
    # through the command line, as `make grade` runs it
    argv = ["tiny", str(one), "--course", str(course), "--out", str(tmp_path / "again"), "--workers", "1",
            "--timeout", str(TIMEOUT), "--memory", "2G", "--db-url", db_url, "--no-progress", "--no-feedback"]
    assert classgrade_main(argv) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert _score(again["correct"]) == EXPECTED["correct"]["score"]
    assert not (tmp_path / "again" / "feedback").exists() and (tmp_path / "again" / "autograded").is_dir()
    changed = tmp_path / "changed"
    shutil.copytree(course, changed)
    notebook = changed / "solutions" / "tiny" / "tiny.ipynb"
    notebook.write_text(notebook.read_text().replace('"grade_id": "test_double"', '"grade_id": "test_twice"'))
    with pytest.raises(InstructorError, match="test 'test_double' removed from the source .*--regrade-all"):
        grade_class(changed, "tiny", one, tmp_path / "changed-out", timeout=TIMEOUT, memory="2G",
                    wall=240, db_url=db_url, progress=False)


# ---- small units -------------------------------------------------------------------------

def test_parse_bytes():
    assert run.parse_bytes("4G") == 4 * 2**30
    assert run.parse_bytes("512M") == 512 * 2**20
    assert run.parse_bytes("1000") == 1000
    assert run.parse_bytes("0") is None
    assert run.parse_bytes("4GiB") == 4 * 2**30
    for bad in ("4X", "lots", "-1G"):
        with pytest.raises(ValueError, match=f"memory must be a number of bytes.*got '{bad}'"):
            run.parse_bytes(bad)


def test_the_kernel_manager_builds_the_grader_s_own_client():
    """nbclient asks the manager for a client, and the manager builds its ``client_factory``:
    a ``client_class`` default alone is never used (it was not, for a while), and the stock
    client's handshake waits on fixed timers."""
    import zmq
    client = kernels.KernelManager().client()
    try:
        assert type(client) is kernels.KernelClient
        assert client.context.getsockopt(zmq.RECONNECT_IVL) == 5
    finally:
        client.context.destroy()


def test_a_grading_child_makes_one_engine_per_gradebook(tmp_path, monkeypatch):
    """nbgrader opens many Gradebooks per submission: in a grading child they share one
    SQLAlchemy engine per URL (so its compiled SQL), and each still works after another closed."""
    import nbgrader.api
    monkeypatch.setattr(nbgrader.api, "create_engine", nbgrader.api.create_engine)   # restored after
    # a new gradebook runs `alembic` from PATH, as the grader puts its interpreter's bin first
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    worker._one_engine_per_database()
    shared = nbgrader.api.create_engine
    worker._one_engine_per_database()
    assert nbgrader.api.create_engine is shared   # once per process: no wrapper around a wrapper
    first = nbgrader.api.Gradebook(url)
    first.add_student("alice")
    first.close()
    with nbgrader.api.Gradebook(url) as second:
        assert second.engine is first.engine
        assert [s.id for s in second.students] == ["alice"]
    other = nbgrader.api.Gradebook(f"sqlite:///{tmp_path / 'other.db'}")
    assert other.engine is not first.engine
    other.close()


def test_kernels_import_every_module_they_fingerprint_before_their_baseline():
    """A kernel's module imports torch, numpy and all of convlab (plain imports), so that no later
    use changes convlab's namespace between the baseline fingerprints and a check cell."""
    code = ("import sys\n"
            "from classgrade.sandboxed import kernel\n"
            "import convlab\n"
            "loaded = set(vars(convlab))\n"
            "assert set(convlab.__all__) <= loaded, set(convlab.__all__) - loaded\n"
            "kernel.preimport(kernel.PREIMPORT)\n"
            "from convlab import *\n"
            "convlab.corr2d, convlab.kernels\n"
            "assert set(vars(convlab)) == loaded, set(vars(convlab)) ^ loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)


def test_a_check_cell_compares_in_a_namespace_of_its_own(tmp_path):
    """The check cell executes the sandboxed fingerprints file afresh: "ok" while nothing changed;
    a patched torch.allclose is named, even where the notebook defines its own print and
    _classgrade functions; the cell stays a few lines (nbgrader copies and validates the notebook
    many times), and leaves nothing in the notebook's namespace."""
    code = f"""
import contextlib, io, json, torch
from IPython.core.interactiveshell import InteractiveShell
from classgrade.sandboxed import fingerprints
shell = InteractiveShell.instance()
baseline = {str(tmp_path / "baseline.json")!r}
with open(baseline, "w") as f:
    json.dump(fingerprints.fingerprints(), f)
source = fingerprints.check_cell_source(baseline)
assert source.startswith(fingerprints.CHECK_PREFIX) and len(source.splitlines()) <= 6, source
def verdict():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert shell.run_cell(source).success
    return out.getvalue().strip()
before = set(shell.user_ns)
assert verdict() == "classgrade-integrity: ok"
assert set(shell.user_ns) == before, set(shell.user_ns) ^ before
assert shell.run_cell("import torch\\n"
                      "print = lambda *args, **kwargs: None\\n"
                      "def verdict(path): return 'classgrade-integrity: ok'\\n"
                      "torch.allclose = lambda *args, **kwargs: True").success
print(json.dumps(verdict()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == "classgrade-integrity: modified torch.allclose"


def test_retries_skip_the_cell_that_hung_then_fall_back_to_the_blank_release(tmp_path):
    """The runner's decisions after a wall-clock kill (the kill itself takes minutes to provoke)."""
    grader = runner.Runner(workers=1, wall=60)
    job = Job(student="s", assignment="tiny", work=str(tmp_path), template_db="", source_dir="", release={})
    result = Result(student="s", status=Status.WALL_TIMEOUT, starts=["abc123"])
    retry = grader._retry(job, result)
    assert retry.attempt == 2 and not retry.blank
    assert "abc123" in retry.skip and "wall-clock limit (60 s)" in retry.skip["abc123"]
    assert retry.flags == ["a cell: grading exceeded the wall-clock limit (60 s) while it ran; "
                           "graded again without running it"]
    last = grader._retry(retry.again(attempt=3), Result(student="s", status=Status.ERROR, error="boom\nkernel died"))
    assert last.blank and last.flags[-1] == "grading failed: kernel died"
    final = Result(student="s", status=Status.ERROR, error="still broken")
    assert grader._retry(last, final) is None and final.flags[-1] == "grading failed: still broken"
    assert grader._retry(job, Result(student="s", status=Status.OK)) is None
    assert Job.from_json(last.to_json()) == last and Result.from_json(final.to_json()) == final


def test_a_grader_that_is_not_root_limits_processes_inside_the_sandbox_only(tmp_path):
    """Not root (no pids cgroup): RLIMIT_NPROC is not set on the launcher, where it would count every
    process of the grader's account, but handed to the kernel, which sets it after entering the sandbox,
    where it counts the sandbox's processes alone."""
    jail.write_jail(tmp_path / "jail")
    short = Path(tempfile.mkdtemp(prefix="cg-", dir="/tmp"))   # a socket folder short enough for sun_path
    script = f"""
import json, os, resource
from classgrade.protocol import KernelRequest
from classgrade.trusted import jail, namespaces
os.geteuid = lambda: 1000
seen = {{}}
def fake_launch(options, private, connection_file, jail_dir, request):
    rlimits = request.rlimits
    seen.update(request=rlimits, launcher=resource.getrlimit(resource.RLIMIT_NPROC)[0])
    order = []
    namespaces.enter = lambda pid: order.append(("enter", resource.getrlimit(resource.RLIMIT_NPROC)[0]))
    namespaces.drop_privileges = lambda: order.append(("drop", resource.getrlimit(resource.RLIMIT_NPROC)[0]))
    namespaces.enter_unprivileged(KernelRequest(sandbox_pid=1, cwd="/", env={{}}, argv=[], rlimits=rlimits))
    seen.update(order=order, kernel=resource.getrlimit(resource.RLIMIT_NPROC)[0])
    return 0
jail._launch = fake_launch
try:
    jail.launch(["--jail", {str(tmp_path / "jail")!r}, "--private", "p", "-f", {str(short / "kernel.json")!r}])
except SystemExit:
    pass
print(json.dumps(seen))
"""
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    finally:
        short.rmdir()
    seen = json.loads(out.strip().splitlines()[-1])
    outside = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    assert seen["request"]["RLIMIT_NPROC"] == Limits().pids
    assert seen["launcher"] == outside and [limit for _, limit in seen["order"]] == [outside, outside]
    assert seen["kernel"] == Limits().pids


def test_write_check_allows_only_the_submission_folders(tmp_path):
    writable, is_write = sandbox._write_checks([str(tmp_path)])
    assert writable(str(tmp_path / "a.txt")) and writable("/dev/null")
    assert not writable("/etc/passwd") and not writable(str(tmp_path) + "-sibling/x")
    assert not writable(str(tmp_path / ".." / "x"))
    assert is_write("w", None) and is_write("r+", None) and not is_write("r", 0)
    assert is_write(None, os.O_WRONLY | os.O_CREAT) and not is_write(None, os.O_RDONLY)


def test_audit_hook_lets_a_notebook_copy_data_in_but_not_out(tmp_path):
    """Reading a file from outside (shutil.copy into the folder) is allowed; writing or linking out is not."""
    folder, outside = tmp_path / "submission", tmp_path / "data.csv"
    folder.mkdir()
    outside.write_text("1,2\n")
    script = f"""
import os, shutil
from classgrade.sandboxed import kernel as sandbox
sandbox._install_audit_hook([{str(folder)!r}], os.open(os.devnull, os.O_WRONLY))
shutil.copy({str(outside)!r}, {str(folder)!r})
for attempt in (lambda: shutil.copy({str(outside)!r}, {str(tmp_path / 'copy.csv')!r}),
                lambda: os.link({str(outside)!r}, {str(folder / 'link.csv')!r})):
    try:
        attempt()
    except PermissionError as error:
        print(error)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert (folder / "data.csv").read_text() == "1,2\n"
    refused = done.stdout.splitlines()
    assert len(refused) == 2 and all("outside the submission folder" in line for line in refused), done.stdout
    assert not (tmp_path / "copy.csv").exists() and not (folder / "link.csv").exists()


def test_sanitize_restores_deleted_cells_and_replaces_broken_files(tmp_path):
    release = nbformat.read(str(HOSTILE / "submitted" / "blank" / "tiny" / "tiny.ipynb"), 4)
    shutil.copy(HOSTILE / "submitted" / "deleted_tests" / "tiny" / "tiny.ipynb", tmp_path / "tiny.ipynb")
    flags = []
    notebooks.sanitize(tmp_path / "tiny.ipynb", release, tmp_path / "baseline.json", flags)
    nb = nbformat.read(str(tmp_path / "tiny.ipynb"), 4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert [i for i in ids if i] == ["corr2d", "test_corr2d_visible", "test_corr2d_hidden",
                                     "double", "test_double"]
    assert ids[ids.index("test_corr2d_visible") + 1] is None   # its check cell
    assert sum("was deleted" in f for f in flags) == 3
    (tmp_path / "tiny.ipynb").write_text("{ not json")
    flags = []
    notebooks.sanitize(tmp_path / "tiny.ipynb", release, tmp_path / "baseline.json", flags)
    assert "not a valid notebook" in flags[0]
    assert nbformat.read(str(tmp_path / "tiny.ipynb"), 4).cells[3].source == release.cells[3].source


# --- warm kernels: forks of one interpreter that imported torch (classgrade.trusted.zygote) ----

def _cell_scores(result):
    """student -> {grade_id: auto_score} of the code cells: what the two kernel kinds must agree on."""
    return {student: {gid: cell.auto_score for nb in res.notebooks.values()
                      for gid, cell in nb.cells.items() if cell.cell_type == "code"}
            for student, res in result.results.items()}


def test_cold_kernels_grade_the_hostile_corpus_as_the_warm_ones(corpus_run, course, tmp_path):
    """The corpus run forked its kernels from the zygote; a new interpreter per kernel gives the same."""
    warm, _ = corpus_run
    assert warm.wall_seconds > 0
    Path(corpus.SECRET_FILE).write_text(SECRET)
    try:
        cold = grade_class(course, "tiny", HOSTILE / "submitted", tmp_path / "cold", workers=2,
                           timeout=TIMEOUT, memory="2G", wall=240, progress=False, warm=False)
    finally:
        Path(corpus.SECRET_FILE).unlink()
    assert _cell_scores(cold) == _cell_scores(warm)
    assert {s: sorted(r.flags) for s, r in cold.results.items()} == \
        {s: sorted(r.flags) for s, r in warm.results.items()}


ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "tests" / "submissions"


@pytest.mark.parametrize("assignment", sorted(p.name for p in SUBMISSIONS.iterdir() if p.is_dir()))
def test_warm_and_cold_kernels_grade_the_assignment_corpus_alike(assignment, tmp_path):
    """tests/submissions/<assignment>: each case scores its expected.json, warm and cold alike."""
    expected = json.loads((SUBMISSIONS / assignment / "expected.json").read_text())
    submitted = tmp_path / "submitted"
    for case in expected:
        (submitted / case / assignment).mkdir(parents=True)
        shutil.copy(SUBMISSIONS / assignment / f"{case}.ipynb", submitted / case / assignment / f"{assignment}.ipynb")
    runs = {warm: grade_class(ROOT, assignment, submitted, tmp_path / str(warm), workers=2, timeout=60,
                              memory="3G", progress=False, feedback=False, warm=warm)
            for warm in (True, False)}
    assert _cell_scores(runs[True]) == _cell_scores(runs[False])
    for case, want in expected.items():
        cells = [(gid, c) for nb in runs[True].results[case].notebooks.values() for gid, c in nb.cells.items()
                 if c.cell_type == "code"]
        failing = sorted(gid for gid, c in cells if c.auto_score < c.max_score)
        score = sum(c.auto_score for _, c in cells)
        assert (failing, score) == (sorted(want["failing"]), pytest.approx(want["score"])), case


LEAVE_STATE = """import builtins, ctypes, os, random, sys, tempfile, convlab
builtins.classgrade_leak = True                      # a global every later kernel would see
sys.modules['torch'].classgrade_leak = True          # a patched module
convlab.classgrade_leak = True
os.environ['CLASSGRADE_LEAK'] = '1'
for folder in (tempfile.gettempdir(), os.path.expanduser('~'), '.'):
    open(os.path.join(folder, 'classgrade-leak.txt'), 'w').write('left behind')
ctypes.CDLL(None).system(b'echo left behind > /tmp/classgrade-leak.txt')   # past the audit hook
random.seed(1234); torch.manual_seed(1234)"""
CHECK_STATE = """import builtins, os, random, sys, tempfile, convlab
_leaks = [name for name, found in [
    ('builtins', hasattr(builtins, 'classgrade_leak')), ('torch', hasattr(torch, 'classgrade_leak')),
    ('convlab', hasattr(convlab, 'classgrade_leak')), ('environment', 'CLASSGRADE_LEAK' in os.environ),
    ('/tmp', os.path.exists('/tmp/classgrade-leak.txt')),
    ('TMPDIR', os.path.exists(os.path.join(tempfile.gettempdir(), 'classgrade-leak.txt'))),
    ('home', os.path.exists(os.path.expanduser('~/classgrade-leak.txt'))),
    ('folder', os.path.exists('classgrade-leak.txt'))] if found]
print('leaks:', _leaks)
print('random:', random.random(), torch.rand(1).item())"""


def test_nothing_of_one_submission_reaches_the_next(course, tmp_path, capsys):
    """Graded one after another by one zygote: the second finds nothing the first left, and
    the kernels' random state is not the zygote's copy (two kernels draw different numbers)."""
    release = nbformat.read(str(HOSTILE / "submitted" / "blank" / "tiny" / "tiny.ipynb"), as_version=4)
    submitted = tmp_path / "submitted"
    for name, source in [("a_leaves_state", LEAVE_STATE + "\n" + CHECK_STATE), ("b_checks_state", CHECK_STATE),
                         ("c_checks_state", CHECK_STATE)]:
        nb = corpus.insert_after(corpus.student(release), "corr2d", source)
        (submitted / name / "tiny").mkdir(parents=True)
        nbformat.write(nb, str(submitted / name / "tiny" / "tiny.ipynb"))
    out = tmp_path / "out"
    result = grade_class(course, "tiny", submitted, out, workers=1, timeout=TIMEOUT, memory="2G",
                         progress=True, feedback=False)
    # the progress bar: submissions done, time left (after "<"), failures and those needing attention
    bar = capsys.readouterr().err
    assert re.search(r"3/3 \[[^\]]*<[^\]]*, 0 failed, \d+ need attention\]", bar), bar[-500:]
    assert {s: _score(r) for s, r in result.results.items()} == \
        {"a_leaves_state": 4, "b_checks_state": 4, "c_checks_state": 4}
    printed = {}
    for name in result.results:
        nb = nbformat.read(str(out / "autograded" / name / "tiny" / "tiny.ipynb"), as_version=4)
        printed[name] = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "leaks: ['builtins', 'torch', 'convlab', 'environment', '/tmp', 'TMPDIR', 'home', 'folder']" in printed["a_leaves_state"]
    assert "leaks: []" in printed["b_checks_state"] and "leaks: []" in printed["c_checks_state"]
    draws = {name: next(line for line in text.splitlines() if line.startswith("random:"))
             for name, text in printed.items()}
    assert draws["b_checks_state"] != draws["c_checks_state"]


def _answered(assignment):
    """The release of ``assignment`` with the solution's code in its answer cells: a correct
    submission of the current release (nothing restored, nothing flagged)."""
    nb = nbformat.read(str(ROOT / "exercises" / assignment / f"{assignment}.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "solutions" / assignment / f"{assignment}.ipynb"), as_version=4)
    answers = {c.metadata.nbgrader.grade_id: c.source for c in source.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def _hand_in(submitted, assignment, name, nb):
    (submitted / name / assignment).mkdir(parents=True)
    nbformat.write(nb, str(submitted / name / assignment / f"{assignment}.ipynb"))


def _with_cell(nb, grade_id, source):
    """A copy of ``nb`` whose solution cell ``grade_id`` holds ``source``."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells[corpus.find(nb, grade_id)].source = source
    return nb


# Part A's corr2d returns zeros (wrong), Part B's conv2d is right; each cell below, put after
# corr2d, tampers with the checks so that the zeros would pass in the kernel.
ZEROS = '''def corr2d(X, K):
    """Zeros of the right shape: wrong values."""
    return torch.zeros(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1, dtype=X.dtype)'''
TAMPERING = {
    "fail_is_a_no_op": """from convlab import grading
grading._fail = lambda message, cause=None: None""",
    "check_code_replaced": """from convlab import grading
grading.check_result.__code__ = (lambda got, expected, *, case, atol=1e-5, rtol=1e-4, dtype=True, given=None: None).__code__""",
    "tolerances_in_kwdefaults": """from convlab import grading
grading.check_result.__kwdefaults__ = dict(grading.check_result.__kwdefaults__, atol=1e9, rtol=1e9)
grading.check_against.__kwdefaults__ = dict(grading.check_against.__kwdefaults__, atol=1e9, rtol=1e9)""",
    "module_replaced": """import sys, types, convlab
fake = types.ModuleType("convlab.grading")
for name in ("check_result", "check_against", "check_equal", "check_raises", "call", "check_no_delegation"):
    setattr(fake, name, lambda *args, **kwargs: None)
fake.describe = lambda **inputs: "a case"
fake.random_cases = lambda *args, **kwargs: []
sys.modules["convlab.grading"] = convlab.grading = fake""",
    "verdict_rewritten_on_stdout": """import sys
from convlab import grading
grading.check_result = lambda *args, **kwargs: None
class Rewrite:
    def __init__(self, inner):
        self.inner = inner
    def write(self, text):
        return self.inner.write(text.split(": modified")[0] + ": ok" if ": modified" in text else text)
    def __getattr__(self, name):
        return getattr(self.inner, name)
sys.stdout = Rewrite(sys.stdout)""",
    "tensor_subclass_agrees": """class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        result = super().__torch_function__(func, types, args, kwargs or {})
        if func is torch.isclose:
            return torch.ones_like(result)
        return result
_zeros = corr2d
def corr2d(X, K):
    return _zeros(X, K).as_subclass(Agreeable)""",
    "errors_dropped_by_the_session": corpus.QUIET_SESSION,
}


def test_tampering_with_the_checks_earns_only_what_the_values_earn(tmp_path):
    """Each tampering makes wrong values pass in the kernel; the replay (or the fingerprints) takes the
    points back, and correct submissions graded before and after keep all of theirs."""
    correct = _answered("cross_correlation")
    submitted = tmp_path / "submitted"
    _hand_in(submitted, "cross_correlation", "aa_correct_before", correct)
    _hand_in(submitted, "cross_correlation", "zz_correct_after", correct)
    for name, source in TAMPERING.items():
        nb = nbformat.from_dict(json.loads(json.dumps(correct)))
        at = corpus.find(nb, "corr2d")
        nb.cells[at].source = nb.cells[at].source.split("def corr2d")[0] + ZEROS
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source))
        _hand_in(submitted, "cross_correlation", name, nb)
    result = grade_class(ROOT, "cross_correlation", submitted, tmp_path / "out", workers=2, timeout=60,
                         memory="3G", progress=False, feedback=False)
    assert result.unconfirmed == []
    scores = _cell_scores(result)
    part_a = ("test_corr2d_visible", "test_corr2d_hidden")
    for name in ("aa_correct_before", "zz_correct_after"):
        assert sum(scores[name].values()) == 6 and not result.results[name].flags, name
    for name in TAMPERING:
        flags = result.results[name].flags
        assert [scores[name][gid] for gid in part_a] == [0, 0], (name, flags)
        for gid in part_a:
            assert any(f"'{gid}'" in f and ("does not confirm" in f or "modified checking code" in f)
                       for f in flags), (name, gid, flags)
    # conv2d is right, but a tampering that runs at the top level of a cell reaches conv2d's checks too:
    # the grader's reading of the source withholds Part B for the instructor to grade by hand, where the
    # replay (or the fingerprints) did not already take it. The tensor subclass is used by corr2d alone.
    assert {name: sum(scores[name].values()) for name in TAMPERING} == \
        dict.fromkeys(TAMPERING, 0) | {"tensor_subclass_agrees": 2}
    for name in set(TAMPERING) - {"tensor_subclass_agrees"}:
        flags = result.results[name].flags
        assert all(any(f"'{gid}'" in f for f in flags) for gid in ("test_conv2d_visible", "test_conv2d_hidden")), flags
    assert any("grade this test by hand" in f for name in TAMPERING for f in result.results[name].flags)
    replay_only = [name for name in TAMPERING if any("does not confirm" in f for f in result.results[name].flags)
                   and not any("modified checking code" in f for f in result.results[name].flags)]
    print("caught by the replay alone:", replay_only)
    assert set(replay_only) == set(TAMPERING) - {"module_replaced"}   # the fingerprints missed these


# Forged reports (tests/classgrade_corpus.py): code that makes every check pass in nbgrader's kernel,
# by each route that runs code as a notebook defines or loads things, with all-zero answers; and a
# route that tells the replay from the kernel and delegates there (cross_correlation forbids it).
ALL_ZEROS = {"corr2d": ZEROS, "conv2d": "def conv2d(X, K):\n    return corr2d(X, K)"}
FORGED_REPORTS = dict(corpus.FORGED_REPORTS, replay_told_apart_then_delegating=f"""{corpus.FORGE}
import convlab
try:
    get_ipython().kernel
except AttributeError:
    corr2d = convlab.corr2d
    conv2d = convlab.conv2d""")


def test_forged_reports_earn_nothing(tmp_path):
    """All-zero answers forge a pass of every test in nbgrader's kernel, by each route; none earns a point,
    and correct submissions graded in the same run keep all of theirs."""
    correct = _answered("cross_correlation")
    submitted = tmp_path / "submitted"
    _hand_in(submitted, "cross_correlation", "aa_correct_before", correct)
    _hand_in(submitted, "cross_correlation", "zz_correct_after", correct)
    for name, source in FORGED_REPORTS.items():
        nb = correct
        for grade_id, zeros in ALL_ZEROS.items():
            nb = _with_cell(nb, grade_id, zeros)
        nb.cells.insert(corpus.find(nb, "corr2d") + 1, nbformat.v4.new_code_cell(source))
        _hand_in(submitted, "cross_correlation", name, nb)
    result = grade_class(ROOT, "cross_correlation", submitted, tmp_path / "out", workers=2, timeout=60,
                         memory="3G", progress=False, feedback=False)
    assert result.unconfirmed == []
    scores = _cell_scores(result)
    for name in ("aa_correct_before", "zz_correct_after"):
        assert sum(scores[name].values()) == 6 and not result.results[name].flags, name
    forged_in_the_kernel = {}
    for name in FORGED_REPORTS:
        flags = result.results[name].flags
        assert sum(scores[name].values()) == 0, (name, flags)
        forged_in_the_kernel[name] = sorted(gid for gid in scores[name] if any(
            f"test '{gid}' passed in the kernel" in f or f"test '{gid}' ran with modified checking code" in f
            for f in flags))
    # every route did forge nbgrader's verdict (its tests passed in the kernel), and lost the points outside
    # (the IPython hook also to the fingerprints, which see shell.events changed)
    assert forged_in_the_kernel == dict.fromkeys(FORGED_REPORTS, sorted(scores["aa_correct_before"])), \
        forged_in_the_kernel


# Right values by a forbidden route, hidden from the in-kernel watch (TorchFunctionMode and profiler):
# each passes in the kernel; the grader's reading of the source (classgrade.trusted.audit) takes Part A.
HIDDEN_DELEGATION = {
    "aten_op_below_the_mode": '''def corr2d(X, K):
    """F.conv2d's own ATen operator, which no TorchFunctionMode sees."""
    out = torch.ops.aten.convolution.default(X[None, None], K[None, None], None, [1, 1], [0, 0], [1, 1],
                                             False, [0, 0], 1)
    return out[0, 0]''',
    "torch_function_disabled": '''import torch.nn.functional as F
def corr2d(X, K):
    with torch._C.DisableTorchFunction():
        return F.conv2d(X[None, None], K[None, None])[0, 0]''',
    "profiler_off_then_convlab": '''import sys
import convlab
def corr2d(X, K):
    sys.setprofile(None)
    return convlab.corr2d(X, K)''',
    "computed_names": '''import torch.nn.functional as F
def corr2d(X, K):
    off = getattr(torch._C, "Disable" + "TorchFunction")
    with off():
        return getattr(F, "conv" + "2d")(X[None, None], K[None, None])[0, 0]''',
    "helper_through_module_dict": '''import torch.nn.functional as F
def window_sums(X, K):
    with torch._C.DisableTorchFunction():
        return F.__dict__["conv" "2d"](X[None, None], K[None, None])[0, 0]
def corr2d(X, K):
    return window_sums(X, K)''',
}
# Part B's pad2d, right but one torch call per pixel, with the call counter switched off.
UNCOUNTED_LOOP = '''def pad2d(X, padding):
    """Pixel by pixel, uncounted."""
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    with torch._C.DisableTorchFunction():
        Y = torch.zeros(X.shape[0] + 2 * ph, X.shape[1] + 2 * pw, dtype=X.dtype)
        for i in range(X.shape[0]):
            for j in range(X.shape[1]):
                Y[i + ph, j + pw] = X[i, j]
    return Y'''


def test_hiding_a_delegation_or_a_call_count_from_the_kernel_earns_nothing(tmp_path):
    """Each route passes the delegation or call-count check in the kernel; the grader's reading of the source
    removes that part's points only, and correct submissions graded before and after keep all of theirs."""
    submitted = tmp_path / "submitted"
    correct = _answered("cross_correlation")
    _hand_in(submitted, "cross_correlation", "aa_correct_before", correct)
    _hand_in(submitted, "cross_correlation", "zz_correct_after", correct)
    for name, source in HIDDEN_DELEGATION.items():
        _hand_in(submitted, "cross_correlation", name, _with_cell(correct, "corr2d", source))
    result = grade_class(ROOT, "cross_correlation", submitted, tmp_path / "out", workers=2, timeout=60,
                         memory="3G", progress=False, feedback=False)
    scores = _cell_scores(result)
    for name in ("aa_correct_before", "zz_correct_after"):
        assert sum(scores[name].values()) == 6 and not result.results[name].flags, name
    for name in HIDDEN_DELEGATION:
        flags = result.results[name].flags
        for gid in ("test_corr2d_visible", "test_corr2d_hidden"):
            # "passed in the kernel": the route did get past the in-kernel watch; the source reading did not
            assert scores[name][gid] == 0 and any(
                f"test '{gid}' passed in the kernel, but the grader" in f for f in flags), (name, gid, flags)
        assert sum(scores[name].values()) == 2, (name, flags)   # Part B is right, and its own
    by_hand = {name for name in HIDDEN_DELEGATION
               if any("grade this test by hand" in f for f in result.results[name].flags)}
    assert by_hand == {"computed_names", "helper_through_module_dict"}   # no forbidden name to point at

    submitted = tmp_path / "shapes"
    correct = _answered("shapes_padding_stride")
    _hand_in(submitted, "shapes_padding_stride", "aa_correct", correct)
    _hand_in(submitted, "shapes_padding_stride", "uncounted_loop", _with_cell(correct, "pad2d", UNCOUNTED_LOOP))
    result = grade_class(ROOT, "shapes_padding_stride", submitted, tmp_path / "shapes_out", workers=2,
                         timeout=60, memory="3G", progress=False, feedback=False)
    scores = _cell_scores(result)
    assert sum(scores["aa_correct"].values()) == 10 and not result.results["aa_correct"].flags
    flags = result.results["uncounted_loop"].flags
    part_b = ("test_pad2d_visible", "test_pad2d_hidden", "test_pad2d_vectorized")
    assert all(any(f"test '{gid}' passed in the kernel" in f and "torch._C" in f for f in flags) for gid in part_b), flags
    # Part C's corr2d runs with the reference pad2d: the loop costs Part B only
    assert {gid: s for gid, s in scores["uncounted_loop"].items() if s == 0} == dict.fromkeys(part_b, 0), flags


# --- what a sandbox sees of classgrade: __init__.py, protocol.py, sandboxed/; never trusted/ ----

TRUSTED = sorted(str(p) for p in (Path(jail.PACKAGE) / "trusted").rglob("*") if p.is_file()) + \
    [str(Path(jail.PACKAGE) / "__main__.py")]
READ_THE_GRADER = f"""import importlib, os
read, listed = [], []
for path in {TRUSTED!r}:
    try:
        read.append((path, len(open(path, 'rb').read())))
    except OSError:
        pass
try:
    listed = os.listdir({str(Path(jail.PACKAGE) / 'trusted')!r})
except OSError:
    pass
try:
    importlib.import_module('classgrade.trusted.audit')
    trusted_import = 'imported'
except ImportError as error:
    trusted_import = 'refused'
import classgrade.sandboxed.kernel
print('grader read:', read, listed, trusted_import, classgrade.sandboxed.kernel.__name__)
"""


def test_a_kernel_cannot_read_the_grader_s_trusted_modules(course, tmp_path):
    """In a graded notebook: no file of classgrade/trusted/ (nor __main__.py) can be read or listed,
    nor imported, while classgrade.sandboxed.kernel imports; the notebook keeps its points."""
    assert len(TRUSTED) > 10
    release = nbformat.read(str(HOSTILE / "submitted" / "blank" / "tiny" / "tiny.ipynb"), as_version=4)
    submitted = tmp_path / "submitted"
    _hand_in(submitted, "tiny", "reads_the_grader", corpus.insert_after(corpus.student(release), "corr2d",
                                                                          READ_THE_GRADER))
    out = tmp_path / "out"
    result = grade_class(course, "tiny", submitted, out, workers=1, timeout=TIMEOUT, memory="2G",
                         progress=False, feedback=False)
    assert _score(result.results["reads_the_grader"]) == 4, result.results["reads_the_grader"].flags
    said = _outputs(out, "reads_the_grader")
    assert "grader read: [] [] refused classgrade.sandboxed.kernel" in said, said


def test_installed_into_site_packages_the_trusted_side_is_covered_too(tmp_path, monkeypatch):
    """classgrade under a bound tree (as in site-packages, here the repository bound whole):
    an empty tmpfs covers the package, and only the visible parts are bound on it."""
    root = str(Path(jail.PACKAGE).parent)
    trees = jail._python_trees() | {root}
    monkeypatch.setattr(jail, "_python_trees", lambda: trees)
    jail.write_jail(tmp_path / "jail")
    folders = [tmp_path / name for name in ("cwd", "private", "runtime")]
    for folder in folders:
        folder.mkdir()
    jail.write_private(folders[1])
    (folders[2] / "kernel.json").write_text("{}")
    args = jail.bwrap_argv(cwd=folders[0], private=folders[1], connection_file=folders[2] / "kernel.json",
                           jail=tmp_path / "jail", command=[sys.executable, "-c", READ_THE_GRADER])
    assert ["--tmpfs", os.path.realpath(jail.PACKAGE)] == args[args.index("--tmpfs", args.index(root)):][:2]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert "grader read: [] [] refused classgrade.sandboxed.kernel" in done.stdout, done.stdout + done.stderr
    assert os.path.exists(os.path.join(root, "README.md"))   # the rest of the bound tree is there...
    seen = subprocess.run(args[:-3] + ["/bin/ls", root], capture_output=True, text=True, timeout=60).stdout
    assert "README.md" in seen.split()                       # ...and visible inside


# --- bounded on the grader's side: a kernel's outputs, and what the sandbox writes to stderr ----

def test_what_the_sandbox_writes_to_stderr_stays_in_the_submission_s_record(corpus_run):
    """os.write(2, ...) at the top level and from a thread: in the record, its last 64 KiB."""
    result, _ = corpus_run
    said = result.results["stderr_writer"].kernel_output
    assert f"{corpus.STDERR_MARK} last" in said and f"{corpus.STDERR_MARK} top level" not in said
    assert said.startswith("[classgrade: the first ") and len(said) <= 64 * 2**10 + 100
    assert not any(corpus.STDERR_MARK in r.kernel_output for s, r in result.results.items() if s != "stderr_writer")


def test_a_flood_of_output_is_cut_in_the_grader_and_stderr_never_reaches_its_terminal(course, tmp_path, capfd,
                                                                                       monkeypatch):
    """300 MB printed: the grading process stays small, the cell keeps 1 MiB and says how much was
    left out, the report names it; a submission's stderr, written at the top level and from a
    thread, is in its record and not on the grader's own stderr."""
    release = nbformat.read(str(HOSTILE / "submitted" / "blank" / "tiny" / "tiny.ipynb"), as_version=4)
    submitted = tmp_path / "submitted"
    _hand_in(submitted, "tiny", "floods", corpus.insert_after(corpus.student(release), "corr2d",
                                                               corpus.PRINT_FLOOD % 300))
    _hand_in(submitted, "tiny", "writes_stderr", corpus.insert_after(corpus.student(release), "corr2d",
                                                                      corpus.STDERR_WRITER))
    grade_one = worker.grade_one

    def measured(job):   # in the grading process (a fork of this one): how much it grew
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        res = grade_one(job)
        res.timings["grew_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
        return res

    monkeypatch.setattr(worker, "grade_one", measured)
    out = tmp_path / "out"
    result = grade_class(course, "tiny", submitted, out, workers=2, timeout=120, memory="2G",
                         progress=False, feedback=False)
    floods, writes = result.results["floods"], result.results["writes_stderr"]
    assert _score(floods) == 4 and _score(writes) == 4 and writes.flags == []
    assert floods.timings["grew_kib"] < 600 * 2**10, floods.timings
    assert [f for f in floods.flags if "classgrade left out" in f and "bytes of this cell's output" in f], floods.flags
    nb = nbformat.read(str(out / "autograded" / "floods" / "tiny" / "tiny.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "print(chunk, flush=True)" in c.source)
    kept = sum(len(o.get("text", "")) for o in cell.outputs)
    assert 2**20 - 2**17 < kept < 2**20 + 2**12, kept
    assert int(cell.outputs[-1]["text"].split()[3]) > 250 * 2**20   # classgrade left out N bytes...
    assert "classgrade left out" in (out / "report.md").read_text()
    assert f"{corpus.STDERR_MARK} last" in writes.kernel_output
    grader = capfd.readouterr()
    assert corpus.STDERR_MARK not in grader.err and corpus.STDERR_MARK not in grader.out
