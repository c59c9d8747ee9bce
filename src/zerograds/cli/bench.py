"""``zerograds bench``: run a benchmark suite and write its Markdown report and figures."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from ._output import HelpFormatter

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``zerograds bench`` and return its parser."""
    parser = subparsers.add_parser(
        "bench",
        help="compare ZeroGrads with other black-box optimizers on a benchmark suite",
        description=(
            "Run every cell (optimizer x problem x seed) of a suite that is not already in the "
            "result files under --out, then draw the figures and rewrite the suite's section "
            "of the report. A killed run continues where it stopped when started again. "
            "Suites: quick (about 13 minutes on one core), full (about 80 minutes as two "
            "processes, see docs/benchmarks.md), tiny (seconds, for tests)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--suite", default="quick", help="suite to run: quick, full or tiny")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder of the result files and COCO logs (default: zerograds-out/bench-SUITE)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help=(
            "Markdown report to update; figures go to the folder figures/ beside it (default: "
            "report.md in --out; the repository's docs are regenerated with "
            "--report docs/benchmarks.md)"
        ),
    )
    parser.add_argument(
        "--benchmarks",
        default=None,
        help="comma-separated benchmark names of the suite to run (default: all)",
    )
    parser.add_argument(
        "--optimizers",
        default=None,
        help="comma-separated optimizer names to run (default: all of each benchmark)",
    )
    parser.add_argument(
        "--report-only", action="store_true", help="run no cell; redraw from the result files"
    )
    parser.add_argument("--no-report", action="store_true", help="run the cells, write no report")
    parser.add_argument(
        "--cocopp",
        action="store_true",
        help="also post-process the COCO logs with cocopp and add its ECDF figures (minutes)",
    )
    parser.add_argument(
        "--retry-errors", action="store_true", help="run the cells that raised an error again"
    )
    parser.add_argument("--list", action="store_true", help="list the suite's cells and exit")
    return parser


def _names(option: str, text: str) -> list[str]:
    """Split a comma-separated ``text`` of ``option``; raise ``ValueError`` when it names none."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(
            f"invalid {option} {text!r}: it names nothing; give comma-separated names or "
            f"omit {option} to select all"
        )
    return names


def _select(benchmarks: list[Any], names: str | None, optimizers: str | None) -> list[Any]:
    """Return the benchmarks selected by ``--benchmarks`` with the optimizers of
    ``--optimizers``.

    Raises:
        ValueError: a name is unknown or the selection contains no cell.
    """
    import dataclasses

    from ..bench.optimizers import get_optimizer

    chosen = benchmarks
    if names is not None:
        requested = _names("--benchmarks", names)
        known = {benchmark.name for benchmark in benchmarks}
        unknown = [name for name in requested if name not in known]
        if unknown:
            raise ValueError(
                f"unknown benchmark {unknown[0]!r} in --benchmarks; expected names from "
                f"{sorted(known)}"
            )
        chosen = [benchmark for benchmark in benchmarks if benchmark.name in requested]
    if optimizers is not None:
        selected = _names("--optimizers", optimizers)
        for name in selected:
            get_optimizer(name)
        available = sorted({name for benchmark in chosen for name in benchmark.optimizers})
        chosen = [
            dataclasses.replace(
                benchmark,
                optimizers=tuple(name for name in benchmark.optimizers if name in selected),
            )
            for benchmark in chosen
        ]
        if not any(benchmark.optimizers for benchmark in chosen):
            raise ValueError(
                f"--optimizers {optimizers!r} selects no optimizer of the chosen benchmarks; "
                f"expected names from {available}"
            )
    return chosen


def _print_cell(record: dict[str, Any], skipped: bool) -> None:
    if skipped:
        return
    status = record["status"]
    detail = f"{record.get('nfev', 0)} evaluations, {record.get('wall', 0.0):.1f} s"
    if status != "done":
        detail = f"{status}: {record.get('message', '')}"
    print(f"  {record['key']}: {detail}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Execute ``zerograds bench``; return the exit status."""
    from ..bench.report import check_report_inputs, write_report
    from ..bench.runner import run_benchmark
    from ..bench.suites import get_suite

    try:
        benchmarks = _select(get_suite(args.suite), args.benchmarks, args.optimizers)
    except ValueError as error:
        print(f"zerograds bench: error: {error}", file=sys.stderr)
        return 2
    out_dir = args.out or Path(f"zerograds-out/bench-{args.suite}")
    args.report = args.report or out_dir / "report.md"

    if args.list:
        for benchmark in benchmarks:
            for optimizer, problem, seed in benchmark.cells():
                print(f"{benchmark.name} {optimizer} {problem} seed={seed}")
        return 0

    suite_benchmarks = get_suite(args.suite)
    if args.report_only:
        try:
            check_report_inputs(args.suite, suite_benchmarks, out_dir, args.report)
        except ValueError as error:
            print(f"zerograds bench: error: {error}", file=sys.stderr)
            return 2

    start = time.perf_counter()
    if not args.report_only:
        for benchmark in benchmarks:
            print(f"{benchmark.name}: {benchmark.title}", flush=True)
            run_benchmark(benchmark, out_dir, on_cell=_print_cell, retry_errors=args.retry_errors)
    elapsed = time.perf_counter() - start
    print(f"cells took {elapsed / 60:.1f} minutes; results in {out_dir}", flush=True)
    if args.no_report:
        return 0

    extra = _cocopp_section(benchmarks, out_dir, args.report, args.suite) if args.cocopp else []
    try:
        figures = write_report(
            args.suite,
            suite_benchmarks,
            out_dir,
            args.report,
            elapsed=None if args.report_only else time.perf_counter() - start,
            extra_lines=extra,
            require_results=args.report_only,
        )
    except ValueError as error:
        print(f"zerograds bench: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.report} and {len(figures)} figures in {time.perf_counter() - start:.0f} s")
    return 0


def _cocopp_section(benchmarks: list[Any], out_dir: Path, report: Path, suite: str) -> list[str]:
    import os
    import shutil

    from ..bench.coco import run_cocopp
    from ..bench.problems import COCO_SUITES, parse_spec, problem_dim

    lines = ["### COCO post-processing (cocopp)", ""]
    for benchmark in benchmarks:
        family, _ = parse_spec(benchmark.problems[0])
        if family not in COCO_SUITES:
            continue
        dest = Path(out_dir) / "ppdata" / benchmark.name
        try:
            dims = sorted({problem_dim(problem) for problem in benchmark.problems})
            figures = run_cocopp(
                out_dir, benchmark.name, family, list(benchmark.optimizers), dims, dest
            )
        except Exception as error:  # cocopp raises many kinds; the report names the error
            logger.warning("cocopp failed on %s: %s", benchmark.name, error)
            lines += [f"cocopp failed on {benchmark.name}: {type(error).__name__}: {error}", ""]
            continue
        for figure in figures:
            target = report.parent / "figures" / f"bench-{suite}-{benchmark.name}-{figure.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(figure, target)
            relative = os.path.relpath(target, report.parent)
            lines += [f"![cocopp ECDF, {benchmark.title}]({relative})", ""]
        print(f"cocopp: {benchmark.name} in {dest}", flush=True)
    return lines
