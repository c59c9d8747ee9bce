"""Compare candidate default settings of zerograds on shifted test problems.

Each problem has its optimum away from the origin. The d = 1000 quadratics start on the
diagonal through their optimum, the other problems have an optimum drawn per coordinate.
Prints a Markdown table of the final f(θ) - f* after each problem's budget, per seed.

Usage:
    python benchmarks/defaults_candidates.py [--seeds 0 1 2] [--only TEXT] [--d1000-only]
        [--evals N]
    python benchmarks/defaults_candidates.py --exact-adam
    python benchmarks/defaults_candidates.py --trace
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

import zerograds as zg

Objective = Callable[[torch.Tensor], torch.Tensor]


def _random_point(dim: int, low: float, high: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    return torch.rand(dim, generator=generator) * (high - low) + low


def _sphere(optimum: torch.Tensor) -> Objective:
    return lambda x: ((x - optimum) ** 2).sum(dim=1)


def _rotated_ellipsoid(dim: int, condition: float) -> Objective:
    generator = torch.Generator().manual_seed(6)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
    weights = condition ** (torch.arange(dim) / (dim - 1))
    optimum = _random_point(dim, -1.0, 3.0)
    return lambda x: (weights * (((x - optimum) @ rotation.T) ** 2)).sum(dim=1)


# (objective, x0, f*, sigma, lr, evaluations)
Problem = tuple[Objective, torch.Tensor, float, float, float, int]

PROBLEMS: dict[str, Problem] = {
    "sphere d=1000, opt 30·1": (
        _sphere(torch.full((1000,), 30.0)),
        torch.full((1000,), 100.0),
        0.0,
        1.0,
        0.5,
        8000,
    ),
    "sphere d=1000, opt -50·1": (
        _sphere(torch.full((1000,), -50.0)),
        torch.full((1000,), 100.0),
        0.0,
        1.0,
        0.5,
        8000,
    ),
    "sphere d=10, opt 3·1": (
        _sphere(torch.full((10,), 3.0)),
        torch.zeros(10),
        0.0,
        0.3,
        0.05,
        8000,
    ),
    "sphere d=50, random opt": (
        _sphere(_random_point(50, -1.0, 3.0)),
        torch.full((50,), 5.0),
        0.0,
        0.5,
        0.25,
        2000,
    ),
    "ellipsoid d=100, cond 1e3": (
        _rotated_ellipsoid(100, 1e3),
        torch.zeros(100),
        0.0,
        0.5,
        0.25,
        8000,
    ),
}

# The first four rows were measured before the replay buffer existed, so they pin replay=1.
SETTINGS: dict[str, dict[str, object]] = {
    "B=2, 3x64, surrogate lr 1e-3 (paper sizes)": {
        "batch_size": 2,
        "surrogate_kwargs": {"hidden": (64, 64, 64)},
        "surrogate_lr": 1e-3,
        "replay": 1,
    },
    "B=4, 256x256, surrogate lr 3e-3, no replay": {"replay": 1},
    "no replay, without antithetic pairs": {"antithetic": False, "replay": 1},
    "B=8, 256x256, surrogate lr 3e-3, no replay": {
        "batch_size": 8,
        "surrogate_kwargs": {"hidden": (256, 256)},
        "surrogate_lr": 3e-3,
        "replay": 1,
    },
    "defaults: replay 32 batches, radius 0.5": {},
    "defaults with B=2": {"batch_size": 2},
    "defaults with 10 surrogate updates": {"surrogate_steps": 10},
    "defaults without antithetic pairs": {"antithetic": False},
    "defaults with replay radius 0.75": {"replay_radius": 0.75},
    "defaults with replay radius 1.0": {"replay_radius": 1.0},
    "without antithetic pairs, B=3, replay radius 1.0": {
        "antithetic": False,
        "batch_size": 3,
        "replay_radius": 1.0,
    },
}


def exact_gradient_adam(optimum: float, steps: int = 1000) -> None:
    """Print f along Adam (lr 0.5) fed the exact gradient of the d = 1000 sphere from 100·1.

    Every coordinate follows the same path, so one coordinate stands for all 1000.
    """
    x = torch.tensor([100.0], requires_grad=True)
    adam = torch.optim.Adam([x], lr=0.5)
    marks = []
    for step in range(1, steps + 1):
        x.grad = 2.0 * (x.detach() - optimum)
        adam.step()
        if step % 100 == 0 or step == steps:
            marks.append(f"{step}: {1000 * float(x.detach()[0] - optimum) ** 2:.3g}")
    print(f"exact-gradient Adam, optimum {optimum}·1, f after step  " + ", ".join(marks))


def trace_defaults(optimum: float = -50.0, seed: int = 0) -> None:
    """Print the surrogate gradient and Adam's state every 100 iterations on the d = 1000 sphere.

    The surrogate gradient g_t handed to Adam is recovered from Adam's first moment,
    g_t = (m_t - β1 m_{t-1}) / (1 - β1), and compared with the exact gradient 2(θ - c) at the
    θ where it was taken: cosine, and the scale (g_t · g) / (g · g). √v̂ is the root mean of
    Adam's bias-corrected second moment, the denominator of every step.
    """
    dim = 1000
    center = torch.full((dim,), optimum)

    def objective(x: torch.Tensor) -> torch.Tensor:
        return ((x - center) ** 2).sum(dim=-1)

    opt = zg.ZeroGrads(torch.full((dim,), 100.0), sigma=1.0, lr=0.5, seed=seed)
    beta1, beta2 = opt.optimizer.param_groups[0]["betas"]
    previous = None
    print(f"defaults on Σ(x - {optimum:g})², d = 1000, from 100·1, seed {seed}\n")
    print("| iteration | f(θ) | mean θ - c | rms θ - c | cosine | scale | rms 2(θ - c) | √v̂ |")
    print("|---|---|---|---|---|---|---|---|")
    while opt.nfev + 2 * opt.batch_size <= 7999:
        theta = opt.x.clone()
        points = opt.ask()
        opt.tell(points, objective(points))
        state = next(iter(opt.optimizer.state.values()))
        first = state["exp_avg"].clone()
        if previous is not None and opt.iteration % 100 == 0:
            estimate = (first - beta1 * previous) / (1.0 - beta1)
            exact = 2.0 * (theta - center)
            cosine = float(torch.nn.functional.cosine_similarity(estimate, exact, dim=0))
            scale = float(estimate @ exact / (exact @ exact))
            v_hat = state["exp_avg_sq"] / (1.0 - beta2 ** float(state["step"]))
            error = opt.x - center
            print(
                f"| {opt.iteration} | {float(error.pow(2).sum()):.3g} | {float(error.mean()):.3g}"
                f" | {float(error.pow(2).mean().sqrt()):.3g} | {cosine:.2f} | {scale:.2f}"
                f" | {float(exact.pow(2).mean().sqrt()):.3g} | {float(v_hat.mean().sqrt()):.3g} |",
                flush=True,
            )
        previous = first


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that select seeds, settings and problems, shared with fit_loss_study."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run")
    parser.add_argument(
        "--only", default=None, help="run only the settings whose name contains this text"
    )
    parser.add_argument(
        "--d1000-only", action="store_true", help="run only the two d = 1000 spheres"
    )


def start_table(args: argparse.Namespace) -> dict[str, Problem]:
    """Return the problems that ``args`` selects, after printing the table's header."""
    problems = {
        name: problem
        for name, problem in PROBLEMS.items()
        if not args.d1000_only or "d=1000" in name
    }
    print(f"final f(θ) - f*, seeds {args.seeds}\n")
    print("| setting | " + " | ".join(problems) + " |")
    print("|---" * (len(problems) + 1) + "|")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_selection_arguments(parser)
    parser.add_argument(
        "--evals",
        type=int,
        default=None,
        help="budget of evaluations per run for every problem (default: each problem's own)",
    )
    parser.add_argument(
        "--exact-adam",
        action="store_true",
        help="only print the d = 1000 spheres' f along Adam fed the exact gradient",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="only trace the defaults' surrogate gradient and Adam state on the −50·1 sphere",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.trace:
        trace_defaults()
        return
    if args.exact_adam:
        exact_gradient_adam(30.0)
        exact_gradient_adam(-50.0)
        return

    problems = start_table(args)
    for name, setting in SETTINGS.items():
        if args.only is not None and args.only not in name:
            continue
        cells = []
        for objective, x0, f_star, sigma, lr, evals in problems.values():
            gaps = []
            for seed in args.seeds:
                result = zg.minimize(
                    objective,
                    x0,
                    sigma=sigma,
                    lr=lr,
                    max_evals=evals if args.evals is None else args.evals,
                    seed=seed,
                    vectorized=True,
                    **setting,
                )
                gaps.append(f"{result.fun - f_star:.3g}")
            cells.append(", ".join(gaps))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
