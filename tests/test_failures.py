"""One-line failures of ``python -m classgrade grade``: every mistake an instructor can make.

A table of bad inputs (paths, the assignment's name, the course folder, the output folder,
option values, database URLs and drivers, PostgreSQL servers, a scheduler, a gradebook in use),
each run through the command line (``classgrade.trusted.cli.main``, or a process of its own where
the process matters: another user, the scheduler's client logging), with its exit code and the
words of its message. Each must end in exactly one line on stderr, ``classgrade: ...``, with no
traceback, no password, and nothing graded. Then two runs at once on a new PostgreSQL gradebook
(a class of 2 notebooks): one grades, the other refuses in one line (or both grade), and no
UniqueViolation. The PostgreSQL cases use a real server (``tests/classgrade_postgres.py``).
"""
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from classgrade.trusted import cluster, database, preflight
from classgrade.trusted.cli import main as classgrade_main
from classgrade.trusted.errors import EXIT_CODE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classgrade_postgres import postgres_server  # noqa: E402

HOSTILE = Path(__file__).resolve().parent / "hostile"
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cr3t-Pw"


def _closed_port():
    """A local TCP port that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def place():
    """A folder with the tiny course
    (tests/hostile/course) and a class of 2 submissions in nbgrader's layout."""
    root = Path(tempfile.mkdtemp(prefix="classgrade-failures-"))
    os.chmod(root, 0o755)
    shutil.copytree(HOSTILE / "course", root / "course")
    for case in ("correct", "partial"):
        shutil.copytree(HOSTILE / "submitted" / case, root / "submitted" / case)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def argv(place, out, *extra, assignment="tiny", submissions=None, course=None):
    return ["grade", assignment, str(submissions or place / "submitted"), "--course", str(course or place / "course"),
            "--out", str(out), "--workers", "1", "--timeout", "20", "--memory", "2G", "--no-progress",
            "--no-feedback", "--cold", *extra]


def one_line(stderr, *words, secret=PASSWORD):
    """The message: one line, ``classgrade: ...``, holding ``words``, without ``secret``."""
    lines = stderr.splitlines()
    assert len(lines) == 1, f"not one line:\n{stderr}"
    assert lines[0].startswith("classgrade: ") and "Traceback" not in stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in: {lines[0]}"
    assert secret not in stderr
    return lines[0]


# ---- the table: case -> (its argv from (place, tmp), the exit code, the words of its one line) ----

def _bad_zip(place, tmp):
    (tmp / "canvas.zip").write_bytes(b"PK\x03\x04 this is not a zip file")
    return argv(place, tmp / "out", submissions=tmp / "canvas.zip")


def _damaged_zip(place, tmp):
    with zipfile.ZipFile(tmp / "canvas.zip", "w", zipfile.ZIP_STORED) as z:
        z.writestr("alice_1_2_tiny.ipynb", "x" * 1000)
    data = bytearray((tmp / "canvas.zip").read_bytes())
    data[data.index(b"x" * 1000) + 500] = ord("y")   # one byte of the member changed: its CRC fails
    (tmp / "canvas.zip").write_bytes(bytes(data))
    return argv(place, tmp / "out", submissions=tmp / "canvas.zip")


def _text_file(place, tmp):
    (tmp / "grades.txt").write_text("alice 3\n")
    return argv(place, tmp / "out", submissions=tmp / "grades.txt")


def _course_copy(place, tmp, edit):
    course = tmp / "course"
    shutil.copytree(place / "course", course)
    edit(course)
    return argv(place, tmp / "out", course=course)


def _file_as_out(place, tmp):
    (tmp / "out").write_text("not a folder")
    return argv(place, tmp / "out")


