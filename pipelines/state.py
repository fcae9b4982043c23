"""State of earlier runs for change tracking: a small StateStore Protocol and its SQL backends (SQLite, PostgreSQL).

Writes are buffered in memory and flushed in one short transaction (every
``batch_size`` writes, on ``commit()`` and on ``close()``), so two crawls of one
site (articles and discussions) can share the database: neither holds the write
lock for longer than one flush. Reads see the buffered writes.

The state must describe what the archive holds: an article remembered as seen
but never archived would be "unchanged" in every later run, a version lost for
good. So a crawl's writes are filed under its run (the snapshot id) in
``pending_*`` tables, which its own reads see, and only :func:`apply_run`,
called once the run's snapshot is finalised, moves them into the state every
run compares with. A run whose snapshot failed, a dry run (``--no-archive``)
and a killed crawl leave the state as it was. A store opened without a run
(tools, tests) writes through directly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from newsvault.revisit import RevisitRecord, parse_time
from newsvault.sqldb import (
    Database,
    PostgresDatabase,
    SQLiteDatabase,
    in_transaction,
    is_postgres_url,
)

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
    published_at TEXT,
    changed_at TEXT,
    gone_checks INTEGER NOT NULL DEFAULT 0,
    gone_checked_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    failed_at TEXT,
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
CREATE TABLE IF NOT EXISTS pending_articles (
    run TEXT NOT NULL,
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    volatile TEXT NOT NULL,
    published_at TEXT,
    changed_at TEXT,
    PRIMARY KEY (run, site, canonical_url)
);
CREATE TABLE IF NOT EXISTS pending_counters (
    run TEXT NOT NULL,
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    volatile TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_counters_run ON pending_counters (run);
CREATE TABLE IF NOT EXISTS pending_threads (
    run TEXT NOT NULL,
    site TEXT NOT NULL,
    thread_url TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (run, site, thread_url)
);
CREATE TABLE IF NOT EXISTS pending_removals (
    run TEXT NOT NULL,
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    status INTEGER NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (run, site, canonical_url)
);
CREATE TABLE IF NOT EXISTS pending_unreachable (
    run TEXT NOT NULL,
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (run, site, canonical_url)
);
"""
# Columns added since the first schema: a state file written by an older
# version gains them (NULL or 0) when it is opened.
_ADDED_COLUMNS = {
    "articles": (
        ("published_at", "TEXT"), ("changed_at", "TEXT"), ("gone_checks", "INTEGER NOT NULL DEFAULT 0"),
        ("gone_checked_at", "TEXT"), ("failures", "INTEGER NOT NULL DEFAULT 0"), ("failed_at", "TEXT"),
    ),
    "pending_articles": (("published_at", "TEXT"), ("changed_at", "TEXT")),
}

# A run's pending rows older than this (by the time in its snapshot id) belong
# to a crawl that died: they are dropped when another run is applied.
STALE_PENDING_DAYS = 7
_DIRECT_RUN = ""
_PENDING_TABLES = ("pending_articles", "pending_counters", "pending_threads", "pending_removals", "pending_unreachable")


@dataclass(frozen=True)
class ArticleState:
    """What the store knows about one article (by canonical URL)."""

    content_hash: str
    first_seen: str
    last_seen: str
    volatile: dict[str, Any] = field(default_factory=dict)
    removed: bool = False
    # For the revisit policy: when the article says it was published, and when
    # this archive last saw its content change (None: never seen changing).
    published_at: str | None = None
    changed_at: str | None = None


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
        published_at: str | None = None,
    ) -> None: ...

    def thread_state(self, site: str, thread_url: str) -> ThreadState | None: ...

    def record_thread(self, site: str, thread_url: str, fingerprint: str, seen_at: str) -> None: ...

    def revisit_records(self, site: str) -> list[RevisitRecord]: ...

    def mark_removed(self, site: str, canonical_url: str, status: int, seen_at: str) -> bool: ...

    def record_unreachable(self, site: str, canonical_url: str, seen_at: str) -> None: ...

    def commit(self) -> None: ...

    def discard_run(self, run: str) -> None: ...

    def close(self) -> None: ...


