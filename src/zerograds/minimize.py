"""``minimize``: a scipy-style driver over the ask/tell core."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ._evaluation import ArrayConverter, Evaluator
from ._validation import check_int, short_repr
from .core import ZeroGrads
from .result import HistoryEntry, OptimizeResult

logger = logging.getLogger(__name__)

Callback = Callable[[ZeroGrads, HistoryEntry], Any]


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    *,
    sigma: float = 1.0,
    lr: float | None = None,
    max_evals: int = 10_000,
    batch_size: int = 2,
    seed: int | None = None,
    bounds: Any = None,
    vectorized: bool = False,
    callback: Callback | None = None,
    progress: bool = False,
    eval_every: int = 0,
    **options: Any,
) -> OptimizeResult:
    """Minimize a black-box function with ZeroGrads.

    Args:
        fun: the objective. ``fun(x)`` takes a `(d,)` array and returns a number. With
            ``vectorized=True``, ``fun(X)`` takes a `(n, d)` array and returns `(n,)` values.
            The arrays are numpy float arrays, or tensors with x0's dtype and device when x0 is
            a tensor.
        x0: initial point, `(d,)`: a list, numpy array or tensor.
        sigma: standard deviation σ of the sampling perturbations, in the units of x.
        lr: learning rate of the θ optimizer (Adam by default). Default ``0.5 * sigma``.
        max_evals: budget of objective calls, counting every call including the final
            evaluation of θ; never exceeded. Default 10,000.
        batch_size: perturbations B per iteration; each iteration evaluates 2B points.
        seed: seed of all random draws; ``None`` draws one from the operating system.
        bounds: optional box ``(lower, upper)``, see ``ZeroGrads``.
        vectorized: call ``fun`` once per batch with all points.
        callback: ``callback(optimizer, entry)`` after each iteration, with the ``ZeroGrads``
            instance and the iteration's ``HistoryEntry``. Returning ``True`` stops the run.
        progress: show a tqdm progress bar over evaluations.
        eval_every: also evaluate θ itself every this many iterations (0: only at the end).
            These calls count toward ``max_evals`` and fill ``HistoryEntry.fun``.
        **options: further options of ``ZeroGrads`` (``surrogate``, ``step_order``, ...).

    Returns:
        An ``OptimizeResult``; ``x`` and ``best_x`` have the type of ``x0``.

    Raises:
        ValueError, TypeError: invalid arguments, or ``fun`` returned something that is not a
            number (or not n numbers when vectorized).
        Exception: whatever ``fun`` raises propagates with the failing point attached as
            ``error.zerograds_point``; the optimizer's state is left as before the batch.

    Example:
        >>> import numpy as np
        >>> import zerograds as zg
        >>> result = zg.minimize(lambda x: float(np.sum((x - 3.0) ** 2)), np.zeros(5),
        ...                      max_evals=4000, seed=0)
        >>> bool(result.fun < 0.5)
        True
    """
    optimizer = ZeroGrads(
        x0, sigma=sigma, lr=lr, batch_size=batch_size, seed=seed, bounds=bounds, **options
    )
    max_evals = check_int("max_evals", max_evals, optimizer.batch_size + 1)
    eval_every = check_int("eval_every", eval_every, 0)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable, got {short_repr(callback)}")
    converter = ArrayConverter(x0)
    evaluate = Evaluator(fun, converter, vectorized)

    bar = _progress_bar(max_evals) if progress else None
    start = time.perf_counter()
    history: list[HistoryEntry] = []
    best_fun, best_x = math.inf, optimizer.x
    message = f"stopped after max_evals={max_evals} evaluations"
    try:
        while True:
            extra = 1 if eval_every and (optimizer.iteration + 1) % eval_every == 0 else 0
            # One evaluation stays reserved for θ at the end.
            if evaluate.calls + optimizer.batch_size + extra + 1 > max_evals:
                break

            points = optimizer.ask()
            values = evaluate(points)
            optimizer.tell(points, values)
            if optimizer.best_fun < best_fun:
                best_fun, best_x = optimizer.best_fun, optimizer.best_x

            fun_theta = math.nan
            if extra:
                fun_theta = evaluate.evaluate_one(optimizer.x)
                if fun_theta < best_fun:
                    best_fun, best_x = fun_theta, optimizer.x
            finite = values[values.isfinite()]
            entry = HistoryEntry(
                iteration=optimizer.iteration,
                nfev=evaluate.calls,
                fun=fun_theta,
                fun_mean=float(finite.mean()) if finite.numel() else math.nan,
                best_fun=best_fun,
                time=time.perf_counter() - start,
            )
            history.append(entry)
            if bar is not None:
                bar.update(evaluate.calls - bar.n)
                bar.set_postfix(best=f"{best_fun:.4g}", refresh=False)
            if callback is not None and callback(optimizer, entry) is True:
                message = f"stopped by callback at iteration {optimizer.iteration}"
                break

        final_fun = evaluate.evaluate_one(optimizer.x)
        if final_fun < best_fun:
            best_fun, best_x = final_fun, optimizer.x
    finally:
        if bar is not None:
            bar.update(evaluate.calls - bar.n)
            bar.close()

    elapsed = time.perf_counter() - start
    logger.info("%s; best value %.6g after %d evaluations", message, best_fun, evaluate.calls)
    return OptimizeResult(
        x=converter.to_result(optimizer.x),
        fun=final_fun,
        best_x=converter.to_result(best_x),
        best_fun=best_fun,
        nfev=evaluate.calls,
        nit=optimizer.iteration,
        n_nonfinite=optimizer.n_nonfinite,
        success=True,
        message=message,
        history=history,
        elapsed=elapsed,
        state=optimizer.state_dict(),
    )


def _progress_bar(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError as error:  # tqdm ships with the "cli" extra
        raise ImportError(
            "`progress=True` needs tqdm; install it with `pip install tqdm` or "
            "`pip install zerograds[cli]`"
        ) from error
    return tqdm(total=total, unit="eval", desc="zerograds")
