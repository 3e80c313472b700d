"""Speed of convlab's correlations against torch.nn.functional.conv2d, as ratios.

    .venv/bin/python benchmarks/bench_corr2d.py [--quick] [--threads N]

Every ratio is a median time divided by the median time of ``F.conv2d`` on the
same input, timed next to it in the same process, so that a busy machine slows
both sides alike. Each case is measured in several rounds; the table shows the
median ratio and, in brackets, the lowest and highest round. Targets:
``corr2d`` no slower than ``F.conv2d`` (ratio <= 1.0) on single-channel images
of 256x256 and larger, and ratio <= 2.0 on the multi-channel case.
``corr2d_loop`` is timed once, on the smaller images only.
"""

import argparse
import os
import statistics

import torch
import torch.nn.functional as F

import convlab
from convlab.timing import median_time, ratio_per_round

SIZES = (64, 128, 256, 512, 1024)
KERNELS = (3, 5, 7)
LOOP_MAX_SIZE = 64  # the loop makes one Python iteration per output pixel
MULTI = dict(c_in=16, c_out=32, size=64, kernel=3)


def _ratio(r):
    """Two decimals, or two significant digits below 0.1 (a ratio is never shown as 0.00)."""
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def row(name_in, name_kernel, fn, reference, rounds, repeats, loop=None):
    ratios = ratio_per_round(fn, reference, rounds=rounds, repeats=repeats)
    loop_ratio = ratio_per_round(loop, reference, rounds=1, repeats=3)[0] if loop else None
    milliseconds = median_time(reference, repeats=repeats) * 1e3
    return name_in, name_kernel, milliseconds, ratios, loop_ratio


def single_channel_rows(sizes, kernels, rounds, repeats):
    for n in sizes:
        for k in kernels:
            X, K = torch.randn(n, n), torch.randn(k, k)
            loop = (lambda: convlab.corr2d_loop(X, K)) if n <= LOOP_MAX_SIZE else None
            yield row(f"{n}x{n}", f"{k}x{k}", lambda: convlab.corr2d(X, K),
                      lambda: F.conv2d(X[None, None], K[None, None]), rounds, repeats, loop)


def multi_channel_row(c_in, c_out, size, kernel, rounds, repeats):
    X, K = torch.randn(c_in, size, size), torch.randn(c_out, c_in, kernel, kernel)
    return row(f"{c_in}x{size}x{size}", f"{c_out}x{c_in}x{kernel}x{kernel}",
               lambda: convlab.corr2d_multi_in_out(X, K), lambda: F.conv2d(X[None], K), rounds, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes, rounds and repeats, for a smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes, rounds, repeats = ((64, 256), 2, 5) if args.quick else (SIZES, 7, 15)
    rows = list(single_channel_rows(sizes, KERNELS, rounds, repeats))
    rows.append(multi_channel_row(**MULTI, rounds=rounds, repeats=repeats))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}; "
          f"ratio = median time / median F.conv2d time, median of {rounds} rounds [lowest, highest]")
    print("| input | kernel | F.conv2d (ms) | corr2d ratio | corr2d_loop ratio |")
    print("|---|---|---:|---:|---:|")
    for inp, ker, ms, ratios, loop in rows:
        loop_text = f"{loop:.0f}" if loop is not None else "-"
        spread = f"{_ratio(statistics.median(ratios))} [{_ratio(ratios[0])}, {_ratio(ratios[-1])}]"
        print(f"| {inp} | {ker} | {ms:.3f} | {spread} | {loop_text} |")


if __name__ == "__main__":
    main()
