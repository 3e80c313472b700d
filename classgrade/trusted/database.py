"""The gradebook's database: checked, and locked for the run, before anything changes it.

Runs as the grader, from :meth:`classgrade.trusted.pipeline.ClassRun.check`, before the
assignment is generated into the gradebook. :func:`check` reads ``--db-url`` (a URL that does
not parse, a database other than PostgreSQL or sqlite, a driver that is not installed), then
connects (a server it cannot reach within :data:`CONNECT_TIMEOUT`, a login refused, a
database that does not exist) and takes the gradebook's lock. Each problem is one
:class:`~.errors.InstructorError` whose URL has its password masked.

The lock: on PostgreSQL, a session advisory lock (:data:`LOCK_KEYS`, one per database: the
whole gradebook, since two runs of different assignments would still race on creating the
same student's or course's row) on a connection held open for the run; on a sqlite file
given by ``--db-url``, an ``flock`` on ``<file>.classgrade-lock`` (the default gradebook, in the
output folder, is covered by that folder's lock, :class:`.preflight.FileLock`). A second run
refuses at once, in one line, and changes nothing; it does not wait.
"""
import os
import re
import socket
from pathlib import Path

from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .errors import GradebookInUse, InstructorError
from .preflight import FileLock

DRIVERS = {"postgresql": ("psycopg", "psycopg2"), "sqlite": ("pysqlite",)}
INSTALL = {"psycopg": "pip install 'psycopg[binary]==3.3.9'", "psycopg2": "pip install psycopg2-binary"}
CONNECT_TIMEOUT = 10     # s: libpq's connect_timeout
LOCK_KEYS = (0x636C6173, 0x67726164)   # pg_try_advisory_lock(int, int): 'clas', 'grad'
EXAMPLE = "e.g. postgresql://user:password@host:5432/gradebook or sqlite:////path/to/gradebook.db"


def masked(db_url):
    """``db_url`` as typed, with all between ``user:`` and its last ``@`` replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:).*@", r"\1***@", str(db_url))   # to the last @: a password may hold / or @


def parse(db_url):
    """The :class:`sqlalchemy.engine.URL` of ``db_url``, its database and driver supported."""
    try:
        url = make_url(db_url)
    except (exc.ArgumentError, ValueError) as error:
        why = " (its port is not a number)" if isinstance(error, ValueError) else ""
        raise InstructorError(f"--db-url {masked(db_url)}: not a database URL{why}; {EXAMPLE}") from None
    shown = url.render_as_string(hide_password=True)
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgres":
        raise InstructorError(f"--db-url {shown}: write postgresql://, not postgres:// (SQLAlchemy's name)")
    if backend not in DRIVERS:
        raise InstructorError(f"--db-url {shown}: a {backend} gradebook is not supported; give a PostgreSQL "
                              f"or sqlite one, {EXAMPLE}")
    if driver and driver not in DRIVERS[backend]:
        raise InstructorError(f"--db-url {shown}: the driver {driver} is not supported; write "
                              + ("postgresql:// (psycopg 3) or postgresql+psycopg2://" if backend == "postgresql"
                                 else "sqlite:///"))
    if "@" in (url.host or ""):
        raise InstructorError(f"--db-url {masked(db_url)}: an @ in the password ends it; write it as %40")
    dialect = url.get_dialect()
    try:
        dialect.import_dbapi()
    except ImportError:
        raise InstructorError(f"--db-url {shown}: its driver {dialect.driver} is not installed; install it "
                              f"({INSTALL.get(dialect.driver, 'pip install ' + dialect.driver)}) and run again") from None
    return url


def check(db_url, assignment):
    """Check ``db_url`` and connect; the gradebook's lock for the run (``close()`` it after),
    or ``None`` for the default gradebook (``db_url`` None: the output folder's lock covers it)."""
    if db_url is None:
        return None
    url = parse(db_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_lock(url)
    return PostgresLock(url, assignment)


def _sqlite_lock(url):
    shown = url.render_as_string(hide_password=True)
    if url.database in (None, "", ":memory:"):
        raise InstructorError(f"--db-url {shown}: an in-memory sqlite gradebook is lost when the run ends; "
                              "give a file, e.g. sqlite:////path/to/gradebook.db")
    path = Path(url.database).absolute()
    if path.exists() and not path.is_file():
        raise InstructorError(f"--db-url {shown}: {path} is not a file; give the gradebook's file")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise InstructorError(f"--db-url {shown}: cannot write in {path.parent} (missing, or not writable); "
                              "give a file in a folder you can write")
    return FileLock(path.with_name(path.name + ".classgrade-lock"), f"the gradebook {path}",
                    "give another --db-url")


class PostgresLock:
    """A connection to the PostgreSQL gradebook holding its advisory lock for the run."""

    def __init__(self, url, assignment):
        self.shown = url.render_as_string(hide_password=True)
        # seen by the next run in pg_stat_activity: it names this one when it refuses
        name = f"classgrade {assignment} pid {os.getpid()} on {socket.gethostname()}"[:63]
        engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                               connect_args={"connect_timeout": CONNECT_TIMEOUT, "application_name": name})
        try:
            self.connection = engine.connect()
        except exc.DBAPIError as error:
            raise InstructorError(self._refused(url, error)) from None
        try:
            held = self.connection.execute(text("SELECT pg_try_advisory_lock(:a, :b)"),
                                           dict(a=LOCK_KEYS[0], b=LOCK_KEYS[1])).scalar()
            if not held:
                raise GradebookInUse(f"the gradebook {self.shown} is in use by another classgrade run "
                                     f"({self._holder()}); this run refuses rather than waits: run again "
                                     "when that one has finished")
        except BaseException:
            self.connection.close()
            raise

    def _holder(self):
        """Who holds the lock: its connection's name (hidden from another PostgreSQL user
        unless privileged), else its server process."""
        try:
            row = self.connection.execute(text(
                "SELECT l.pid, a.application_name, to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS') "
                "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.classid = :a AND l.objid = :b AND l.objsubid = 2 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                dict(a=LOCK_KEYS[0], b=LOCK_KEYS[1])).first()
        except exc.DBAPIError:
            row = None
        if row and row[1]:
            return f"{row[1]}, since {row[2]}"
        return f"PostgreSQL server process {row[0]}" if row else "another run"

    def _refused(self, url, error):
        """One line: why the connection failed, and what to do."""
        orig = getattr(error, "orig", error)
        lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
        detail = (lines[0] if lines else type(orig).__name__).removeprefix("connection failed: ")
        if url.password:
            detail = detail.replace(str(url.password), "***")
        detail = detail[:200]
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
        if state == "3D000" or re.search(r'database ".*" does not exist', detail):
            return (f"the database {url.database!r} of --db-url {self.shown} does not exist; create it "
                    f"(createdb {url.database}) or name one that exists")
        if state.startswith("28") or re.search(r"authentication failed|no password supplied|pg_hba\.conf|"
                                               r'role ".*" does not exist', detail):
            return (f"PostgreSQL refused the login of --db-url {self.shown} ({detail}); check the user name "
                    "and password in the URL (or ~/.pgpass)")
        return (f"cannot reach the PostgreSQL server of --db-url {self.shown} ({detail}); check the host "
                f"and port, and that the server runs and accepts connections from here "
                f"(waited at most {CONNECT_TIMEOUT} s)")

    def close(self):
        if self.connection is not None:
            self.connection.close()   # ends the session: the lock is released
            self.connection = None
