"""Opening the SQLite files of a state directory safely when several processes open them at once.

Two crawls (articles and discussions) and the daemon open the same files at
the same moment on a fresh state dir. ``PRAGMA journal_mode=WAL`` needs an
exclusive lock and SQLite does not run its busy handler for it: the second
opener gets ``database is locked`` at once. So the journal mode is set with
its own retry loop, and a file already in WAL mode (the mode persists in the
file) is left alone.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_SECONDS = 30.0


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def connect_wal(
    path: str | Path,
    *,
    timeout: float = BUSY_TIMEOUT_SECONDS,
    synchronous: str | None = None,
    schema: str | None = None,
    **kwargs: Any,
) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode with a busy timeout, safe to call from many processes at once.

    ``schema`` (a script of ``CREATE ... IF NOT EXISTS``) runs inside the same
    retry: a schema change takes the write lock too.
    """
    conn = sqlite3.connect(path, timeout=timeout, **kwargs)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            if synchronous:
                conn.execute(f"PRAGMA synchronous = {synchronous}")
            if schema:
                conn.executescript(schema)
            return conn
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                conn.close()
                raise
            # Jittered backoff: two openers retrying in step would collide again.
            time.sleep(pause * (1 + random.random()))
            pause = min(pause * 2, 0.2)


def add_column(conn: sqlite3.Connection, table: str, name: str, declaration: str) -> None:
    """``ALTER TABLE table ADD COLUMN``, for a file written by an older version (names are this code's own).

    Two processes opening the same old file can both find the column missing;
    the second one's ALTER then fails as a duplicate, which means it is there.
    """
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise
