"""Payload-digest index of earlier snapshots (``<state>/archive-index.sqlite``), for revisit records.

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
from newsvault.sqlite import connect_wal

INDEX_FILENAME = "archive-index.sqlite"

# Tables before archive keying (site only) are dropped: their rows cannot be
# attributed to an archive, so the first crawl after the upgrade stores full records.
_SCHEMA = """
DROP TABLE IF EXISTS payloads;
DROP TABLE IF EXISTS snapshots;
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
    """SQLite map (archive, site, payload digest) -> the first capture of that payload in that archive."""

    def __init__(self, path: Path, archive_url: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.archive_url = archive_url
        self.archive = archive_key(archive_url)
        # Several crawls (articles, discussions) may finalise at once.
        self._db = connect_wal(path, schema=_SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: str | Path, archive_url: str) -> DigestIndex:
        return cls(Path(state_dir) / INDEX_FILENAME, archive_url)

    def lookup(self, site: str, digest: str) -> PriorCapture | None:
        row = self._db.execute(
            "SELECT snapshot_id, filename, record_id, uri, date FROM archive_payloads "
            "WHERE archive=? AND site=? AND digest=?",
            (self.archive, site, digest),
        ).fetchone()
        return PriorCapture(*row) if row else None

    def add(self, site: str, snapshot_id: str, entries: Iterable[tuple[str, str, str, str, str]]) -> int:
        """Add (digest, filename, record_id, uri, date) rows; an already indexed digest keeps its first capture."""
        with self._db:
            cur = self._db.executemany(
                "INSERT OR IGNORE INTO archive_payloads (archive, site, digest, snapshot_id, filename, record_id, uri, date) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((self.archive, site, d, snapshot_id, f, r, u, t) for d, f, r, u, t in entries),
            )
        return cur.rowcount

    def record_snapshot(self, site: str, kind: str, snapshot_id: str) -> None:
        """Remember a finalised snapshot, so the next one can name it as its previous."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO archive_snapshots VALUES (?, ?, ?, ?)", (self.archive, site, kind, snapshot_id))

    def latest_snapshot(self, site: str, kind: str) -> str | None:
        row = self._db.execute(
            "SELECT MAX(snapshot_id) FROM archive_snapshots WHERE archive=? AND site=? AND kind=?",
            (self.archive, site, kind),
        ).fetchone()
        return row[0] if row else None

    def forget_snapshots(self, snapshot_ids: Iterable[str]) -> None:
        """Drop entries pointing at snapshots that no longer exist in this archive (after prune)."""
        with self._db:
            for snapshot_id in snapshot_ids:
                self._db.execute("DELETE FROM archive_payloads WHERE archive=? AND snapshot_id=?", (self.archive, snapshot_id))
                self._db.execute("DELETE FROM archive_snapshots WHERE archive=? AND snapshot_id=?", (self.archive, snapshot_id))

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
