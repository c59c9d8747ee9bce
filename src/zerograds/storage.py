"""Crash-safe run storage in one SQLite database.

A ``RunStore`` holds any number of runs. For each run it records every evaluation (the
hash of the point, the run's seed, the value, the status and the time) as soon as it
finishes, and the optimizer's ``state_dict()`` (written with ``torch.save``) every
``checkpoint_every`` iterations. ``minimize(..., storage=..., resume=True)`` loads the last
checkpoint and replays the evaluations recorded after it from the database without calling the
objective again, so a run killed at any moment (SIGKILL included) ends bit-identical on CPU to
one that was never interrupted.

The database uses WAL mode with ``synchronous=NORMAL``: a committed evaluation survives a crash
of the process. After a power loss the database stays consistent but the last few commits may
be missing, and those evaluations are made again.

One process at a time owns a run. Its pid, host and a heartbeat are stored in the run's row; a
second process asking for the same run gets ``RunLockedError`` until the owner has exited
(same host) or its heartbeat is older than ``stale_after`` seconds (other hosts).

Example:
    >>> import numpy as np, tempfile, os, zerograds as zg
    >>> path = os.path.join(tempfile.mkdtemp(), "runs.db")
    >>> result = zg.minimize(lambda x: float(np.sum((x - 1.0) ** 2)), np.zeros(3), max_evals=41,
    ...                      seed=0, storage=path, checkpoint_every=2)
    >>> with zg.RunStore(path) as store:
    ...     [run.nfev for run in store.list_runs()]
    [41]
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._evaluation import Evaluation
from .exceptions import RunLockedError, StorageError

logger = logging.getLogger(__name__)

FORMAT_NAME = "zerograds-runs"
FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    fingerprint TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    nfev INTEGER NOT NULL DEFAULT 0,
    nit INTEGER NOT NULL DEFAULT 0,
    best_fun REAL,
    summary TEXT,
    owner_pid INTEGER,
    owner_host TEXT,
    owner_token TEXT,
    heartbeat REAL
);
CREATE TABLE IF NOT EXISTS evaluations (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    point_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    action TEXT NOT NULL,
    raw REAL,
    value REAL,
    error TEXT,
    seconds REAL NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    iteration INTEGER NOT NULL,
    nfev INTEGER NOT NULL,
    created REAL NOT NULL,
    sha256 TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (run_id, iteration)
);
"""


@dataclass(frozen=True)
class RunInfo:
    """One row of the ``runs`` table.

    Attributes:
        id: run id, unique within the database.
        name: optional label given by the user.
        status: ``"running"``, ``"finished"``, ``"failed"`` or ``"interrupted"``. A run
            killed without warning stays ``"running"`` with an owner that no longer exists.
        config: the options the run was started with (JSON).
        seed: the seed of every random draw of the run.
        nfev: evaluations recorded.
        nit: iteration of the last checkpoint.
        best_fun: lowest finite value recorded, ``None`` before the first.
        message: why the run stopped, when it did.
        created: start time, seconds since the epoch.
        updated: time of the last checkpoint or status change.
        owner: ``"pid@host"`` of the process that owns the run, if any.
        summary: the final result's scalars (JSON) once the run finished.
    """

    id: int
    name: str | None
    status: str
    config: dict[str, Any]
    seed: int
    nfev: int
    nit: int
    best_fun: float | None
    message: str | None
    created: float
    updated: float
    owner: str | None
    summary: dict[str, Any] | None


