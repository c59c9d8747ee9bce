"""Tests of ``zerograds demo`` and ``zerograds run --function`` on small settings."""

from __future__ import annotations

import csv
import itertools
import math
import sys
import textwrap
from pathlib import Path

import pytest

from zerograds.cli import build_parser, main
from zerograds.cli._arguments import parse_options
from zerograds.cli._output import PLOT_FILES, TRACE_COLUMNS, Trace


def read_trace(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == TRACE_COLUMNS
        return list(reader)


def assert_trace_consistent(rows: list[dict[str, str]]) -> None:
    assert rows, "trace is empty"
    evaluations = [int(row["evaluations"]) for row in rows]
    best = [float(row["best_value"]) for row in rows]
    values = [float(row["value"]) for row in rows]
    assert evaluations == sorted(evaluations)
    assert all(b1 >= b2 for b1, b2 in itertools.pairwise(best)), "best value rose"
    assert all(b <= v for b, v in zip(best, values, strict=True) if not math.isnan(v))
    assert best[-1] == min(v for v in values if not math.isnan(v))


@pytest.mark.parametrize("command", ["demo", "run"])
def test_help_lists_every_option(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    subparser = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    for action in subparser._actions:
        assert action.help, f"option {action.option_strings} has no help text"
        for option in action.option_strings:
            assert option in text
    assert "(default:" in text


def test_help_states_demo_units_and_tpe_budget(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "wall-clock budget in seconds, in case the trial budget takes longer (default: 120.0)"
        in text
    )
    assert "trial budget (one evaluation each) (default: 300)" in text
    assert "--dim DIM number of parameters d (default: 1000)" in text
    assert "--shift SHIFT C, the coordinate of the optimum C·1 (default: 0.0)" in text
    assert "(default: R/4)" in text


def test_demo_tiny_writes_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    status = main(
        ["demo", "--out", str(out), "--dim", "20", "--evals", "300", "--tpe-trials", "12",
         "--shift", "3", "--no-progress"]
    )  # fmt: skip
    assert status == 0
    for name in PLOT_FILES:
        assert (out / name).stat().st_size > 1000, name
    for method in ("zerograds", "tpe_optuna", "random_search", "sepcma_cmaes"):
        rows = read_trace(out / f"trace_{method}.csv")
        assert_trace_consistent(rows)
        assert int(rows[-1]["evaluations"]) <= (12 if method == "tpe_optuna" else 300)

    zerograds_rows = read_trace(out / "trace_zerograds.csv")
    start_value = 20 * (100 - 3) ** 2
    assert float(zerograds_rows[-1]["best_value"]) < start_value / 10

    text = capsys.readouterr().out
    for method in ("ZeroGrads", "TPE (Optuna)", "random search", "SepCMA (cmaes)"):
        assert method in text
    assert "TPE stopped by its trial budget (12 trials)" in text
    assert "best value after 12 evaluations (TPE's count)" in text
    assert "ZeroGrads options: sigma=1.0, lr=1.0, batch_size=1" in text


def test_demo_rejects_shift_outside_box(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["demo", "--shift", "500", "--no-progress"])
    assert status == 2
    assert "--shift=500.0 lies outside the search box [-100, 100]" in capsys.readouterr().err


@pytest.fixture
def objective_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    source = """
        import numpy as np

        def shifted_sphere(x):
            return float(np.sum((np.asarray(x) - 2.0) ** 2))

        def shifted_sphere_batch(points):
            return np.sum((points - 2.0) ** 2, axis=1)
    """
    (tmp_path / "zg_cli_objective.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # `zerograds run` writes its run database under the cwd
    yield "zg_cli_objective"
    sys.modules.pop("zg_cli_objective", None)


@pytest.mark.parametrize(
    ("callable_name", "extra"),
    [("shifted_sphere", []), ("shifted_sphere_batch", ["--vectorized"])],
)
def test_run_function_improves(
    objective_module: str,
    callable_name: str,
    extra: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    argv = ["run", "--function", f"{objective_module}:{callable_name}", "--dim", "4",
            "--x0", "-1", "--evals", "400", "--sigma", "0.3", "--lr", "0.15", "--no-progress",
            "--out", str(out), *extra]  # fmt: skip
    assert main(argv) == 0
    rows = read_trace(out / "trace_zerograds.csv")
    assert_trace_consistent(rows)
    assert int(rows[-1]["evaluations"]) <= 400
    start_value = 4 * 3.0**2
    assert float(rows[-1]["best_value"]) < start_value / 10
    for name in PLOT_FILES:
        assert (out / name).is_file()
    text = capsys.readouterr().out
    assert "value at final θ:" in text
    assert "COCO" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--function", "zg_no_such_module:f", "--dim", "2"],
            "No module named 'zg_no_such_module'",
        ),
        (["--function", "math", "--dim", "2"], "expected MODULE:CALLABLE"),
        (["--function", "math:pi", "--dim", "2"], "is not callable"),
        (["--function", "math:fsum"], "--function needs --dim"),
        (["--function", "math:fsum", "--dim", "3", "--x0", "1", "2"], "--x0 has 2 numbers"),
        (["--problem", "bbob:1"], "expected SUITE:FUNCTION:DIM[:INSTANCE]"),
        (["--problem", "cec:1:5"], "invalid COCO suite 'cec'"),
        (["--problem", "bbob:1:7:1"], "has no function 1 in dimension 7"),
        (["--problem", "bbob:1:2", "--option", "nonsense"], "expected NAME=VALUE"),
    ],
)
def test_run_rejects_bad_input(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *argv, "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_parse_options_literals_and_strings() -> None:
    options = parse_options(["surrogate_steps=10", "step_order=step_first", "antithetic=False"])
    assert options == {"surrogate_steps": 10, "step_order": "step_first", "antithetic": False}


def test_trace_best_at_uses_whole_iterations() -> None:
    trace = Trace("test")
    trace.start()
    trace.add(4, 10.0)
    trace.add(8, 12.0)
    trace.add(12, 3.0)
    assert trace.best_at(3) == math.inf
    assert trace.best_at(4) == 10.0
    assert trace.best_at(11) == 10.0
    assert trace.best_at(12) == 3.0
    assert trace.median_iteration_seconds() >= 0.0
