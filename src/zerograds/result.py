"""Result types returned by ``zerograds.minimize``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HistoryEntry:
    """One iteration of a ``minimize`` run.

    Attributes:
        iteration: iteration number, starting at 1.
        nfev: objective calls so far, including evaluations of θ.
        fun: objective value at θ after this iteration when ``eval_every`` asked for it,
            else NaN.
        fun_mean: mean of this iteration's finite sample values, an estimate of the smoothed
            objective at θ that costs no extra evaluation.
        best_fun: lowest value seen so far.
        time: seconds since the start of the run.
    """

    iteration: int
    nfev: int
    fun: float
    fun_mean: float
    best_fun: float
    time: float


@dataclass
class OptimizeResult:
    """Outcome of ``zerograds.minimize``.

    ``x`` and ``best_x`` have the type of the ``x0`` that the user passed: a numpy array, a
    list of floats, or a tensor on x0's device with x0's dtype.

    Attributes:
        x: final parameters θ.
        fun: objective value at ``x`` (one evaluation, counted in ``nfev``).
        best_x: point with the lowest value among all evaluations.
        best_fun: that value.
        nfev: number of objective calls, never more than ``max_evals``.
        nit: number of iterations.
        n_nonfinite: number of NaN or infinite values that were dropped.
        success: whether the run ended by its budget or by a callback, not by an error.
        message: why the run stopped.
        history: one ``HistoryEntry`` per iteration.
        elapsed: wall-clock seconds of the whole run.
        state: the optimizer's ``state_dict()`` at the end, to continue the run.
    """

    x: Any
    fun: float
    best_x: Any
    best_fun: float
    nfev: int
    nit: int
    n_nonfinite: int
    success: bool
    message: str
    history: list[HistoryEntry] = field(default_factory=list)
    elapsed: float = 0.0
    state: dict[str, Any] | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)
