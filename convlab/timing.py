"""Timing helpers for the benchmarks and the book: medians, compared in one process.

Machines are shared and noisy, so speed is reported as a ratio of medians against
a reference timed in the same run, never as an absolute time to assert on.
"""

import time


def median_time(fn, *args, repeats=15, warmup=2):
    """Median wall-clock seconds of ``fn(*args)`` over ``repeats`` calls."""
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def ratio_per_round(fn, reference, *, rounds=5, repeats=15):
    """``median_time(fn) / median_time(reference)`` in each of ``rounds`` rounds, sorted.

    The reference is timed next to ``fn`` in every round, so that a change in the
    machine's load between rounds lands on both sides of each ratio. The median
    of the returned list is the ratio to report; its spread shows the noise.
    """
    ratios = [median_time(fn, repeats=repeats) / median_time(reference, repeats=repeats) for _ in range(rounds)]
    return sorted(ratios)