class RunStore:
    """A SQLite database of runs, opened (and created when missing) at ``path``.

    Args:
        path: database file.
        stale_after: seconds without heartbeat after which an owner on another host is taken
            to be dead. Default 60.

    Raises:
        StorageError: the file exists but is not a readable zerograds run database; it is left
            unchanged.
    """

    def __init__(self, path: str | os.PathLike[str], *, stale_after: float = 60.0) -> None:
        self.path = Path(path)
        self.stale_after = float(stale_after)
        if self.path.exists() and self.path.stat().st_size > 0:
            _check_database(self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = _connect(self.path)
        try:
            self._connection.executescript(_SCHEMA)
            self._connection.execute(
                "INSERT OR IGNORE INTO meta VALUES ('format', ?), ('version', ?)",
                (FORMAT_NAME, str(FORMAT_VERSION)),
            )
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise StorageError(
                f"cannot initialize the run database {self.path}: {error}"
            ) from error

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._connection.close()

    # ------------------------------------------------------------------ reading
    def list_runs(self) -> list[RunInfo]:
        """Return every run, oldest first."""
        rows = self._connection.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [_run_info(row) for row in rows]

    def get_run(self, run_id: int) -> RunInfo:
        """Return run ``run_id``; raise ``StorageError`` when it does not exist."""
        row = self._connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StorageError(f"run {run_id} not found in {self.path}")
        return _run_info(row)

    def evaluations(self, run_id: int) -> list[dict[str, Any]]:
        """Return the evaluations of run ``run_id`` in call order, as dicts of the columns."""
        self.get_run(run_id)
        rows = self._connection.execute(
            "SELECT seq, kind, point_hash, seed, status, action, raw, value, error, seconds, "
            "created FROM evaluations WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [_evaluation_row(row) for row in rows]

    def load_checkpoint(self, run_id: int) -> dict[str, Any] | None:
        """Return the last checkpoint of run ``run_id``, or ``None`` when it has none.

        Raises:
            StorageError: the checkpoint's bytes do not match their checksum or cannot be
                loaded; the database is left unchanged.
        """
        row = self._connection.execute(
            "SELECT iteration, sha256, state FROM checkpoints WHERE run_id = ? "
            "ORDER BY iteration DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        iteration, digest, blob = row
        where = f"the checkpoint of run {run_id} at iteration {iteration} in {self.path}"
        if hashlib.sha256(blob).hexdigest() != digest:
            raise StorageError(
                f"{where} is corrupted (its SHA-256 checksum does not match); the database was "
                "left unchanged. Start a new run, or restore the database from a backup"
            )
        try:
            return torch.load(io.BytesIO(blob), weights_only=True)
        except Exception as error:
            raise StorageError(f"{where} cannot be loaded: {error}") from error

    # ------------------------------------------------------------------ writing
    def open_run(
        self,
        config: dict[str, Any],
        *,
        seed: int,
        resume: bool | int = False,
        name: str | None = None,
        keep_checkpoints: int = 2,
    ) -> Run:
        """Start a new run, or take over an existing one to resume it.

        Args:
            config: options of the run; the entries under ``"trajectory"`` must match for a
                resume, the rest (budget, workers) may differ.
            seed: seed of a new run. A resumed run keeps its recorded seed.
            resume: ``False`` starts a new run; ``True`` resumes the newest run with the same
                trajectory options, or starts one when there is none; an int resumes that run.
            name: label of a new run.
            keep_checkpoints: how many of the newest checkpoints to keep.

        Raises:
            StorageError: run ``resume`` does not exist.
            ValueError: run ``resume`` was started with other trajectory options.
            RunLockedError: another live process owns the run.
        """
        fingerprint = _fingerprint(config)
        row = None
        if resume is True:
            row = self._connection.execute(
                "SELECT * FROM runs WHERE fingerprint = ? ORDER BY id DESC LIMIT 1",
                (fingerprint,),
            ).fetchone()
            if row is None:
                logger.info("no run with these options in %s; starting a new one", self.path)
        elif resume is not False:
            row = self._connection.execute("SELECT * FROM runs WHERE id = ?", (resume,)).fetchone()
            if row is None:
                raise StorageError(f"run {resume} not found in {self.path}; nothing to resume")
            if row["fingerprint"] != fingerprint:
                raise ValueError(
                    f"run {resume} was started with other options: "
                    f"{_difference(json.loads(row['config']), config)}"
                )

        token = uuid.uuid4().hex
        now = time.time()
        if row is None:
            cursor = self._connection.execute(
                "INSERT INTO runs (name, fingerprint, config, seed, status, created, updated, "
                "owner_pid, owner_host, owner_token, heartbeat) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    fingerprint,
                    json.dumps(config, sort_keys=True),
                    seed,
                    now,
                    now,
                    os.getpid(),
                    socket.gethostname(),
                    token,
                    now,
                ),
            )
            run_id = int(cursor.lastrowid)  # type: ignore[arg-type]
            logger.info("started run %d in %s", run_id, self.path)
            return Run(self, run_id, seed, token, None, keep_checkpoints)

        run_id = int(row["id"])
        self.load_checkpoint(run_id)  # a damaged checkpoint raises before anything is written
        self._take_ownership(run_id, token)
        try:
            checkpoint = self.load_checkpoint(run_id)  # the owner may have written a newer one
        except StorageError:
            self._release(run_id, token, None, None)
            raise
        logger.info(
            "resuming run %d in %s from %s",
            run_id,
            self.path,
            "the start" if checkpoint is None else f"iteration {checkpoint['iteration']}",
        )
        return Run(self, run_id, int(row["seed"]), token, checkpoint, keep_checkpoints)

    def _take_ownership(self, run_id: int, token: str) -> None:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(
                "SELECT owner_pid, owner_host, owner_token, heartbeat FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            if row["owner_token"] is not None and self._owner_alive(row):
                raise RunLockedError(
                    f"run {run_id} in {self.path} is in use by pid {row['owner_pid']} on "
                    f"{row['owner_host']} (last heartbeat {time.time() - row['heartbeat']:.0f} s "
                    "ago); stop that process first, or start a new run"
                )
            if row["owner_token"] is not None:
                logger.warning(
                    "run %d was owned by pid %s on %s, which is gone; taking it over",
                    run_id,
                    row["owner_pid"],
                    row["owner_host"],
                )
            connection.execute(
                "UPDATE runs SET owner_pid = ?, owner_host = ?, owner_token = ?, heartbeat = ?, "
                "status = 'running', message = NULL, updated = ? WHERE id = ?",
                (os.getpid(), socket.gethostname(), token, time.time(), time.time(), run_id),
            )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _owner_alive(self, row: sqlite3.Row) -> bool:
        if row["owner_host"] == socket.gethostname():
            return _pid_alive(int(row["owner_pid"]))
        return time.time() - float(row["heartbeat"] or 0.0) < self.stale_after

    def _release(self, run_id: int, token: str, status: str | None, message: str | None) -> None:
        self._connection.execute(
            "UPDATE runs SET owner_pid = NULL, owner_host = NULL, owner_token = NULL, "
            "status = COALESCE(?, status), message = COALESCE(?, message), updated = ? "
            "WHERE id = ? AND owner_token = ?",
            (status, message, time.time(), run_id, token),
        )


class Run:
    """A run owned by this process: the ``Journal`` of its evaluator and its checkpoints.

    Built by ``RunStore.open_run``.

    Attributes:
        id: run id.
        seed: the run's seed.
        checkpoint: the last checkpoint when the run was resumed, else ``None``.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: int,
        seed: int,
        token: str,
        checkpoint: dict[str, Any] | None,
        keep_checkpoints: int,
    ) -> None:
        self.store = store
        self.id = run_id
        self.seed = seed
        self.checkpoint = checkpoint
        self._token = token
        self._keep = max(1, keep_checkpoints)
        self._connection = store._connection
        start = 0 if checkpoint is None else int(checkpoint["nfev"])
        rows = self._connection.execute(
            "SELECT seq, kind, point_hash, seed, status, action, raw, value, error, seconds, "
            "created FROM evaluations WHERE run_id = ? AND seq >= ?",
            (run_id, start),
        ).fetchall()
        self._recorded = {row["seq"]: _evaluation_row(row) for row in rows}
        if self._recorded:
            logger.info("run %d: %d recorded evaluations to replay", run_id, len(self._recorded))
        self._heartbeat = _Heartbeat(store.path, run_id, token, interval=store.stale_after / 6)
        self._heartbeat.start()

    # ------------------------------------------------------------------ Journal
    def lookup(self, seq: int, point_hash: str) -> Evaluation | None:
        """Return the evaluation recorded as call ``seq`` if it was made at ``point_hash``."""
        row = self._recorded.get(seq)
        if row is None:
            return None
        if row["point_hash"] != point_hash:
            logger.warning(
                "run %d: the recorded evaluations from call %d on were made at other points "
                "than the resumed run asks for; they are discarded and evaluated again",
                self.id,
                seq,
            )
            self._connection.execute(
                "DELETE FROM evaluations WHERE run_id = ? AND seq >= ?", (self.id, seq)
            )
            self._recorded = {s: r for s, r in self._recorded.items() if s < seq}
            return None
        if row["action"] == "raised":
            return None  # the run stopped on it; call the objective again
        return Evaluation(
            row["status"], row["raw"], row["value"], row["action"], row["error"], row["seconds"]
        )

    def record(self, seq: int, point_hash: str, kind: str, evaluation: Evaluation) -> None:
        """Store one evaluation as call ``seq`` and commit it."""
        self._connection.execute(
            "INSERT OR REPLACE INTO evaluations (run_id, seq, kind, point_hash, seed, status, "
            "action, raw, value, error, seconds, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.id,
                seq,
                kind,
                point_hash,
                self.seed,
                evaluation.status,
                evaluation.action,
                evaluation.raw,
                evaluation.value,
                evaluation.error,
                evaluation.seconds,
                time.time(),
            ),
        )

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(
        self, iteration: int, nfev: int, best_fun: float, state: dict[str, Any]
    ) -> None:
        """Store ``state`` (loadable with ``torch.load(weights_only=True)``) for
        ``iteration`` and drop the checkpoints older than the newest ``keep_checkpoints``."""
        buffer = io.BytesIO()
        torch.save({"iteration": iteration, "nfev": nfev, **state}, buffer)
        blob = buffer.getvalue()
        now = time.time()
        best = best_fun if math.isfinite(best_fun) else None
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                (self.id, iteration, nfev, now, hashlib.sha256(blob).hexdigest(), blob),
            )
            connection.execute(
                "DELETE FROM checkpoints WHERE run_id = ? AND iteration NOT IN (SELECT "
                "iteration FROM checkpoints WHERE run_id = ? ORDER BY iteration DESC LIMIT ?)",
                (self.id, self.id, self._keep),
            )
            connection.execute(
                "UPDATE runs SET nfev = ?, nit = ?, best_fun = ?, updated = ? WHERE id = ?",
                (nfev, iteration, best, now, self.id),
            )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def finish(self, status: str, message: str, summary: dict[str, Any] | None = None) -> None:
        """Store how the run ended and release it."""
        self._heartbeat.stop()
        if summary is not None:
            self._connection.execute(
                "UPDATE runs SET summary = ?, nfev = ?, best_fun = ? WHERE id = ?",
                (
                    json.dumps(summary, sort_keys=True),
                    summary.get("nfev"),
                    summary.get("best_fun") if math.isfinite(summary["best_fun"]) else None,
                    self.id,
                ),
            )
        self.store._release(self.id, self._token, status, message)


class _Heartbeat:
    """Background thread that refreshes the run's heartbeat on its own connection."""

    def __init__(self, path: Path, run_id: int, token: str, interval: float) -> None:
        self._path = path
        self._run_id = run_id
        self._token = token
        self._interval = max(0.5, interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="zerograds-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        connection = _connect(self._path)
        try:
            while not self._stop.wait(self._interval):
                try:
                    connection.execute(
                        "UPDATE runs SET heartbeat = ? WHERE id = ? AND owner_token = ?",
                        (time.time(), self._run_id, self._token),
                    )
                except sqlite3.Error as error:
                    logger.warning("run %d: heartbeat failed: %s", self._run_id, error)
        finally:
            connection.close()


def describe_run(
    fun: Any,
    x0: Any,
    seed: int | None,
    build: dict[str, Any],
    vectorized: bool,
    eval_every: int,
    policy: Any,
) -> dict[str, Any]:
    """Return the JSON config of a ``minimize`` run.

    The ``"trajectory"`` entry holds everything that decides which points are evaluated: the
    objective's qualified name, a hash of x0, the seed and the options. A resume must match it.
    Objects that have no JSON form (an optimizer class, a surrogate module) are stored by
    their qualified type name.
    """
    x0_array = np.ascontiguousarray(_to_numpy(x0), dtype=np.float64)
    trajectory = {
        "fun": _qualified_name(fun),
        "dim": int(x0_array.size),
        "x0_sha256": hashlib.sha256(x0_array.tobytes()).hexdigest(),
        "seed": seed,
        "vectorized": vectorized,
        "eval_every": eval_every,
        "on_error": policy.on_error,
        "on_nonfinite": policy.on_nonfinite,
        "penalty": policy.penalty,
        **{key: _jsonable(value) for key, value in sorted(build.items())},
    }
    return {"trajectory": trajectory, "timeout": policy.timeout}


# ---------------------------------------------------------------------- helpers
def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def _qualified_name(obj: Any) -> str:
    target = (
        obj
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__"))
        else type(obj)
    )
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        array = np.ascontiguousarray(_to_numpy(value))
        return {"sha256": hashlib.sha256(array.tobytes()).hexdigest(), "shape": list(array.shape)}
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, torch.dtype):
        return str(value)
    return {"type": _qualified_name(value)}


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def _check_database(path: Path) -> None:
    """Raise ``StorageError`` unless ``path`` is an intact run database; writes nothing."""
    fix = "The file was left unchanged; pass another path, or restore it from a backup."
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise StorageError(f"cannot open the run database {path}: {error}") from error
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise StorageError(
                f"{path} is a damaged SQLite database ({'; '.join(problems[:3])}). {fix}"
            )
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if tables and "meta" not in tables:
            raise StorageError(
                f"{path} is a SQLite database but not a zerograds run database. {fix}"
            )
        if "meta" in tables:
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT_NAME or meta.get("version") != str(FORMAT_VERSION):
                raise StorageError(
                    f"{path} has format {meta.get('format')!r} version {meta.get('version')!r}, "
                    f"expected {FORMAT_NAME!r} version {FORMAT_VERSION}. {fix}"
                )
    except sqlite3.DatabaseError as error:
        raise StorageError(f"{path} is not a readable SQLite database ({error}). {fix}") from error
    finally:
        connection.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fingerprint(config: dict[str, Any]) -> str:
    trajectory = json.dumps(config.get("trajectory", config), sort_keys=True)
    return hashlib.sha256(trajectory.encode()).hexdigest()


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    old_t, new_t = old.get("trajectory", old), new.get("trajectory", new)
    keys = sorted(set(old_t) | set(new_t))
    changed = [
        f"{k}: {old_t.get(k)!r} -> {new_t.get(k)!r}" for k in keys if old_t.get(k) != new_t.get(k)
    ]
    return "; ".join(changed) or "(no difference in the stored options)"


def _run_info(row: sqlite3.Row) -> RunInfo:
    owner = None if row["owner_pid"] is None else f"{row['owner_pid']}@{row['owner_host']}"
    return RunInfo(
        id=int(row["id"]),
        name=row["name"],
        status=row["status"],
        config=json.loads(row["config"]),
        seed=int(row["seed"]),
        nfev=int(row["nfev"]),
        nit=int(row["nit"]),
        best_fun=row["best_fun"],
        message=row["message"],
        created=float(row["created"]),
        updated=float(row["updated"]),
        owner=owner,
        summary=None if row["summary"] is None else json.loads(row["summary"]),
    )


def _evaluation_row(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    keys = ("seq", "kind", "point_hash", "seed", "status", "action", "raw", "value", "error")
    keys += ("seconds", "created")
    result = dict(zip(keys, tuple(row), strict=True))
    # SQLite stores NaN as NULL.
    for key in ("raw", "value"):
        if result[key] is None:
            result[key] = math.nan
    return result
