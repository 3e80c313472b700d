"""Benchmark: class grading with this checkout's classgrade against another revision's, interleaved.

    python benchmarks/bench_revisions.py REVISION [--rounds 5] [--n 40] [--workers CORES]

Grades N copies of the fixture submissions (as bench_grading.py builds them) with
``python -m classgrade``, alternately with ``classgrade/`` as in REVISION and as in HEAD, and
prints each run's wall time and CPU seconds per notebook (every process of the run, kernels
included) and the medians. On a shared machine whose speed drifts by more than the change
being measured, runs of the two revisions side by side are what can be compared: the ratio of
the medians, not either figure alone.

It swaps the ``classgrade/`` folder of this checkout between the two revisions (the editable
install, and the sandbox's view of the package, follow the folder), so it refuses to run when
that folder has changes not committed, and puts HEAD's back at the end.
Not a test: timings depend on the machine and its load.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_grading as bench

ROOT = Path(__file__).resolve().parents[1]


def _checkout(revision, into):
    """``classgrade/`` as in ``revision``, extracted under ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision, "classgrade"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "classgrade"


def _grade(tmp, subs, course, workers, n):
    out = tmp / "out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "classgrade", "tiny", str(subs), "--course", str(course), "--out", str(out),
           "--workers", str(workers), "--no-progress", "--no-feedback"]
    wall, cpu = bench.timed_cpu(cmd, cwd=ROOT)
    return wall, cpu / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if subprocess.run(["git", "status", "--porcelain", "classgrade"], cwd=ROOT, capture_output=True,
                      text=True, check=True).stdout.strip():
        sys.exit("bench_revisions: classgrade/ has changes not committed; commit or stash them first")
    bench.become_subreaper()
    tmp = Path(tempfile.mkdtemp(prefix="bench-revisions-"))
    runs = {args.revision: [], "HEAD": []}
    try:
        trees = {name: _checkout(name, tmp / name.replace("/", "_")) for name in runs}
        course, subs = bench.build(tmp, args.n)
        for _ in range(args.rounds):
            for name, tree in trees.items():
                shutil.rmtree(ROOT / "classgrade")
                shutil.copytree(tree, ROOT / "classgrade")
                wall, cpu = _grade(tmp, subs, course, args.workers, args.n)
                runs[name].append((wall, cpu))
                print(f"{name:>12}: {wall:6.1f} s, {cpu:.3f} CPU s/notebook", flush=True)
    finally:   # HEAD's folder back, whatever the last copy was
        shutil.rmtree(ROOT / "classgrade", ignore_errors=True)
        subprocess.run(["git", "checkout", "-q", "--", "classgrade"], cwd=ROOT, check=True)
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for name, r in runs.items()}
    for name, (wall, cpu) in medians.items():
        print(f"median {name:>12}: {wall:6.1f} s, {cpu:.3f} CPU s/notebook ({args.n} notebooks, "
              f"{args.workers} workers, load average {os.getloadavg()[0]:.1f})")
    (w0, c0), (w1, c1) = medians[args.revision], medians["HEAD"]
    print(f"HEAD / {args.revision}: wall {w1 / w0:.2f}, CPU {c1 / c0:.2f}")


if __name__ == "__main__":
    main()
