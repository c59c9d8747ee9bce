"""Traces, CSV files, plots and the summary table shared by ``zerograds demo`` and ``run``.

A trace has one row per iteration of a method. What an iteration is depends on the method: one
ask/tell batch for ZeroGrads, one trial for TPE and random search, one generation for CMA-ES.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TRACE_COLUMNS = (
    "method",
    "iteration",
    "evaluations",
    "value",
    "best_value",
    "seconds",
    "iteration_seconds",
)
PLOT_FILES = ("best_vs_evaluations.png", "best_vs_seconds.png", "iteration_seconds.png")


@dataclass
class TraceRow:
    """One iteration of a method: counters, values and times (seconds)."""

    iteration: int
    evaluations: int
    value: float
    best_value: float
    seconds: float
    iteration_seconds: float


@dataclass
class Trace:
    """Per-iteration record of one method's run.

    Call ``start()`` right before the first iteration and ``add()`` after each one; ``add``
    measures the iteration's wall-clock time since the previous call.
    """

    method: str
    rows: list[TraceRow] = field(default_factory=list)
    note: str = ""
    _start: float = field(default=0.0, repr=False)
    _last: float = field(default=0.0, repr=False)

    def start(self) -> None:
        """Start the clock of ``seconds`` and of the first iteration's time."""
        self._start = self._last = time.perf_counter()

    def add(self, evaluations: int, value: float, seconds: float | None = None) -> TraceRow:
        """Append an iteration that brought the evaluation count to ``evaluations``.

        Args:
            evaluations: total objective calls so far.
            value: lowest objective value among this iteration's evaluations.
            seconds: seconds from the start of the run to the end of this iteration. Give it
                for an iteration recorded earlier, as in a resumed run. ``None`` measures it now.
        """
        now = time.perf_counter() if seconds is None else self._start + seconds
        best = min(value, self.rows[-1].best_value) if self.rows else value
        if math.isnan(best):
            best = value if not math.isnan(value) else math.inf
        row = TraceRow(
            iteration=len(self.rows) + 1,
            evaluations=evaluations,
            value=value,
            best_value=best,
            seconds=now - self._start,
            iteration_seconds=now - self._last,
        )
        self._last = now
        self.rows.append(row)
        return row

    @property
    def evaluations(self) -> int:
        """Total objective calls of the run."""
        return self.rows[-1].evaluations if self.rows else 0

    @property
    def best_value(self) -> float:
        """Lowest objective value of the run (inf before the first iteration)."""
        return self.rows[-1].best_value if self.rows else math.inf

    def best_at(self, evaluations: int) -> float:
        """Return the lowest value found within the first ``evaluations`` objective calls.

        Rows are per iteration, so this is the best value after the last iteration that ended
        at or before ``evaluations``. It is inf when the first iteration needed more.
        """
        best = math.inf
        for row in self.rows:
            if row.evaluations > evaluations:
                break
            best = row.best_value
        return best

    def median_iteration_seconds(self) -> float:
        """Median wall-clock seconds per iteration (NaN for an empty trace)."""
        if not self.rows:
            return math.nan
        return statistics.median(row.iteration_seconds for row in self.rows)


def trace_path(out_dir: Path, method: str) -> Path:
    """Return the CSV path of ``method``'s trace in ``out_dir``."""
    slug = re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")
    return out_dir / f"trace_{slug}.csv"


def write_trace_csv(trace: Trace, path: Path) -> None:
    """Write ``trace`` as CSV with the columns ``TRACE_COLUMNS``."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRACE_COLUMNS)
        for row in trace.rows:
            writer.writerow(
                [
                    trace.method,
                    row.iteration,
                    row.evaluations,
                    repr(row.value),
                    repr(row.best_value),
                    f"{row.seconds:.6f}",
                    f"{row.iteration_seconds:.6f}",
                ]
            )


def plot_traces(traces: list[Trace], out_dir: Path, title: str) -> list[Path]:
    """Write the three PNGs of ``PLOT_FILES`` to ``out_dir`` and return their paths.

    The plots are the best objective value (log scale) against evaluations and against
    wall-clock seconds, and the time per iteration against the iteration number.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out_dir / name for name in PLOT_FILES]
    axes_spec = [
        ("evaluations", "best_value", "objective evaluations", "best objective value", "log"),
        ("seconds", "best_value", "wall-clock time [s]", "best objective value", "log"),
        ("iteration", "iteration_seconds", "iteration", "time per iteration [s]", "log"),
    ]
    for path, (x_name, y_name, x_label, y_label, y_scale) in zip(paths, axes_spec, strict=True):
        figure, axes = plt.subplots(figsize=(7, 4.5))
        drawn = False
        for trace in traces:
            points = [
                (getattr(row, x_name), getattr(row, y_name))
                for row in trace.rows
                if math.isfinite(getattr(row, y_name)) and getattr(row, y_name) > 0
            ]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, label=trace.method, linewidth=1.2)
            drawn = True
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.set_yscale(y_scale)
        if x_name == "iteration":
            axes.set_xscale("log")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        if drawn:  # a run without a finite positive value draws no line
            axes.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
    return paths


def format_table(traces: list[Trace]) -> str:
    """Return the summary table: method, evaluations, best value, median time per iteration."""
    header = ("method", "evaluations", "best value", "median s/iteration")
    lines = [
        (
            trace.method,
            str(trace.evaluations),
            f"{trace.best_value:.6g}",
            f"{trace.median_iteration_seconds():.3g}",
        )
        for trace in traces
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(header), rule, *(render(cells) for cells in lines)])


def write_outputs(traces: list[Trace], out_dir: Path, title: str) -> list[Path]:
    """Write every trace's CSV and the three plots to ``out_dir``; return the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for trace in traces:
        path = trace_path(out_dir, trace.method)
        write_trace_csv(trace, path)
        paths.append(path)
    paths.extend(plot_traces(traces, out_dir, title))
    return paths


def prepare_output_dir(path: Path, option: str = "--out") -> None:
    """Create the folder ``path`` and check that files can be written in it.

    Called before a run's first evaluation, so that a folder that cannot be written does not
    lose the run's outputs at the end.

    Raises:
        ValueError: ``path`` is a file, cannot be created or is not writable. The message
            names ``option`` and the path.
    """
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"invalid {option} {path}: it is a file, not a folder; choose a folder to write to"
        )
    error = _write_probe(path)
    if error is not None:
        raise ValueError(
            f"invalid {option} {path}: cannot write to this folder ({error}); "
            "choose a folder you can write to"
        )


def prepare_output_file(path: Path, option: str = "--out") -> None:
    """Create the folder of the file ``path`` and check that a file can be written there.

    Raises:
        ValueError: ``path`` is a folder, or its folder cannot be created or written to.
    """
    if path.is_dir():
        raise ValueError(f"invalid {option} {path}: it is a folder; give the path of a file")
    folder = path.parent
    error = _write_probe(folder)
    if error is not None:
        raise ValueError(
            f"invalid {option} {path}: cannot write to its folder {folder} ({error}); "
            "choose a path you can write to"
        )


def _write_probe(folder: Path) -> str | None:
    """Create ``folder`` and a temporary file in it; return why that failed, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return str(error.strerror or error)
    return None


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help formatter that appends ``(default: ...)`` to options whose default is not None.

    Flags (``store_true``) and options without a default keep their help text as written.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if (
            "%(default)" in help_text
            or not action.option_strings
            or action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
            or action.default == []
        ):
            return help_text
        return f"{help_text} (default: %(default)s)"
