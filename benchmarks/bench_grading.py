"""Benchmark: grading N submissions, parallel command vs sequential nbgrader autograde.

    python benchmarks/bench_grading.py [--n 40] [--workers CORES] [--feedback] [--cold] [--dask]

Builds N submissions of the fixture assignment in tests/hostile/ (copies of
the correct, wrong and partial students), grades them once with sequential
``nbgrader autograde`` (one process, one notebook at a time) and once with
``python -m classgrade`` (``--workers`` at a time, each in its own
sandboxed kernel), checks the grades agree, and prints the throughput ratio
from that one run, with the CPU seconds per notebook of each (kernels
included; less sensitive to other load on the machine than the wall
clock). Then it times the pieces of the per-notebook overhead: interpreter
start, imports, kernel start, ``import torch`` in the kernel.
Not a test: timings depend on the machine and its load.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
CASES = ["correct", "wrong", "partial"]


def env():
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    return e


def children_cpu():
    """CPU seconds (user + system) of the waited-for child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def become_subreaper():
    """Orphaned descendants come to this process, not to PID 1, so that their CPU time is
    counted: a killed sandbox's processes (bwrap's, and a cold kernel under them) lose their
    parent before anyone waits for them, and PID 1's accounts are no one's."""
    import ctypes
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans(quiet=0.5):
    """Wait for the orphans that came to this process (see :func:`become_subreaper`), until
    none has ended for ``quiet`` seconds (a Dask cluster's processes, also children, live on)."""
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            last = time.monotonic()
        else:
            time.sleep(0.02)


def tree_cpu(pid):
    """CPU seconds (user + system) so far of the running process ``pid`` and of its running
    descendants, each with the children it has waited for (a Dask worker's zygote and
    forkserver, started by ``--preload``, are its descendants)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, fields in stats.items() if int(fields[1]) in tree} - tree
        tree, grew = tree | more, bool(more)
    return sum(sum(int(f) for f in stats[p][11:15]) for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


def timed(cmd, **kw):
    return timed_cpu(cmd, **kw)[0]


def timed_cpu(cmd, **kw):
    """(wall seconds, CPU seconds of the command and all its descendants, orphans included)."""
    c, t = children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env(), **kw)
    wall = time.perf_counter() - t
    reap_orphans()
    return wall, children_cpu() - c


def build(tmp, n):
    course = tmp / "course"
    shutil.copytree(HOSTILE / "course", course)
    subs = tmp / "submitted"
    for i in range(n):
        case = CASES[i % len(CASES)]
        shutil.copytree(HOSTILE / "submitted" / case, subs / f"s{i:03d}_{case}")
    return course, subs


def sequential(tmp, course, subs):
    seq = tmp / "sequential"
    shutil.copytree(course, seq)
    shutil.copytree(subs, seq / "submitted")
    db = f"--CourseDirectory.db_url=sqlite:///{seq / 'gradebook.db'}"
    py = [sys.executable, "-m", "nbgrader"]
    timed(py + ["generate_assignment", "tiny", "--force", db], cwd=seq)
    seconds = timed_cpu(py + ["autograde", "tiny", "--force", db], cwd=seq)
    return seconds, f"sqlite:///{seq / 'gradebook.db'}"


def parallel(tmp, course, subs, workers, feedback, extra=(), name="parallel"):
    out = tmp / name
    cmd = [sys.executable, "-m", "classgrade", "tiny", str(subs), "--course", str(course),
           "--out", str(out), "--workers", str(workers), "--no-progress", *extra]
    if not feedback:
        cmd.append("--no-feedback")
    seconds = timed_cpu(cmd)
    return seconds, f"sqlite:///{out / 'gradebook.db'}", json.loads((out / "results.json").read_text())


def dask_cluster(workers):
    """A local ``dask scheduler`` and ``workers`` single-threaded ``dask worker`` processes."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address, dask = f"tcp://127.0.0.1:{port}", os.path.join(os.path.dirname(sys.executable), "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())]
    procs += [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                "--preload", "classgrade.trusted.cluster"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
              for _ in range(workers)]
    from distributed import Client
    with Client(address, timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def grades(url):
    from nbgrader.api import Gradebook
    with Gradebook(url) as gb:
        return {(s.student.id, g.name): g.auto_score
                for s in gb.notebook_submissions("tiny", "tiny") for g in s.grades}


def overhead(repeats=3):
    """Median seconds of each piece a notebook pays before its first test runs."""
    py = [sys.executable, "-c"]
    pieces = {
        "python start": py + ["pass"],
        "import torch": py + ["import torch"],
        "import nbgrader apps": py + ["import nbgrader.apps"],
        "kernel start + trivial cell": py + [KERNEL.format(code="1 + 1")],
        "kernel start + import torch": py + [KERNEL.format(code="import torch")],
    }
    out = {}
    for name, cmd in pieces.items():
        out[name] = statistics.median(timed(cmd) for _ in range(repeats))
    return out


KERNEL = """
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
kc.execute_interactive({code!r}, timeout=120)
kc.stop_channels(); km.shutdown_kernel(now=True)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--feedback", action="store_true", help="parallel run also writes feedback")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--cold", action="store_true", help="also grade with a new interpreter per kernel")
    parser.add_argument("--dask", action="store_true", help="also grade through a local Dask scheduler")
    args = parser.parse_args()
    become_subreaper()
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        course, subs = build(tmp, args.n)
        (t_seq, cpu_seq), db_seq = sequential(tmp, course, subs)
        (t_par, cpu_par), db_par, results = parallel(tmp, course, subs, args.workers, args.feedback)
        same = grades(db_seq) == grades(db_par)
        print(f"{args.n} submissions, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        print(f"sequential nbgrader autograde : {t_seq:7.1f} s  ({t_seq / args.n:.2f} s/notebook)")
        print(f"classgrade, {args.workers} workers{' + feedback' if args.feedback else ''}"
              f" : {t_par:7.1f} s  ({t_par / args.n:.2f} s/notebook)")
        # CPU time (all descendants, kernels included) depends little on other load
        print(f"CPU seconds per notebook: sequential {cpu_seq / args.n:.2f}, parallel {cpu_par / args.n:.2f}"
              f" (ratio {cpu_seq / cpu_par:.2f}); load average after the runs {os.getloadavg()[0]:.1f}")
        print(f"throughput ratio (sequential / parallel): {t_seq / t_par:.2f}x; grades identical: {same}")
        for flag, label in [("cold", "--cold (a new interpreter per kernel)"), ("dask", "--scheduler, local Dask")]:
            if not getattr(args, flag):
                continue
            procs, cluster_cpu = [], 0.0
            extra = ["--cold"]
            if flag == "dask":
                before = children_cpu()
                address, procs = dask_cluster(args.workers)
                # the cluster's own start (its imports) is not the grading's
                started = sum(tree_cpu(proc.pid) for proc in procs)
                extra = ["--scheduler", address]
            try:
                (t, cpu), db, _ = parallel(tmp, course, subs, args.workers, args.feedback, extra, flag)
            finally:
                for proc in procs:
                    proc.terminate()
                    proc.wait()
                if procs:
                    reap_orphans(quiet=2.0)   # a zygote notices its worker gone within 1 s
                    # the scheduler's and workers' CPU, and their descendants' (zygotes, kernels)
                    cluster_cpu = children_cpu() - before - cpu - started
            cpu_text = f"; CPU {(cpu + cluster_cpu) / args.n:.2f} s/notebook"
            if flag == "dask":
                cpu_text += (f" (the command {cpu / args.n:.2f}, the cluster {cluster_cpu / args.n:.2f}, "
                             f"less its start-up {started:.1f} s)")
            print(f"{label}: {t:7.1f} s ({t / args.n:.2f} s/notebook), {t / t_par:.2f}x the time of the "
                  f"local run{cpu_text}; grades identical: {grades(db) == grades(db_seq)}")
        stages = {}
        for res in results.values():
            for k, v in res.get("timings", {}).items():
                stages.setdefault(k, []).append(v)
        print("per-submission stages in the parallel run (median s): "
              + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in stages.items()))
        if not args.skip_overhead:
            print("per-notebook overhead pieces (median of 3, s):")
            for name, seconds in overhead().items():
                print(f"  {name:30s} {seconds:6.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
