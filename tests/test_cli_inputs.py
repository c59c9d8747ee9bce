"""Input checks, ``--threads`` and help texts of ``zerograds run``, ``demo`` and ``bench``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from zerograds.cli import build_parser, main
from zerograds.cli._problems import load_coco_problem

THREADS_OBJECTIVE = """
    import numpy as np
    import torch

    thread_counts = []

    def sphere(x):
        thread_counts.append(torch.get_num_threads())
        return float(np.sum(np.asarray(x) ** 2))
"""


def write_module(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def clean_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop the working directory from sys.path, as the ``zerograds`` console script has it."""
    cwd = os.path.realpath(os.getcwd())
    entries_without_cwd = [
        entry for entry in sys.path if os.path.realpath(entry or os.curdir) != cwd
    ]
    monkeypatch.setattr(sys, "path", entries_without_cwd)


# ---------------------------------------------------------------------- --threads
@pytest.mark.parametrize(
    "argv", [["run", "--problem", "bbob:1:5:1"], ["demo"]], ids=["run", "demo"]
)
def test_threads_default_is_one(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.threads == 1


@pytest.mark.parametrize("command", ["run", "demo"])
@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "must be an integer >= 1, got 0"), ("two", "invalid int value: 'two'")],
)
def test_threads_rejects_invalid_count(
    command: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["--problem", "bbob:1:5:1"] if command == "run" else []
    with pytest.raises(SystemExit) as exit_info:
        main([command, *extra, "--threads", value])
    assert exit_info.value.code == 2
    assert f"argument --threads: {message}" in capsys.readouterr().err


def test_run_threads_sets_torch_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_module(tmp_path, "zg_threads_obj", THREADS_OBJECTIVE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "zg_threads_obj", raising=False)
    before = torch.get_num_threads()

    argv = ["run", "--function", "zg_threads_obj:sphere", "--dim", "3", "--evals", "25",
            "--threads", "2", "--no-db", "--no-progress",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 0

    thread_counts = sys.modules["zg_threads_obj"].thread_counts
    assert len(thread_counts) == 25
    assert set(thread_counts) == {2}
    assert torch.get_num_threads() == before, "run did not restore torch's thread count"
    capsys.readouterr()


def test_demo_threads_sets_torch_threads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class DriveCalled(Exception):
        pass

    thread_counts = []

    def fake_drive(*args: object, **kwargs: object) -> None:
        thread_counts.append(torch.get_num_threads())
        raise DriveCalled

    monkeypatch.setattr("zerograds.cli.demo.drive", fake_drive)
    before = torch.get_num_threads()
    with pytest.raises(DriveCalled):
        main(["demo", "--dim", "5", "--evals", "20", "--threads", "3", "--no-progress",
              "--out", str(tmp_path)])  # fmt: skip
    assert thread_counts == [3]
    assert torch.get_num_threads() == before, "demo did not restore torch's thread count"


# ---------------------------------------------------------------------- --function import
def test_run_function_imports_from_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_sys_path: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_module(tmp_path, "zg_cwd_obj", THREADS_OBJECTIVE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "zg_cwd_obj", raising=False)

    argv = ["run", "--function", "zg_cwd_obj:sphere", "--dim", "2", "--evals", "20",
            "--no-db", "--no-progress", "--out", str(tmp_path / "out")]  # fmt: skip
    status = main(argv)
    assert status == 0, capsys.readouterr().err
    assert sys.path[0] == os.getcwd()


def test_console_script_imports_from_working_directory(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("zerograds")
    if not script.is_file():
        pytest.skip(f"console script {script} is not installed")
    write_module(tmp_path, "zg_script_obj", THREADS_OBJECTIVE)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    completed = subprocess.run(
        [str(script), "run", "--function", "zg_script_obj:sphere", "--dim", "2",
         "--evals", "20", "--no-db", "--no-progress", "--out", "out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "out" / "trace_zerograds.csv").is_file()


def test_run_missing_module_names_search_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_sys_path: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--function", "zg_no_such_module:f", "--dim", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "No module named 'zg_no_such_module'" in err
    assert f"searched the working directory {os.getcwd()}" in err
    assert "PYTHONPATH" in err


def test_run_missing_dependency_keeps_its_name(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_sys_path: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_module(tmp_path, "zg_broken_obj", "import zg_missing_dependency\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "zg_broken_obj", raising=False)

    assert main(["run", "--function", "zg_broken_obj:f", "--dim", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "No module named 'zg_missing_dependency'" in err
    assert "PYTHONPATH" not in err, "the hint would point at the wrong module"


# ---------------------------------------------------------------------- --evals
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--evals", "0", "--no-db"], "--evals must be at least 9, got 0"),
        (["--evals", "8"], "--evals must be at least 9, got 8"),
        (["--evals", "2", "--batch-size", "1", "--no-db"], "--evals must be at least 3, got 2"),
    ],
)
def test_run_rejects_too_few_evals(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--problem", "bbob:1:5:1", *argv, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "zerograds-out").exists()


def test_run_accepts_minimum_evals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--problem", "bbob:1:5:1", "--evals", "9", "--no-db", "--no-progress",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert "9 evaluations" in capsys.readouterr().out


def test_demo_rejects_too_few_evals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--evals", "2", "--no-progress"]) == 2
    assert "--evals must be at least 3, got 2" in capsys.readouterr().err


# ---------------------------------------------------------------------- --problem indices
@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("bbob-largescale:25:20:1", "COCO suite 'bbob-largescale' has no function 25"),
        ("bbob:1:1:1", "has no function 1 in dimension 1"),
        ("bbob:1:99999:1", "has no function 1 in dimension 99999"),
        ("bbob-largescale:1:10:1", "its dimensions are 20, 40, 80, 160, 320, 640"),
        ("bbob:1:5:0", "invalid COCO instance 0 in --problem 'bbob:1:5:0'"),
        ("bbob:1:5:1000000000000", "expected an integer from 1 to 2147483647"),
    ],
)
def test_run_rejects_bad_coco_indices(
    problem: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --evals and --no-db keep a run short where a wrong problem would be accepted.
    assert main(["run", "--problem", problem, "--evals", "20", "--no-db", "--no-progress"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("bbob:99:5:1", "COCO suite 'bbob' has no function 99 (--problem 'bbob:99:5:1'); "
                        "its functions are 1-24"),
        ("bbob:1:0:1", "has no function 1 in dimension 0"),
    ],
)  # fmt: skip
def test_run_rejects_fatal_coco_indices(problem: str, message: str, tmp_path: Path) -> None:
    # cocoex ends the process for these indices, so they run in a subprocess.
    completed = subprocess.run(
        [sys.executable, "-m", "zerograds", "run", "--problem", problem, "--no-db",
         "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr
    assert "COCO FATAL ERROR" not in completed.stderr


def test_coco_instance_is_instance_number() -> None:
    problem = load_coco_problem("bbob:1:5:15")
    assert problem.name == "bbob_f001_i15_d05"


# ---------------------------------------------------------------------- help texts
def test_bench_help_states_defaults_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: )" not in text
    assert "benchmark names of the suite to run (default: all) --optimizers" in text
    assert "optimizer names to run (default: all of each benchmark) --report-only" in text


def test_demo_help_states_lr_units(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Adam learning rate on θ, in the units of x per step (default: 1.0)" in text
