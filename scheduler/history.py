"""Run history: one row per planned, started, skipped or missed run of a job.

SQLite at ``<state>/history.sqlite`` in WAL mode, so the daemon writes while
``newsvault runs`` reads; or, for the hosts of a cluster, one PostgreSQL
database they share. The queries are the same on both
(:mod:`newsvault.sqldb`). Each row names the host whose process ran it, so a
daemon only ever declares its own host's runs interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsvault.sqldb import (
    Database,
    PostgresDatabase,
    SQLiteDatabase,
    database_errors,
    in_transaction,
    is_postgres_url,
)

# partial: the crawl stopped early (or was interrupted) and its snapshot says partial.
# degraded: it succeeded, but its health figures fail a check against the job's
# own good runs (newsvault/run_health.py); the reasons are in `health`.
FINAL_STATUSES = ("ok", "degraded", "partial", "failed", "timeout", "missed", "skipped-overlap")
INTERRUPTED_ERROR = "daemon stopped during the run"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    trigger TEXT NOT NULL,
    planned_at TEXT,
    started_at TEXT,
    finished_at TEXT,
    status TEXT NOT NULL,
    counts TEXT NOT NULL DEFAULT '{}',
    snapshot_id TEXT,
    snapshot_state TEXT,
    error TEXT,
    log_path TEXT,
    owner_pid INTEGER,
    owner_started REAL,
    health TEXT,
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_job_started ON runs (job_id, started_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
-- The orders of list_runs, last_runs and last_judged_runs: without them each is a scan
-- and a sort (last_runs per row of the table, quadratic in the history's length).
CREATE INDEX IF NOT EXISTS runs_newest ON runs ((COALESCE(started_at, planned_at)), run_id);
CREATE INDEX IF NOT EXISTS runs_job_last ON runs (job_id, (COALESCE(finished_at, planned_at)));
CREATE INDEX IF NOT EXISTS runs_job_newest ON runs (job_id, (COALESCE(started_at, planned_at)), run_id);
"""
# Columns added since the first schema: a history written by an older version gains them.
_ADDED_COLUMNS = (("health", "TEXT"), ("host", "TEXT"))
HISTORY_FILE = "history.sqlite"


def host_name() -> str:
    """This host's name as the run history records it."""
    return socket.gethostname()


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z suffix (sorts as text), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value)


def new_run_id(at: datetime | None = None) -> str:
    """A run id that sorts by time: ``20261125T063012Z-3f9a1c``."""
    at = at or utcnow()
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@dataclass
class RunRecord:
    """One row of the run history."""

    run_id: str
    job_id: str
    site: str
    kind: str
    trigger: str
    status: str
    planned_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    snapshot_id: str | None = None
    snapshot_state: str | None = None
    error: str | None = None
    log_path: str | None = None
    # {"figures": {...}, "reasons": ["..."], "baseline_runs": n}; None before the checks ran.
    health: dict[str, Any] | None = None

    @property
    def reasons(self) -> list[str]:
        return list((self.health or {}).get("reasons") or [])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def duration_seconds(self) -> float | None:
        start, end = parse_iso(self.started_at), parse_iso(self.finished_at)
        return (end - start).total_seconds() if start and end else None


def _process_alive(pid: int | None, started: float | None) -> bool:
    """True if ``pid`` still names the process that wrote the row (pids are reused)."""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _own_start_time() -> float | None:
    import psutil

    try:
        return float(psutil.Process(os.getpid()).create_time())
    except psutil.Error:
        return None


