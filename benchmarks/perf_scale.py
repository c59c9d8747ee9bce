"""Memory, time per iteration and convergence of the surrogate presets at large d.

Each run starts a fresh Python process, so its peak resident set size (``ru_maxrss``, which
includes about 0.3 GB for Python and torch themselves) belongs to that run alone. One torch
thread.

``memory``: a quadratic with its optimum drawn uniformly from [-1, 3] per coordinate
(seed 0), started from 0 with σ = 0.5.

``convergence``: d = 35,152 and f(x) = |A (x - c)|², where A is a 64 x d matrix with
N(0, 1/d) entries and c is uniform in [-1, 3] per coordinate, both drawn with seed 20240.
x0 = 0, σ = 0.5, lr of θ's Adam 0.01, 2 antithetic pairs per iteration, and every preset runs
with the same optimizer seeds. The rank of A keeps the problem solvable in a few thousand
evaluations. On a full-rank quadratic at this d, the 2,000 evaluations of 500 iterations span
under 6 % of the directions, and ``"scalable"`` did not lower f in 200 iterations.

Run:
    .venv/bin/python benchmarks/perf_scale.py memory [--iterations 5]
    .venv/bin/python benchmarks/perf_scale.py convergence [--iterations 500] [--seeds 0 1 2]
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

CONVERGENCE_DIM = 35_152
CONVERGENCE_RANK = 64
CONVERGENCE_PRESETS = ("scalable", "highdim", "mlp")
# The problem has its own seed, because an optimum drawn with the optimizer's seed shares the
# random stream of the first perturbations and correlates with them.
PROBLEM_SEED = 20240


def run_one(dim: int, surrogate: str, iterations: int) -> dict[str, float]:
    """Run ``iterations`` iterations and return timing, peak memory and f(θ)/f(x0)."""
    torch.set_num_threads(1)
    # NOTE: the optimum and the optimizer both use seed 0, so the first perturbations correlate
    # with the optimum. The f(θ)/f(x0) printed by ``memory`` is no measure of convergence.
    optimum = torch.rand(dim, generator=torch.Generator().manual_seed(0)) * 4.0 - 1.0

    def fun(x: torch.Tensor) -> torch.Tensor:
        return ((x - optimum) ** 2).sum(dim=1)

    x0 = torch.zeros(dim)
    # docs/performance.md was measured with the paper's batch, surrogate lr and 3 x 64 "mlp".
    sizes = {"surrogate_kwargs": {"hidden": (64, 64, 64)}} if surrogate == "mlp" else {}
    # replay=1: each fit on the new batch only, as in the paper, so the memory and time are
    # those of the surrogate and not of the replay buffer.
    opt = zg.ZeroGrads(
        x0,
        sigma=0.5,
        seed=0,
        surrogate=surrogate,
        batch_size=2,
        surrogate_lr=1e-3,
        replay=1,
        **sizes,
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


def checkpoints_for(iterations: int) -> list[int]:
    """Return the iterations at which ``convergence`` records f(θ)/f(x0)."""
    marks = {0, 50, 100, 250, 500, 1000, 2000, iterations}
    return sorted(mark for mark in marks if mark <= iterations)


def run_convergence(
    surrogate: str, iterations: int, seed: int, replay: int = 1
) -> dict[str, object]:
    """Run ZeroGrads on the low-rank quadratic of the module docstring for one preset and seed.

    Returns f(θ)/f(x0) at ``checkpoints_for(iterations)``, the median time per iteration
    (the objective's 1-2 ms included) and the peak resident set size.
    """
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(PROBLEM_SEED)
    matrix = torch.randn(CONVERGENCE_RANK, CONVERGENCE_DIM, generator=generator)
    matrix /= CONVERGENCE_DIM**0.5
    optimum = torch.rand(CONVERGENCE_DIM, generator=generator) * 4.0 - 1.0

    def fun(x: torch.Tensor) -> torch.Tensor:
        return ((x - optimum) @ matrix.T).square().sum(dim=1)

    x0 = torch.zeros(CONVERGENCE_DIM)
    f0 = float(fun(x0.unsqueeze(0)))
    # replay=1 (the default here) compares the surrogates alone, each fitted on the new batch
    # as in the paper.
    opt = zg.ZeroGrads(
        x0, sigma=0.5, lr=0.01, seed=seed, surrogate=surrogate, batch_size=2, replay=replay
    )
    parameters = sum(p.numel() for p in opt.surrogate.parameters())
    marks = checkpoints_for(iterations)
    relative_f = {0: 1.0}
    times = []
    for iteration in range(1, iterations + 1):
        start = time.perf_counter()
        points = opt.ask()
        opt.tell(points, fun(points))
        times.append(time.perf_counter() - start)
        if iteration in marks:
            relative_f[iteration] = float(fun(opt.x.unsqueeze(0))) / f0
    return {
        "surrogate": surrogate,
        "seed": seed,
        "surrogate_parameters": parameters,
        "median_iteration_s": sorted(times)[len(times) // 2],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "relative_f": {str(mark): value for mark, value in relative_f.items()},
    }


def in_subprocess(*args: object) -> dict:
    """Run this script's ``one`` part with ``args`` in a fresh process and return its JSON."""
    command = [sys.executable, __file__, "one", *map(str, args)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def print_memory(iterations: int) -> None:
    print(
        "| d | surrogate | surrogate parameters | s/iteration (median) | first iteration s "
        "| peak RSS GiB | f(θ)/f(x0) after the run |"
    )
    print("|---|---|---|---|---|---|---|")
    for dim, surrogate in [(196_608, "scalable"), (1_000_000, "scalable"), (196_608, "mlp")]:
        r = in_subprocess("memory", dim, surrogate, iterations)
        print(
            f"| {dim:,} | {surrogate} | {r['surrogate_parameters']:,} | "
            f"{r['median_iteration_s']:.4f} | {r['first_iteration_s']:.3f} | "
            f"{r['peak_rss_gib']:.2f} | {r['relative_f']:.4f} |",
            flush=True,
        )
    print(f"({iterations} iterations per run)")


def print_convergence(iterations: int, seeds: list[int], presets: list[str], replay: int) -> None:
    marks = checkpoints_for(iterations)
    columns = " | ".join(f"f/f0 at {mark}" for mark in marks)
    print(
        f"| surrogate | seed | surrogate parameters | {columns} "
        "| s/iteration (median) | peak RSS GiB |"
    )
    print("|---|---|---|" + "---|" * len(marks) + "---|---|")
    for surrogate in presets:
        for seed in seeds:
            r = in_subprocess("convergence", surrogate, iterations, seed, replay)
            values = " | ".join(f"{r['relative_f'][str(mark)]:.3f}" for mark in marks)
            print(
                f'| `"{surrogate}"` | {seed} | {r["surrogate_parameters"]:,} | {values} '
                f"| {r['median_iteration_s']:.4f} | {r['peak_rss_gib']:.2f} |",
                flush=True,
            )
    print(
        f"(d = {CONVERGENCE_DIM:,}, {iterations} iterations of 4 evaluations per run, "
        f"replay={replay})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["memory", "convergence", "one"])
    parser.add_argument(
        "args",
        nargs="*",
        help="for 'one': 'memory DIM SURROGATE ITERATIONS' or "
        "'convergence SURROGATE ITERATIONS SEED [REPLAY]'",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="iterations per run (default: 5 for memory, 500 for convergence)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="optimizer seeds for convergence, one run per preset and seed (default: 0)",
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        default=None,
        help="surrogate presets for convergence (default: all of CONVERGENCE_PRESETS)",
    )
    parser.add_argument(
        "--replay",
        type=int,
        default=1,
        help="replay batches of each fit for convergence (default: 1, the new batch only)",
    )
    args = parser.parse_args()
    if args.part == "one":
        if args.args[0] == "memory":
            dim, surrogate, iterations = int(args.args[1]), args.args[2], int(args.args[3])
            print(json.dumps(run_one(dim, surrogate, iterations)))
        else:
            surrogate, iterations, seed = args.args[1], int(args.args[2]), int(args.args[3])
            replay = int(args.args[4]) if len(args.args) > 4 else 1
            print(json.dumps(run_convergence(surrogate, iterations, seed, replay)))
    elif args.part == "memory":
        print_memory(args.iterations or 5)
    else:
        print_convergence(
            args.iterations or 500,
            args.seeds,
            args.presets or list(CONVERGENCE_PRESETS),
            args.replay,
        )


if __name__ == "__main__":
    main()
