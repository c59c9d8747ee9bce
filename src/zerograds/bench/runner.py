"""Run benchmark cells (optimizer × problem × seed) and store one JSON line per cell.

Each benchmark has one result file, ``<out>/<benchmark>.jsonl``. A line is written, flushed
and synced when its cell ends, so a killed run loses only the cell in progress, and a second
run skips every cell whose line is already there (``FINISHED_STATUSES``). Cells that raised
(status ``"error"``) count as finished, because the errors seen so far are deterministic
package failures; ``run_benchmark(..., retry_errors=True)`` runs them again.

A record contains the cell (``key``, ``benchmark``, ``optimizer``, ``problem``, ``suite``,
``dim``, ``seed``), its budget (``max_evals``, ``max_seconds``, ``sigma``), the outcome
(``status``, ``message``, ``nfev``, ``wall`` in seconds, ``f0``, ``f_opt``, and the
``settings`` that the optimizer reported, such as ZeroGrads' points per ask), the rows
``evals``, ``best`` and ``seconds`` (best-so-far value after that many evaluations and seconds,
one row per improvement and one at the end), and ``iteration_times`` (``[iteration,
evaluations, seconds of that iteration]`` at roughly logarithmically spaced iterations).

COCO problems are observed by ``cocoex.Observer``; each cell logs in COCO's format under
``<out>/exdata/<benchmark>/<optimizer>/<cell>``, so that ``cocopp`` can read one folder per
optimizer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .optimizers import BENCH_SIGMA, get_optimizer
from .problems import COCO_SUITES, make_problem, parse_spec, problem_dim, read_coco_f_opt
from .recorder import BudgetExhausted, Recorder

logger = logging.getLogger(__name__)

FINISHED_STATUSES = ("done", "unavailable", "error")


@dataclass(frozen=True)
class Benchmark:
    """A set of cells that share a result file, a budget and a figure.

    Attributes:
        name: file and figure name, e.g. ``"analytic-d100"``.
        title: heading in the report.
        problems: problem specs (see ``zerograds.bench.problems``).
        optimizers: registry names (see ``zerograds.bench.optimizers``).
        seeds: run seeds; a COCO problem uses instance seed + 1.
        max_evals: evaluation budget per cell.
        max_seconds: wall-clock limit per cell for optimizers marked ``slow``, or ``None``.
    """

    name: str
    title: str
    problems: tuple[str, ...]
    optimizers: tuple[str, ...]
    seeds: tuple[int, ...]
    max_evals: int
    max_seconds: float | None = None

    def cells(self) -> Iterator[tuple[str, str, int]]:
        """Yield (optimizer, problem, seed) for every cell, seeds innermost."""
        for problem in self.problems:
            for optimizer in self.optimizers:
                for seed in self.seeds:
                    yield optimizer, problem, seed


def cell_key(optimizer: str, problem: str, seed: int) -> str:
    """Return the identifier of a cell inside its benchmark."""
    return f"{optimizer}|{problem}|{seed}"


def result_path(out_dir: Path, benchmark: Benchmark | str) -> Path:
    """Return the result file of ``benchmark`` under ``out_dir``."""
    name = benchmark if isinstance(benchmark, str) else benchmark.name
    return Path(out_dir) / f"{name}.jsonl"


def load_results(path: Path) -> list[dict[str, Any]]:
    """Read the records of a result file; a missing file gives an empty list.

    A line that is not valid JSON (a write cut off by a crash) is skipped with a warning. When a
    cell appears more than once, the last record wins.
    """
    path = Path(path)
    if not path.exists():
        return []
    records: dict[str, dict[str, Any]] = {}
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("skipped invalid line %d of %s", number, path)
                continue
            records[record["key"]] = record
    return list(records.values())


def _append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A line torn by a crash has no newline; start on a fresh line so this record stays whole.
    torn = False
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"
    with path.open("a") as handle:
        handle.write(("\n" if torn else "") + json.dumps(record, allow_nan=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    # cocoex 2.8 puts every result folder under ./exdata, even an absolute one.
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _coco_folder(benchmark: Benchmark, optimizer: str, problem: str, seed: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", problem)
    return Path(benchmark.name) / optimizer / f"{slug}_s{seed}"


def run_cell(
    benchmark: Benchmark, optimizer: str, problem: str, seed: int, out_dir: Path
) -> dict[str, Any]:
    """Run one cell and return its record (not yet written)."""
    spec = get_optimizer(optimizer)
    family, _ = parse_spec(problem)
    record: dict[str, Any] = {
        "key": cell_key(optimizer, problem, seed),
        "benchmark": benchmark.name,
        "optimizer": optimizer,
        "problem": problem,
        "suite": family if family in COCO_SUITES else "analytic",
        "dim": problem_dim(problem),
        "seed": seed,
        "max_evals": benchmark.max_evals,
        "max_seconds": benchmark.max_seconds if spec.slow else None,
        "sigma": BENCH_SIGMA,
    }
    if spec.max_dim is not None and record["dim"] > spec.max_dim:
        return {**record, "status": "unavailable", "message": spec.reason}

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    coco = family in COCO_SUITES
    context: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    folder = None
    if coco:
        relative = _coco_folder(benchmark, optimizer, problem, seed)
        folder = out_dir / "exdata" / relative
        shutil.rmtree(folder, ignore_errors=True)  # left by a cell that was killed
        context = _working_directory(out_dir)

    with context:
        observer = None
        if coco:
            import cocoex

            cocoex.log_level("warning")
            observer = cocoex.Observer(
                family, f"result_folder: {relative} algorithm_name: {optimizer}"
            )
        problem_object = make_problem(problem, seed, observer)
        recorder = Recorder(problem_object, benchmark.max_evals, record["max_seconds"])
        torch.manual_seed(seed)
        np.random.seed(seed)  # for libraries that draw from numpy's global generator
        status, message = "done", ""
        start = time.perf_counter()
        try:
            spec.run(problem_object, recorder, seed, BENCH_SIGMA)
        except BudgetExhausted as stop:
            message = str(stop)
        except Exception as error:
            status = "error"
            message = f"{type(error).__name__}: {error}"
            logger.warning("cell %s failed: %s\n%s", record["key"], message, traceback.format_exc())
        wall = time.perf_counter() - start
        recorder.finish()
        if problem_object.coco_problem is not None:
            problem_object.coco_problem.free()
        del observer

    f_opt = problem_object.f_opt
    if folder is not None:
        f_opt = read_coco_f_opt(folder)
    return {
        **record,
        "status": status,
        "message": message,
        "nfev": recorder.nfev,
        "wall": wall,
        "f0": problem_object.f0,
        "f_opt": f_opt,
        "evals": recorder.evals,
        "best": recorder.best_values,
        "seconds": recorder.seconds,
        "iteration_times": recorder.iteration_times,
        "settings": recorder.settings,
    }


def run_benchmark(
    benchmark: Benchmark,
    out_dir: Path,
    on_cell: Callable[[dict[str, Any], bool], None] | None = None,
    retry_errors: bool = False,
) -> list[dict[str, Any]]:
    """Run every cell of ``benchmark`` that is not finished in its result file.

    Args:
        benchmark: what to run.
        out_dir: folder of the result file and of COCO's logs.
        on_cell: called as ``on_cell(record, skipped)`` after each cell, also for the cells
            skipped because they were finished before.

    Returns:
        All records of the benchmark's cells, old and new.
    """
    path = result_path(out_dir, benchmark)
    finished = {
        record["key"]: record
        for record in load_results(path)
        if record.get("status") in FINISHED_STATUSES
        and not (retry_errors and record.get("status") == "error")
    }
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # every method gets one core, the objective included
    records = []
    try:
        for optimizer, problem, seed in benchmark.cells():
            key = cell_key(optimizer, problem, seed)
            if key in finished:
                records.append(finished[key])
                if on_cell is not None:
                    on_cell(finished[key], True)
                continue
            record = run_cell(benchmark, optimizer, problem, seed, out_dir)
            _append(path, record)
            records.append(record)
            if on_cell is not None:
                on_cell(record, False)
    finally:
        torch.set_num_threads(torch_threads)
    return records


def normalized_gap(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (evaluations, seconds, gap) rows, gap = (best - f*) / (f0 - f*).

    The gap is 1 at the start value and 0 at the optimum. Without f* (a COCO run that logged
    nothing) the arrays are empty.
    """
    f_opt, f0 = record.get("f_opt"), record.get("f0")
    evals = np.asarray(record.get("evals", []), dtype=np.float64)
    if f_opt is None or f0 is None or not evals.size or not math.isfinite(f0 - f_opt):
        return np.empty(0), np.empty(0), np.empty(0)
    scale = max(f0 - f_opt, 1e-300)
    gap = (np.asarray(record["best"], dtype=np.float64) - f_opt) / scale
    return evals, np.asarray(record["seconds"], dtype=np.float64), gap
