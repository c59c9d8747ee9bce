"""``zerograds run``: ZeroGrads on a COCO problem or on a user's Python objective.

Examples::

    zerograds run --problem bbob:1:5:1 --evals 2000
    zerograds run --function mypackage.objectives:loss --dim 100 --x0 0.5
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import NonFiniteObjectiveError
from ..storage import RunStore, StorageError
from ._arguments import (
    RUN_FLAGS,
    IterationHook,
    add_parser,
    check_evals,
    check_option_conflicts,
    parse_options,
    torch_threads,
)
from ._output import Trace, format_table, prepare_output_dir, write_outputs
from ._problems import (
    ObjectiveError,
    Problem,
    load_coco_problem,
    load_function_problem,
)

# The command's interface for the CLI's entry point, which calls add_parser and run.
__all__ = ["add_parser", "build_optimizer", "drive", "run"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- driving loop
def drive(
    optimizer: Any,
    evaluate: Callable[[np.ndarray], np.ndarray],
    max_evals: int,
    trace: Trace,
    *,
    progress: bool = True,
    on_iteration: IterationHook | None = None,
) -> tuple[float, int]:
    """Run ask/tell iterations of ``optimizer`` until ``max_evals`` would be exceeded.

    One evaluation stays reserved for θ at the end, so the run ends with the objective value at
    the final θ. ``trace`` gets one row per iteration (and one for that last evaluation).

    Args:
        optimizer: a ``zerograds.ZeroGrads`` (possibly restored from a state dict, in which case
            its ``nfev`` counts toward ``max_evals``).
        evaluate: maps `(n, d)` points to `(n,)` values.
        max_evals: total objective calls allowed.
        trace: receives the rows; ``trace.start()`` is called here.
        progress: show a tqdm bar over evaluations.
        on_iteration: ``on_iteration(optimizer, trace)`` after each iteration; ``True`` stops.

    Returns:
        ``(value at the final θ, total evaluations)``.
    """
    from tqdm.auto import tqdm

    evaluations = optimizer.nfev
    bar = tqdm(
        total=max_evals,
        initial=evaluations,
        unit="eval",
        desc=trace.method,
        # None: tqdm draws the bar only on a terminal, so logs and pipes stay readable.
        disable=None if progress else True,
    )
    trace.start()
    try:
        while evaluations + optimizer.batch_size + 1 <= max_evals:
            points = optimizer.ask()
            try:
                values = evaluate(points.detach().cpu().numpy().astype(np.float64))
            except ObjectiveError as error:
                # The optimizer cannot take part of a batch; the trace keeps its best value.
                if error.values:
                    finite = [value for value in error.values if math.isfinite(value)]
                    trace.add(evaluations + len(error.values), min(finite, default=math.nan))
                raise
            optimizer.tell(points, values)
            evaluations += len(values)

            finite = values[np.isfinite(values)]
            row = trace.add(evaluations, float(finite.min()) if finite.size else math.nan)
            bar.update(len(values))
            bar.set_postfix(best=f"{row.best_value:.4g}", refresh=False)
            if on_iteration is not None and on_iteration(optimizer, trace) is True:
                break

        theta = optimizer.x.detach().cpu().numpy().astype(np.float64)
        final_value = float(evaluate(theta[None, :])[0])
        evaluations += 1
        trace.add(evaluations, final_value)
        bar.update(1)
    finally:
        bar.close()
    return final_value, evaluations


def stored_objective(problem: Problem) -> tuple[Callable[[np.ndarray], Any], bool]:
    """Return the objective that ``drive_stored`` gives ``zerograds.minimize``, and whether it
    is vectorized.

    An objective called point by point stays so, so that the run database records each value
    as it comes and keeps the values of a batch in which a later point fails.
    """
    objective: Callable[[np.ndarray], Any]
    if problem.evaluate_point is not None:
        evaluate_point = problem.evaluate_point

        def objective(point: np.ndarray) -> float:
            return evaluate_point(point)

        vectorized = False
    else:
        evaluate = problem.evaluate

        def objective(points: np.ndarray) -> np.ndarray:
            return evaluate(points)

        vectorized = True
    # The run database identifies an objective by its qualified name and a hash of its code,
    # so a problem-specific name keeps --resume to runs of the same problem.
    objective.__module__ = __name__
    objective.__qualname__ = f"run[{problem.name}]"
    return objective, vectorized


def drive_stored(
    problem: Problem, args: argparse.Namespace, options: dict[str, Any]
) -> tuple[Trace, float, int, int]:
    """Run ``problem`` through ``zerograds.minimize`` with the run database ``args.db``.

    Every evaluation is recorded and a checkpoint written every ``args.checkpoint_every``
    iterations, so a killed run continues with ``--resume``. The trace is rebuilt from the
    run's history and its recorded evaluations, so it also covers the iterations done before an
    interruption.

    Args:
        problem: the objective.
        args: the command line.
        options: further keyword arguments of ``zerograds.minimize`` (``--option`` and the
            problem's bounds).

    Returns:
        ``(trace, value at the final θ, total evaluations, run id)``.

    Raises:
        ValueError: the run to resume was started with other options.
        StorageError: the database is unreadable, the run does not exist, or another live
            process owns it.
        ObjectiveError: the objective raised or returned something that is not a number. The
            evaluations made before stay recorded in the database.
    """
    import zerograds as zg

    objective, vectorized = stored_objective(problem)
    with RunStore(args.db) as store:
        result = zg.minimize(
            objective,
            problem.x0,
            sigma=args.sigma,
            lr=args.lr,
            max_evals=args.evals,
            batch_size=args.batch_size,
            seed=args.seed,
            vectorized=vectorized,
            progress=not args.no_progress,
            storage=store,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            **options,
        )
        assert result.run_id is not None
        values = {int(row["seq"]): float(row["value"]) for row in store.evaluations(result.run_id)}

    trace = Trace("ZeroGrads")
    trace.start()
    calls = 0
    for entry in result.history:
        batch = [values.get(seq, math.nan) for seq in range(calls, entry.nfev)]
        finite = [value for value in batch if math.isfinite(value)]
        trace.add(entry.nfev, min(finite) if finite else math.nan, seconds=entry.time)
        calls = entry.nfev
    trace.add(result.nfev, float(result.fun), seconds=result.elapsed)
    return trace, float(result.fun), int(result.nfev), result.run_id


def build_optimizer(x0: np.ndarray, args: argparse.Namespace, **options: Any) -> Any:
    """Create a ``zerograds.ZeroGrads`` from the flags ``--sigma``, ``--lr``, ``--batch-size``
    and ``--seed`` and the further keyword arguments ``options``."""
    import zerograds as zg

    return zg.ZeroGrads(
        x0, sigma=args.sigma, lr=args.lr, batch_size=args.batch_size, seed=args.seed, **options
    )


def run_options(problem: Problem, args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword arguments of ``--option`` plus the problem's bounds.

    Raises:
        ValueError: an ``--option`` sets what a flag or the problem already sets, or is
            malformed.
    """
    set_by_problem = {}
    if problem.coco_problem is not None:
        set_by_problem = {
            "bounds": "the bounds that run takes from the COCO problem's region of interest; "
            "drop it (--option bounds applies to --function only)",
            "x0": "the start point that run takes from the COCO problem; drop it",
        }
    check_option_conflicts(args.option, RUN_FLAGS, set_by_problem)
    options = parse_options(args.option)
    if problem.bounds is not None:
        options["bounds"] = problem.bounds
    return options


def check_problem_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` for ``--function`` options given with ``--problem``."""
    if args.problem is None:
        return
    for flag, is_set in (
        ("--dim", args.dim is not None),
        ("--x0", args.x0 is not None),
        ("--vectorized", args.vectorized),
    ):
        if is_set:
            raise ValueError(
                f"{flag} applies to --function only; --problem {args.problem} sets its own "
                "dimension and start point. Drop " + flag
            )


def check_db_folder(db: Path) -> None:
    """Create the folder of the run database ``db``; raise ``ValueError`` when that fails."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"cannot create the folder {db.parent} of --db {db}: {error.strerror or error}; "
            "choose another --db or pass --no-db"
        ) from None
    if db.is_dir():
        raise ValueError(f"invalid --db {db}: it is a folder; give the path of a file")


def report_objective_failure(
    error: Exception, problem: Problem, args: argparse.Namespace, trace: Trace | None
) -> None:
    """Print what was kept of a run that the objective stopped, then the one-line error."""
    logger.info("the objective failed", exc_info=error)
    if trace is not None and trace.rows:
        try:
            write_outputs([trace], args.out, f"ZeroGrads on {problem.name} (stopped)")
            print(
                f"zerograds run: wrote the trace of the {trace.evaluations} evaluations before "
                f"the failure to {args.out}",
                file=sys.stderr,
            )
        except OSError as write_error:
            logger.warning("could not write the partial trace: %s", write_error)
    if not args.no_db:
        recorded = failed_run(args.db, problem)
        if recorded is not None:
            run_id, count = recorded
            print(
                f"zerograds run: run {run_id} in {args.db} keeps the {count} "
                f"evaluation{'' if count == 1 else 's'} made, the failed one included; "
                f"`zerograds runs show {run_id} --db {args.db}` describes it",
                file=sys.stderr,
            )
    hint = " (-v shows the traceback)" if isinstance(error.__cause__, Exception) else ""
    print(f"zerograds run: error: {error}{hint}", file=sys.stderr)


def failed_run(db: Path, problem: Problem) -> tuple[int, int] | None:
    """Return ``(run id, evaluations recorded)`` of the latest run of ``problem`` in ``db``."""
    objective, _ = stored_objective(problem)
    name = f"{objective.__module__}.{objective.__qualname__}"
    try:
        with RunStore(db) as store:
            runs = [
                info
                for info in store.list_runs()
                if info.config.get("trajectory", {}).get("fun") == name
            ]
            if not runs:
                return None
            latest = max(runs, key=lambda info: (info.updated, info.id))
            return latest.id, len(store.evaluations(latest.id))
    except StorageError:
        return None


def problem_label(args: argparse.Namespace) -> str:
    """Return ``--function SPEC`` or ``--problem SPEC``, as given on the command line."""
    return (
        f"--problem {args.problem}" if args.problem is not None else f"--function {args.function}"
    )


# ---------------------------------------------------------------------- command
def run(args: argparse.Namespace) -> int:
    """Execute ``zerograds run``; return 0 on success, 2 on invalid input, 1 when the
    objective fails or the outputs cannot be written."""
    try:
        check_problem_arguments(args)
        if args.problem is not None:
            problem = load_coco_problem(args.problem)
        else:
            problem = load_function_problem(args.function, args.dim, args.x0, args.vectorized)
        options = run_options(problem, args)
        optimizer = build_optimizer(problem.x0, args, **options)
        check_evals(args.evals, optimizer)
        if args.no_db and args.resume is not False:
            raise ValueError("--resume needs the run database; drop --no-db")
        if args.checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every must be at least 1, got {args.checkpoint_every}")
        # Before the first evaluation, so that a run is not computed and then lost.
        prepare_output_dir(args.out, "--out")
        if not args.no_db:
            check_db_folder(args.db)
    except (ValueError, TypeError, ImportError, AttributeError) as error:
        print(f"zerograds run: error: {error}", file=sys.stderr)
        return 2

    run_id: int | None = None
    trace: Trace | None = None
    with torch_threads(args.threads):
        try:
            if args.no_db:
                trace = Trace("ZeroGrads")
                final_value, evaluations = drive(
                    optimizer, problem.evaluate, args.evals, trace, progress=not args.no_progress
                )
            else:
                trace, final_value, evaluations, run_id = drive_stored(problem, args, options)
        except (ValueError, StorageError) as error:
            print(f"zerograds run: error: {error}", file=sys.stderr)
            return 2
        except ObjectiveError as error:
            report_objective_failure(error, problem, args, trace)
            return 1
        except NonFiniteObjectiveError as error:
            wrapped = ObjectiveError(f"{problem_label(args)}: {error}")
            report_objective_failure(wrapped, problem, args, trace)
            return 1

    try:
        paths = write_outputs([trace], args.out, f"ZeroGrads on {problem.name}")
    except OSError as error:
        recorded = "" if run_id is None else f"; the run is recorded as run {run_id} in {args.db}"
        print(
            f"zerograds run: error: writing the outputs to --out {args.out} failed: "
            f"{error.strerror or error}{recorded}",
            file=sys.stderr,
        )
        return 1
    print(format_table([trace]))
    if not math.isfinite(trace.best_value):
        print(
            f"zerograds run: warning: {problem_label(args)} returned no finite value in "
            f"{evaluations} evaluations; check what it returns near --x0",
            file=sys.stderr,
        )
    print(f"problem: {problem.name} (d={problem.dim}), {evaluations} evaluations")
    print(f"value at final θ: {final_value:.6g}; best value: {trace.best_value:.6g}")
    if problem.f_opt is not None:
        print(f"final precision f - f_opt: {trace.best_value - problem.f_opt:.3e} (best value)")
    if problem.coco_problem is not None:
        hit = bool(problem.coco_problem.final_target_hit)
        print(f"COCO final target (f_opt + 1e-8) hit: {'yes' if hit else 'no'}")
    if run_id is not None:
        print(f"recorded as run {run_id} in {args.db}. Continue it with --resume {run_id}")
    print(f"wrote {len(paths)} files to {args.out}")
    return 0
