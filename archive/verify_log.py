"""When each snapshot was last verified and what came out, kept in ``<state>/verify-log.sqlite``.

A check only says something about the moment it ran, so the web view shows
each snapshot's last verification with its time, and "never" when it has
none; ``newsvault verify`` and the web view's "verify now" both record here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from archive.index import archive_key
from archive.stores import SnapshotRef, SnapshotStore
from archive.verify import verify_snapshot
from newsvault.errors import IntegrityError, StoreError
from newsvault.sqlite import connect_wal

VERIFY_LOG_FILENAME = "verify-log.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verifications (
    archive TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    verified_at TEXT NOT NULL,
    status TEXT NOT NULL,
    files INTEGER,
    bytes INTEGER,
    problem TEXT,
    PRIMARY KEY (archive, snapshot_id)
);
"""


@dataclass(frozen=True)
class Verification:
    """The last verification of one snapshot."""

    snapshot_id: str
    verified_at: str
    # ok; failed: a file does not match the manifest; unreadable: the store could not give the files.
    status: str
    files: int | None = None
    bytes: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class VerifyLog:
    """The last verification outcome per (archive, snapshot), written by every process that verifies."""

    def __init__(self, path: Path, archive_url: str) -> None:
        self.path = path
        self.archive = archive_key(archive_url)

    @classmethod
    def in_state_dir(cls, state_dir: str | Path, archive_url: str) -> VerifyLog:
        return cls(Path(state_dir) / VERIFY_LOG_FILENAME, archive_url)

    def record(self, result: Verification) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect_wal(self.path, schema=_SCHEMA)
        try:
            with conn:
                conn.execute(
                    "INSERT OR REPLACE INTO verifications VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.archive, result.snapshot_id, result.verified_at, result.status, result.files,
                     result.bytes, result.problem))
        finally:
            conn.close()

    def last(self, snapshot_ids: list[str] | None = None) -> dict[str, Verification]:
        """The last verification of each snapshot (of ``snapshot_ids``, else all) that has one."""
        if not self.path.exists():
            return {}
        conn = connect_wal(self.path, schema=_SCHEMA)
        try:
            rows = conn.execute(
                "SELECT snapshot_id, verified_at, status, files, bytes, problem FROM verifications WHERE archive=?",
                (self.archive,)).fetchall()
        finally:
            conn.close()
        wanted = set(snapshot_ids) if snapshot_ids is not None else None
        return {row[0]: Verification(row[0], row[1], row[2], row[3], row[4], row[5])
                for row in rows if wanted is None or row[0] in wanted}


def verify_and_record(store: SnapshotStore, ref: SnapshotRef, log: VerifyLog, *,
                      committed_ids: set[str] | None = None) -> Verification:
    """Verify one snapshot (see :func:`archive.verify.verify_snapshot`) and record the outcome, good or bad."""
    verified_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        manifest = verify_snapshot(store, ref, committed_ids=committed_ids)
    except IntegrityError as exc:
        result = Verification(ref.snapshot_id, verified_at, "failed", problem=f"{exc.filename}: {exc.problem}")
    except StoreError as exc:  # an unreadable object fails this snapshot's check, it does not crash the caller
        result = Verification(ref.snapshot_id, verified_at, "unreadable", problem=str(exc))
    else:
        note = None if manifest.checksummed else "unverifiable-manifest: no manifest_sha256 (older format)"
        result = Verification(ref.snapshot_id, verified_at, "ok", len(manifest.files), manifest.total_bytes, note)
    log.record(result)
    return result
