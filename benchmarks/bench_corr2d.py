"""Speed of convlab's correlations against torch.nn.functional.conv2d, as ratios.

    .venv/bin/python benchmarks/bench_corr2d.py [--quick]

Every ratio is a median time divided by the median time of ``F.conv2d`` on the
same input, measured in the same process, so that a busy machine slows both
sides alike. Targets: ``corr2d`` no slower than ``F.conv2d`` (ratio <= 1.0) on
single-channel images of 256x256 and larger, and ratio <= 2.0 on the
multi-channel case. ``corr2d_loop`` is timed on the smaller images only.
"""

import argparse

import torch
import torch.nn.functional as F

import convlab
from convlab.timing import median_time

SIZES = (64, 128, 256, 512, 1024)
KERNELS = (3, 5, 7)
LOOP_MAX_SIZE = 64  # the loop makes one Python iteration per output pixel
MULTI = dict(c_in=16, c_out=32, size=64, kernel=3)


def single_channel_rows(sizes, kernels, repeats):
    for n in sizes:
        for k in kernels:
            X, K = torch.randn(n, n), torch.randn(k, k)
            reference = median_time(lambda: F.conv2d(X[None, None], K[None, None]), repeats=repeats)
            vectorized = median_time(convlab.corr2d, X, K, repeats=repeats) / reference
            loop = median_time(convlab.corr2d_loop, X, K, repeats=3) / reference if n <= LOOP_MAX_SIZE else None
            yield f"{n}x{n}", f"{k}x{k}", reference, vectorized, loop


def multi_channel_row(c_in, c_out, size, kernel, repeats):
    X, K = torch.randn(c_in, size, size), torch.randn(c_out, c_in, kernel, kernel)
    reference = median_time(lambda: F.conv2d(X[None], K), repeats=repeats)
    vectorized = median_time(convlab.corr2d_multi_in_out, X, K, repeats=repeats) / reference
    return f"{c_in}x{size}x{size}", f"{c_out}x{c_in}x{kernel}x{kernel}", reference, vectorized, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats, for a smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes, repeats = ((64, 256), 5) if args.quick else (SIZES, 21)
    rows = list(single_channel_rows(sizes, KERNELS, repeats))
    rows.append(multi_channel_row(**MULTI, repeats=repeats))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ratio = median time / median F.conv2d time")
    print(f"| input | kernel | F.conv2d (ms) | corr2d ratio | corr2d_loop ratio |")
    print(f"|---|---|---:|---:|---:|")
    for inp, ker, ref, vec, loop in rows:
        loop_text = f"{loop:.0f}" if loop is not None else "-"
        print(f"| {inp} | {ker} | {ref * 1e3:.3f} | {vec:.2f} | {loop_text} |")


if __name__ == "__main__":
    main()