class SQLStateStore:
    """StateStore in a :class:`~newsvault.sqldb.Database` (batched flushes), writes filed under ``run``.

    With ``run`` (the crawl's snapshot id) writes wait in the pending tables
    until :func:`apply_run`; without, they go straight into the state. The
    same SQL runs on SQLite (one host) and PostgreSQL (hosts sharing state).
    """

    def __init__(self, db: Database, *, batch_size: int = DEFAULT_BATCH_SIZE, run: str | None = None) -> None:
        self._db = db
        self.batch_size = batch_size
        self.run = run or _DIRECT_RUN
        try:
            for table, columns in _ADDED_COLUMNS.items():
                db.ensure_columns(table, columns)
        except BaseException:
            db.close()
            raise
        self._articles: dict[tuple[str, str], ArticleState] = {}
        self._counters: list[tuple[str, str, str, str]] = []
        self._threads: dict[tuple[str, str], ThreadState] = {}
        self._removals: dict[tuple[str, str], tuple[int, str]] = {}
        self._unreachable: dict[tuple[str, str], str] = {}
        self._pending = 0

    # --- articles ----------------------------------------------------------
    def article_state(self, site: str, canonical_url: str) -> ArticleState | None:
        key = (site, canonical_url)
        state = self._articles.get(key)
        if state is None:
            state = self._stored_article(site, canonical_url)
        if state is not None and not state.removed and (key in self._removals or self._pending_removal(site, canonical_url)):
            state = replace(state, removed=True)
        return state

    def _stored_article(self, site: str, canonical_url: str) -> ArticleState | None:
        """This run's flushed state of the article, else the state earlier runs left."""
        if self.run:
            row = self._db.execute(
                "SELECT content_hash, first_seen, last_seen, volatile, published_at, changed_at FROM pending_articles"
                " WHERE run = ? AND site = ? AND canonical_url = ?",
                (self.run, site, canonical_url),
            ).fetchone()
            if row is not None:
                return ArticleState(row[0], row[1], row[2], json.loads(row[3]), False, row[4], row[5])
        row = self._db.execute(
            "SELECT content_hash, first_seen, last_seen, volatile, removed_at, published_at, changed_at FROM articles"
            " WHERE site = ? AND canonical_url = ?",
            (site, canonical_url),
        ).fetchone()
        if row is None:
            return None
        return ArticleState(row[0], row[1], row[2], json.loads(row[3]), row[4] is not None, row[5], row[6])

    def _pending_removal(self, site: str, canonical_url: str) -> bool:
        if not self.run:
            return False
        row = self._db.execute(
            "SELECT 1 FROM pending_removals WHERE run = ? AND site = ? AND canonical_url = ?",
            (self.run, site, canonical_url),
        ).fetchone()
        return row is not None

    def record_article(
        self,
        site: str,
        canonical_url: str,
        content_hash: str,
        seen_at: str,
        volatile: dict[str, Any],
        published_at: str | None = None,
    ) -> None:
        previous = self.article_state(site, canonical_url)
        if previous is not None and not previous.removed:
            first_seen = previous.first_seen
            changed_at = seen_at if previous.content_hash != content_hash else previous.changed_at
            published_at = published_at or previous.published_at
        else:  # new, or back after a removal: a fresh start
            first_seen, changed_at = seen_at, None
        self._articles[(site, canonical_url)] = ArticleState(
            content_hash, first_seen, seen_at, dict(volatile), False, published_at, changed_at
        )
        self._removals.pop((site, canonical_url), None)
        self._unreachable.pop((site, canonical_url), None)
        # Counters are history, not identity: every sighting is kept.
        self._counters.append((site, canonical_url, seen_at, json.dumps(volatile, sort_keys=True)))
        self._wrote()

    def revisit_records(self, site: str) -> list[RevisitRecord]:
        """What earlier (applied) runs saw of every article of ``site``, by URL, for the revisit policy."""
        self.commit()
        rows = self._db.execute(
            "SELECT canonical_url, first_seen, last_seen, published_at, changed_at, removed_at,"
            " gone_checks, gone_checked_at, failures, failed_at FROM articles WHERE site = ? ORDER BY canonical_url",
            (site,),
        )
        return [_revisit_record(row) for row in rows]

    def mark_removed(self, site: str, canonical_url: str, status: int, seen_at: str) -> bool:
        """Record a 404/410 answer; True when it removes a live article, False when it was removed already or unknown.

        A removed article answering again is a recheck: it counts towards the
        ones after which the article leaves the revisit queue.
        """
        state = self.article_state(site, canonical_url)
        if state is None or (site, canonical_url) in self._removals:
            return False
        self._removals[(site, canonical_url)] = (int(status), seen_at)
        self._unreachable.pop((site, canonical_url), None)
        self._wrote()
        return not state.removed

    def record_unreachable(self, site: str, canonical_url: str, seen_at: str) -> None:
        """A revisit that got no answer (connection failure): never a removal, only a later, backed-off retry."""
        if self.article_state(site, canonical_url) is None:
            return
        self._unreachable[(site, canonical_url)] = seen_at
        self._wrote()

    # --- threads -------------------------------------------------------------
    def thread_state(self, site: str, thread_url: str) -> ThreadState | None:
        buffered = self._threads.get((site, thread_url))
        if buffered is not None:
            return buffered
        if self.run:
            row = self._db.execute(
                "SELECT fingerprint, first_seen, last_seen FROM pending_threads WHERE run = ? AND site = ? AND thread_url = ?",
                (self.run, site, thread_url),
            ).fetchone()
            if row is not None:
                return ThreadState(*row)
        row = self._db.execute(
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
        """Flush buffered writes in one transaction (into this run's pending rows, or the state itself)."""
        if not self._pending:
            return
        def flush() -> None:
            _flush_pending(self._db, self.run, self._articles, self._counters, self._threads, self._removals,
                           self._unreachable)
            if not self.run:
                _apply_pending(self._db, _DIRECT_RUN)

        in_transaction(self._db, flush)
        self._clear_buffers()

    def apply_run(self, run: str) -> None:
        """Make a finalised run's writes the state later runs compare with; drop stale runs' leftovers."""
        self.commit()
        cutoff = datetime.now(UTC) - timedelta(days=STALE_PENDING_DAYS)
        def apply() -> None:
            _apply_pending(self._db, run)
            runs = self._db.execute(" UNION ".join(f"SELECT run FROM {t}" for t in _PENDING_TABLES)).fetchall()
            for (other,) in runs:
                started = _run_time(other)
                if started is not None and started < cutoff:
                    _discard_pending(self._db, other)

        in_transaction(self._db, apply)

    def discard_run(self, run: str) -> None:
        """Forget a run's writes (a dry run, or one whose snapshot was never written)."""
        self._clear_buffers()
        in_transaction(self._db, lambda: _discard_pending(self._db, run))

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._db.close()

    def _clear_buffers(self) -> None:
        self._articles.clear()
        self._counters.clear()
        self._threads.clear()
        self._removals.clear()
        self._unreachable.clear()
        self._pending = 0

    def _wrote(self) -> None:
        self._pending += 1
        if self._pending >= self.batch_size:
            self.commit()



class SQLiteStateStore(SQLStateStore):
    """The state in one SQLite file (WAL, busy timeout): one host's state dir."""

    def __init__(self, path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE, run: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(SQLiteDatabase(self.path, schema=_SCHEMA, timeout=BUSY_TIMEOUT_SECONDS),
                         batch_size=batch_size, run=run)


class PostgresStateStore(SQLStateStore):
    """The state in a PostgreSQL database, shared by the hosts of a cluster."""

    def __init__(self, url: str, *, batch_size: int = DEFAULT_BATCH_SIZE, run: str | None = None) -> None:
        super().__init__(PostgresDatabase(url, schema=_SCHEMA, schema_lock="newsvault-state-schema"),
                         batch_size=batch_size, run=run)


def open_state_store(
    state_dir: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE, run: str | None = None, url: str | None = None
) -> SQLStateStore:
    """The state store: the PostgreSQL database at ``url`` when one is given (a cluster), else
    ``<state_dir>/state.sqlite`` (the directory and file are created if needed)."""
    if url:
        if not is_postgres_url(url):
            raise ValueError(f"a shared state URL must be a PostgreSQL URL (postgresql://...), got {url.split(':')[0]}:")
        return PostgresStateStore(url, batch_size=batch_size, run=run)
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return SQLiteStateStore(directory / STATE_FILE, batch_size=batch_size, run=run)


def apply_run(state_dir: str | Path, run: str, *, url: str | None = None) -> None:
    """Apply the change-tracking writes of ``run`` once its snapshot is finalised (see the module doc)."""
    store = open_state_store(state_dir, url=url)
    try:
        store.apply_run(run)
    finally:
        store.close()


def _run_time(run: str) -> datetime | None:
    from archive.ids import is_snapshot_id, snapshot_time

    return snapshot_time(run) if is_snapshot_id(run) else None


def _flush_pending(
    conn: Database,
    run: str,
    articles: dict[tuple[str, str], ArticleState],
    counters: list[tuple[str, str, str, str]],
    threads: dict[tuple[str, str], ThreadState],
    removals: dict[tuple[str, str], tuple[int, str]],
    unreachable: dict[tuple[str, str], str],
) -> None:
    conn.executemany(
        "INSERT INTO pending_articles (run, site, canonical_url, content_hash, first_seen, last_seen, volatile,"
        " published_at, changed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run, site, canonical_url) DO UPDATE SET"
        " content_hash = excluded.content_hash, first_seen = excluded.first_seen,"
        " last_seen = excluded.last_seen, volatile = excluded.volatile,"
        " published_at = excluded.published_at, changed_at = excluded.changed_at",
        [(run, site, url, s.content_hash, s.first_seen, s.last_seen, json.dumps(s.volatile, sort_keys=True),
          s.published_at, s.changed_at)
         for (site, url), s in articles.items()],
    )
    for table in ("pending_removals", "pending_unreachable"):
        conn.executemany(
            f"DELETE FROM {table} WHERE run = ? AND site = ? AND canonical_url = ?",
            [(run, site, url) for site, url in articles],
        )
    conn.executemany(
        "DELETE FROM pending_unreachable WHERE run = ? AND site = ? AND canonical_url = ?",
        [(run, site, url) for site, url in removals],
    )
    conn.executemany(
        "INSERT INTO pending_counters (run, site, canonical_url, seen_at, volatile) VALUES (?, ?, ?, ?, ?)",
        [(run, *row) for row in counters],
    )
    conn.executemany(
        "INSERT INTO pending_threads (run, site, thread_url, fingerprint, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run, site, thread_url) DO UPDATE SET"
        " fingerprint = excluded.fingerprint, last_seen = excluded.last_seen",
        [(run, site, url, s.fingerprint, s.first_seen, s.last_seen) for (site, url), s in threads.items()],
    )
    conn.executemany(
        "INSERT INTO pending_removals (run, site, canonical_url, status, seen_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (run, site, canonical_url) DO UPDATE SET status = excluded.status, seen_at = excluded.seen_at",
        [(run, site, url, status, seen_at) for (site, url), (status, seen_at) in removals.items()],
    )
    conn.executemany(
        "INSERT INTO pending_unreachable (run, site, canonical_url, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (run, site, canonical_url) DO UPDATE SET seen_at = excluded.seen_at",
        [(run, site, url, seen_at) for (site, url), seen_at in unreachable.items()],
    )


def _apply_pending(conn: Database, run: str) -> None:
    """Move ``run``'s pending rows into the state (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO articles (site, canonical_url, content_hash, first_seen, last_seen, volatile,"
        " published_at, changed_at)"
        " SELECT site, canonical_url, content_hash, first_seen, last_seen, volatile, published_at, changed_at"
        " FROM pending_articles WHERE run = ? ON CONFLICT (site, canonical_url) DO UPDATE SET"
        " content_hash = excluded.content_hash, first_seen = excluded.first_seen,"
        " last_seen = excluded.last_seen, volatile = excluded.volatile,"
        " published_at = excluded.published_at, changed_at = excluded.changed_at,"
        " removed_at = NULL, removed_status = NULL, gone_checks = 0, gone_checked_at = NULL,"
        " failures = 0, failed_at = NULL",
        (run,),
    )
    conn.execute(
        "INSERT INTO article_counters (site, canonical_url, seen_at, volatile)"
        " SELECT site, canonical_url, seen_at, volatile FROM pending_counters WHERE run = ?",
        (run,),
    )
    conn.execute(
        "INSERT INTO threads (site, thread_url, fingerprint, first_seen, last_seen)"
        " SELECT site, thread_url, fingerprint, first_seen, last_seen FROM pending_threads"
        " WHERE run = ? ON CONFLICT (site, thread_url) DO UPDATE SET"
        " fingerprint = excluded.fingerprint, last_seen = excluded.last_seen",
        (run,),
    )
    # A first 404/410 removes the article; later ones count as rechecks (the
    # removal time and status stay those of the first).
    conn.execute(
        "UPDATE articles SET (removed_at, removed_status, gone_checks, gone_checked_at, failures, failed_at) ="
        " (SELECT COALESCE(articles.removed_at, p.seen_at), COALESCE(articles.removed_status, p.status),"
        " articles.gone_checks + 1, p.seen_at, 0, NULL FROM pending_removals p"
        " WHERE p.run = ? AND p.site = articles.site AND p.canonical_url = articles.canonical_url)"
        " WHERE EXISTS (SELECT 1 FROM pending_removals p WHERE p.run = ? AND p.site = articles.site"
        " AND p.canonical_url = articles.canonical_url)",
        (run, run),
    )
    conn.execute(
        "UPDATE articles SET (failures, failed_at) = (SELECT articles.failures + 1, p.seen_at FROM pending_unreachable p"
        " WHERE p.run = ? AND p.site = articles.site AND p.canonical_url = articles.canonical_url)"
        " WHERE EXISTS (SELECT 1 FROM pending_unreachable p WHERE p.run = ? AND p.site = articles.site"
        " AND p.canonical_url = articles.canonical_url)",
        (run, run),
    )
    _discard_pending(conn, run)


def _discard_pending(conn: Database, run: str) -> None:
    for table in _PENDING_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE run = ?", (run,))


def _revisit_record(row: tuple[Any, ...]) -> RevisitRecord:
    url, first_seen, last_seen, published, changed, removed, gone_checks, gone_checked, failures, failed = row
    first = parse_time(first_seen)
    last = parse_time(last_seen)
    assert first is not None and last is not None  # NOT NULL columns
    return RevisitRecord(
        url=url, first_seen=first, last_seen=last, published_at=_time_or_none(published),
        changed_at=parse_time(changed), removed_at=parse_time(removed), gone_checks=gone_checks,
        gone_checked_at=parse_time(gone_checked), failures=failures, failed_at=parse_time(failed),
    )


def _time_or_none(value: str | None) -> datetime | None:
    """A date the page itself gave (hostile input): unreadable means unknown, not an error."""
    try:
        return parse_time(value)
    except ValueError:
        return None


def revisit_records(state_dir: str | Path, site: str, *, url: str | None = None) -> list[RevisitRecord]:
    """What earlier runs saw of each article of ``site``, or [] when there is no state yet (NEWSVAULT_REVISIT_RECORDS)."""
    if not url and not (Path(state_dir) / STATE_FILE).is_file():
        return []
    store = open_state_store(state_dir, url=url)
    try:
        return store.revisit_records(site)
    finally:
        store.close()
