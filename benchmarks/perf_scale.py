"""Memory and time per iteration of the surrogate presets at large d, one process per run.

Each run starts a fresh Python process, so its peak resident set size (``ru_maxrss``, which
includes about 0.3 GB for Python and torch themselves) belongs to that run alone. The
objective is a quadratic with its optimum drawn uniformly from [-1, 3] per coordinate
(seed 0), started from 0 with σ = 0.5. One torch thread.

Run:
    .venv/bin/python benchmarks/perf_scale.py memory [--iterations 5]
    .venv/bin/python benchmarks/perf_scale.py convergence [--iterations 40]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

import zerograds as zg


def run_one(dim: int, surrogate: str, iterations: int) -> dict[str, float]:
    """Run ``iterations`` iterations and return timing, peak memory and f(θ)/f(x0)."""
    torch.set_num_threads(1)
    optimum = torch.rand(dim, generator=torch.Generator().manual_seed(0)) * 4.0 - 1.0

    def fun(x: torch.Tensor) -> torch.Tensor:
        return ((x - optimum) ** 2).sum(dim=1)

    x0 = torch.zeros(dim)
    # docs/performance.md was measured with the paper's batch, surrogate lr and 3 x 64 "mlp".
    sizes = {"surrogate_kwargs": {"hidden": (64, 64, 64)}} if surrogate == "mlp" else {}
    opt = zg.ZeroGrads(
        x0, sigma=0.5, seed=0, surrogate=surrogate, batch_size=2, surrogate_lr=1e-3, **sizes
    )
    parameters = sum(p.numel() for p in opt.surrogate.parameters())
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        points = opt.ask()
        opt.tell(points, fun(points))
        times.append(time.perf_counter() - start)
    steady = sorted(times[1:] or times)[len(times[1:] or times) // 2]
    return {
        "dim": dim,
        "surrogate": surrogate,
        "surrogate_parameters": parameters,
        "iterations": iterations,
        "first_iteration_s": times[0],
        "median_iteration_s": steady,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "relative_f": float(fun(opt.x.unsqueeze(0))) / float(fun(x0.unsqueeze(0))),
    }


def in_subprocess(dim: int, surrogate: str, iterations: int) -> dict[str, float]:
    command = [sys.executable, __file__, "one", str(dim), surrogate, str(iterations)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["memory", "convergence", "one"])
    parser.add_argument("args", nargs="*", help="for 'one': dim surrogate iterations")
    parser.add_argument("--iterations", type=int, default=None)
    args = parser.parse_args()
    if args.part == "one":
        dim, surrogate, iterations = int(args.args[0]), args.args[1], int(args.args[2])
        print(json.dumps(run_one(dim, surrogate, iterations)))
        return

    if args.part == "memory":
        runs = [(196_608, "scalable"), (1_000_000, "scalable"), (196_608, "mlp")]
        iterations = args.iterations or 5
    else:
        runs = [(35_152, "scalable"), (35_152, "mlp"), (35_152, "highdim")]
        iterations = args.iterations or 40
    print(
        "| d | surrogate | surrogate parameters | s/iteration (median) | first iteration s "
        "| peak RSS GiB | f(θ)/f(x0) after the run |"
    )
    print("|---|---|---|---|---|---|---|")
    for dim, surrogate in runs:
        r = in_subprocess(dim, surrogate, iterations)
        print(
            f"| {dim:,} | {surrogate} | {r['surrogate_parameters']:,} | "
            f"{r['median_iteration_s']:.4f} | {r['first_iteration_s']:.3f} | "
            f"{r['peak_rss_gib']:.2f} | {r['relative_f']:.4f} |",
            flush=True,
        )
    print(f"({iterations} iterations per run)")


if __name__ == "__main__":
    main()
