"""Figures of a benchmark: convergence against evaluations and seconds, time per iteration.

Each convergence figure has one panel per problem and one line per optimizer: the median
normalized gap over seeds, with the band between the first and third quartile. The figures
are small PNGs (about 100 dpi), so that they can be committed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import GAP_FLOOR, group_records, quartile_curves
from .optimizers import OPTIMIZERS
from .runner import Benchmark

FIGURE_KINDS = ("evals", "seconds", "iteration")
_DPI = 72


def short_name(problem: str) -> str:
    """Return a problem's label: the analytic function's name, or ``f<number>`` for COCO."""
    parts = problem.split(":")
    return f"f{parts[1]}" if len(parts) == 3 else parts[0]


def figure_path(figures_dir: Path, suite: str, benchmark: str, kind: str) -> Path:
    """Return the PNG path of one figure of ``benchmark``."""
    return Path(figures_dir) / f"bench-{suite}-{benchmark}-{kind}.png"


def _style(names: list[str]) -> dict[str, dict[str, Any]]:
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab20").colors
    styles = {}
    for index, name in enumerate(names):
        zerograds = OPTIMIZERS[name].zerograds
        styles[name] = {
            "color": colors[index % len(colors)],
            "linewidth": 2.0 if name == "zerograds" else 1.0,
            "linestyle": "-" if zerograds or index % 2 == 0 else "--",
        }
    return styles


def _panel_grid(count: int) -> tuple[int, int]:
    columns = min(count, 6 if count > 12 else 3)
    return math.ceil(count / columns), columns


def plot_convergence(
    benchmark: Benchmark, records: list[dict[str, Any]], path: Path, axis: str
) -> Path:
    """Draw the median and quartiles of the gap against ``axis`` (``"evals"`` or
    ``"seconds"``) for every problem of ``benchmark`` into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_records(records)
    names = [name for name in benchmark.optimizers if any(key[1] == name for key in groups)]
    styles = _style(list(benchmark.optimizers))
    if axis == "evals":
        grid = np.unique(np.geomspace(1, benchmark.max_evals, 80).round())
    else:
        longest = max((record.get("wall", 0.0) for record in records), default=1.0)
        grid = np.geomspace(1e-3, max(longest, 1e-2), 80)

    label = "evaluations" if axis == "evals" else "wall-clock seconds"
    rows, columns = _panel_grid(len(benchmark.problems))
    figure, axes_grid = plt.subplots(
        rows, columns, figsize=(3.0 * columns, 2.4 * rows + 0.9), squeeze=False
    )
    lowest = 1.0
    for axes, problem in zip(axes_grid.flat, benchmark.problems, strict=False):
        for name in names:
            runs = groups.get((problem, name), [])
            median, low, high = quartile_curves(runs, grid, axis)
            if np.all(np.isnan(median)):
                continue
            style = styles[name]
            axes.plot(grid, median, label=OPTIMIZERS[name].label, **style)
            axes.fill_between(grid, low, high, color=style["color"], alpha=0.12, linewidth=0)
            if np.any(np.isfinite(low)):
                lowest = min(lowest, float(np.nanmin(low)))
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel(label, fontsize=7)
        axes.set_title(short_name(problem), fontsize=9)
        axes.tick_params(labelsize=7)
        axes.grid(True, which="major", alpha=0.3)
    for axes in list(axes_grid.flat)[len(benchmark.problems) :]:
        axes.set_visible(False)
    for axes in axes_grid.flat:
        axes.set_ylim(max(lowest * 0.3, GAP_FLOOR * 0.5), 2.0)
    figure.supylabel("(best - f*) / (f0 - f*)", fontsize=9)
    legend: dict[str, Any] = {}
    for axes in axes_grid.flat:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    labels = list(legend)
    if labels:
        figure.legend(
            list(legend.values()),
            labels,
            loc="lower center",
            ncol=min(len(labels), 6),
            fontsize=7,
            frameon=False,
        )
    figure.suptitle(f"{benchmark.title}: median and quartiles over seeds", fontsize=10)
    legend_rows = math.ceil(len(labels) / 6)
    figure.tight_layout(rect=(0, 0.035 * legend_rows + 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return path


def plot_iteration_time(benchmark: Benchmark, records: list[dict[str, Any]], path: Path) -> Path:
    """Draw the median wall-clock time per iteration against the iteration number, pooled
    over the problems and seeds of ``benchmark``.

    An iteration is one call of the objective by the optimizer: a batch for ZeroGrads and the
    gradient estimators, a generation for CMA-ES, one point for the sequential methods.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pooled: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for iteration, _, seconds in record.get("iteration_times") or []:
            # Bins of about 1/10 decade, so that the cells' logged iterations line up.
            bin_index = round(10 * math.log10(iteration))
            pooled[record["optimizer"]][bin_index].append(seconds)
    styles = _style(list(benchmark.optimizers))
    figure, axes = plt.subplots(figsize=(7.5, 4.2))
    for name in benchmark.optimizers:
        if name not in pooled:
            continue
        bins = sorted(pooled[name])
        xs = [10 ** (bin_index / 10) for bin_index in bins]
        ys = [max(float(np.median(pooled[name][bin_index])), 1e-7) for bin_index in bins]
        axes.plot(xs, ys, label=OPTIMIZERS[name].label, **styles[name])
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("iteration (one call of the objective)", fontsize=9)
    axes.set_ylabel("seconds per iteration", fontsize=9)
    axes.set_title(f"{benchmark.title}: time per iteration, median", fontsize=10)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return path


def plot_benchmark(
    benchmark: Benchmark, records: list[dict[str, Any]], figures_dir: Path, suite: str
) -> list[Path]:
    """Write the three figures of ``benchmark``; return their paths."""
    return [
        plot_convergence(
            benchmark, records, figure_path(figures_dir, suite, benchmark.name, "evals"), "evals"
        ),
        plot_convergence(
            benchmark,
            records,
            figure_path(figures_dir, suite, benchmark.name, "seconds"),
            "seconds",
        ),
        plot_iteration_time(
            benchmark, records, figure_path(figures_dir, suite, benchmark.name, "iteration")
        ),
    ]
