"""A throwaway PostgreSQL server on loopback for the class-grading tests.

``postgres_server()`` is a context manager yielding a SQLAlchemy URL of an
empty database. The server runs from a temporary folder (data, socket, log),
on a free port of 127.0.0.1, and is stopped and deleted afterwards. PostgreSQL
refuses to run as root, so as root (CI) it runs as ``nobody`` via ``runuser``.
"""
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def find_bindir():
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "pg_ctl")):
            return candidate
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server():
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (.ci/run installs it from Debian's packages)")
    root = tempfile.mkdtemp(prefix="classgrade-pg-")
    as_user = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    os.chmod(root, 0o700)
    data, sock, log = (os.path.join(root, x) for x in ("data", "sock", "log"))
    port = _free_port()

    def run(*cmd):
        done = subprocess.run(as_user + list(cmd), capture_output=True, text=True, cwd=root)
        if done.returncode != 0:
            server_log = open(log).read() if os.path.exists(log) else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{server_log}")

    try:
        run("mkdir", sock)
        run(os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        run(os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-w", "-t", "60", "start", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off")
        import psycopg2
        for _ in range(50):
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"PostgreSQL did not accept connections on port {port} within 10 s:\n"
                               + open(log).read())
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE gradebook")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run(as_user + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate",
                                  "-w", "stop"], capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
