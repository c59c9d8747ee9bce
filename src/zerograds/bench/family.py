"""Gradient estimators of ZeroGrads' own family, without a surrogate, for the ablations.

All three move θ with the same outer optimizer as ZeroGrads' defaults (``torch.optim.Adam``
with lr = 0.1 σ) and project θ onto the box after each step:

* antithetic Gaussian smoothing (the "earlier estimator" that ZeroGrads replaces):
  g = 1/(2Bσ) Σ_j (f(θ + σ ε_j) - f(θ - σ ε_j)) ε_j with ε_j ~ N(0, I), B pairs per step,
  the same sampling as ZeroGrads' defaults;
* SPSA (Spall 1992) with Rademacher directions Δ_j ∈ {±1}^d and step c = σ:
  g = 1/(2Bc) Σ_j (f(θ + c Δ_j) - f(θ - c Δ_j)) Δ_j;
* forward finite differences with step h: g_i = (f(θ + h e_i) - f(θ)) / h, d + 1 evaluations
  per step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .problems import Problem
from .recorder import Recorder

Estimator = Callable[[np.ndarray, Recorder, np.random.Generator], np.ndarray]


def _descend(
    problem: Problem, recorder: Recorder, seed: int, sigma: float, estimate: Estimator
) -> None:
    """Follow ``estimate``'s gradient with Adam (lr 0.1 σ) until the recorder stops the run."""
    rng = np.random.default_rng(seed)
    theta = torch.tensor(problem.x0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=0.1 * sigma)
    lower = torch.as_tensor(problem.lower)
    upper = torch.as_tensor(problem.upper)
    while True:
        gradient = estimate(theta.detach().numpy().copy(), recorder, rng)
        theta.grad = torch.as_tensor(gradient, dtype=torch.float64)
        optimizer.step()
        with torch.no_grad():
            theta.copy_(torch.clamp(theta, lower, upper))


def run_antithetic_es(
    problem: Problem, recorder: Recorder, seed: int, sigma: float, batch_size: int = 2
) -> None:
    """Minimize with the antithetic Gaussian-smoothing gradient and Adam."""

    def estimate(theta: np.ndarray, record: Recorder, rng: np.random.Generator) -> np.ndarray:
        eps = rng.standard_normal((batch_size, theta.size))
        points = np.concatenate([theta + sigma * eps, theta - sigma * eps])
        values = record(np.clip(points, problem.lower, problem.upper))
        differences = values[:batch_size] - values[batch_size:]
        return differences @ eps / (2.0 * batch_size * sigma)

    _descend(problem, recorder, seed, sigma, estimate)


def run_spsa(
    problem: Problem, recorder: Recorder, seed: int, sigma: float, batch_size: int = 2
) -> None:
    """Minimize with the SPSA gradient (Rademacher directions, c = σ) and Adam."""

    def estimate(theta: np.ndarray, record: Recorder, rng: np.random.Generator) -> np.ndarray:
        delta = rng.choice([-1.0, 1.0], size=(batch_size, theta.size))
        points = np.concatenate([theta + sigma * delta, theta - sigma * delta])
        values = record(np.clip(points, problem.lower, problem.upper))
        differences = values[:batch_size] - values[batch_size:]
        return differences @ delta / (2.0 * batch_size * sigma)

    _descend(problem, recorder, seed, sigma, estimate)


def run_finite_differences(
    problem: Problem, recorder: Recorder, seed: int, sigma: float, step: float = 1e-3
) -> None:
    """Minimize with forward finite differences (step ``step`` σ) and Adam."""
    h = step * sigma

    def estimate(theta: np.ndarray, record: Recorder, rng: np.random.Generator) -> np.ndarray:
        # Step backward on the coordinates at the upper bound, so every point stays in the box.
        steps = np.where(theta + h <= problem.upper, h, -h)
        points = np.vstack([theta, theta + np.diag(steps)])
        values = record(points)
        return (values[1:] - values[0]) / steps

    _descend(problem, recorder, seed, sigma, estimate)
