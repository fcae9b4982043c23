"""State of earlier runs for change tracking: a small StateStore Protocol and its SQLite backend.

Writes are buffered in memory and flushed in one short transaction (every
``batch_size`` writes, on ``commit()`` and on ``close()``), so two crawls of one
site (articles and discussions) can share the database: neither holds the write
lock for longer than one flush. Reads see the buffered writes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

STATE_FILE = "state.sqlite"
# Seconds a writer waits for the other crawl's flush before giving up.
BUSY_TIMEOUT_SECONDS = 30.0
DEFAULT_BATCH_SIZE = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    volatile TEXT NOT NULL DEFAULT '{}',
    removed_at TEXT,
    removed_status INTEGER,
    PRIMARY KEY (site, canonical_url)
);
CREATE TABLE IF NOT EXISTS article_counters (
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    volatile TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS article_counters_url ON article_counters (site, canonical_url);
CREATE TABLE IF NOT EXISTS threads (
    site TEXT NOT NULL,
    thread_url TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (site, thread_url)
);
"""


@dataclass(frozen=True)
class ArticleState:
    """What the store knows about one article (by canonical URL)."""

    content_hash: str
    first_seen: str
    last_seen: str
    volatile: dict[str, Any] = field(default_factory=dict)
    removed: bool = False


@dataclass(frozen=True)
class ThreadState:
    """What the store knows about one discussion thread."""

    fingerprint: str
    first_seen: str
    last_seen: str


class StateStore(Protocol):
    """Change-tracking state; small enough for a Redis backend to implement later."""

    def article_state(self, site: str, canonical_url: str) -> ArticleState | None: ...

    def record_article(
        self,
        site: str,
        canonical_url: str,
        content_hash: str,
        seen_at: str,
        volatile: dict[str, Any],
    ) -> None: ...

    def thread_state(self, site: str, thread_url: str) -> ThreadState | None: ...

    def record_thread(self, site: str, thread_url: str, fingerprint: str, seen_at: str) -> None: ...

    def known_article_urls(self, site: str) -> list[str]: ...

    def mark_removed(self, site: str, canonical_url: str, status: int, seen_at: str) -> bool: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


class SQLiteStateStore:
    """StateStore in one SQLite file (WAL, busy timeout, batched flushes)."""

    def __init__(self, path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)
        self._articles: dict[tuple[str, str], ArticleState] = {}
        self._counters: list[tuple[str, str, str, str]] = []
        self._threads: dict[tuple[str, str], ThreadState] = {}
        self._pending = 0

    # --- articles ----------------------------------------------------------
    def article_state(self, site: str, canonical_url: str) -> ArticleState | None:
        buffered = self._articles.get((site, canonical_url))
        if buffered is not None:
            return buffered
        row = self._conn.execute(
            "SELECT content_hash, first_seen, last_seen, volatile, removed_at FROM articles"
            " WHERE site = ? AND canonical_url = ?",
            (site, canonical_url),
        ).fetchone()
        if row is None:
            return None
        return ArticleState(row[0], row[1], row[2], json.loads(row[3]), row[4] is not None)

    def record_article(
        self,
        site: str,
        canonical_url: str,
        content_hash: str,
        seen_at: str,
        volatile: dict[str, Any],
    ) -> None:
        previous = self.article_state(site, canonical_url)
        first_seen = previous.first_seen if previous and not previous.removed else seen_at
        self._articles[(site, canonical_url)] = ArticleState(
            content_hash, first_seen, seen_at, dict(volatile), False
        )
        # Counters are history, not identity: every sighting is kept.
        self._counters.append((site, canonical_url, seen_at, json.dumps(volatile, sort_keys=True)))
        self._wrote()

    def known_article_urls(self, site: str) -> list[str]:
        self.commit()
        rows = self._conn.execute(
            "SELECT canonical_url FROM articles WHERE site = ? AND removed_at IS NULL ORDER BY canonical_url",
            (site,),
        )
        return [row[0] for row in rows]

    def mark_removed(self, site: str, canonical_url: str, status: int, seen_at: str) -> bool:
        state = self.article_state(site, canonical_url)
        if state is None or state.removed:
            return False
        self.commit()
        self._conn.execute(
            "UPDATE articles SET removed_at = ?, removed_status = ? WHERE site = ? AND canonical_url = ?",
            (seen_at, int(status), site, canonical_url),
        )
        return True

    # --- threads -------------------------------------------------------------
    def thread_state(self, site: str, thread_url: str) -> ThreadState | None:
        buffered = self._threads.get((site, thread_url))
        if buffered is not None:
            return buffered
        row = self._conn.execute(
            "SELECT fingerprint, first_seen, last_seen FROM threads WHERE site = ? AND thread_url = ?",
            (site, thread_url),
        ).fetchone()
        return ThreadState(*row) if row else None

    def record_thread(self, site: str, thread_url: str, fingerprint: str, seen_at: str) -> None:
        previous = self.thread_state(site, thread_url)
        first_seen = previous.first_seen if previous else seen_at
        self._threads[(site, thread_url)] = ThreadState(fingerprint, first_seen, seen_at)
        self._wrote()

    # --- lifecycle -----------------------------------------------------------
    def commit(self) -> None:
        """Flush buffered writes in one transaction."""
        if not self._pending:
            return
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO articles (site, canonical_url, content_hash, first_seen, last_seen, volatile)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (site, canonical_url) DO UPDATE SET"
                " content_hash = excluded.content_hash, first_seen = excluded.first_seen,"
                " last_seen = excluded.last_seen, volatile = excluded.volatile,"
                " removed_at = NULL, removed_status = NULL",
                [
                    (
                        site,
                        url,
                        s.content_hash,
                        s.first_seen,
                        s.last_seen,
                        json.dumps(s.volatile, sort_keys=True),
                    )
                    for (site, url), s in self._articles.items()
                ],
            )
            self._conn.executemany(
                "INSERT INTO article_counters (site, canonical_url, seen_at, volatile) VALUES (?, ?, ?, ?)",
                self._counters,
            )
            self._conn.executemany(
                "INSERT INTO threads (site, thread_url, fingerprint, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, thread_url) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, last_seen = excluded.last_seen",
                [
                    (site, url, s.fingerprint, s.first_seen, s.last_seen)
                    for (site, url), s in self._threads.items()
                ],
            )
        self._articles.clear()
        self._counters.clear()
        self._threads.clear()
        self._pending = 0

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._conn.close()

    def _wrote(self) -> None:
        self._pending += 1
        if self._pending >= self.batch_size:
            self.commit()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock up front, so the busy timeout applies
        # here instead of failing later on a lock upgrade.
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def open_state_store(
    state_dir: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> SQLiteStateStore:
    """Open (creating the directory and file if needed) the store at ``<state_dir>/state.sqlite``."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return SQLiteStateStore(directory / STATE_FILE, batch_size=batch_size)
