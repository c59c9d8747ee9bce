"""``zerograds runs``: list, show and plot the runs stored in a run database.

Examples::

    zerograds runs list
    zerograds runs show 3 --db zerograds-out/runs.db
    zerograds runs --db zerograds-out/runs.db show 3     # the same
    zerograds runs plot 3 --out run3.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from ._output import HelpFormatter, prepare_output_file

DEFAULT_DB = Path("zerograds-out/runs.db")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``zerograds runs`` and return its parser."""
    parser = subparsers.add_parser(
        "runs",
        help="list, show or plot the runs stored in a run database",
        description="Read the SQLite run database written by minimize(storage=...).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help="run database (SQLite file) to read"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="one line per run: id, status, evaluations, best value"
    )
    show = actions.add_parser("show", help="options, status and failure counts of one run")
    show.add_argument("run_id", type=int, metavar="ID", help="run id, as printed by `runs list`")
    plot = actions.add_parser("plot", help="PNG of the best value against evaluations")
    for action in (listing, show, plot):
        # --db may also follow the action; SUPPRESS keeps the value given before it otherwise.
        action.add_argument(
            "--db", type=Path, default=argparse.SUPPRESS, help="run database (SQLite file) to read"
        )
    plot.add_argument("run_id", type=int, metavar="ID", help="run id, as printed by `runs list`")
    plot.add_argument(
        "--out",
        type=Path,
        default=None,
        help="PNG file to write (default: run-ID.png next to --db)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute ``zerograds runs``; return 0 on success, 1 when the run or database is missing
    or unreadable or the plot cannot be written, 2 when ``--out`` cannot be written to."""
    from zerograds.exceptions import StorageError
    from zerograds.storage import RunStore

    if not args.db.exists():
        print(
            f"zerograds runs: error: run database {args.db} not found; pass the file that "
            "minimize(storage=...) or `zerograds run --db` wrote with --db PATH",
            file=sys.stderr,
        )
        return 1
    out = None
    if args.action == "plot":
        out = args.out or args.db.with_name(f"run-{args.run_id}.png")
        try:
            prepare_output_file(out, "--out")
        except ValueError as error:
            print(f"zerograds runs: error: {error}", file=sys.stderr)
            return 2
    try:
        with RunStore(args.db) as store:
            if args.action == "list":
                _list(store)
            elif args.action == "show":
                _show(store, args.run_id)
            else:
                assert out is not None
                try:
                    _plot(store, args.run_id, out)
                except OSError as error:
                    print(
                        f"zerograds runs: error: writing the plot to --out {out} failed: "
                        f"{error.strerror or error}; choose another --out",
                        file=sys.stderr,
                    )
                    return 1
                print(f"wrote {out}")
    except StorageError as error:
        print(f"zerograds runs: error: {error}", file=sys.stderr)
        return 1
    return 0


def _list(store: object) -> None:
    runs = store.list_runs()  # type: ignore[attr-defined]
    if not runs:
        print(f"no runs in {store.path}")  # type: ignore[attr-defined]
        return
    print(f"{'id':>4}  {'status':<11} {'evals':>8} {'iter':>6} {'best':>12}  {'started':<19}  name")
    for info in runs:
        best = "-" if info.best_fun is None else f"{info.best_fun:.6g}"
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created))
        status = info.status if info.owner is None or info.status != "running" else "running*"
        print(
            f"{info.id:>4}  {status:<11} {info.nfev:>8} {info.nit:>6} {best:>12}  {started:<19}  "
            f"{info.name or info.config.get('trajectory', {}).get('fun', '')}"
        )
    print("(running*: owned by a process; a run killed without warning also shows it)")


def _show(store: object, run_id: int) -> None:
    info = store.get_run(run_id)  # type: ignore[attr-defined]
    evaluations = store.evaluations(run_id)  # type: ignore[attr-defined]
    statuses: dict[str, int] = {}
    for row in evaluations:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    print(f"run {info.id}{'' if info.name is None else f' ({info.name})'} in {store.path}")  # type: ignore[attr-defined]
    print(f"status: {info.status}" + ("" if info.message is None else f" ({info.message})"))
    if info.owner is not None:
        print(f"owner: {info.owner}")
    print(f"seed: {info.seed}")
    print(f"evaluations recorded: {len(evaluations)} {json.dumps(statuses, sort_keys=True)}")
    print(f"last checkpoint: iteration {info.nit}, {info.nfev} evaluations")
    if info.best_fun is not None:
        print(f"best value: {info.best_fun:.10g}")
    if info.summary is not None:
        print("result: " + json.dumps(info.summary, sort_keys=True))
    print("options: " + json.dumps(info.config, sort_keys=True, indent=2))


def _plot(store: object, run_id: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluations = store.evaluations(run_id)  # type: ignore[attr-defined]
    counts, best_values, theta_counts, theta_values = [], [], [], []
    best = math.inf
    for row in evaluations:
        value = row["value"]
        if math.isfinite(value) and value < best:
            best = value
        if math.isfinite(best):
            counts.append(row["seq"] + 1)
            best_values.append(best)
        if row["kind"] in ("theta", "final") and math.isfinite(value):
            theta_counts.append(row["seq"] + 1)
            theta_values.append(value)

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(counts, best_values, label="best value")
    if theta_counts:
        axes.plot(theta_counts, theta_values, "o", label="value at θ")
    if best_values and min(best_values) > 0:
        axes.set_yscale("log")
    axes.set_xlabel("evaluations")
    axes.set_ylabel("objective")
    axes.set_title(f"run {run_id}")
    axes.legend()
    figure.tight_layout()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100)
    finally:
        plt.close(figure)
