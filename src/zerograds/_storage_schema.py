"""SQLite schema of the run database, its connection settings and the integrity check of a file."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

from .exceptions import StorageError

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


def _evaluation_row(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    keys = ("seq", "kind", "point_hash", "seed", "status", "action", "raw", "value", "error")
    keys += ("seconds", "created")
    result = dict(zip(keys, tuple(row), strict=True))
    # SQLite stores NaN as NULL.
    for key in ("raw", "value"):
        if result[key] is None:
            result[key] = math.nan
    return result
