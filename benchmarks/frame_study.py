"""Compare the surrogate's input normalizations on quadratics with a random optimum.

The optimum is drawn per coordinate, so it lies neither at the origin nor on the diagonal
through the start. A surrogate whose slope follows θ's own direction gains nothing here.
Prints f(θ) - f* after the given number of ask/tell iterations for two seeds.

Usage:
    python benchmarks/frame_study.py DIM ITERATIONS SIGMA X0
    python benchmarks/frame_study.py 50 500 0.5 5
    python benchmarks/frame_study.py 10 500 0.3 0
"""

from __future__ import annotations

import sys

import torch

import zerograds as zg

# The study ran with the paper's surrogate size, batch and surrogate learning rate.
PAPER_SIZES: dict[str, object] = {
    "batch_size": 2,
    "surrogate_kwargs": {"hidden": (64, 64, 64)},
    "surrogate_lr": 1e-3,
}

SETTINGS: dict[str, dict[str, object]] = {
    "none + running": {"input_normalization": "none"},
    "local + running": {"input_normalization": "local"},
    "start + running": {"input_normalization": "start"},
    "none + batch": {"input_normalization": "none", "value_normalization": "batch"},
}


def main() -> None:
    dim, iterations = int(sys.argv[1]), int(sys.argv[2])
    sigma, start = float(sys.argv[3]), float(sys.argv[4])
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(5)
    optimum = torch.rand(dim, generator=generator) * 4 - 1
    x0 = torch.full((dim,), start)
    print(
        f"d={dim}, {iterations} iterations, sigma={sigma}, x0={start}·1, "
        f"f(x0) - f* = {float(((x0 - optimum) ** 2).sum()):.4g}"
    )
    for name, setting in SETTINGS.items():
        gaps = []
        for seed in (1, 2):
            # lr 0.5σ was the default when this study ran.
            opt = zg.ZeroGrads(
                x0, sigma=sigma, lr=0.5 * sigma, seed=seed, **{**PAPER_SIZES, **setting}
            )
            for _ in range(iterations):
                points = opt.ask()
                opt.tell(points, ((points - optimum) ** 2).sum(dim=1))
            gaps.append(float(((opt.x - optimum) ** 2).sum()))
        print(f"{name}: " + ", ".join(f"{g:.4g}" for g in gaps), flush=True)


if __name__ == "__main__":
    main()
