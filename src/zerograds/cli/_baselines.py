"""Baseline optimizers of ``zerograds demo``: Optuna TPE, random search and SepCMA (``cmaes``).

Each runner minimizes a vectorized objective ``evaluate((n, d)) -> (n,)`` over the box
``[lower, upper]^d`` and returns a ``Trace`` with one row per iteration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from ._output import Trace

Objective = Callable[[np.ndarray], np.ndarray]


def _progress_bar(total: int, method: str, progress: bool):
    from tqdm.auto import tqdm

    # None: tqdm draws the bar only on a terminal, so logs and pipes stay readable.
    return tqdm(total=total, unit="eval", desc=method, disable=None if progress else True)


def run_tpe(
    evaluate: Objective,
    dim: int,
    bounds: tuple[float, float],
    *,
    max_trials: int,
    timeout: float,
    seed: int,
    progress: bool = True,
) -> Trace:
    """Minimize with Optuna's ``TPESampler`` (default settings) under two budgets.

    The run stops at ``max_trials`` trials or when ``timeout`` wall-clock seconds have passed,
    whichever comes first, and ``trace.note`` records which. Every parameter is a
    ``FloatDistribution`` over ``bounds``. One trial is one iteration and one evaluation.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lower, upper = bounds
    names = [f"x{i}" for i in range(dim)]
    distribution = optuna.distributions.FloatDistribution(lower, upper)
    distributions = dict.fromkeys(names, distribution)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))

    trace = Trace("TPE (Optuna)")
    bar = _progress_bar(max_trials, trace.method, progress)
    trace.start()
    deadline = time.perf_counter() + timeout
    try:
        while len(trace.rows) < max_trials and time.perf_counter() < deadline:
            trial = study.ask(distributions)
            point = np.array([trial.params[name] for name in names], dtype=np.float64)
            value = float(evaluate(point[None, :])[0])
            study.tell(trial, value)
            row = trace.add(len(trace.rows) + 1, value)
            bar.update(1)
            bar.set_postfix(best=f"{row.best_value:.4g}", refresh=False)
    finally:
        bar.close()
    if len(trace.rows) >= max_trials:
        trace.note = f"stopped by its trial budget ({max_trials} trials)"
    else:
        trace.note = (
            f"stopped by its wall-clock budget ({timeout:g} s) after {len(trace.rows)} trials"
        )
    return trace


def run_random_search(
    evaluate: Objective,
    dim: int,
    bounds: tuple[float, float],
    *,
    max_evals: int,
    seed: int,
    batch_size: int = 1,
    progress: bool = True,
) -> Trace:
    """Minimize by sampling points uniformly in the box; one iteration is ``batch_size`` points."""
    rng = np.random.default_rng(seed)
    lower, upper = bounds
    trace = Trace("random search")
    bar = _progress_bar(max_evals, trace.method, progress)
    trace.start()
    evaluations = 0
    try:
        while evaluations < max_evals:
            n = min(batch_size, max_evals - evaluations)
            points = rng.uniform(lower, upper, size=(n, dim))
            values = evaluate(points)
            evaluations += n
            row = trace.add(evaluations, float(np.min(values)))
            bar.update(n)
            bar.set_postfix(best=f"{row.best_value:.4g}", refresh=False)
    finally:
        bar.close()
    return trace


def run_sepcma(
    evaluate: Objective,
    x0: np.ndarray,
    bounds: tuple[float, float],
    *,
    sigma: float,
    max_evals: int,
    seed: int,
    progress: bool = True,
) -> Trace:
    """Minimize with ``cmaes.SepCMA`` from ``x0`` with step size ``sigma``; one generation is
    one iteration, with the package's default population size."""
    from cmaes import SepCMA

    dim = x0.size
    box = np.tile(np.array(bounds, dtype=np.float64), (dim, 1))
    optimizer = SepCMA(mean=x0.astype(np.float64), sigma=sigma, bounds=box, seed=seed)
    trace = Trace("SepCMA (cmaes)")
    bar = _progress_bar(max_evals, trace.method, progress)
    trace.start()
    evaluations = 0
    try:
        while evaluations + optimizer.population_size <= max_evals:
            points = np.array([optimizer.ask() for _ in range(optimizer.population_size)])
            values = evaluate(points)
            optimizer.tell(list(zip(points, values.tolist(), strict=True)))
            evaluations += len(values)
            finite = values[np.isfinite(values)]
            row = trace.add(evaluations, float(finite.min()) if finite.size else math.nan)
            bar.update(len(values))
            bar.set_postfix(best=f"{row.best_value:.4g}", refresh=False)
    finally:
        bar.close()
    return trace
