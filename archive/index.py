"""Payload-digest index of earlier snapshots (``<state>/archive-index.sqlite``, or a cluster's PostgreSQL), for revisit records.

Entries are added only when a snapshot is finalised, so a crashed crawl never
becomes the target of a revisit. Each digest maps to the first response record
that carried that payload; revisits are never indexed, so every revisit points
at a record holding the payload itself.

Rows are keyed by archive as well as site: one state dir may crawl into several
archives (``--archive``), and a revisit must only point at a snapshot that goes
to the same store, or a self-contained restore from that store cannot resolve it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from archive.warc import PriorCapture
from newsvault.sqldb import (
    Database,
    PostgresDatabase,
    SQLiteDatabase,
    in_transaction,
    is_postgres_url,
)

INDEX_FILENAME = "archive-index.sqlite"

# Tables before archive keying (site only) are dropped: their rows cannot be
# attributed to an archive, so the first crawl after the upgrade stores full records.
_LEGACY_DROP = """
DROP TABLE IF EXISTS payloads;
DROP TABLE IF EXISTS snapshots;
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS archive_payloads (
    archive TEXT NOT NULL,
    site TEXT NOT NULL,
    digest TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    record_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    date TEXT NOT NULL,
    PRIMARY KEY (archive, site, digest)
);
CREATE INDEX IF NOT EXISTS archive_payloads_snapshot ON archive_payloads (archive, snapshot_id);
CREATE TABLE IF NOT EXISTS archive_snapshots (
    archive TEXT NOT NULL,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    PRIMARY KEY (archive, site, kind, snapshot_id)
);
"""


def archive_key(url: str) -> str:
    """A stable name for an archive URL: ``s3://bucket/prefix`` or ``file://<absolute path>``.

    Local paths are resolved so ``./var/archive`` and its absolute spelling are one archive.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        prefix = parts.path.strip("/")
        return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"
    path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(url)
    return "file://" + str(path.expanduser().resolve())


class DigestIndex:
    """Map (archive, site, payload digest) -> the first capture of that payload in that archive.

    ``location`` is the SQLite file of one host, or the PostgreSQL URL of a
    cluster's shared state (so a revisit may point at a capture another host made).
    """

    def __init__(self, location: Path | str, archive_url: str) -> None:
        self.location = str(location)
        self.archive_url = archive_url
        self.archive = archive_key(archive_url)
        self._db: Database
        if is_postgres_url(self.location):
            self._db = PostgresDatabase(self.location, schema=_SCHEMA, schema_lock="newsvault-digest-index-schema")
        else:
            path = Path(location)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Several crawls (articles, discussions) may finalise at once.
            self._db = SQLiteDatabase(path, schema=_LEGACY_DROP + _SCHEMA, timeout=30.0, synchronous=None)

    @classmethod
    def in_state_dir(cls, state_dir: str | Path, archive_url: str, *, url: str | None = None) -> DigestIndex:
        """The index of this state dir, or the cluster's shared one at ``url``."""
        return cls(url or Path(state_dir) / INDEX_FILENAME, archive_url)

    def lookup(self, site: str, digest: str) -> PriorCapture | None:
        row = self._db.execute(
            "SELECT snapshot_id, filename, record_id, uri, date FROM archive_payloads "
            "WHERE archive=? AND site=? AND digest=?",
            (self.archive, site, digest),
        ).fetchone()
        return PriorCapture(*row) if row else None

    def add(self, site: str, snapshot_id: str, entries: Iterable[tuple[str, str, str, str, str]]) -> None:
        """Add (digest, filename, record_id, uri, date) rows; an already indexed digest keeps its first capture."""
        rows = [(self.archive, site, d, snapshot_id, f, r, u, t) for d, f, r, u, t in entries]
        in_transaction(self._db, lambda: self._db.executemany(
            "INSERT INTO archive_payloads (archive, site, digest, snapshot_id, filename, record_id, uri, date) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (archive, site, digest) DO NOTHING", rows))

    def record_snapshot(self, site: str, kind: str, snapshot_id: str) -> None:
        """Remember a finalised snapshot, so the next one can name it as its previous."""
        in_transaction(self._db, lambda: self._db.execute(
            "INSERT INTO archive_snapshots (archive, site, kind, snapshot_id) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (archive, site, kind, snapshot_id) DO NOTHING", (self.archive, site, kind, snapshot_id)))

    def latest_snapshot(self, site: str, kind: str) -> str | None:
        row = self._db.execute(
            "SELECT MAX(snapshot_id) FROM archive_snapshots WHERE archive=? AND site=? AND kind=?",
            (self.archive, site, kind),
        ).fetchone()
        return row[0] if row else None

    def forget_snapshots(self, snapshot_ids: Iterable[str]) -> None:
        """Drop entries pointing at snapshots that no longer exist in this archive (after prune)."""
        ids = list(snapshot_ids)

        def forget() -> None:
            for snapshot_id in ids:
                self._db.execute("DELETE FROM archive_payloads WHERE archive=? AND snapshot_id=?", (self.archive, snapshot_id))
                self._db.execute("DELETE FROM archive_snapshots WHERE archive=? AND snapshot_id=?", (self.archive, snapshot_id))

        in_transaction(self._db, forget)

    def indexed_snapshots(self, site: str) -> set[str]:
        """Snapshot ids of ``site`` this index may name as revisit targets or as previous snapshots."""
        rows = self._db.execute(
            "SELECT snapshot_id FROM archive_payloads WHERE archive=? AND site=?"
            " UNION SELECT snapshot_id FROM archive_snapshots WHERE archive=? AND site=?",
            (self.archive, site, self.archive, site),
        ).fetchall()
        return {row[0] for row in rows}

    def keep_only(self, site: str, existing: set[str]) -> list[str]:
        """Forget every snapshot of ``site`` not in ``existing`` (committed or spooled); return them.

        A prune from another state dir, or a snapshot deleted by hand, must not
        become the target of this state dir's next revisits.
        """
        gone = sorted(self.indexed_snapshots(site) - existing)
        if gone:
            self.forget_snapshots(gone)
        return gone

    def close(self) -> None:
        self._db.close()
