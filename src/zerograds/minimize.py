"""``minimize``: a scipy-style driver over the ask/tell core."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from ._evaluation import ArrayConverter, Evaluator
from ._failure_policy import Evaluation, FailedBatches, FailurePolicy
from ._validation import check_int, short_repr
from .core import ZeroGrads
from .exceptions import NonFiniteObjectiveError, NumericsWarning
from .result import HistoryEntry, OptimizeResult
from .storage import Run, RunStore, describe_run

logger = logging.getLogger(__name__)

Callback = Callable[[ZeroGrads, HistoryEntry], Any]


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    *,
    sigma: float = 1.0,
    lr: float | None = None,
    max_evals: int = 10_000,
    batch_size: int = 4,
    seed: int | None = None,
    bounds: Any = None,
    vectorized: bool = False,
    callback: Callback | None = None,
    progress: bool = False,
    eval_every: int = 0,
    workers: int | None = None,
    executor: Any = None,
    on_error: str = "raise",
    on_nonfinite: str = "skip",
    penalty: float | None = None,
    timeout: float | None = None,
    max_retries: int = 3,
    storage: str | os.PathLike[str] | RunStore | None = None,
    checkpoint_every: int = 10,
    resume: bool | int = False,
    run_name: str | None = None,
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
        lr: learning rate of the θ optimizer (Adam by default). Default ``0.1 * sigma``.
        max_evals: budget of objective calls, counting every call including the final
            evaluation of θ; never exceeded. The run stops when the next iteration would not
            fit, so it can end up to one iteration short of the budget. Default 10,000.
        batch_size: perturbations B per iteration; each iteration evaluates 2B points.
            Default 4.
        seed: seed of all random draws; ``None`` draws one from the operating system.
        bounds: optional box ``(lower, upper)``, see ``ZeroGrads``.
        vectorized: call ``fun`` once per batch with all points.
        callback: ``callback(optimizer, entry)`` after each iteration, with the ``ZeroGrads``
            instance and the iteration's ``HistoryEntry``. Returning ``True`` stops the run.
        progress: show a tqdm progress bar over evaluations.
        eval_every: also evaluate θ itself every this many iterations (0: only at the end).
            These calls count toward ``max_evals`` and fill ``HistoryEntry.fun``.
        workers: evaluate each batch on a local pool of this many workers (processes unless
            ``executor="thread"``). ``None`` evaluates in this process. Results are used in
            point order, so the trajectory does not depend on the number of workers.
        executor: ``"process"`` or ``"thread"`` (the kind of the ``workers`` pool), or a
            ``concurrent.futures.Executor`` or Dask ``distributed.Client`` to evaluate on.
            Process pools and Dask pickle ``fun`` (with cloudpickle when installed).
        on_error: what to do when ``fun`` raises, times out, or its worker died on every
            retry: ``"raise"`` (default), ``"skip"`` the point, or use ``penalty`` as its value.
        on_nonfinite: what to do with a NaN or infinite value: ``"skip"`` (default; the
            optimizer drops it with a ``NumericsWarning``), ``"raise"``
            ``NonFiniteObjectiveError``, or use ``penalty``.
        penalty: finite value for failed evaluations under a ``"penalty"`` policy.
        timeout: seconds one evaluation may take before it counts as failed; ``None`` for no
            limit. Main-thread and process-pool evaluations are interrupted with ``SIGALRM``;
            in threads and on Dask the late call is abandoned and runs on to its end.
        max_retries: submissions of a point again after its worker died. Default 3.
        storage: path of a SQLite run database, or an open ``RunStore``. Every evaluation is
            recorded and a checkpoint is written every ``checkpoint_every`` iterations.
        checkpoint_every: iterations between checkpoints in ``storage``. Default 10.
        resume: with ``storage``, ``True`` continues the newest run started with the same
            ``fun``, x0, seed and options (or starts one), an int continues that run id. The
            evaluations recorded after its last checkpoint are reused, not repeated, and the
            result is bit-identical on CPU to a run that was never interrupted. ``max_evals``
            may be raised to extend a run. ``fun`` is matched by its qualified name and a hash
            of its code and of the parameters captured in its closure, so two different lambdas
            do not resume each other (see ``zerograds.storage.describe_run``); runs stored by
            zerograds versions without that hash are not found by ``resume=True``. With
            ``seed=None`` the run continues with the seed it was started with.
        run_name: label of a new run in ``storage``.
        **options: further options of ``ZeroGrads`` (``surrogate``, ``step_order``, ...).

    Returns:
        An ``OptimizeResult``; ``x`` and ``best_x`` have the type of ``x0``.

    Raises:
        ValueError, TypeError: invalid arguments, or ``fun`` returned something that is not a
            number (or not n numbers when vectorized).
        Exception: under ``on_error="raise"``, whatever ``fun`` raises propagates with the
            failing point attached as ``error.zerograds_point``; the optimizer's state is left
            as before the batch. A timeout raises ``EvaluationTimeoutError`` and a point whose
            worker died on every retry ``WorkerLostError``.
        StorageError: ``storage`` is not a readable run database, is a directory or a
            closed ``RunStore``; ``RunLockedError`` when another live process owns the run to
            resume.

    Example:
        >>> import numpy as np
        >>> import zerograds as zg
        >>> result = zg.minimize(lambda x: float(np.sum((x - 3.0) ** 2)), np.zeros(5),
        ...                      max_evals=4000, seed=0)
        >>> bool(result.fun < 0.5)
        True
    """
    _reject_unknown_options(options)
    policy = FailurePolicy(on_error, on_nonfinite, penalty, timeout)
    max_retries = check_int("max_retries", max_retries, 0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
    if storage is not None and not isinstance(storage, (str, os.PathLike, RunStore)):
        raise TypeError(
            "`storage` must be a path (str or os.PathLike) or a zerograds.RunStore, got "
            f"{short_repr(storage)}"
        )
    build = dict(sigma=sigma, lr=lr, batch_size=batch_size, bounds=bounds, **options)
    optimizer = ZeroGrads(x0, seed=seed, **build)
    policy.check_dtype(optimizer.x.dtype)
    max_evals = check_int("max_evals", max_evals, optimizer.batch_size + 1)
    eval_every = check_int("eval_every", eval_every, 0)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable, got {short_repr(callback)}")
    if storage is None and (resume is not False or run_name is not None):
        raise ValueError(
            "`resume` and `run_name` need `storage`, got "
            f"resume={short_repr(resume)} and run_name={short_repr(run_name)} with storage=None"
        )
    if isinstance(resume, bool) or resume is None:
        pass
    else:
        check_int("resume", resume, 1)
    converter = ArrayConverter(x0)

    run: Run | None = None
    if storage is not None:
        store = storage if isinstance(storage, RunStore) else RunStore(storage)
        # The fingerprint contains the seed the caller gave, None when ZeroGrads drew one, so
        # that a resume with seed=None finds the run. A new run stores the drawn seed, and a
        # resumed run continues with its stored seed.
        config = describe_run(fun, x0, seed, build, vectorized, eval_every, policy)
        config["budget"] = {"max_evals": max_evals, "checkpoint_every": checkpoint_every}
        run = store.open_run(config, seed=optimizer.seed, resume=resume, name=run_name)
        if run.seed != optimizer.seed:
            optimizer = ZeroGrads(x0, seed=run.seed, **build)

    try:
        evaluate = Evaluator(
            fun,
            converter,
            vectorized,
            policy=policy,
            workers=workers,
            executor=executor,
            max_retries=max_retries,
        )
    except BaseException:
        if run is not None:
            run.finish("failed", "invalid evaluation options")
        raise
    evaluate.journal = run

    history: list[HistoryEntry] = []
    best_fun, best_x = math.inf, optimizer.x
    elapsed_before = 0.0
    if run is not None and run.checkpoint is not None:
        optimizer.load_state_dict(run.checkpoint["optimizer"])
        driver = run.checkpoint["driver"]
        evaluate.calls = int(driver["calls"])
        evaluate.counts = type(evaluate.counts)(**driver["counts"])
        best_fun, best_x = float(driver["best_fun"]), driver["best_x"]
        history = [HistoryEntry(*entry) for entry in driver["history"]]
        elapsed_before = float(driver["elapsed"])

    def checkpoint() -> None:
        assert run is not None
        driver = {
            "calls": evaluate.calls,
            "counts": evaluate.counts.as_dict(),
            "best_fun": best_fun,
            "best_x": best_x,
            "history": [dataclasses.astuple(entry) for entry in history],
            "elapsed": elapsed_before + time.perf_counter() - start,
        }
        state = {"optimizer": optimizer.state_dict(), "driver": driver}
        run.save_checkpoint(optimizer.iteration, evaluate.calls, best_fun, state)

    bar = _progress_bar(max_evals) if progress else None
    start = time.perf_counter()
    message: str | None = None  # set when the callback stops the run
    failed_batches = FailedBatches()
    try:
        while True:
            extra = 1 if eval_every and (optimizer.iteration + 1) % eval_every == 0 else 0
            # One evaluation stays reserved for θ at the end.
            if evaluate.calls + optimizer.batch_size + extra + 1 > max_evals:
                break

            points = optimizer.ask()
            values, evaluations = evaluate.evaluate(points)
            failed_batches.add(evaluations)
            try:
                _tell(optimizer, points, values, evaluations)
            except NonFiniteObjectiveError:
                if not failed_batches.has_failures():
                    raise
                # Skipped points reach the optimizer as NaN, so report how they failed instead.
                theta = short_repr(optimizer.x.cpu().numpy())
                raise NonFiniteObjectiveError(failed_batches.describe(theta)) from None
            if optimizer.best_fun < best_fun:
                best_fun, best_x = optimizer.best_fun, optimizer.best_x

            fun_theta = math.nan
            if extra:
                fun_theta = evaluate.evaluate_one(optimizer.x)
                if math.isfinite(fun_theta) and fun_theta < best_fun:
                    best_fun, best_x = fun_theta, optimizer.x
            finite = values[values.isfinite()]
            entry = HistoryEntry(
                iteration=optimizer.iteration,
                nfev=evaluate.calls,
                fun=fun_theta,
                fun_mean=float(finite.mean()) if finite.numel() else math.nan,
                best_fun=best_fun,
                time=elapsed_before + time.perf_counter() - start,
            )
            history.append(entry)
            if bar is not None:
                bar.update(evaluate.calls - bar.n)
                bar.set_postfix(best=f"{best_fun:.4g}", refresh=False)
            if run is not None and optimizer.iteration % checkpoint_every == 0:
                checkpoint()
            if callback is not None and callback(optimizer, entry) is True:
                message = f"stopped by callback at iteration {optimizer.iteration}"
                break

        if run is not None:
            checkpoint()  # before the final evaluation, so a resumed run replays it
        final_fun = evaluate.evaluate_one(optimizer.x, "final")
        if math.isfinite(final_fun) and final_fun < best_fun:
            best_fun, best_x = final_fun, optimizer.x
        if message is None:
            message = _budget_message(evaluate.calls, max_evals, optimizer.batch_size, extra)
    except KeyboardInterrupt:
        if run is not None:
            run.finish("interrupted", "interrupted by the user")
        raise
    except BaseException as error:
        if run is not None:
            run.finish("failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        evaluate.close()
        if bar is not None:
            bar.update(evaluate.calls - bar.n)
            bar.close()

    elapsed = elapsed_before + time.perf_counter() - start
    counts = evaluate.counts
    logger.info("%s; best value %.6g after %d evaluations", message, best_fun, evaluate.calls)
    if counts.errors or counts.timeouts or counts.lost or counts.nonfinite or counts.retries:
        logger.info("failed evaluations: %s", counts.as_dict())
    result = OptimizeResult(
        x=converter.to_result(optimizer.x),
        fun=final_fun,
        best_x=converter.to_result(best_x),
        best_fun=best_fun,
        nfev=evaluate.calls,
        nit=optimizer.iteration,
        n_nonfinite=counts.nonfinite,
        success=True,
        message=message,
        history=history,
        elapsed=elapsed,
        state=optimizer.state_dict(),
        n_errors=counts.errors,
        n_timeouts=counts.timeouts,
        n_lost=counts.lost,
        n_skipped=counts.skipped,
        n_penalized=counts.penalized,
        n_retries=counts.retries,
        run_id=None if run is None else run.id,
    )
    if run is not None:
        summary = {
            "fun": final_fun,
            "best_fun": best_fun,
            "nfev": evaluate.calls,
            "nit": optimizer.iteration,
            **{f"n_{key}": value for key, value in counts.as_dict().items()},
        }
        run.finish("finished", message, summary)
    return result


def _accepted_keywords() -> tuple[set[str], set[str]]:
    """Return the names ``**options`` may contain and every keyword ``minimize`` accepts."""
    constructor = inspect.signature(ZeroGrads.__init__).parameters
    options = {name for name in constructor if name not in ("self", "x0")}
    own = {
        name
        for name, parameter in inspect.signature(minimize).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    return options, own | options


def _reject_unknown_options(options: dict[str, Any]) -> None:
    """Raise ``TypeError`` for keywords that neither ``minimize`` nor ``ZeroGrads`` accepts.

    The message names ``minimize`` and suggests the closest accepted keyword, because the
    error that ``ZeroGrads`` would raise names its constructor, which the caller never called.
    """
    allowed, accepted = _accepted_keywords()
    unknown = [name for name in options if name not in allowed]
    if not unknown:
        return
    listed = []
    unmatched = False
    for name in unknown:
        matches = difflib.get_close_matches(name, sorted(accepted), n=1)
        if matches:
            listed.append(f"{name!r} (did you mean {matches[0]!r}?)")
        else:
            listed.append(repr(name))
            unmatched = True
    noun = "an unexpected keyword argument" if len(unknown) == 1 else "unexpected keyword arguments"
    message = f"minimize() got {noun} {', '.join(listed)}"
    if unmatched:
        message += (
            "; minimize accepts its own keywords and those of zerograds.ZeroGrads, "
            "see help(zerograds.minimize)"
        )
    raise TypeError(message)


def _budget_message(nfev: int, max_evals: int, batch_points: int, theta_evals: int) -> str:
    """Describe a stop at the evaluation budget for ``OptimizeResult.message``.

    The loop stops when the next iteration (``batch_points`` points and ``theta_evals``
    evaluations of θ) would leave no room for the final evaluation of θ. So ``nfev``, which
    includes that final evaluation, can end below ``max_evals``.
    """
    if nfev == max_evals:
        return f"stopped after max_evals={max_evals} evaluations"
    needed = f"the next batch of {batch_points} evaluations"
    if theta_evals:
        needed += " plus one evaluation of θ"
    return f"stopped at {nfev} evaluations because {needed} would exceed max_evals={max_evals}"


def _tell(
    optimizer: ZeroGrads,
    points: torch.Tensor,
    values: torch.Tensor,
    evaluations: list[Evaluation],
) -> None:
    """Tell the batch; skipped failures reach the optimizer as NaN, which it drops.

    The optimizer would report those NaNs as non-finite objective values, so its warning is
    replaced by one that counts failures and non-finite values apart.
    """
    skipped = sum(1 for e in evaluations if e.action == "skipped" and e.status != "nonfinite")
    if not skipped:
        optimizer.tell(points, values)
        return
    nonfinite = sum(1 for e in evaluations if e.status == "nonfinite" and e.action == "skipped")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericsWarning)
        optimizer.tell(points, values)
    if nonfinite:
        warnings.warn(
            f"dropped {nonfinite} non-finite objective values and skipped {skipped} failed "
            f"evaluations of {len(evaluations)} at iteration {optimizer.iteration - 1}",
            NumericsWarning,
            stacklevel=3,
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
