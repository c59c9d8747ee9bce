"""``zerograds run --resume``: a CLI run killed with SIGKILL continues bit-identically."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

OBJECTIVE = """
    import os
    import time

    import numpy as np

    def slow_sphere(x):
        time.sleep(0.003)  # long enough to kill the run between checkpoints
        with open(os.environ["ZG_CALL_LOG"], "a") as log:
            log.write("call\\n")
        return float(np.sum((np.asarray(x) - 1.5) ** 2))
"""
EVALS = 160


def count_evaluations(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


def command(tmp_path: Path, db: Path, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "zerograds", "run", "--function", "zg_resume_obj:slow_sphere",
            "--dim", "5", "--evals", str(EVALS), "--seed", "0", "--db", str(db),
            "--checkpoint-every", "5", "--no-progress", "--out", str(tmp_path / out),
            *extra]  # fmt: skip


def recorded(db: Path) -> dict[str, object]:
    """The run's summary and every evaluation (seq, kind, point hash, value as hex)."""
    with sqlite3.connect(db) as connection:
        runs = connection.execute("SELECT id, status, summary FROM runs").fetchall()
        rows = connection.execute(
            "SELECT seq, kind, point_hash, value FROM evaluations ORDER BY seq"
        ).fetchall()
    assert len(runs) == 1, runs
    _, status, summary = runs[0]
    assert status == "finished"
    evaluations = [(seq, kind, digest, float(value).hex()) for seq, kind, digest, value in rows]
    return {"summary": json.loads(summary), "evaluations": evaluations}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_cli_sigkill_resume_bit_identical(tmp_path: Path) -> None:
    (tmp_path / "zg_resume_obj.py").write_text(textwrap.dedent(OBJECTIVE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    env["ZG_CALL_LOG"] = str(tmp_path / "reference.log")
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 120}

    reference_db = tmp_path / "reference.db"
    reference = subprocess.run(command(tmp_path, reference_db, "reference"), **run)
    assert reference.returncode == 0, reference.stderr

    db = tmp_path / "killed.db"
    env["ZG_CALL_LOG"] = str(tmp_path / "killed.log")
    process = subprocess.Popen(
        command(tmp_path, db, "killed"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while count_evaluations(db) < 2 * 4 * 5 + 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the run recorded no evaluations in 60 s"
        time.sleep(0.02)
    process.kill()  # SIGKILL
    process.wait(timeout=10)
    killed_at = count_evaluations(db)
    assert 0 < killed_at < EVALS - 1, "the run ended before it was killed; slow the objective"

    env["ZG_CALL_LOG"] = str(tmp_path / "resumed.log")
    resumed = subprocess.run(command(tmp_path, db, "resumed", "--resume"), **run)
    assert resumed.returncode == 0, resumed.stderr

    assert recorded(db) == recorded(reference_db)
    # Evaluations recorded before the kill, also those after the last checkpoint, are reused.
    total = len((tmp_path / "reference.log").read_text().splitlines())
    assert len((tmp_path / "resumed.log").read_text().splitlines()) == total - killed_at
    last = reference.stdout.splitlines()
    assert [line for line in resumed.stdout.splitlines() if "value" in line] == [
        line for line in last if "value" in line
    ]
    reference_csv = (tmp_path / "reference" / "trace_zerograds.csv").read_text().splitlines()
    resumed_csv = (tmp_path / "resumed" / "trace_zerograds.csv").read_text().splitlines()
    columns = slice(0, 5)  # method, iteration, evaluations, value, best_value; not the times
    assert [row.split(",")[columns] for row in resumed_csv] == [
        row.split(",")[columns] for row in reference_csv
    ]


def test_resume_needs_db(capsys: pytest.CaptureFixture[str]) -> None:
    from zerograds.cli import main

    argv = ["run", "--function", "math:fsum", "--dim", "2", "--no-db", "--resume"]
    assert main([*argv, "--no-progress"]) == 2
    assert "--resume needs the run database" in capsys.readouterr().err
