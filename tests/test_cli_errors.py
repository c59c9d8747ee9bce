"""User mistakes on the command line end in one ``zerograds <command>: error: ...`` line.

Exit status 2 for invalid arguments, found before the first evaluation; 1 when the objective
fails during the run. No traceback reaches the user.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from zerograds.cli import main
from zerograds.storage import RunStore

MODULE = "zg_err_obj"
OBJECTIVES = """
    import math

    import numpy as np

    calls = []

    def sphere(x):
        calls.append(np.array(x))
        return float(np.sum(np.asarray(x) ** 2))

    def returns_none(x):
        calls.append(np.array(x))
        return None

    def returns_text(x):
        return "1.0"

    def returns_complex(x):
        return 1 + 2j

    def returns_vector(x):
        return np.asarray(x)

    def returns_huge_int(x):
        return 10**400

    def always_nan(x):
        return math.nan

    def raises(x):
        raise ZeroDivisionError("division by zero")

    def fails_at_fifth_call(x):
        calls.append(np.array(x))
        if len(calls) == 5:
            raise ValueError("bad point")
        return float(np.sum(np.asarray(x) ** 2))

    def none_at_fifth_call(x):
        calls.append(np.array(x))
        if len(calls) == 5:
            return None
        return float(np.sum(np.asarray(x) ** 2))

    def batch_returns_points(points):
        return points

    def batch_raises(points):
        raise RuntimeError("no batch today")
