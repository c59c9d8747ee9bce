"""Wall time per iteration of ``zerograds.minimize`` with 1 and 2 worker processes.

The objective sleeps 50 ms per call, standing in for an expensive black box. Each iteration
evaluates 2B = 4 points. The time per iteration is the median difference between consecutive
``HistoryEntry.time`` values, so the pool's start-up is not counted.

Run: ``.venv/bin/python benchmarks/parallel_speedup.py [--iterations 30] [--sleep 0.05]``
"""

from __future__ import annotations

import argparse
import functools
import itertools
import platform
import statistics
import time

import numpy as np

import zerograds as zg


def sleepy_quadratic(x: np.ndarray, seconds: float = 0.05) -> float:
    time.sleep(seconds)
    return float(np.sum((x - 3.0) ** 2))


def seconds_per_iteration(workers: int, iterations: int, sleep: float) -> float:
    fun = functools.partial(sleepy_quadratic, seconds=sleep)
    # B = 2: 4 calls per iteration, as docs/parallel.md describes.
    result = zg.minimize(
        fun, np.zeros(10), max_evals=4 * iterations + 1, batch_size=2, seed=0, workers=workers
    )
    times = [entry.time for entry in result.history]
    return statistics.median(b - a for a, b in itertools.pairwise(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="iterations per run")
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds per evaluation")
    args = parser.parse_args()

    one = seconds_per_iteration(1, args.iterations, args.sleep)
    two = seconds_per_iteration(2, args.iterations, args.sleep)
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'unknown CPU'}, "
        f"Python {platform.python_version()}"
    )
    print(f"workers=1: {one * 1e3:.1f} ms per iteration")
    print(f"workers=2: {two * 1e3:.1f} ms per iteration")
    print(f"speed-up: {one / two:.2f}x")


if __name__ == "__main__":
    main()
