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
        n_nonfinite: number of evaluations that returned NaN or ±inf.
        success: whether the run ended by its budget or by a callback, not by an error.
        message: why the run stopped.
        history: one ``HistoryEntry`` per iteration.
        elapsed: wall-clock seconds of the whole run.
        state: the optimizer's ``state_dict()`` at the end, to continue the run.
        n_errors: evaluations in which the objective raised (handled by ``on_error``).
        n_timeouts: evaluations that exceeded ``timeout``.
        n_lost: points whose worker died on every retry.
        n_skipped: errors, timeouts and lost points dropped from their batch.
        n_penalized: values replaced by ``penalty``.
        n_retries: submissions of a point again after its worker died; a retried point is
            counted once in ``nfev``.
        run_id: id of the run in ``storage``, when one was given.
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
    n_errors: int = 0
    n_timeouts: int = 0
    n_lost: int = 0
    n_skipped: int = 0
    n_penalized: int = 0
    n_retries: int = 0
    run_id: int | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)
