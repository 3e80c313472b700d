"""Grading on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on loopback.

The class is the ordinary part of tests/hostile/ (correct, wrong, partial, blank) in several
copies. One run goes through ``--scheduler`` and must give the grades of sequential
``nbgrader autograde``; in a second, one worker is killed once grading has begun, and every
submission must still be graded, once.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from classgrade.protocol import Job, Status
from classgrade.trusted.cli import main as classgrade_main
from classgrade.trusted.run import grade_class

sys.path.insert(0, str(Path(__file__).parent))
import classgrade_corpus as corpus  # noqa: E402

HOSTILE = Path(__file__).parent / "hostile"
CASES = {"correct": 4, "wrong": 1, "partial": 2, "blank": 0}
pytestmark = pytest.mark.grading


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, log):
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.Popen([os.path.join(bindir, "dask"), *args], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


# evaluated on each worker (a function of this file would be pickled by reference, and the
# workers cannot import this file)
HAS_ZYGOTE = ("(lambda c: c._zygote is not None and c._zygote.proc.poll() is None)"
              "(__import__('classgrade.trusted.cluster', fromlist=['_zygote']))")


@contextlib.contextmanager
def _local_cluster(logs, preload=()):
    """``(address, {name: process})`` of a ``dask scheduler`` and workers w1 and w2 on loopback
    (``preload``: the names of those started with ``--preload classgrade.trusted.cluster``);
    every process is killed on exit."""
    from distributed import Client
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs = {"scheduler": _start(["scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                  "--no-dashboard"], open(logs / "scheduler.log", "w"))}
    try:
        for name in ("w1", "w2"):
            # --no-nanny: grading forks, and a nanny's worker process is daemonic
            extra = ["--preload", "classgrade.trusted.cluster"] if name in preload else []
            procs[name] = _start(["worker", address, "--name", name, "--nthreads", "1", "--no-nanny",
                                  "--no-dashboard", *extra], open(logs / f"{name}.log", "w"))
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs
    finally:
        for proc in procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(address, {name: worker process})``: w1 warms up as it starts (cluster.dask_setup),
    w2 when the first run checks it (cluster.prepare)."""
    from distributed import Client
    with _local_cluster(tmp_path_factory.mktemp("dask"), preload=("w1",)) as (address, procs):
        with Client(address, timeout="60s") as client:
            names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
            warm = client.run(eval, HAS_ZYGOTE)
        # the preloaded worker joined the scheduler with its zygote started, the other without
        assert {names[a]: started for a, started in warm.items()} == {"w1": True, "w2": False}
        yield address, procs


def _class(folder, copies):
    """``copies`` students of each case in CASES, in nbgrader's submitted/ layout."""
    for i in range(copies):
        for case in CASES:
            shutil.copytree(HOSTILE / "submitted" / case, folder / f"{case}_{i}")
    return folder


def _scores(result):
    return {s: sum(c.auto_score for nb in r.notebooks.values() for c in nb.cells.values()
                   if c.cell_type == "code") for s, r in result.results.items()}


def _course_and_class(tmp_path, copies):
    """A copy of the tiny course, a class of ``copies`` students per case, and an output folder."""
    course = tmp_path / "course"
    shutil.copytree(HOSTILE / "course", course)
    return course, _class(tmp_path / "submitted", copies), tmp_path / "out"


def test_cluster_grades_equal_sequential_nbgrader(cluster, tmp_path):
    address, _ = cluster
    course, submitted, out = _course_and_class(tmp_path, 1)
    assert classgrade_main(["tiny", str(submitted), "--course", str(course), "--out", str(out),
                            "--scheduler", address, "--timeout", "10", "--memory", "2G"]) == 0
    cluster_grades = corpus.gradebook_grades(f"sqlite:///{out / 'gradebook.db'}")
    assert len(cluster_grades) == 3 * len(CASES)
    assert cluster_grades == corpus.sequential_grades(course, submitted, tmp_path / "sequential")
    assert sorted(p.name for p in (out / "feedback").iterdir()) == sorted(p.name for p in submitted.iterdir())