"""
ERROR_LINE = re.compile(r"^zerograds (run|demo|runs|bench): error: ")


@pytest.fixture
def objectives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Write the objectives' module into ``tmp_path``, work there and return the module."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(OBJECTIVES))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sys.modules.pop(MODULE, None)
    import importlib

    yield importlib.import_module(MODULE)
    sys.modules.pop(MODULE, None)


def run_argv(name: str, *extra: str, evals: int = 50, out: Path | str = "out") -> list[str]:
    return ["run", "--function", f"{MODULE}:{name}", "--dim", "3", "--evals", str(evals),
            "--no-progress", "--out", str(out), *extra]  # fmt: skip


def error_line(err: str) -> str:
    """Return the last line of stderr after checking it is the command's one error line."""
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert ERROR_LINE.match(line), err
    return line


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------------- objective failures
@pytest.mark.parametrize("db", [[], ["--no-db"]], ids=["db", "no-db"])
@pytest.mark.parametrize(
    ("name", "returned"),
    [
        ("returns_none", "None"),
        ("returns_text", "'1.0'"),
        ("returns_complex", r"\(1\+2j\)"),
        ("returns_vector", r"\[[-0-9.e, ]+\]"),
        ("returns_huge_int", "1000000"),
    ],
)
def test_run_objective_bad_value_is_one_line(
    objectives: object,
    name: str,
    returned: str,
    db: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(run_argv(name, *db)) == 1
    line = error_line(capsys.readouterr().err)
    assert re.match(
        rf"zerograds run: error: --function {MODULE}:{name} returned {returned}.* at "
        r"x=\[[-0-9.e, ]+\]; it must return a real number",
        line,
    ), line
    assert "raised" not in line


@pytest.mark.parametrize("db", [[], ["--no-db"]], ids=["db", "no-db"])
def test_run_objective_that_raises_is_one_line(
    objectives: object, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(run_argv("raises", *db)) == 1
    line = error_line(capsys.readouterr().err)
    assert re.match(
        rf"zerograds run: error: --function {MODULE}:raises raised ZeroDivisionError: division "
        r"by zero at x=\[[-0-9.e, ]+\]",
        line,
    ), line
    assert "array(" not in line


@pytest.mark.parametrize("db", [[], ["--no-db"]], ids=["db", "no-db"])
def test_run_objective_always_nan_is_one_line(
    objectives: object, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # 10 iterations without a finite value (8 evaluations each) stop the run.
    with pytest.warns(Warning):
        status = main(run_argv("always_nan", *db, evals=100))
    assert status == 1
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"zerograds run: error: --function {MODULE}:always_nan: "), line
    assert "finite" in line


def test_run_short_all_nan_run_warns(
    objectives: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.warns(Warning):
        assert main(run_argv("always_nan", "--no-db", evals=20)) == 0
    err = capsys.readouterr().err
    assert f"warning: --function {MODULE}:always_nan returned no finite value" in err


@pytest.mark.parametrize("name", ["fails_at_fifth_call", "none_at_fifth_call"])
def test_run_db_keeps_partial_batch(
    objectives: object, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert main(run_argv(name, "--db", str(db))) == 1
    err = capsys.readouterr().err
    line = error_line(err)
    failing = objectives.calls[4]  # type: ignore[attr-defined]
    assert f"at x=[{', '.join(f'{value:.4g}' for value in failing)}]" in line
    assert "keeps the 5 evaluations made" in err

    with RunStore(db) as store:
        (info,) = store.list_runs()
        assert info.status == "failed"
        rows = store.evaluations(info.id)
    assert [row["status"] for row in rows] == ["ok"] * 4 + ["error"]
    expected = [float(sum(point**2)) for point in objectives.calls[:4]]  # type: ignore[attr-defined]
    assert [row["value"] for row in rows[:4]] == pytest.approx(expected)


def test_run_no_db_keeps_partial_trace(
    objectives: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(run_argv("fails_at_fifth_call", "--no-db")) == 1
    err = capsys.readouterr().err
    error_line(err)
    assert "wrote the trace of the 4 evaluations before the failure" in err
    rows = read_rows(tmp_path / "out" / "trace_zerograds.csv")
    assert [int(row["evaluations"]) for row in rows] == [4]
    best = min(float(sum(point**2)) for point in objectives.calls[:4])  # type: ignore[attr-defined]
    assert float(rows[0]["best_value"]) == pytest.approx(best)


@pytest.mark.parametrize("db", [[], ["--no-db"]], ids=["db", "no-db"])
@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "batch_returns_points",
            r"\(--vectorized\) returned an array of shape \(8, 3\) and dtype float64",
        ),
        ("batch_raises", r"\(--vectorized\) raised RuntimeError: no batch today"),
    ],
)
def test_run_vectorized_objective_failures(
    objectives: object, name: str, message: str, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(run_argv(name, "--vectorized", *db)) == 1
    line = error_line(capsys.readouterr().err)
    assert re.search(rf"--function {MODULE}:{name} {message} on a batch of 8 points", line), line


def test_run_objective_traceback_is_logged(
    objectives: object, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # `zerograds -v` shows INFO records, with the traceback of the objective's exception.
    caplog.set_level(logging.INFO, logger="zerograds.cli.run")
    assert main(["-v", *run_argv("raises", "--no-db")]) == 1
    error_line(capsys.readouterr().err)
    (record,) = [record for record in caplog.records if record.exc_info]
    assert isinstance(record.exc_info[1].__cause__, ZeroDivisionError)


# ---------------------------------------------------------------------- --option conflicts
@pytest.mark.parametrize(
    ("option", "flag"),
    [
        ("sigma=2", "--sigma"),
        ("lr=0.1", "--lr"),
        ("batch_size=2", "--batch-size"),
        ("seed=3", "--seed"),
        ("max_evals=10", "--evals"),
        ("vectorized=True", "--vectorized"),
        ("checkpoint_every=2", "--checkpoint-every"),
        ("x0=[1, 2, 3]", "--x0"),
    ],
)
@pytest.mark.parametrize("db", [[], ["--no-db"]], ids=["db", "no-db"])
def test_run_option_conflicts_with_flag(
    objectives: object, option: str, flag: str, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(run_argv("sphere", *db, "--option", option)) == 2
    line = error_line(capsys.readouterr().err)
    assert (
        line == f"zerograds run: error: --option {option} conflicts with {flag}; use {flag} instead"
    )
    assert objectives.calls == []  # type: ignore[attr-defined]


def test_run_option_bounds_conflicts_with_coco_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--problem", "bbob:1:2:1", "--evals", "20", "--no-db", "--no-progress",
            "--out", str(tmp_path), "--option", "bounds=(0, 1)"]  # fmt: skip
    assert main(argv) == 2
    line = error_line(capsys.readouterr().err)
    assert "--option bounds=(0, 1) conflicts with the bounds that run takes from the COCO" in line


@pytest.mark.parametrize("db", [[], ["--no-db"]], ids=["db", "no-db"])
def test_run_option_bounds_applies_to_function(
    objectives: object, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(run_argv("sphere", *db, "--x0", "0.5", "--option", "bounds=(0, 1)")) == 0
    points = objectives.calls  # type: ignore[attr-defined]
    assert points and all(((0 <= point) & (point <= 1)).all() for point in points)


def test_demo_option_conflicts_with_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dim", "3", "--evals", "20", "--option", "sigma=3"]) == 2
    line = error_line(capsys.readouterr().err)
    assert (
        line
        == "zerograds demo: error: --option sigma=3 conflicts with --sigma; use --sigma instead"
    )


# ---------------------------------------------------------------------- output folders
def unwritable_outputs(tmp_path: Path) -> list[tuple[Path, str]]:
    afile = tmp_path / "a_file"
    afile.write_text("")
    cases = [(afile, "it is a file"), (afile / "sub", "cannot write to this folder")]
    if Path("/proc/self").is_dir():
        cases.append((Path("/proc/zg_no_such_folder"), "cannot write to this folder"))
    return cases


@pytest.mark.parametrize("db", [[], ["--no-db"]], ids=["db", "no-db"])
def test_run_checks_out_before_evaluating(
    objectives: object, db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for out, reason in unwritable_outputs(tmp_path):
        assert main(run_argv("sphere", *db, out=out)) == 2
        line = error_line(capsys.readouterr().err)
        assert line.startswith(f"zerograds run: error: invalid --out {out}: {reason}"), line
    assert objectives.calls == []  # type: ignore[attr-defined]
    assert not (tmp_path / "zerograds-out").exists()


def test_run_rejects_db_that_cannot_be_created(
    objectives: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "a_file"
    afile.write_text("")
    assert main(run_argv("sphere", "--db", str(afile / "runs.db"))) == 2
    line = error_line(capsys.readouterr().err)
    assert f"cannot create the folder {afile} of --db" in line
    assert objectives.calls == []  # type: ignore[attr-defined]


def test_runs_plot_rejects_unwritable_out(
    objectives: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert main(run_argv("sphere", "--db", str(db), evals=20)) == 0
    afile = tmp_path / "a_file"
    afile.write_text("")
    cases = [(afile / "plot.png", "cannot write to its folder"), (tmp_path, "it is a folder")]
    if Path("/proc/self").is_dir():
        cases.append((Path("/proc/forbidden.png"), "cannot write to its folder /proc"))
    for out, reason in cases:
        capsys.readouterr()
        assert main(["runs", "--db", str(db), "plot", "1", "--out", str(out)]) == 2
        line = error_line(capsys.readouterr().err)
        assert line.startswith(f"zerograds runs: error: invalid --out {out}: {reason}"), line
    assert main(["runs", "--db", str(db), "plot", "1", "--out", str(tmp_path / "p" / "1.png")]) == 0
    assert (tmp_path / "p" / "1.png").is_file()


def test_demo_checks_out_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for out, reason in unwritable_outputs(tmp_path):
        argv = ["demo", "--dim", "3", "--evals", "20", "--no-progress", "--out", str(out)]
        assert main(argv) == 2
        captured = capsys.readouterr()
        line = error_line(captured.err)
        assert line.startswith(f"zerograds demo: error: invalid --out {out}: {reason}"), line
        assert "objective:" not in captured.out


# ---------------------------------------------------------------------- bench --report-only
REPORT = "# B\n\n<!-- bench:tiny:begin -->\nMEASURED RESULTS\n<!-- bench:tiny:end -->\n"


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_report_only_without_results_is_an_error(
    folder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.md"
    report.write_text(REPORT)
    out = tmp_path / folder
    if folder == "empty":
        out.mkdir()
        (out / "unrelated.jsonl").write_text("")
    argv = ["bench", "--suite", "tiny", "--report-only", "--out", str(out), "--report", str(report)]
    assert main(argv) == 2
    line = error_line(capsys.readouterr().err)
    expected = "not found" if folder == "missing" else "contains no result of suite 'tiny'"
    assert line.startswith(f"zerograds bench: error: --out {out} {expected}"), line
    assert report.read_text() == REPORT
    assert not (tmp_path / "figures").exists()


def test_report_only_keeps_sections_with_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.md"
    full = tmp_path / "full"
    argv = ["bench", "--suite", "tiny", "--optimizers", "random_search", "--out", str(full),
            "--report", str(report)]  # fmt: skip
    assert main(argv) == 0
    before = report.read_text()
    assert "No results yet." not in before

    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(full / "tiny-analytic.jsonl", partial)
    argv = ["bench", "--suite", "tiny", "--report-only", "--out", str(partial),
            "--report", str(report)]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    line = error_line(capsys.readouterr().err)
    assert f"--out {partial} has no results for tiny-bbob, which {report} shows" in line
    assert report.read_text() == before

    shutil.copy(full / "tiny-bbob.jsonl", partial)
    assert main(argv) == 0
    assert "No results yet." not in report.read_text()


# ---------------------------------------------------------------------- other arguments
def test_run_rejects_path_as_module(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--function", "../../etc:passwd", "--dim", "3", "--no-progress"]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith("zerograds run: error: invalid module name '../../etc'"), line


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_demo_rejects_bad_cma_sigma(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--cma-sigma", value, "--no-progress"]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith("zerograds demo: error: --cma-sigma must be a positive number"), line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizers", ",,,"], "invalid --optimizers ',,,': it names nothing"),
        (["--optimizers", ""], "invalid --optimizers '': it names nothing"),
        (["--benchmarks", ",,,"], "invalid --benchmarks ',,,': it names nothing"),
        (["--optimizers", "cma"], "--optimizers 'cma' selects no optimizer"),
    ],
)
def test_bench_rejects_empty_selection(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--suite", "tiny", *argv, "--list"]) == 2
    line = error_line(capsys.readouterr().err)
    assert message in line


@pytest.mark.parametrize(
    ("extra", "flag"),
    [(["--dim", "3"], "--dim"), (["--x0", "1"], "--x0"), (["--vectorized"], "--vectorized")],
)
def test_run_rejects_function_options_with_problem(
    extra: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--problem", "bbob:1:5:1", *extra, "--evals", "20", "--no-db", "--no-progress",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"zerograds run: error: {flag} applies to --function only"), line


def test_runs_db_after_the_action(
    objectives: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert main(run_argv("sphere", "--db", str(db), evals=20)) == 0
    capsys.readouterr()
    assert main(["runs", "show", "1", "--db", str(db)]) == 0
    after = capsys.readouterr().out
    assert main(["runs", "--db", str(db), "show", "1"]) == 0
    before = capsys.readouterr().out
    assert after == before
    assert after.startswith(f"run 1 in {db}")


def test_runs_missing_db_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.db"
    assert main(["runs", "list", "--db", str(missing)]) == 1
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"zerograds runs: error: run database {missing} not found"), line
    assert "--db PATH" in line


def test_bench_report_defaults_to_the_results_folder(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "--suite", "tiny", "--out", str(out), "--optimizers", "random_search"]
    assert main(argv) == 0
    report = out / "report.md"
    assert "<!-- bench:tiny:begin -->" in report.read_text()
    assert sorted((out / "figures").glob("bench-tiny-*.png"))
