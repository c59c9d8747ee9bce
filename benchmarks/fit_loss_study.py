"""Compare surrogate fit losses that use only the differences within each sampled batch.

The default fit centers all replayed points together, so the surrogate also has to explain the
differences between the batches' levels f(θ_k). On a quadratic that needs curvature, which a
leaky-ReLU network has only where its units switch. This study replaces the fit of a ``ZeroGrads``
object with one of two losses that compare values only inside a batch:

* ``"batch"``: predictions and targets are centered on their own batch's mean.
* ``"pairs"``: only the differences h(θ_k + ε) - h(θ_k - ε) of antithetic pairs are fitted.

Both run on autograd (the fast path is switched off) and read private attributes of
``ZeroGrads``, so the script is a study, not an example of the API. The rows with a decaying
lr set θ's learning rate through the public ``optimizer`` property: constant until the last
30 % of the budget, then linear to 0. Prints a Markdown table of f(θ) - f* after the budget.

Usage:
    python benchmarks/fit_loss_study.py [--seeds 0 1 2] [--only TEXT] [--d1000-only]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
from defaults_candidates import Problem, add_selection_arguments, start_table

import zerograds as zg

# name: (options of ZeroGrads, fit loss or None for the library's own fit, decay the lr)
SETTINGS: dict[str, tuple[dict[str, Any], str | None, bool]] = {
    "defaults": ({}, None, False),
    "defaults, lr decayed over the last 30 %": ({}, None, True),
    "within-batch fit, no replay radius": ({"replay_radius": float("inf")}, "batch", False),
    "within-batch fit, no radius, lr decayed": ({"replay_radius": float("inf")}, "batch", True),
    "pair-difference fit, no replay radius": ({"replay_radius": float("inf")}, "pairs", False),
    "no antithetic pairs": ({"antithetic": False}, None, False),
    "no antithetic pairs, within-batch fit, no radius": (
        {"antithetic": False, "replay_radius": float("inf")},
        "batch",
        False,
    ),
    "no antithetic pairs, within-batch fit, no radius, B=3": (
        {"antithetic": False, "replay_radius": float("inf"), "batch_size": 3},
        "batch",
        False,
    ),
}

DECAY_FRACTION = 0.3


def blockwise_fit(model: Any, block: int, loss: str) -> Callable[..., None]:
    """Return a replacement for ``LocalSurrogate.fit`` that fits within blocks of ``block`` rows.

    The replay buffer concatenates whole batches, so consecutive blocks of ``block`` = 2B rows
    are the batches. That is true while every value is finite, as on the quadratics here.
    With antithetic pairs, rows i and B + i of a block are θ + ε_i and θ - ε_i.
    """
    half = block // 2

    def fit(points: torch.Tensor, values: torch.Tensor, center: object, batch: object) -> None:
        rows = values.reshape(-1, block)
        spread = float((rows - rows.mean(dim=1, keepdim=True)).std(unbiased=False))
        previous = model.running_scale.scale
        scale = model.running_scale.update_std(spread)
        if previous > 0.0:
            model.network.scale_output(previous / scale)
        model.value_scale = scale
        targets = rows / scale
        targets_centered = targets - targets.mean(dim=1, keepdim=True)
        target_pairs = targets[:, :half] - targets[:, half:]
        for _ in range(model.steps):
            model.optimizer.zero_grad(set_to_none=True)
            prediction = model.network(points).reshape(-1, block)
            if loss == "batch":
                residual = prediction - prediction.mean(dim=1, keepdim=True) - targets_centered
            else:
                residual = prediction[:, :half] - prediction[:, half:] - target_pairs
            torch.mean(residual**2).backward()
            model.optimizer.step()

    return fit


def run(
    problem: Problem,
    options: dict[str, Any],
    loss: str | None,
    decay: bool,
    seed: int,
) -> float:
    """Run ask/tell with minimize's budget rule and return f(θ) - f* at the end."""
    objective, x0, f_star, sigma, lr, evals = problem
    opt = zg.ZeroGrads(x0, sigma=sigma, lr=lr, seed=seed, **options)
    if loss is not None:
        model = opt._model  # private: the study swaps the fit of this object only
        model.fast_path = False
        model.fit = blockwise_fit(model, opt.batch_size, loss)
    # minimize stops when one more batch and the final evaluation of θ would pass max_evals.
    while opt.nfev + opt.batch_size + 1 <= evals:
        points = opt.ask()
        opt.tell(points, objective(points))
        if decay:
            remaining = (evals - opt.nfev) / (DECAY_FRACTION * evals)
            opt.optimizer.param_groups[0]["lr"] = lr * min(1.0, remaining)
    return float(objective(opt.x.unsqueeze(0))[0]) - f_star


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_selection_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problems = start_table(args)
    for name, (options, loss, decay) in SETTINGS.items():
        if args.only is not None and args.only not in name:
            continue
        cells = []
        for problem in problems.values():
            gaps = [run(problem, options, loss, decay, seed) for seed in args.seeds]
            cells.append(", ".join(f"{gap:.3g}" for gap in gaps))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
