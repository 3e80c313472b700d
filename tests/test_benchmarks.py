"""The benchmark script runs and prints its table (its numbers are read by people, not asserted)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_corr2d_benchmark_prints_a_ratio_per_case():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_corr2d.py"), "--quick"],
        capture_output=True, text=True, check=True, timeout=600,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 2 * 3 + 1, result.stdout
    for row in rows:
        median, lowest, highest = map(float, re.findall(r"[\d.]+", row.split("|")[4]))
        assert 0 < lowest <= median <= highest, row
