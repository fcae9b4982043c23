"""How pushes to each archive went, kept in ``<state>/push-log.sqlite`` for /metrics, /healthz and ``runs``.

An archive that refuses every upload must not look healthy: every crawl
still succeeds (its snapshot waits in the spool), so the failures are counted
here, by every process that pushes (crawls, ``newsvault push``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from archive.index import archive_key
from newsvault.sqlite import connect_wal

PUSH_LOG_FILENAME = "push-log.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS push_status (
    archive TEXT PRIMARY KEY,
    last_attempt_at TEXT,
    last_success_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failures_total INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
"""


@dataclass(frozen=True)
class PushStatus:
    """The push history of one archive, as one row."""

    archive: str
    last_attempt_at: str | None = None
    last_success_at: str | None = None
    consecutive_failures: int = 0
    failures_total: int = 0
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PushLog:
    """Push outcomes per archive (one row each), safe to write from several processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_state_dir(cls, state_dir: str | Path) -> PushLog:
        return cls(Path(state_dir) / PUSH_LOG_FILENAME)

    def record(self, archive_url: str, *, attempted: bool, error: str | None) -> None:
        """One push run: ``error`` is the first entry's failure, None when everything it tried went in."""
        if not attempted:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect_wal(self.path, schema=_SCHEMA)
        try:
            with conn:
                key, now = archive_key(archive_url), _now()
                conn.execute("INSERT OR IGNORE INTO push_status (archive) VALUES (?)", (key,))
                if error is None:
                    conn.execute(
                        "UPDATE push_status SET last_attempt_at=?, last_success_at=?, consecutive_failures=0, last_error=NULL"
                        " WHERE archive=?", (now, now, key))
                else:
                    conn.execute(
                        "UPDATE push_status SET last_attempt_at=?, consecutive_failures=consecutive_failures+1,"
                        " failures_total=failures_total+1, last_error=? WHERE archive=?", (now, error[:500], key))
        finally:
            conn.close()

    def status(self, archive_url: str) -> PushStatus:
        key = archive_key(archive_url)
        if not self.path.exists():
            return PushStatus(key)
        conn = connect_wal(self.path, schema=_SCHEMA)
        try:
            row = conn.execute(
                "SELECT last_attempt_at, last_success_at, consecutive_failures, failures_total, last_error"
                " FROM push_status WHERE archive=?", (key,)).fetchone()
        finally:
            conn.close()
        return PushStatus(key, *row) if row else PushStatus(key)
