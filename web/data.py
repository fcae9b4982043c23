"""What each page shows, gathered from the library: run history, job store, archive health, catalog, verify log.

Pages never read raw files: every figure comes from the same APIs the CLI
prints (``scheduler.history``, ``scheduler.daemon.stored_jobs``,
``scheduler.health``, ``catalog.query``, ``archive.verify_log``). One
:class:`WebContext` per running server holds what is opened once.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from archive.captures import CaptureReader
from archive.stores import SnapshotStore, open_store
from archive.verify_log import Verification, VerifyLog
from catalog.db import Catalog, CatalogError
from newsvault.config import Config
from scheduler.health import ArchiveHealth
from scheduler.history import RunHistory, RunRecord, iso, open_history, utcnow
from scheduler.lock import daemon_running
from scheduler.schedules import JobSpec, collect_jobs

# Statuses the dashboard lists as needing a look, with their error text.
PROBLEM_STATUSES = ["missed", "failed", "timeout", "partial", "degraded", "skipped-overlap"]
RECENT_RUNS = 20


def _stored_next_runs(config: Config) -> dict[str, str | None]:
    from scheduler.daemon import stored_jobs

    return {job_id: iso(job.next_run_time) if job.next_run_time else None
            for job_id, job in stored_jobs(config).items()}


@dataclass
class WebContext:
    """What one web server reads from; the daemon passes its live scheduler's view of the jobs."""

    config: Config
    # job id -> next run time; standalone servers read the job store, the daemon its scheduler.
    next_runs: Callable[[], dict[str, str | None]] | None = None
    is_daemon_running: Callable[[], bool] | None = None
    history: RunHistory = field(init=False)
    _local: threading.local = field(init=False, default_factory=threading.local)
    _store: SnapshotStore | None = field(init=False, default=None)
    _captures: CaptureReader | None = field(init=False, default=None)
    _cache: tempfile.TemporaryDirectory[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.history = open_history(self.config.state_dir, url=self.config.cluster.url_value)
        self.archive_health = ArchiveHealth(state_dir=self.config.state_dir, spool_dir=self.config.spool_dir,
                                            archive_url=self.config.archive.url)
        self.verify_log = VerifyLog.in_state_dir(self.config.state_dir, self.config.archive.url)

    # -- what is opened once ---------------------------------------------------------
    def catalog(self) -> Catalog | None:
        """This thread's catalog connection (SQLite connections stay in their thread), None before the first crawl."""
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            if not self.config.catalog_path.exists():
                return None
            cat = Catalog(self.config.catalog_path, self.config.archive.url, create=False)
            self._local.catalog = cat
        return cat

    def require_catalog(self) -> Catalog:
        cat = self.catalog()
        if cat is None:
            raise CatalogError("the catalog is empty: no crawl has committed a snapshot yet")
        return cat

    def store(self) -> SnapshotStore:
        if self._store is None:
            self._store = open_store(self.config.archive.url, self.config.scrapy_settings())
        return self._store

    def captures(self) -> CaptureReader:
        if self._captures is None:
            self._cache = tempfile.TemporaryDirectory(prefix="newsvault-web-")
            self._captures = CaptureReader(self.store(), Path(self._cache.name))
        return self._captures

    def daemon_running(self) -> bool:
        return self.is_daemon_running() if self.is_daemon_running else daemon_running(self.config.state_dir)

    def jobs(self) -> list[JobSpec]:
        return collect_jobs(self.config)

    def close(self) -> None:
        self.history.close()
        if self._captures is not None:
            self._captures.close()
        if self._cache is not None:
            self._cache.cleanup()

    # -- pages -----------------------------------------------------------------------
    def dashboard(self) -> dict[str, Any]:
        specs = self.jobs()
        next_runs = (self.next_runs or (lambda: _stored_next_runs(self.config)))()
        last = self.history.last_runs()
        jobs = [{"job_id": s.job_id, "site": s.site, "kind": s.kind, "schedule": s.describe(),
                 "next_run_time": next_runs.get(s.job_id), "last_run": last.get(s.job_id)} for s in specs]
        return {
            "jobs": jobs,
            "daemon_running": self.daemon_running(),
            "recent_runs": self.history.list_runs(limit=RECENT_RUNS),
            "problems": self.history.list_runs(statuses=PROBLEM_STATUSES, limit=RECENT_RUNS),
            "archive": self.archive_health.report(),
            "archive_url": self.config.archive.url,
            "catalog": self.catalog_summary(),
        }

    def catalog_summary(self) -> dict[str, Any] | None:
        """Snapshots and items per site, and their size, from the catalog's snapshot rows (fast at any size)."""
        cat = self.catalog()
        if cat is None:
            return None
        rows = cat.db.execute(
            "SELECT site, COUNT(*) AS snapshots, SUM(items) AS items, SUM(bytes) AS bytes, MAX(finished_at) AS latest"
            " FROM snapshots GROUP BY site ORDER BY site").fetchall()
        sites = [dict(row) for row in rows]
        return {"sites": sites, "snapshots": sum(s["snapshots"] for s in sites),
                "bytes": sum(s["bytes"] or 0 for s in sites),
                "unsized": any(s["bytes"] is None for s in sites)}

    def runs(self, *, site: str | None, job_id: str | None, status: str | None, since: str | None,
             until: str | None, limit: int) -> list[RunRecord]:
        return self.history.list_runs(site=site, job_id=job_id, statuses=[status] if status else None,
                                      since=_history_time(since), until=_history_time(until), limit=limit)

    def snapshots(self, *, site: str | None, limit: int) -> list[dict[str, Any]]:
        cat = self.catalog()
        if cat is None:
            return []
        sql, args = "SELECT * FROM snapshots", []
        if site:
            sql += " WHERE site = ?"
            args.append(site)
        rows = [dict(r) for r in cat.db.execute(sql + " ORDER BY started_at DESC, snapshot_id DESC LIMIT ?",
                                                 (*args, limit))]
        checks = self.verify_log.last([r["snapshot_id"] for r in rows])
        for row in rows:
            row["verification"] = checks.get(row["snapshot_id"])
        return rows

    def snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """One snapshot: its catalog row, the run that made it, its last check, what it holds."""
        cat = self.require_catalog()
        row = cat.db.execute("SELECT * FROM snapshots WHERE snapshot_id = ?", (snapshot_id,)).fetchone()
        if row is None:
            raise CatalogError(f"no catalogued snapshot {snapshot_id!r}")
        articles = cat.db.execute(
            "SELECT v.canonical_url, v.title, s.fetched_at FROM sightings s JOIN versions v ON v.id = s.version_id"
            " WHERE s.snapshot_id = ? ORDER BY s.fetched_at, v.canonical_url LIMIT 500", (snapshot_id,)).fetchall()
        threads = cat.db.execute(
            "SELECT thread_url, title, comment_count, last_activity_at FROM observations WHERE snapshot_id = ?"
            " ORDER BY position, thread_url LIMIT 500", (snapshot_id,)).fetchall()
        runs = self.history.list_runs(snapshot_id=snapshot_id, limit=5)
        verification: Verification | None = self.verify_log.last([snapshot_id]).get(snapshot_id)
        return {"snapshot": dict(row), "runs": runs, "verification": verification,
                "articles": [dict(a) for a in articles], "threads": [dict(t) for t in threads]}


def _history_time(text: str | None) -> str | None:
    """A filter time as the run history writes times (microseconds, Z), so text order is time order."""
    if not text:
        return None
    from catalog.query import parse_time

    return iso(datetime.fromisoformat(parse_time(text, "time")))


def default_since(days: int = 1) -> str:
    return (utcnow() - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
