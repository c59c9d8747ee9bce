"""Time per iteration and peak GPU memory of zerograds on CUDA, for a GPU machine.

Runs the "mlp" preset at d = 1,000 and 10,000 and the "scalable" preset at d = 196,608 and
1,000,000 with θ, the samples and the surrogate on the GPU, and prints the median seconds
per iteration and ``torch.cuda.max_memory_allocated``.

Run: ``.venv/bin/python benchmarks/perf_gpu.py [--iterations 200]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import zerograds as zg


def measure(dim: int, surrogate: str, iterations: int) -> tuple[float, float]:
    device = torch.device("cuda")
    torch.cuda.reset_peak_memory_stats(device)
    optimum = torch.full((dim,), 30.0, device=device)
    opt = zg.ZeroGrads(torch.full((dim,), 100.0, device=device), seed=0, surrogate=surrogate)
    times = []
    for _ in range(iterations):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        points = opt.ask()
        opt.tell(points, ((points - optimum) ** 2).sum(dim=1))
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[10:] or times), torch.cuda.max_memory_allocated(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="iterations per run")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("CUDA is not available; run this script on a machine with a GPU")
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| d | surrogate | ms/iteration (median) | peak GPU memory MiB |")
    print("|---|---|---|---|")
    for dim, surrogate in [
        (1000, "mlp"),
        (10_000, "mlp"),
        (196_608, "scalable"),
        (1_000_000, "scalable"),
    ]:
        seconds, peak = measure(dim, surrogate, args.iterations)
        print(f"| {dim:,} | {surrogate} | {seconds * 1e3:.3f} | {peak / 2**20:.0f} |", flush=True)


if __name__ == "__main__":
    main()
