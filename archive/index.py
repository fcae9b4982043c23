"""Payload-digest index of earlier snapshots (``<state>/archive-index.sqlite``), for revisit records.

Entries are added only when a snapshot is finalised, so a crashed crawl never
becomes the target of a revisit. Each digest maps to the first response record
that carried that payload; revisits are never indexed, so every revisit points
at a record holding the payload itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from archive.warc import PriorCapture

INDEX_FILENAME = "archive-index.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payloads (
    site TEXT NOT NULL,
    digest TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    record_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    date TEXT NOT NULL,
    PRIMARY KEY (site, digest)
);
CREATE INDEX IF NOT EXISTS payloads_snapshot ON payloads (snapshot_id);
CREATE TABLE IF NOT EXISTS snapshots (
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    PRIMARY KEY (site, kind, snapshot_id)
);
"""


class DigestIndex:
    """SQLite map (site, payload digest) -> the first capture of that payload."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Several crawls (articles, discussions) may finalise at once.
        self._db = sqlite3.connect(path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: str | Path) -> DigestIndex:
        return cls(Path(state_dir) / INDEX_FILENAME)

    def lookup(self, site: str, digest: str) -> PriorCapture | None:
        row = self._db.execute(
            "SELECT snapshot_id, filename, record_id, uri, date FROM payloads WHERE site=? AND digest=?",
            (site, digest),
        ).fetchone()
        return PriorCapture(*row) if row else None

    def add(self, site: str, snapshot_id: str, entries: Iterable[tuple[str, str, str, str, str]]) -> int:
        """Add (digest, filename, record_id, uri, date) rows; an already indexed digest keeps its first capture."""
        with self._db:
            cur = self._db.executemany(
                "INSERT OR IGNORE INTO payloads (site, digest, snapshot_id, filename, record_id, uri, date) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((site, d, snapshot_id, f, r, u, t) for d, f, r, u, t in entries),
            )
        return cur.rowcount

    def record_snapshot(self, site: str, kind: str, snapshot_id: str) -> None:
        """Remember a finalised snapshot, so the next one can name it as its previous."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)", (site, kind, snapshot_id))

    def latest_snapshot(self, site: str, kind: str) -> str | None:
        row = self._db.execute(
            "SELECT MAX(snapshot_id) FROM snapshots WHERE site=? AND kind=?", (site, kind)
        ).fetchone()
        return row[0] if row else None

    def forget_snapshots(self, snapshot_ids: Iterable[str]) -> None:
        """Drop entries pointing at snapshots that no longer exist (after prune)."""
        with self._db:
            for snapshot_id in snapshot_ids:
                self._db.execute("DELETE FROM payloads WHERE snapshot_id=?", (snapshot_id,))
                self._db.execute("DELETE FROM snapshots WHERE snapshot_id=?", (snapshot_id,))

    def close(self) -> None:
        self._db.close()
