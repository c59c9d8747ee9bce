"""``Run`` and its heartbeat thread: the evaluation journal and checkpoints of an owned run."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ._failure_policy import Evaluation
from ._storage_schema import _connect, _evaluation_row

if TYPE_CHECKING:
    from .storage import RunStore

# Log as "zerograds.storage", the public module that re-exports ``Run``, so that logging
# configured for that module also receives these messages.
logger = logging.getLogger("zerograds.storage")


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