class RunHistory:
    """The run history in a :class:`~newsvault.sqldb.Database`; safe to share between threads of one process."""

    def __init__(self, db: Database) -> None:
        self._lock = threading.Lock()
        # One connection shared under a lock: the daemon's job threads write rarely.
        self._conn = db
        try:
            db.ensure_columns("runs", _ADDED_COLUMNS)
        except BaseException:
            db.close()
            raise
        self._owner = (os.getpid(), _own_start_time())
        self.host = host_name()

    def _write(self, work: Callable[[Database], Any]) -> Any:
        """``work`` in a write transaction; run again from the start if the link to the server was lost.

        A shared history's server may restart under a running daemon: the row
        of a run that was crawling meanwhile must still be written.
        """
        with self._lock:
            return in_transaction(self._conn, lambda: work(self._conn))

    def record(self, record: RunRecord) -> None:
        """Insert a row as it is (missed and skipped runs, which never start)."""
        self._write(lambda conn: conn.execute(
                "INSERT INTO runs (run_id, job_id, site, kind, trigger, planned_at, started_at,"
                " finished_at, status, counts, snapshot_id, snapshot_state, error, log_path,"
                " owner_pid, owner_started, host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.run_id, record.job_id, record.site, record.kind, record.trigger,
                    record.planned_at, record.started_at, record.finished_at, record.status,
                    json.dumps(record.counts), record.snapshot_id, record.snapshot_state,
                    record.error, record.log_path, self._owner[0], self._owner[1], self.host,
                ),
            ))

    def start_run(self, record: RunRecord) -> None:
        """Insert a ``running`` row owned by this process."""
        record.status = "running"
        record.started_at = record.started_at or iso(utcnow())
        self.record(record)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        counts: dict[str, int] | None = None,
        snapshot_id: str | None = None,
        snapshot_state: str | None = None,
        error: str | None = None,
        health: dict[str, Any] | None = None,
    ) -> None:
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status!r}")
        finished_at = iso(utcnow())
        self._write(lambda conn: conn.execute(
            "UPDATE runs SET status=?, finished_at=?, counts=?, snapshot_id=?,"
            " snapshot_state=?, error=?, health=? WHERE run_id=?",
            (status, finished_at, json.dumps(counts or {}), snapshot_id, snapshot_state,
             error, json.dumps(health) if health is not None else None, run_id),
        ))

    def good_figures(self, job_id: str, limit: int) -> list[dict[str, float]]:
        """The health figures of the job's latest ``limit`` good (ok) runs, newest first: the checks' baseline."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT health FROM runs WHERE job_id=? AND status='ok' AND health IS NOT NULL"
                " ORDER BY COALESCE(started_at, planned_at) DESC, run_id DESC LIMIT ?", (job_id, int(limit)),
            ).fetchall()
        return [dict(json.loads(r["health"]).get("figures") or {}) for r in rows]

    def previous_verdict(self, job_id: str, run_id: str) -> str | None:
        """``ok`` or ``degraded``: the health verdict of the job's last judged run before ``run_id``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT status FROM runs WHERE job_id=? AND run_id != ? AND status IN"
                " ('ok', 'degraded') AND started_at <="
                " (SELECT started_at FROM runs WHERE run_id=?)"
                " ORDER BY started_at DESC, run_id DESC LIMIT 1", (job_id, run_id, run_id),
            ).fetchone()
        return row["status"] if row else None

    def get(self, run_id: str) -> RunRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return _to_record(row) if row else None

    def list_runs(
        self, *, site: str | None = None, job_id: str | None = None, limit: int | None = 50,
        statuses: list[str] | None = None, since: str | None = None, until: str | None = None,
        snapshot_id: str | None = None,
    ) -> list[RunRecord]:
        """Newest first (by planned time, then start); ``since``/``until`` bound that time (ISO 8601 UTC)."""
        sql = "SELECT * FROM runs"
        where, args = [], []
        for column, value in (("site", site), ("job_id", job_id), ("snapshot_id", snapshot_id)):
            if value:
                where.append(f"{column}=?")
                args.append(value)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if since:
            where.append("COALESCE(started_at, planned_at) >= ?")
            args.append(since)
        if until:
            where.append("COALESCE(started_at, planned_at) < ?")
            args.append(until)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY COALESCE(started_at, planned_at) DESC, run_id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_to_record(r) for r in rows]

    def last_runs(self) -> dict[str, RunRecord]:
        """The latest finished run of each job."""
        return self._latest_per_job("status != 'running'", "COALESCE(finished_at, planned_at) DESC")

    def last_judged_runs(self) -> dict[str, RunRecord]:
        """The latest run of each job that the health checks judged (ok or degraded, with figures)."""
        return self._latest_per_job("status IN ('ok', 'degraded') AND health IS NOT NULL",
                                    "COALESCE(started_at, planned_at) DESC, run_id DESC")

    def _latest_per_job(self, where: str, order: str) -> dict[str, RunRecord]:
        """Per job, its first row by ``order`` among those matching ``where`` (fixed SQL of this class)."""
        with self._lock:
            # Once per job (not once per row), each answered from a (job_id, order) index.
            rows = self._conn.execute(
                f"SELECT r.* FROM (SELECT DISTINCT job_id FROM runs) j JOIN runs r ON r.run_id ="
                f" (SELECT run_id FROM runs WHERE job_id = j.job_id AND {where} ORDER BY {order} LIMIT 1)"
            ).fetchall()
        return {r["job_id"]: _to_record(r) for r in rows}

    def degraded_counts(self) -> dict[tuple[str, str], int]:
        """{(job_id, figure that failed its check): degraded runs}."""
        counts: dict[tuple[str, str], int] = {}
        with self._lock:
            rows = self._conn.execute("SELECT job_id, health FROM runs WHERE status='degraded'").fetchall()
        for row in rows:
            for figure in (json.loads(row["health"] or "{}").get("failed") or []):
                counts[(row["job_id"], figure)] = counts.get((row["job_id"], figure), 0) + 1
        return counts

    def status_counts(self) -> dict[tuple[str, str], int]:
        """{(job_id, status): runs} over every row."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT job_id, status, COUNT(*) AS n FROM runs GROUP BY job_id, status"
            ).fetchall()
        return {(r["job_id"], r["status"]): int(r["n"]) for r in rows}

    def finished_runs(self) -> list[RunRecord]:
        """Every run that started and finished (for metrics)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE started_at IS NOT NULL AND finished_at IS NOT NULL"
            ).fetchall()
        return [_to_record(r) for r in rows]

    def mark_committed(self, snapshot_ids: list[str]) -> int:
        """Record that spooled snapshots are now committed (a later push took them); returns rows changed."""
        if not snapshot_ids:
            return 0
        marks = ",".join("?" * len(snapshot_ids))
        cur = self._write(lambda conn: conn.execute(
            f"UPDATE runs SET snapshot_state='committed' WHERE snapshot_id IN ({marks})"
            " AND COALESCE(snapshot_state, '') != 'committed'", snapshot_ids))
        return int(cur.rowcount)

    def recover_interrupted(self) -> list[RunRecord]:
        """Mark rows left ``running`` by a process of this host that is gone as failed; return them.

        Another host's rows are never judged here: its pids mean nothing on this one.
        """
        with self._lock:
            rows = self._conn.execute("SELECT * FROM runs WHERE status='running' AND (host IS NULL OR host = ?)",
                                      (self.host,)).fetchall()
        stale = [r for r in rows if not _process_alive(r["owner_pid"], r["owner_started"])]
        for row in stale:
            self.finish_run(row["run_id"], status="failed", counts=json.loads(row["counts"]),
                            error=INTERRUPTED_ERROR)
        return [r for r in (self.get(row["run_id"]) for row in stale) if r]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SQLiteRunHistory(RunHistory):
    """The run history of one state dir, in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(SQLiteDatabase(self.path, schema=_SCHEMA, timeout=30.0, named_rows=True, threads=True))


class PostgresRunHistory(RunHistory):
    """The run history a cluster's hosts share, in PostgreSQL."""

    def __init__(self, url: str) -> None:
        # REAL is 4 bytes in PostgreSQL: a process start time needs 8.
        schema = _SCHEMA.replace("owner_started REAL", "owner_started DOUBLE PRECISION")
        super().__init__(PostgresDatabase(url, schema=schema, schema_lock="newsvault-history-schema", named_rows=True))


