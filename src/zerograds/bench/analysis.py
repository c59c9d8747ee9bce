"""Statistics over benchmark records: curves on common grids, evaluations to targets, ranks.

Progress is the normalized gap (best - f*) / (f0 - f*): 1 at the start value, 0 at the
optimum. Targets are fractions of that initial gap (``TARGETS``).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from .optimizers import OPTIMIZERS
from .runner import normalized_gap

TARGETS = (1e-1, 1e-3, 1e-6)
GAP_FLOOR = 1e-12  # gaps below this are drawn and ranked as this value


def group_records(
    records: list[dict[str, Any]],
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Group the finished records by (problem, optimizer); unavailable cells are left out."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get("status") in ("done", "error") and record.get("evals"):
            groups[record["problem"], record["optimizer"]].append(record)
    return groups


def step_values(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray, end: float) -> np.ndarray:
    """Sample the step function (xs, ys) at ``grid``: NaN before xs[0] and after ``end``."""
    index = np.searchsorted(xs, grid, side="right") - 1
    values = np.where(index >= 0, ys[np.clip(index, 0, None)], np.nan)
    return np.where(grid <= end, values, np.nan)


def quartile_curves(
    runs: list[dict[str, Any]], grid: np.ndarray, axis: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the median, first and third quartile of the gap over ``runs`` at ``grid``.

    ``axis`` is ``"evals"`` or ``"seconds"``. A grid point where fewer than half of the runs
    have a value (they had not started or had already stopped) is NaN.
    """
    rows = []
    for record in runs:
        evals, seconds, gap = normalized_gap(record)
        if not gap.size:
            continue
        xs = evals if axis == "evals" else seconds
        end = record["nfev"] if axis == "evals" else record["wall"]
        rows.append(step_values(xs, np.maximum(gap, GAP_FLOOR), grid, end))
    if not rows:
        nan = np.full(grid.shape, np.nan)
        return nan, nan, nan
    table = np.array(rows)
    enough = np.sum(~np.isnan(table), axis=0) * 2 >= len(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        median, low, high = np.nanpercentile(table, [50, 25, 75], axis=0)
    return (
        np.where(enough, median, np.nan),
        np.where(enough, low, np.nan),
        np.where(enough, high, np.nan),
    )


def evals_to_target(record: dict[str, Any], target: float) -> float:
    """Return the evaluations a run needed to reach gap ≤ ``target``, or inf."""
    evals, _, gap = normalized_gap(record)
    hits = np.nonzero(gap <= target)[0]
    return float(evals[hits[0]]) if hits.size else math.inf


def final_gap(record: dict[str, Any]) -> float:
    """Return the run's last gap (floored at ``GAP_FLOOR``), NaN without f*."""
    _, _, gap = normalized_gap(record)
    return max(float(gap[-1]), GAP_FLOOR) if gap.size else math.nan


def median_or_inf(values: list[float]) -> float:
    """Median that keeps inf (an unreached target) as the largest value."""
    if not values:
        return math.nan
    return float(np.median(np.array(values)))


def target_table(
    records: list[dict[str, Any]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """Return per (problem, optimizer): median evaluations to each target, hits, final gap."""
    table = {}
    for key, runs in group_records(records).items():
        entry: dict[str, Any] = {"runs": len(runs)}
        for target in TARGETS:
            reached = [evals_to_target(run, target) for run in runs]
            entry[target] = median_or_inf(reached)
            entry[f"hits {target}"] = sum(math.isfinite(value) for value in reached)
        entry["final"] = median_or_inf([final_gap(run) for run in runs])
        entry["seconds per iteration"] = median_or_inf(
            [
                float(np.median([row[2] for row in run["iteration_times"]]))
                for run in runs
                if run.get("iteration_times")
            ]
        )
        table[key] = entry
    return table


def rank_key(entry: dict[str, Any]) -> tuple[float, ...]:
    """Sort key of an optimizer on one problem: fewest evaluations to the hardest target
    reached, then the lowest final gap."""
    for target in reversed(TARGETS):
        if math.isfinite(entry[target]):
            return (-TARGETS.index(target), entry[target], entry["final"])
    return (1.0, math.inf, entry["final"] if math.isfinite(entry["final"]) else math.inf)


def mean_ranks(
    table: dict[tuple[str, str], dict[str, Any]], problems: list[str], optimizers: list[str]
) -> dict[str, float]:
    """Return each optimizer's mean rank (1 = best) over the problems it ran on."""
    ranks: dict[str, list[float]] = defaultdict(list)
    for problem in problems:
        present = [name for name in optimizers if (problem, name) in table]
        ordered = sorted(present, key=lambda name: rank_key(table[problem, name]))
        for position, name in enumerate(ordered, 1):
            ranks[name].append(position)
    return {name: float(np.mean(values)) for name, values in ranks.items()}


def compare_with_peers(
    table: dict[tuple[str, str], dict[str, Any]],
    problem: str,
    optimizers: list[str],
    reference: str = "zerograds",
) -> dict[str, Any]:
    """Compare ``reference`` with the best peer (not a ZeroGrads variant) on one problem.

    Returns a dict with, per target, the reference's median evaluations, the best peer's name
    and evaluations, and ``wins`` (reference needs fewer evaluations than every peer).
    """
    peers = [
        name for name in optimizers if (problem, name) in table and not OPTIMIZERS[name].zerograds
    ]
    result: dict[str, Any] = {"problem": problem}
    own = table.get((problem, reference))
    for target in TARGETS:
        best_peer = min(peers, key=lambda name: table[problem, name][target], default=None)
        peer_evals = table[problem, best_peer][target] if best_peer else math.inf
        own_evals = own[target] if own else math.inf
        result[target] = {
            "zerograds": own_evals,
            "peer": best_peer,
            "peer_evals": peer_evals,
            "wins": math.isfinite(own_evals) and own_evals < peer_evals,
        }
    best_final = min(peers, key=lambda name: table[problem, name]["final"], default=None)
    result["final"] = {
        "zerograds": own["final"] if own else math.nan,
        "peer": best_final,
        "peer_final": table[problem, best_final]["final"] if best_final else math.nan,
    }
    return result
