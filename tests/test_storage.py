"""Run storage: recording, resume after SIGKILL, damaged files and concurrent owners."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import zerograds as zg
from zerograds.storage import RunStore

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import torch
    import zerograds as zg

    torch.set_num_threads(1)
    calls = 0

    def objective(x):
        global calls
        calls += 1
        time.sleep(0.002)
        return float(np.sum((x - 2.0) ** 2) + np.sum(np.abs(np.round(x))))

    if __name__ == "__main__":
        db, resume = sys.argv[1], sys.argv[2] == "resume"
        result = zg.minimize(objective, np.zeros(4), sigma=0.5, max_evals=401, seed=11,
                             storage=db, checkpoint_every=7, resume=resume)
        print(json.dumps({"x": [v.hex() for v in result.x], "fun": result.fun.hex(),
                          "best_fun": result.best_fun.hex(), "nfev": result.nfev,
                          "nit": result.nit, "calls": calls}))
    """
)


def run_script(script: Path, db: Path, mode: str) -> dict:
    output = subprocess.run(
        [sys.executable, str(script), str(db), mode],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def count_evaluations(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


def quadratic(x: np.ndarray) -> float:
    return float(np.sum((x - 1.0) ** 2))


def test_sigkill_resume_bit_identical(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    reference = run_script(script, tmp_path / "reference.db", "new")

    db = tmp_path / "killed.db"
    process = subprocess.Popen([sys.executable, str(script), str(db), "new"])
    deadline = time.monotonic() + 60
    while count_evaluations(db) < 150 and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.kill()  # SIGKILL
    process.wait()
    recorded = count_evaluations(db)
    assert 150 <= recorded < 401

    resumed = run_script(script, db, "resume")
    assert resumed["x"] == reference["x"]
    assert resumed["fun"] == reference["fun"]
    assert resumed["best_fun"] == reference["best_fun"]
    assert resumed["nfev"] == reference["nfev"] == 401
    assert resumed["nit"] == reference["nit"]
    # Evaluations recorded after the last checkpoint were reused, not repeated.
    assert resumed["calls"] == 401 - recorded
    assert count_evaluations(db) == 401
    with RunStore(db) as store:
        (run,) = store.list_runs()
    assert run.status == "finished"
    assert run.nfev == 401


def test_records_every_evaluation(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    result = zg.minimize(quadratic, np.zeros(3), max_evals=41, seed=0, storage=db, run_name="first")
    with RunStore(db) as store:
        (run,) = store.list_runs()
        rows = store.evaluations(run.id)
    assert run.id == result.run_id
    assert run.name == "first"
    assert run.status == "finished"
    assert run.seed == 0
    assert len(rows) == result.nfev == 41
    assert [row["seq"] for row in rows] == list(range(41))
    assert rows[-1]["kind"] == "final"
    assert rows[-1]["value"] == result.fun
    assert {row["status"] for row in rows} == {"ok"}
    assert all(len(row["point_hash"]) == 32 for row in rows)


def test_resume_extends_finished_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    zg.minimize(quadratic, np.zeros(3), max_evals=41, seed=0, storage=db, checkpoint_every=3)
    extended = zg.minimize(quadratic, np.zeros(3), max_evals=81, seed=0, storage=db, resume=True)
    reference = zg.minimize(quadratic, np.zeros(3), max_evals=81, seed=0)
    assert extended.run_id == 1
    assert np.array_equal(extended.x, reference.x)
    assert extended.nfev == reference.nfev


def test_resume_other_options_rejected(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    zg.minimize(quadratic, np.zeros(3), max_evals=21, seed=0, storage=db)
    with pytest.raises(ValueError, match=r"run 1 was started with other options: .*sigma"):
        zg.minimize(quadratic, np.zeros(3), max_evals=21, seed=0, sigma=2.0, storage=db, resume=1)
    with pytest.raises(zg.StorageError, match=r"run 9 not found"):
        zg.minimize(quadratic, np.zeros(3), max_evals=21, seed=0, storage=db, resume=9)


def test_garbage_database_left_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    db.write_bytes(b"this is not a database" * 100)
    before = db.read_bytes()
    with pytest.raises(zg.StorageError, match=r"not a readable SQLite database .* left unchanged"):
        RunStore(db)
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]


def test_truncated_database_left_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    zg.minimize(quadratic, np.zeros(50), max_evals=201, seed=0, storage=db, checkpoint_every=2)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    before = db.read_bytes()
    with pytest.raises(zg.StorageError, match=r"left unchanged"):
        RunStore(db)
    assert db.read_bytes() == before


def test_foreign_sqlite_database_rejected(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    before = db.read_bytes()
    with pytest.raises(zg.StorageError, match=r"not a zerograds run database"):
        RunStore(db)
    assert db.read_bytes() == before


def test_corrupted_checkpoint_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    zg.minimize(quadratic, np.zeros(3), max_evals=41, seed=0, storage=db, checkpoint_every=3)
    with sqlite3.connect(db) as connection:
        (blob,) = connection.execute(
            "SELECT state FROM checkpoints ORDER BY iteration DESC LIMIT 1"
        ).fetchone()
        damaged = blob[:100] + bytes([blob[100] ^ 0xFF]) + blob[101:]
        connection.execute(
            "UPDATE checkpoints SET state = ? WHERE iteration = "
            "(SELECT MAX(iteration) FROM checkpoints)",
            (damaged,),
        )
    connection.close()
    before = db.read_bytes()
    with pytest.raises(zg.StorageError, match=r"checkpoint of run 1 at iteration \d+ .* corrupted"):
        zg.minimize(quadratic, np.zeros(3), max_evals=41, seed=0, storage=db, resume=True)
    assert db.read_bytes() == before


def test_second_owner_refused(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    config = {"trajectory": {"fun": "f"}}
    with RunStore(db) as first, RunStore(db) as second:
        run = first.open_run(config, seed=0)
        with pytest.raises(zg.RunLockedError, match=rf"run 1 .* in use by pid {os.getpid()}"):
            second.open_run(config, seed=0, resume=run.id)
        other = second.open_run(config, seed=0)  # a new run next to it is fine
        assert other.id == 2
        run.finish("finished", "done")
        other.finish("finished", "done")
        resumed = second.open_run(config, seed=0, resume=1)
        resumed.finish("finished", "done")


def test_dead_owner_taken_over(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    config = {"trajectory": {"fun": "f"}}
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with RunStore(db) as store:
        run = store.open_run(config, seed=0)
        run._heartbeat.stop()
        store._connection.execute("UPDATE runs SET owner_pid = ? WHERE id = 1", (child.pid,))
        taken = store.open_run(config, seed=0, resume=True)
        assert taken.id == 1
        assert store.get_run(1).owner == f"{os.getpid()}@{os.uname().nodename}"
        taken.finish("finished", "done")
