"""``zerograds run``: ZeroGrads on a COCO problem or on a user's Python objective.

Examples::

    zerograds run --problem bbob:1:5:1 --evals 2000
    zerograds run --function mypackage.objectives:loss --dim 100 --x0 0.5
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..storage import RunStore, StorageError
from ._output import HelpFormatter, Trace, format_table, write_outputs
from ._problems import COCO_SUITES, Problem, load_coco_problem, load_function_problem

DEFAULT_DB = Path("zerograds-out/runs.db")

# Called after every iteration with the optimizer and the trace; returning True stops the run.
IterationHook = Callable[[Any, Trace], bool | None]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``zerograds run`` and return its parser."""
    parser = subparsers.add_parser(
        "run",
        help="run ZeroGrads on a COCO problem or on your own Python objective",
        description=(
            "Minimize one objective with ZeroGrads and write its trace (CSV), three PNG plots "
            "and a summary table. Give exactly one of --problem and --function."
        ),
        formatter_class=HelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--problem",
        metavar="SUITE:FUNCTION:DIM[:INSTANCE]",
        help=(
            "COCO problem through the cocoex package, e.g. bbob:1:5:1 (sphere, d=5, instance 1). "
            f"SUITE is one of {', '.join(COCO_SUITES)}; INSTANCE defaults to 1. Starts at the "
            "problem's initial solution and keeps θ inside its region of interest."
        ),
    )
    source.add_argument(
        "--function",
        metavar="MODULE:CALLABLE",
        help=(
            "Python objective, imported as `from MODULE import CALLABLE`. It takes a 1-D "
            "float array of length DIM and returns a number (with --vectorized: an (n, DIM) "
            "array and n numbers). Needs --dim."
        ),
    )

    parser.add_argument(
        "--dim", type=int, help="number of parameters d of --function (required with it)"
    )
    parser.add_argument(
        "--x0",
        type=float,
        nargs="+",
        metavar="X",
        help=(
            "start point of --function: one number for every coordinate or DIM numbers "
            "(default: all zeros)"
        ),
    )
    parser.add_argument(
        "--vectorized",
        action="store_true",
        help="call --function once per batch with an (n, DIM) array",
    )

    add_zerograds_arguments(parser)
    add_threads_argument(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("zerograds-out/run"), help="output directory"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    storage = parser.add_argument_group("run database")
    storage.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        help=(
            "SQLite run database that records every evaluation and a checkpoint every "
            "--checkpoint-every iterations, so that --resume can continue the run"
        ),
    )
    storage.add_argument(
        "--no-db", action="store_true", help="record nothing, so the run cannot be resumed"
    )
    storage.add_argument(
        "--resume",
        type=int,
        nargs="?",
        const=True,
        default=False,
        metavar="ID",
        help=(
            "continue the newest run in --db started with the same objective, x0, seed and "
            "ZeroGrads options (with ID: run ID of `zerograds runs list`) from its last "
            "checkpoint; evaluations recorded after it are reused, not repeated, and the result "
            "is bit-identical on CPU to an uninterrupted run. Starts a new run when none matches. "
            "A larger --evals extends a finished run"
        ),
    )
    storage.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        metavar="N",
        help="iterations between checkpoints in --db (one iteration evaluates 2·batch-size points)",
    )
    return parser


def add_zerograds_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ZeroGrads options that ``run`` passes to ``zerograds.ZeroGrads``."""
    parser.add_argument(
        "--evals", type=int, default=10_000, help="objective evaluations (budget, never exceeded)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of all random draws")
    parser.add_argument(
        "--sigma",
        type=float,
        default=1.0,
        help="standard deviation σ of the sampling perturbations, in the units of x",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate of Adam on θ, in the units of x per step (default: 0.5·σ)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=4,
        help="perturbations B per iteration; each iteration evaluates 2B points",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=(
            "further keyword argument of zerograds.ZeroGrads, VALUE as a Python literal, e.g. "
            "--option surrogate_steps=10 --option step_order='\"step_first\"'; repeatable"
        ),
    )


def positive_int(text: str) -> int:
    """Parse an argparse value that must be an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads``, the torch CPU thread count that ``torch_threads`` sets."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="torch CPU threads for the surrogate; 1 suits its small matrices",
    )


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Set torch's CPU thread count to ``count`` inside the block and restore it after.

    torch's default, one thread per core, oversubscribes the cores on the surrogate's small
    matrix products as soon as another process keeps a core busy, and then each iteration
    takes far longer than on one thread. ``bench`` also runs its cells on one thread.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_evals(evals: int, optimizer: Any) -> None:
    """Raise ``ValueError`` unless ``--evals`` covers one iteration and the final evaluation.

    The minimum is the one ``zerograds.minimize`` enforces on ``max_evals``: the 2B points of
    one ask/tell iteration plus the evaluation at the final θ.
    """
    minimum = optimizer.batch_size + 1
    if evals < minimum:
        raise ValueError(
            f"--evals must be at least {minimum}, got {evals}. One iteration evaluates "
            f"2·batch-size = {optimizer.batch_size} points, and one more evaluation is at the "
            "final θ"
        )