CASES = {
    "submissions missing": (lambda p, t: argv(p, t / "out", submissions=t / "nothing-here"),
                            EXIT_CODE, ["submissions", "nothing-here", "no such file or folder"]),
    "submissions a file that is not a zip": (_bad_zip, EXIT_CODE, ["canvas.zip", "neither a folder nor a readable zip file"]),
    "submissions a text file": (_text_file, EXIT_CODE, ["grades.txt", "neither a folder nor a readable zip file"]),
    "submissions a damaged zip": (_damaged_zip, EXIT_CODE, ["the zip file is damaged", "alice_1_2_tiny.ipynb", "download it again"]),
    "submissions a device": (lambda p, t: argv(p, t / "out", submissions="/dev/null"),
                             EXIT_CODE, ["/dev/null", "neither a folder nor a zip file"]),
    "assignment unknown": (lambda p, t: argv(p, t / "out", assignment="cross_corelation"),
                           EXIT_CODE, ["no assignment 'cross_corelation'", "its assignments: tiny"]),
    "assignment a path": (lambda p, t: argv(p, t / "out", assignment="../course"),
                          EXIT_CODE, ["no assignment '../course'", "its assignments: tiny"]),
    "assignment without notebooks": (
        lambda p, t: _course_copy(p, t, lambda c: [f.unlink() for f in (c / "solutions" / "tiny").glob("*.ipynb")]),
        EXIT_CODE, ["source of assignment 'tiny'", "holds no notebook"]),
    "course folder missing": (lambda p, t: argv(p, t / "out", course=t / "no-course"),
                              EXIT_CODE, ["course folder", "no such folder", "nbgrader_config.py"]),
    "course without nbgrader_config.py": (lambda p, t: _course_copy(p, t, lambda c: (c / "nbgrader_config.py").unlink()),
                                          EXIT_CODE, ["holds no nbgrader_config.py", "--course"]),
    "course config broken": (
        lambda p, t: _course_copy(p, t, lambda c: (c / "nbgrader_config.py").write_text("c = get_config(\n")),
        EXIT_CODE, ["nbgrader_config.py cannot be read", "SyntaxError", "correct it"]),
    "course without its source folder": (
        lambda p, t: _course_copy(p, t, lambda c: shutil.rmtree(c / "solutions")),
        EXIT_CODE, ["source folder", "solutions", "does not exist"]),
    "out a file": (_file_as_out, EXIT_CODE, ["--out", "a file, not a folder"]),
    "out inside a file": (lambda p, t: (t.joinpath("f").write_text(""), argv(p, t / "f" / "out"))[1],
                          EXIT_CODE, ["--out", "cannot write there", "Not a directory"]),
    "workers 0": (lambda p, t: argv(p, t / "out") + ["--workers", "0"], EXIT_CODE, ["--workers 0", "greater than 0"]),
    "workers negative": (lambda p, t: argv(p, t / "out") + ["--workers", "-2"], EXIT_CODE, ["--workers -2", "greater than 0"]),
    "workers not a number": (lambda p, t: argv(p, t / "out") + ["--workers", "two"], EXIT_CODE, ["--workers", "'two'", "--help"]),
    "timeout -1": (lambda p, t: argv(p, t / "out") + ["--timeout", "-1"], EXIT_CODE, ["--timeout -1", "greater than 0"]),
    "timeout 0": (lambda p, t: argv(p, t / "out") + ["--timeout", "0"], EXIT_CODE, ["--timeout 0", "greater than 0"]),
    "wall 0": (lambda p, t: argv(p, t / "out") + ["--wall", "0"], EXIT_CODE, ["--wall 0", "greater than 0"]),
    "memory abc": (lambda p, t: argv(p, t / "out") + ["--memory", "abc"], EXIT_CODE, ["memory must be a number of bytes", "'abc'"]),
    "memory negative": (lambda p, t: argv(p, t / "out") + ["--memory=-1G"], EXIT_CODE, ["memory must be", "'-1G'"]),
    "memory nan": (lambda p, t: argv(p, t / "out") + ["--memory", "nan"], EXIT_CODE, ["memory must be", "'nan'"]),
    "unknown option": (lambda p, t: argv(p, t / "out") + ["--wrokers", "2"], EXIT_CODE, ["unrecognized arguments: --wrokers", "--help"]),
    "db url not a URL": (lambda p, t: argv(p, t / "out", "--db-url", "gradebook"), EXIT_CODE, ["--db-url gradebook", "not a database URL"]),
    "db url port not a number": (
        lambda p, t: argv(p, t / "out", "--db-url", f"postgresql://teacher:{PASSWORD}@localhost:54x/gb"),
        EXIT_CODE, ["not a database URL", "port is not a number", "teacher:***@"]),
    "db url postgres://": (lambda p, t: argv(p, t / "out", "--db-url", f"postgres://teacher:{PASSWORD}@h/gb"),
                           EXIT_CODE, ["write postgresql://, not postgres://"]),
    "db url mysql": (lambda p, t: argv(p, t / "out", "--db-url", f"mysql://teacher:{PASSWORD}@h/gb"),
                     EXIT_CODE, ["a mysql gradebook is not supported", "postgresql://"]),
    "db url async driver": (lambda p, t: argv(p, t / "out", "--db-url", "postgresql+asyncpg://h/gb"),
                            EXIT_CODE, ["the driver asyncpg is not supported", "postgresql://"]),
    "db url unknown driver": (lambda p, t: argv(p, t / "out", "--db-url", "postgresql+nodriver://h/gb"),
                              EXIT_CODE, ["the driver nodriver is not supported"]),
    "db url @ in password": (lambda p, t: argv(p, t / "out", "--db-url", f"postgresql://teacher:{PASSWORD}@x@h/gb"),
                             EXIT_CODE, ["teacher:***@h/gb", "an @ in the password", "%40"]),
    "db url / and @ in password": (lambda p, t: argv(p, t / "out", "--db-url", f"postgresql://teacher:a/{PASSWORD}@h/gb"),
                                   EXIT_CODE, ["teacher:***@h/gb"]),
    "db url sqlite in memory": (lambda p, t: argv(p, t / "out", "--db-url", "sqlite://"), EXIT_CODE, ["in-memory", "give a file"]),
    "db url sqlite folder missing": (lambda p, t: argv(p, t / "out", "--db-url", f"sqlite:///{t}/no/such/gb.db"),
                                     EXIT_CODE, ["cannot write in", "no/such"]),
    "db url sqlite a folder": (lambda p, t: argv(p, t / "out", "--db-url", f"sqlite:///{t}"), EXIT_CODE, ["is not a file"]),
    "scheduler not an address": (lambda p, t: argv(p, t / "out", "--scheduler", "head"),
                                 EXIT_CODE, ["--scheduler head: not a scheduler's address", "tcp://HOST:PORT"]),
    "postgresql unreachable": (
        lambda p, t: argv(p, t / "out", "--db-url", f"postgresql://teacher:{PASSWORD}@127.0.0.1:{_closed_port()}/gb"),
        EXIT_CODE, ["cannot reach the PostgreSQL server", "teacher:***@127.0.0.1", "Connection refused", "host and port"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_mistake_ends_in_one_line(case, place, tmp_path, capfd):
    make, code, words = CASES[case]
    args = make(place, tmp_path)
    assert classgrade_main(args) == code
    captured = capfd.readouterr()
    one_line(captured.err, *words)
    assert captured.out == ""
    out = Path(args[args.index("--out") + 1])
    assert not (out / "grades.csv").exists() and not (out / "gradebook.db").exists()


def test_a_missing_driver_names_the_pip_command(place, tmp_path, capfd, monkeypatch):
    """The documented postgresql:// URL needs psycopg 3: without it, the pip command."""
    monkeypatch.setitem(sys.modules, "psycopg", None)   # what `import psycopg` sees when it is not installed
    assert classgrade_main(argv(place, tmp_path / "out", "--db-url", "postgresql://teacher@h/gb")) == EXIT_CODE
    one_line(capfd.readouterr().err, "its driver psycopg is not installed", "pip install 'psycopg[binary]==3.3.9'")


def test_the_output_folder_in_use_is_refused(place, tmp_path, capfd):
    """A run holding the output folder (its lock file) makes the next one refuse, naming it."""
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / preflight.LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 4242 on head, since earlier\n")
        held.flush()
        assert classgrade_main(argv(place, tmp_path / "out")) == EXIT_CODE
        one_line(capfd.readouterr().err, "output folder", "in use by another classgrade run",
                 "pid 4242 on head", "refuses rather than waits")
    assert not (tmp_path / "out" / "gradebook.db").exists()


def test_a_sqlite_gradebook_in_use_is_refused(place, tmp_path, capfd):
    db = tmp_path / "shared.db"
    with open(tmp_path / "shared.db.classgrade-lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert classgrade_main(argv(place, tmp_path / "out", "--db-url", f"sqlite:///{db}")) == EXIT_CODE
        one_line(capfd.readouterr().err, f"the gradebook {db}", "in use by another classgrade run",
                 "another --db-url")
    assert not db.exists()


def _unprivileged(place, args):
    """Run the command line as a user without the power to read and write everything: as root
    (CI), with every capability dropped (setpriv), so that file permissions hold for it too."""
    drop = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
    return subprocess.run([*drop, sys.executable, "-m", "classgrade", *args], capture_output=True, text=True,
                          cwd=place, timeout=120)


@pytest.mark.parametrize("what", ["submissions", "out"])
def test_a_folder_the_user_cannot_read_or_write(what, place):
    """A folder without the permission (the process matters: root may read and write anything)."""
    folder = Path(tempfile.mkdtemp(prefix=f"unreadable-{what}-", dir=place))
    if what == "submissions":
        shutil.copytree(place / "submitted", folder, dirs_exist_ok=True)
        os.chmod(folder, 0o000)
        args, words = argv(place, place / "never", submissions=folder), ["not readable by you", "chmod"]
    else:
        os.chmod(folder, 0o555)
        args, words = argv(place, folder / "out"), ["--out", "cannot write there", "Permission denied"]
    done = _unprivileged(place, args)
    assert done.returncode == EXIT_CODE, done.stderr
    one_line(done.stderr, *words)
    os.chmod(folder, 0o755)


def test_an_unreachable_scheduler_fails_within_its_timeout(place, tmp_path):
    """A closed local port: one line after the documented connect timeout, not 60 s and 53 lines.
    A process of its own: distributed logs to the process's stderr."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "classgrade",
                           *argv(place, tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{_closed_port()}")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == EXIT_CODE, done.stderr
    one_line(done.stderr, "cannot reach the Dask scheduler", f"within {cluster.CONNECT_TIMEOUT} s",
             "dask scheduler")
    assert elapsed < cluster.CONNECT_TIMEOUT + 20, elapsed   # the timeout, plus starting Python on a busy machine


# ---- a real PostgreSQL server --------------------------------------------------------------

@pytest.fixture(scope="module")
def postgres():
    """A server with the empty database 'gradebook', open to 'postgres' without a password (trust)
    and to 'teacher' with the password PASSWORD only; its URL as documented (postgresql://, psycopg 3)."""
    import psycopg
    with postgres_server() as url:
        url = url.replace("postgresql+psycopg2://", "postgresql://")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE ROLE teacher LOGIN PASSWORD '{PASSWORD}'")
            conn.execute("GRANT ALL ON DATABASE gradebook TO teacher")
            hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
            hba.write_text("host all teacher 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        yield url


def _teacher(url, password, database="gradebook"):
    return url.replace("postgres@", f"teacher:{password}@").rsplit("/", 1)[0] + "/" + database


PG_CASES = {
    "password wrong": (lambda url: _teacher(url, PASSWORD + "x"),
                       EXIT_CODE, ["PostgreSQL refused the login", "password authentication failed", "teacher:***@"]),
    "user unknown": (lambda url: url.replace("postgres@", "nosuchuser@"),
                     EXIT_CODE, ["PostgreSQL refused the login", "nosuchuser", "user name and password"]),
    "database missing": (lambda url: _teacher(url, PASSWORD, "nosuchdb"),
                         EXIT_CODE, ["the database 'nosuchdb'", "does not exist", "createdb nosuchdb", "teacher:***@"]),
}


@pytest.mark.parametrize("case", list(PG_CASES))
def test_a_postgresql_problem_ends_in_one_line(case, postgres, place, tmp_path, capfd):
    make, code, words = PG_CASES[case]
    assert classgrade_main(argv(place, tmp_path / "out", "--db-url", make(postgres))) == code
    one_line(capfd.readouterr().err, *words)


def test_a_postgresql_gradebook_in_use_is_refused(postgres, place, tmp_path, capfd):
    """A connection holding the gradebook's advisory lock: the run refuses at once and names it."""
    import psycopg
    with psycopg.connect(_teacher(postgres, PASSWORD), autocommit=True,
                         application_name="classgrade tiny pid 77 on head") as held:
        assert held.execute("SELECT pg_try_advisory_lock(%s, %s)", database.LOCK_KEYS).fetchone()[0]
        assert classgrade_main(argv(place, tmp_path / "out", "--db-url", _teacher(postgres, PASSWORD))) == EXIT_CODE
        one_line(capfd.readouterr().err, "the gradebook postgresql://teacher:***@", "in use by another classgrade run",
                 "classgrade tiny pid 77 on head, since ", "refuses rather than waits")
        tables = held.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert tables == 0   # nothing created


# Appended to the course's nbgrader_config.py for the race: a run reads it once before its kernels
# start and again just before it locks and creates the gradebook; there, each run waits until the
# same instant, so that both then create the gradebook at once (the race the lock prevents)
BARRIER = """
import builtins, time
builtins.classgrade_config_reads = getattr(builtins, "classgrade_config_reads", 0) + 1
if builtins.classgrade_config_reads >= 2:
    time.sleep(max(0.0, {at!r} - time.time()))
"""


@pytest.mark.grading
def test_two_runs_at_once_on_a_new_postgresql_gradebook(postgres, place, tmp_path):
    """Both come to the empty database at the same instant (the race that ended in a
    UniqueViolation): each grades, or refuses in one line; at least one grades; the gradebook
    holds the class; the lock is released with the run."""
    import psycopg
    url = postgres.rsplit("/", 1)[0] + "/race"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("CREATE DATABASE race")
    course = tmp_path / "course"
    shutil.copytree(place / "course", course)
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(BARRIER.format(at=time.time() + 20))
    procs = [subprocess.Popen([sys.executable, "-m", "classgrade",
                               *[a for a in argv(place, tmp_path / f"out{i}", "--db-url", url, course=course) if a != "--cold"]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for i in range(2)]
    done = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    for code, out, err in done:
        assert "UniqueViolation" not in err and "Traceback" not in err, err
        assert code in (0, EXIT_CODE), err
        if code == EXIT_CODE:
            one_line(err, "the gradebook postgresql://postgres@", "in use by another classgrade run")
    assert 0 in [code for code, _, _ in done], done
    with psycopg.connect(url, autocommit=True) as conn:
        students = {row[0] for row in conn.execute("SELECT student_id FROM submitted_assignment")}
        assert students == {"correct", "partial"}
        assert conn.execute("SELECT pg_try_advisory_lock(%s, %s)", database.LOCK_KEYS).fetchone()[0]


    # the source's test cells changed after grading: refused, in one line, before grading
    notebook = course / "solutions" / "tiny" / "tiny.ipynb"
    notebook.write_text(notebook.read_text().replace('"grade_id": "test_double"', '"grade_id": "test_twice"'))
    (course / "nbgrader_config.py").write_text((place / "course" / "nbgrader_config.py").read_text())
    again = subprocess.run([sys.executable, "-m", "classgrade", *argv(place, tmp_path / "again", "--db-url", url,
                                                                     course=course)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == EXIT_CODE, again.stderr
    one_line(again.stderr, "the source changed since", "test 'test_double' removed from the source",
             "--regrade-all")
    assert not (tmp_path / "again" / "autograded").exists()
