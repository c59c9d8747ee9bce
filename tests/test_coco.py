"""``zerograds run --problem`` on COCO problems through the real ``cocoex`` package."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cocoex
import numpy as np
import pytest

from zerograds.cli import main
from zerograds.cli._problems import load_coco_problem

# Sphere f1, d = 5, instance 1: with σ = 0.04 (lr = 0.5σ), B = 4 and 3,000 evaluations
# ZeroGrads reached f - f_opt ≈ 8e-5 with seed 0; the bound leaves a margin of about 10x.
PRECISION = 1e-3


def test_coco_f_opt_matches_best_parameter() -> None:
    problem = load_coco_problem("bbob:1:5:1")
    bare = cocoex.BareProblem("bbob", 1, 5, 1)
    x_opt = np.asarray(bare.best_parameter())
    assert problem.f_opt == pytest.approx(float(problem.evaluate(x_opt[None, :])[0]))
    assert problem.dim == 5
    assert problem.name == "bbob_f001_i01_d05"
    assert problem.bounds is not None
    assert np.all(problem.bounds[0] == -5.0)


def test_coco_sphere_solved_to_precision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "coco"
    argv = ["run", "--problem", "bbob:1:5:1", "--sigma", "0.04", "--lr", "0.02", "--evals", "3000",
            "--seed", "0", "--no-progress", "--out", str(out),
            "--db", str(tmp_path / "runs.db")]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    match = re.search(r"final precision f - f_opt: (\S+)", text)
    assert match is not None, text
    precision = float(match[1])
    assert 0.0 <= precision < PRECISION
    assert "COCO final target (f_opt + 1e-8) hit:" in text

    with (out / "trace_zerograds.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["evaluations"]) <= 3000
    f_opt = cocoex.BareProblem("bbob", 1, 5, 1).best_value()
    assert float(rows[-1]["best_value"]) - f_opt == pytest.approx(precision, rel=1e-3)


def test_coco_largescale_runs_without_f_opt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--problem", "bbob-largescale:1:20", "--evals", "41", "--no-progress",
            "--out", str(tmp_path), "--db", str(tmp_path / "runs.db")]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "problem: bbob_f001_i01_d0020 (d=20), 41 evaluations" in text
    assert "f - f_opt" not in text
    assert "COCO final target (f_opt + 1e-8) hit: no" in text