def parse_options(items: list[str]) -> dict[str, Any]:
    """Parse ``NAME=VALUE`` strings into keyword arguments (VALUE as a Python literal).

    A VALUE that is not a literal is taken as a string, so ``step_order=step_first`` works.
    """
    options: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(
                f"invalid --option {item!r}; expected NAME=VALUE, e.g. surrogate_steps=10"
            )
        try:
            options[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[name] = text
    return options


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
        total=max_evals, initial=evaluations, unit="eval", desc=trace.method, disable=not progress
    )
    trace.start()
    try:
        while evaluations + optimizer.batch_size + 1 <= max_evals:
            points = optimizer.ask()
            values = evaluate(points.detach().cpu().numpy().astype(np.float64))
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


def drive_stored(problem: Problem, args: argparse.Namespace) -> tuple[Trace, float, int, int]:
    """Run ``problem`` through ``zerograds.minimize`` with the run database ``args.db``.

    Every evaluation is recorded and a checkpoint written every ``args.checkpoint_every``
    iterations, so a killed run continues with ``--resume``. The trace is rebuilt from the
    run's history and its recorded evaluations, so it also covers the iterations done before an
    interruption.

    Returns:
        ``(trace, value at the final θ, total evaluations, run id)``.

    Raises:
        ValueError: the run to resume was started with other options.
        StorageError: the database is unreadable, the run does not exist, or another live
            process owns it.
    """
    import zerograds as zg

    def objective(points: np.ndarray) -> np.ndarray:
        return problem.evaluate(points)

    # The run database identifies an objective by its qualified name, so that --resume only
    # continues runs of the same problem.
    objective.__module__ = __name__
    objective.__qualname__ = f"run[{problem.name}]"

    args.db.parent.mkdir(parents=True, exist_ok=True)
    with RunStore(args.db) as store:
        result = zg.minimize(
            objective,
            problem.x0,
            sigma=args.sigma,
            lr=args.lr,
            max_evals=args.evals,
            batch_size=args.batch_size,
            seed=args.seed,
            bounds=problem.bounds,
            vectorized=True,
            progress=not args.no_progress,
            storage=store,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            **parse_options(args.option),
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


def build_optimizer(x0: np.ndarray, args: argparse.Namespace, **overrides: Any) -> Any:
    """Create a ``zerograds.ZeroGrads`` from the command line's ZeroGrads options."""
    import zerograds as zg

    options = {
        "sigma": args.sigma,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "seed": args.seed,
        **parse_options(args.option),
        **overrides,
    }
    return zg.ZeroGrads(x0, **options)


# ---------------------------------------------------------------------- command
def run(args: argparse.Namespace) -> int:
    """Execute ``zerograds run``; return 0 on success, 2 on invalid input."""
    try:
        if args.problem is not None:
            problem = load_coco_problem(args.problem)
        else:
            problem = load_function_problem(args.function, args.dim, args.x0, args.vectorized)
        optimizer = build_optimizer(problem.x0, args, bounds=problem.bounds)
        check_evals(args.evals, optimizer)
        if args.no_db and args.resume is not False:
            raise ValueError("--resume needs the run database; drop --no-db")
        if args.checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every must be at least 1, got {args.checkpoint_every}")
    except (ValueError, TypeError, ImportError, AttributeError) as error:
        print(f"zerograds run: error: {error}", file=sys.stderr)
        return 2

    run_id: int | None = None
    with torch_threads(args.threads):
        if args.no_db:
            trace = Trace("ZeroGrads")
            final_value, evaluations = drive(
                optimizer, problem.evaluate, args.evals, trace, progress=not args.no_progress
            )
        else:
            try:
                trace, final_value, evaluations, run_id = drive_stored(problem, args)
            except (ValueError, StorageError) as error:
                print(f"zerograds run: error: {error}", file=sys.stderr)
                return 2

    paths = write_outputs([trace], args.out, f"ZeroGrads on {problem.name}")
    print(format_table([trace]))
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