def test_a_worker_killed_mid_run_loses_no_submission(cluster, tmp_path):
    address, procs = cluster
    course, submitted, out = _course_and_class(tmp_path, 3)
    outcome = {}

    def grade():
        try:
            outcome["result"] = grade_class(course, "tiny", submitted, out, timeout=10, memory="2G",
                                            progress=False, scheduler=address)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=grade)
    thread.start()
    from distributed import Client
    with Client(address, timeout="60s") as client:
        # the kill falls while w1 holds a submission: one already graded, one in its hands
        deadline = time.monotonic() + 300
        held = []
        while not held:
            assert thread.is_alive() and time.monotonic() < deadline, outcome
            graded_some = (out / "autograded").is_dir() and any((out / "autograded").iterdir())
            w1 = [a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "w1"]
            held = graded_some and w1 and list(client.processing(workers=w1).get(w1[0], ()))
            if held:
                os.kill(procs["w1"].pid, signal.SIGKILL)
            else:
                time.sleep(0.2)
    thread.join(600)
    assert not thread.is_alive() and "error" not in outcome, outcome
    result = outcome["result"]
    want = {f"{case}_{i}": points for case, points in CASES.items() for i in range(3)}
    assert _scores(result) == want
    assert all(r.status == Status.OK and not r.flags for r in result.results.values())
    graded = {student for student, _ in corpus.gradebook_grades(f"sqlite:///{out / 'gradebook.db'}")}
    assert graded == set(want) and len(result.results) == len(want)       # every one, once
    assert procs["w1"].wait(10) == -signal.SIGKILL
    # w1 held these when it died. The one it was running may have finished in the
    # instant before the kill; the ones queued behind it cannot have: some of them, at
    # least, were graded again by w2.
    held = {key.rsplit("-", 1)[1] for key in held}                        # classgrade-N-student
    assert any(result.results[student].worker == "w2" for student in held), (
        held, {student: result.results[student].worker for student in held})


# for test_a_result_lost_with_its_worker...: a stand-in grading task, and where results are
STAND_IN = """
def grade_task(job, files, common):
    from distributed import get_worker
    from classgrade.protocol import Result, Status
    return Result(student=job.student, status=Status.OK, worker=get_worker().name), {}


def who_has(dask_scheduler=None):
    return {key: [w.address for w in task.who_has or ()] for key, task in dask_scheduler.tasks.items()}
"""


def test_a_result_lost_with_its_worker_before_it_was_collected_is_graded_again(tmp_path, monkeypatch):
    """This process collects a result only when it merges it, so a worker that dies holding a
    finished, uncollected result takes it along: the scheduler has it computed again by
    another worker, and the run waits for it. A stand-in task (importable by the cluster's
    processes), on a cluster of the test's own, whose workers it kills."""
    import importlib
    from classgrade.trusted import cluster
    (tmp_path / "classgrade_stand_in.py").write_text(STAND_IN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    stand_in = importlib.import_module("classgrade_stand_in")
    monkeypatch.setattr(cluster, "grade_task", stand_in.grade_task)
    with _local_cluster(tmp_path) as (address, procs):
        grading = cluster.Cluster(address, sandbox=False, warm=False, wall=60)
        jobs = [Job(student=name, assignment="tiny", work=str(tmp_path / name), template_db="", source_dir="",
                    release={}) for name in ("a", "b")]
        results, killed = [], []

        def on_result(job, result):
            if not results:   # the other result is in a worker's memory, not yet collected: lose it
                other = next(j.student for j in jobs if j.student != job.student)
                deadline = time.monotonic() + 60
                while not killed and time.monotonic() < deadline:
                    names = {a: w["name"] for a, w in grading.client.scheduler_info()["workers"].items()}
                    found = grading.client.run_on_scheduler(stand_in.who_has)
                    for key, holders in found.items():
                        if key.endswith("-" + other) and holders:
                            os.killpg(procs[names[holders[0]]].pid, signal.SIGKILL)
                            killed.append(names[holders[0]])
                            break
                    else:
                        time.sleep(0.01)
            results.append((job.student, result))

        thread = threading.Thread(target=grading.run, args=(jobs, on_result), daemon=True)
        thread.start()
        thread.join(60)
        assert killed, "no worker held the other result"
        assert not thread.is_alive(), "the run waited forever for the result lost with its worker"
        grading.close()
        assert sorted(s for s, _ in results) == ["a", "b"]
        assert all(r.status == Status.OK for _, r in results), results
        assert results[1][1].worker != killed[0]      # graded again by the worker left


def test_refuses_a_cluster_whose_workers_cannot_fork(tmp_path, capsys):
    """A nanny's worker process is daemonic: the run stops at once and says how to start the workers."""
    from distributed import LocalCluster
    course, submitted, out = _course_and_class(tmp_path, 1)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        code = classgrade_main(["tiny", str(submitted), "--course", str(course), "--out", str(out),
                                "--scheduler", local.scheduler_address])
    assert code == 2
    assert "--no-nanny" in capsys.readouterr().err