def _to_record(row: Any) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"], job_id=row["job_id"], site=row["site"], kind=row["kind"],
        trigger=row["trigger"], status=row["status"], planned_at=row["planned_at"],
        started_at=row["started_at"], finished_at=row["finished_at"],
        counts=json.loads(row["counts"] or "{}"), snapshot_id=row["snapshot_id"],
        snapshot_state=row["snapshot_state"], error=row["error"], log_path=row["log_path"],
        health=json.loads(row["health"]) if row["health"] else None,
    )


def open_history(state_dir: str | Path, *, url: str | None = None) -> RunHistory:
    """The run history: a cluster's shared one at ``url`` (PostgreSQL), else the state directory's own."""
    if url:
        if not is_postgres_url(url):
            raise ValueError("a shared run history needs a PostgreSQL URL (postgresql://...)")
        return PostgresRunHistory(url)
    return SQLiteRunHistory(Path(state_dir) / HISTORY_FILE)


def mark_snapshots_committed(state_dir: str | Path, snapshot_ids: list[str], *, url: str | None = None) -> None:
    """Runs whose snapshots a push just committed say so (they were recorded spooled); no history, nothing to do."""
    if not snapshot_ids or (not url and not (Path(state_dir) / HISTORY_FILE).exists()):
        return
    try:
        history = open_history(state_dir, url=url)
        try:
            history.mark_committed(snapshot_ids)
        finally:
            history.close()
    except (*database_errors(), OSError) as exc:  # type: ignore[misc]  # a tuple of exception classes  # the snapshots are committed; only the run rows lag behind
        logging.getLogger(__name__).warning("could not mark runs of %s committed: %s", ", ".join(snapshot_ids), exc)
