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
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ._storage_config import _difference, _fingerprint, describe_run
from ._storage_run import Run
from ._storage_schema import (
    _SCHEMA,
    FORMAT_NAME,
    FORMAT_VERSION,
    _check_database,
    _connect,
    _evaluation_row,
)
from ._validation import check_positive_float, short_repr
from .exceptions import RunLockedError, StorageError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Run",
    "RunInfo",
    "RunLockedError",
    "RunStore",
    "StorageError",
    "describe_run",
]

logger = logging.getLogger(__name__)


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
            to be dead; a finite number > 0. Default 60.

    Raises:
        TypeError: ``path`` is not a str or ``os.PathLike``, or ``stale_after`` is not a number.
        ValueError: ``stale_after`` is not a finite number > 0.
        StorageError: ``path`` is a directory, or the file exists but is not a readable
            zerograds run database; it is left unchanged.
    """

    def __init__(self, path: str | os.PathLike[str], *, stale_after: float = 60.0) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"`path` must be a str or os.PathLike naming the run database, got "
                f"{short_repr(path)}"
            )
        self.stale_after = check_positive_float("stale_after", stale_after)
        self.path = Path(path)
        self._closed = True  # until the connection below is open
        if self.path.is_dir():
            raise StorageError(
                f"cannot use {self.path} as the run database: it is a directory; pass the path "
                f"of a file in it, such as {self.path / 'runs.db'}"
            )
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
        self._closed = False

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called; a closed store can no longer be read or written."""
        return self._closed

    def close(self) -> None:
        """Close the database connection."""
        self._closed = True
        self._connection.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(
                f"the RunStore of {self.path} is closed; open it again with "
                f"zerograds.RunStore({str(self.path)!r}), or pass the path instead"
            )

    # ------------------------------------------------------------------ reading
    def list_runs(self) -> list[RunInfo]:
        """Return every run, oldest first."""
        self._check_open()
        rows = self._connection.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [_run_info(row) for row in rows]

    def get_run(self, run_id: int) -> RunInfo:
        """Return run ``run_id``; raise ``StorageError`` when it does not exist."""
        self._check_open()
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
        self._check_open()
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
            StorageError: the store is closed.
        """
        self._check_open()
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
