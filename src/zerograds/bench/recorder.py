"""The objective wrapper that counts evaluations, keeps the best value and enforces budgets."""

from __future__ import annotations

import math
import time

import numpy as np

from .problems import Problem


class BudgetExhausted(Exception):
    """Raised by ``Recorder`` once the evaluation or wall-clock budget is used up."""


class Recorder:
    """Vectorized objective that records a run's progress for one benchmark cell.

    Each call is one iteration of the optimizer (a batch, a generation, or a single point).
    The recorder evaluates at most the evaluations left in the budget, records the call, and
    then raises ``BudgetExhausted`` when the evaluation budget or ``max_seconds`` is used up,
    so every optimizer stops at the same count without knowing the budget.

    Rows are stored only when the best value improves, plus the last call. That keeps
    best-so-far against evaluations and against seconds exact, because the best value only
    changes at those rows. Iteration times are kept at roughly logarithmically spaced
    iterations.

    Args:
        problem: the problem to evaluate.
        max_evals: evaluation budget.
        max_seconds: wall-clock budget in seconds, or ``None``.
    """

    def __init__(self, problem: Problem, max_evals: int, max_seconds: float | None) -> None:
        self.problem = problem
        self.max_evals = max_evals
        self.max_seconds = max_seconds
        self.nfev = 0
        self.iterations = 0
        self.best = math.inf
        self.evals: list[int] = []
        self.best_values: list[float] = []
        self.seconds: list[float] = []
        self.iteration_times: list[tuple[int, int, float]] = []
        self.stop_reason = ""
        # Settings an optimizer reports about itself, stored with the record.
        self.settings: dict[str, object] = {}
        self._next_logged_iteration = 1
        self._start = time.perf_counter()
        self._last = self._start

    @property
    def elapsed(self) -> float:
        """Seconds since the recorder was created."""
        return time.perf_counter() - self._start

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Evaluate `(n, d)` points (or one `(d,)` point) and return `(n,)` values."""
        if self.stop_reason:
            raise BudgetExhausted(self.stop_reason)
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        left = self.max_evals - self.nfev
        values = self.problem.evaluate(points[:left])
        self.nfev += len(values)
        self.iterations += 1
        finite = values[np.isfinite(values)]
        now = time.perf_counter()
        improved = finite.size > 0 and float(finite.min()) < self.best
        if improved:
            self.best = float(finite.min())
        if improved or not self.evals:
            self._add_row(now)
        if self.iterations >= self._next_logged_iteration:
            self.iteration_times.append((self.iterations, self.nfev, now - self._last))
            self._next_logged_iteration = max(self.iterations + 1, int(self.iterations * 1.1))
        self._last = now

        if self.nfev >= self.max_evals:
            self.stop_reason = f"evaluation budget of {self.max_evals} reached"
        # NOTE: the wall-clock limit is checked between calls only, so a run overshoots it by
        # up to one call of the optimizer (seconds per trial for Optuna at large d).
        elif self.max_seconds is not None and now - self._start >= self.max_seconds:
            self.stop_reason = f"wall-clock limit of {self.max_seconds:g} s reached"
        if self.stop_reason:
            self.finish()
            raise BudgetExhausted(self.stop_reason)
        if len(values) < len(points):
            # Cannot happen because the budget check above raises first; kept as a guard.
            raise BudgetExhausted("evaluation budget reached inside a batch")
        return values

    def _add_row(self, now: float) -> None:
        self.evals.append(self.nfev)
        self.best_values.append(self.best)
        self.seconds.append(now - self._start)

    def finish(self) -> None:
        """Add the final row (the total count and time) unless it is already the last one."""
        if not self.evals or self.evals[-1] != self.nfev:
            self._add_row(time.perf_counter())
