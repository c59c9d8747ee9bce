"""Tests of the benchmark runner, its result files, the problems and ``zerograds bench``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from zerograds.bench import optimizers as optimizer_registry
from zerograds.bench.problems import ANALYTIC, make_analytic, make_problem, parse_spec
from zerograds.bench.recorder import BudgetExhausted, Recorder
from zerograds.bench.runner import (
    Benchmark,
    cell_key,
    load_results,
    result_path,
    run_benchmark,
)
from zerograds.bench.suites import get_suite
from zerograds.cli import main

SMALL = Benchmark(
    "small",
    "small",
    ("sphere:3", "rastrigin:3"),
    ("zerograds", "random_search", "finite_differences"),
    (0, 1),
    max_evals=60,
)


def test_tiny_suite_end_to_end(tmp_path: Path) -> None:
    report = tmp_path / "docs" / "benchmarks.md"
    report.parent.mkdir()
    report.write_text("# Benchmarks\n\nHand-written text.\n")
    out = tmp_path / "out"
    assert main(["bench", "--suite", "tiny", "--out", str(out), "--report", str(report)]) == 0

    for benchmark in get_suite("tiny"):
        records = load_results(result_path(out, benchmark))
        assert len(records) == len(list(benchmark.cells()))
        for record in records:
            assert record["status"] == "done", record["message"]
            assert record["nfev"] == benchmark.max_evals
            assert record["evals"] == sorted(record["evals"])
            assert all(a >= b for a, b in zip(record["best"], record["best"][1:], strict=False))
            assert record["f_opt"] is not None
            assert record["best"][-1] >= record["f_opt"] - 1e-9
            if record["optimizer"] == "zerograds":
                assert record["settings"]["points_per_ask"] >= 2
    text = report.read_text()
    assert "Hand-written text." in text
    assert "<!-- bench:tiny:begin -->" in text
    assert "| optimizer | mean rank |" in text
    figures = sorted((report.parent / "figures").glob("bench-tiny-*.png"))
    assert len(figures) == 3 * len(get_suite("tiny"))
    # COCO logged each bbob cell in its own format, with the .info file cocopp reads.
    assert list((out / "exdata" / "tiny-bbob").rglob("*.info"))


def test_report_rewrites_only_its_block(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    out = tmp_path / "out"
    benchmark = dataclasses.replace(SMALL, optimizers=("random_search",), seeds=(0,))
    run_benchmark(benchmark, out)
    from zerograds.bench.report import write_report

    write_report("small", [benchmark], out, report)
    write_report("small", [benchmark], out, report)
    text = report.read_text()
    assert text.count("<!-- bench:small:begin -->") == 1
    assert text.count("<!-- bench:small:end -->") == 1


def test_resume_skips_finished_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_benchmark(SMALL, tmp_path)
    assert len(first) == len(list(SMALL.cells()))

    def fail(*args: object) -> None:
        raise AssertionError("a finished cell ran again")

    for name in SMALL.optimizers:
        spec = optimizer_registry.OPTIMIZERS[name]
        monkeypatch.setitem(
            optimizer_registry.OPTIMIZERS, name, dataclasses.replace(spec, run=fail)
        )
    skipped = []
    second = run_benchmark(
        SMALL, tmp_path, on_cell=lambda record, was_skipped: skipped.append(was_skipped)
    )
    assert skipped == [True] * len(first)
    assert [record["key"] for record in second] == [record["key"] for record in first]


def test_resume_runs_only_missing_cell(tmp_path: Path) -> None:
    run_benchmark(SMALL, tmp_path)
    path = result_path(tmp_path, SMALL)
    lines = path.read_text().splitlines()
    dropped = json.loads(lines[-1])["key"]
    # Drop the last record and leave a torn line, as a run killed while writing would.
    path.write_text("\n".join(lines[:-1]) + '\n{"key": "torn')
    ran = []
    run_benchmark(
        SMALL,
        tmp_path,
        on_cell=lambda record, skipped: None if skipped else ran.append(record["key"]),
    )
    assert ran == [dropped]
    assert len(load_results(path)) == len(list(SMALL.cells()))


def test_result_file_reloads(tmp_path: Path) -> None:
    records = run_benchmark(SMALL, tmp_path)
    reloaded = load_results(result_path(tmp_path, SMALL))
    assert {record["key"] for record in reloaded} == {
        cell_key(optimizer, problem, seed) for optimizer, problem, seed in SMALL.cells()
    }
    by_key = {record["key"]: record for record in reloaded}
    for record in records:
        assert by_key[record["key"]] == json.loads(json.dumps(record))


def test_unavailable_cell_is_recorded(tmp_path: Path) -> None:
    benchmark = dataclasses.replace(
        SMALL, problems=("sphere:120",), seeds=(0,), optimizers=("finite_differences",)
    )
    (record,) = run_benchmark(benchmark, tmp_path)
    assert record["status"] == "unavailable"
    assert "d ≤ 100" in record["message"]


def test_recorder_never_exceeds_budget() -> None:
    problem = make_analytic("sphere", 3)
    recorder = Recorder(problem, max_evals=25, max_seconds=None)
    with pytest.raises(BudgetExhausted):
        while True:
            recorder(np.zeros((10, 3)))
    assert recorder.nfev == 25
    assert recorder.evals[-1] == 25
    with pytest.raises(BudgetExhausted):
        recorder(np.zeros((1, 3)))
    assert recorder.nfev == 25


@pytest.mark.parametrize("name", sorted(ANALYTIC))
def test_analytic_optimum_away_from_origin_and_start(name: str) -> None:
    problem = make_analytic(name, 20)
    from zerograds.bench.problems import _analytic_state

    x_opt = _analytic_state(name, 20)["x_opt"]
    assert problem.evaluate(x_opt[None, :])[0] == pytest.approx(0.0, abs=1e-9)
    for point in (np.zeros(20), -problem.x0, problem.x0):
        assert problem.evaluate(point[None, :])[0] > 1e-3
    assert math.isfinite(problem.f0)


def test_problem_spec_errors_name_the_spec() -> None:
    for spec in ("sphere", "sphere:x", "nosuch:10", "bbob:1"):
        with pytest.raises(ValueError, match="invalid problem spec"):
            parse_spec(spec)
    with pytest.raises(ValueError, match="has no function 1 in dimension 7"):
        make_problem("bbob:1:7", 0)


def test_unknown_suite_and_optimizer_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--suite", "nosuch", "--list"]) == 2
    assert "unknown suite 'nosuch'" in capsys.readouterr().err
    assert main(["bench", "--suite", "tiny", "--optimizers", "nosuch", "--list"]) == 2
    assert "unknown optimizer 'nosuch'" in capsys.readouterr().err


def _record(optimizer: str, evals: list[int], best: list[float]) -> dict[str, object]:
    return {
        "key": cell_key(optimizer, "sphere:2", 0),
        "problem": "sphere:2",
        "optimizer": optimizer,
        "status": "done",
        "f0": 100.0,
        "f_opt": 0.0,
        "evals": evals,
        "best": best,
        "seconds": [0.1 * n for n in evals],
        "nfev": evals[-1],
        "wall": 0.1 * evals[-1],
        "iteration_times": [[1, evals[0], 0.01]],
    }


def test_targets_and_peer_comparison() -> None:
    from zerograds.bench.analysis import compare_with_peers, evals_to_target, target_table

    zerograds = _record("zerograds", [4, 40, 400], [50.0, 5.0, 0.05])
    sepcma = _record("sepcma", [6, 60, 600], [20.0, 0.01, 0.0001])
    ablation = _record("zg_batch8", [2, 20], [1.0, 1e-8])
    assert evals_to_target(zerograds, 1e-1) == 40
    assert evals_to_target(zerograds, 1e-3) == 400
    assert evals_to_target(zerograds, 1e-6) == math.inf

    table = target_table([zerograds, sepcma, ablation])
    comparison = compare_with_peers(table, "sphere:2", ["zerograds", "sepcma", "zg_batch8"])
    assert comparison[1e-1]["wins"] is True  # 40 against SepCMA's 60; the ablation is no peer
    assert comparison[1e-3]["peer"] == "sepcma"
    assert comparison[1e-3]["peer_evals"] == 60
    assert comparison[1e-3]["wins"] is False
    assert comparison[1e-6]["wins"] is False
    assert comparison["final"]["peer_final"] == pytest.approx(1e-6)


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--suite", "--out", "--report", "--report-only", "--cocopp", "--list"):
        assert option in text
    assert "(default: quick)" in text
