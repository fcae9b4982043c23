"""The scheduler's job function: one run of one (site, kind) crawl, recorded in the history.

:func:`run_job` is a module-level function with plain JSON-friendly arguments so
APScheduler's persistent job store can pickle a reference to it. What it needs
from the running daemon (the launcher, the history, when the daemon started)
lives in a :class:`JobRuntime`, installed by the daemon with :func:`install_runtime`;
without one (``newsvault trigger`` with no daemon) it builds its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from newsvault.errors import NewsvaultError
from scheduler.history import (
    RunHistory,
    RunRecord,
    iso,
    new_run_id,
    open_history,
    parse_iso,
    utcnow,
)
from scheduler.launcher import CrawlOptions, Launcher, crawl_command, prune_logs
from scheduler.lock import job_lock
from scheduler.run_checks import announce_transition, assess, load_job_config
from scheduler.schedules import job_id as make_job_id

log = logging.getLogger(__name__)

# A scheduled run planned this long before the daemon started is a catch-up run.
CATCH_UP_TOLERANCE = timedelta(seconds=2)
SHUTDOWN_ERROR = "stopped by daemon shutdown"
# A run that never started because the daemon was stopping.
SHUTTING_DOWN_ERROR = "daemon shutting down"


@dataclass
class JobRuntime:
    """What runs need from the process they run in."""

    history: RunHistory
    launcher: Launcher
    started_at: datetime = field(default_factory=utcnow)
    # In a cluster, a fire queues the run instead (scheduler/cluster.py): fire(job_id, planned, trigger).
    fire: Callable[[str, datetime, str], str] | None = None


_runtime: JobRuntime | None = None


def install_runtime(runtime: JobRuntime | None) -> None:
    """Called by the daemon at start (and with None at exit)."""
    global _runtime
    _runtime = runtime


class PlannedTimes:
    """Which planned time each submitted run serves, handed from APScheduler's listener to the job thread.

    APScheduler 3 tells its JOB_SUBMITTED listeners the run times, not the job
    function. The listener fires right after the job is handed to the pool, so
    the job thread waits (briefly) for it. One slot per job is enough: a job
    has at most one run at a time (max_instances=1).
    """

    WAIT_SECONDS = 5.0

    def __init__(self) -> None:
        self._times: dict[str, datetime | None] = {}
        self._changed = threading.Condition()

    def submitted(self, job_id: str, run_times: list[datetime]) -> None:
        with self._changed:
            self._times[job_id] = run_times[-1] if run_times else None
            self._changed.notify_all()

    def take(self, job_id: str) -> datetime | None:
        """The planned time of the run of ``job_id`` that is starting, or None if it was never said."""
        with self._changed:
            self._changed.wait_for(lambda: job_id in self._times, timeout=self.WAIT_SECONDS)
            return self._times.pop(job_id, None)


planned_times = PlannedTimes()


def job_kwargs(
    site: str,
    kind: str,
    *,
    options: CrawlOptions,
    crawl_timeout: int,
    start_urls: list[str] | None = None,
    schedule: str = "",
) -> dict[str, Any]:
    """The JSON-friendly keyword arguments stored with a job."""
    return {
        "site": site,
        "kind": kind,
        "config_file": options.config_file,
        "state_dir": options.state_dir,
        "archive_url": options.archive_url,
        "crawl_timeout": crawl_timeout,
        "start_urls": list(start_urls or []),
        "schedule": schedule,
    }


def run_job(
    site: str,
    kind: str,
    *,
    config_file: str | None,
    state_dir: str,
    archive_url: str | None,
    crawl_timeout: int,
    start_urls: list[str] | None = None,
    schedule: str = "",
    trigger: str = "scheduled",
    run_id: str | None = None,
    planned_at: str | None = None,
    snapshot_id: str | None = None,
) -> dict[str, Any] | None:
    """Run one crawl of ``site``/``kind`` in a child process; return its history row as a dict.

    ``planned_at`` given (a manual run, or a run from a cluster's queue) is the
    planned time as it is; ``snapshot_id`` the id the crawl commits under.

    Returns None when the run was not started (skipped because the previous run
    of the same job still holds its lock, or the daemon is shutting down); such
    a run is still recorded (see :func:`record_not_started`).
    """
    runtime = _runtime
    own_runtime = runtime is None
    if runtime is None:
        runtime = JobRuntime(history=open_history(state_dir), launcher=Launcher())
    try:
        return _run(runtime, site, kind, config_file=config_file, state_dir=state_dir,
                    archive_url=archive_url, crawl_timeout=crawl_timeout,
                    start_urls=start_urls or [], trigger=trigger, run_id=run_id,
                    planned_at=planned_at, snapshot_id=snapshot_id)
    finally:
        if own_runtime:
            runtime.history.close()


def fire_job(site: str, kind: str, **_stored: Any) -> str | None:
    """The job function of a cluster's scheduler: queue the run (see scheduler/cluster.py), crawl nothing here.

    Takes the same stored arguments as :func:`run_job`, so switching a job
    store between the two modes changes only the function.
    """
    runtime = _runtime
    jid = make_job_id(site, kind)
    if runtime is None or runtime.fire is None:
        log.error("fire of %s ignored: this daemon is not part of a cluster", jid)
        return None
    planned = planned_times.take(jid) or utcnow()
    trigger = "missed" if planned < runtime.started_at - CATCH_UP_TOLERANCE else "scheduled"
    outcome = runtime.fire(jid, planned, trigger)
    if outcome == "skipped-overlap":
        runtime.history.record(RunRecord(run_id=new_run_id(planned), job_id=jid, site=site, kind=kind,
                                         trigger=trigger, status="skipped-overlap", planned_at=iso(planned),
                                         finished_at=iso(utcnow()),
                                         error="the previous run of this job is still waiting in the queue"))
        log.warning("fire of %s at %s skipped: the previous one still waits in the queue", jid, iso(planned))
    return outcome


def _run(
    runtime: JobRuntime,
    site: str,
    kind: str,
    *,
    config_file: str | None,
    state_dir: str,
    archive_url: str | None,
    crawl_timeout: int,
    start_urls: list[str],
    trigger: str,
    run_id: str | None,
    planned_at: str | None,
    snapshot_id: str | None = None,
) -> dict[str, Any] | None:
    jid = make_job_id(site, kind)
    # Scheduled runs: the time APScheduler planned (its listener says it); manual and queued ones bring planned_at.
    if planned_at:
        planned = parse_iso(planned_at) or utcnow()
    else:
        planned = (planned_times.take(jid) if trigger == "scheduled" else None) or utcnow()
    planned_text = planned_at or iso(planned)
    if trigger == "scheduled" and not planned_at and planned < runtime.started_at - CATCH_UP_TOLERANCE:
        trigger = "missed"  # the coalesced catch-up of runs planned while the daemon was down
    run_id = run_id or new_run_id()
    history, launcher = runtime.history, runtime.launcher
    if not launcher.accepting:
        record_not_started(history, run_id=run_id, job_id=jid, trigger=trigger, planned_at=planned_text)
        return None

    lock = job_lock(state_dir, jid)
    if not lock.try_acquire():
        if trigger != "manual":
            history.record(RunRecord(run_id=run_id, job_id=jid, site=site, kind=kind,
                                     trigger=trigger, status="skipped-overlap",
                                     planned_at=planned_text, finished_at=iso(utcnow()),
                                     error="the previous run of this job is still running"))
            log.warning("run %s of %s skipped: the previous run is still running", run_id, jid)
            return None
        # A manual run waits for its turn rather than overlap a scheduled one.
        log.info("manual run %s of %s waits for the running one to finish", run_id, jid)
        while not lock.try_acquire():
            if not launcher.accepting:
                record_not_started(history, run_id=run_id, job_id=jid, trigger=trigger,
                                   planned_at=planned_text)
                return None
            time.sleep(0.5)

    try:
        log_dir = Path(state_dir) / "logs" / site / kind
        log_path = log_dir / f"{run_id}.log"
        summary_path = log_dir / f"{run_id}.summary.json"
        record = RunRecord(run_id=run_id, job_id=jid, site=site, kind=kind, trigger=trigger,
                           status="running", planned_at=planned_text, log_path=str(log_path))
        history.start_run(record)
        log.info("run started  %s [%s] run %s", jid, trigger, run_id)
        options = CrawlOptions(config_file=config_file, state_dir=state_dir, archive_url=archive_url)
        cmd = crawl_command(site, kind, summary_path=summary_path, options=options, start_urls=start_urls,
                            snapshot_id=snapshot_id)
        assert lock.fd is not None
        try:
            result = launcher.run(cmd, log_path=log_path, summary_path=summary_path,
                                  timeout=crawl_timeout, pass_fds=[lock.fd])
        except OSError as exc:
            history.finish_run(run_id, status="failed", error=f"cannot start the crawl: {exc}")
            log.error("run failed   %s run %s: cannot start the crawl: %s", jid, run_id, exc)
            return _as_dict(history, run_id)

        summary = result.summary or {}
        counts = summary_counts(summary)
        error = summary.get("error") or None
        if result.timed_out:
            status, error = "timeout", f"timed out after {crawl_timeout}s"
        elif result.terminated:
            status, error = "failed", SHUTDOWN_ERROR
        elif result.returncode == 0 and summary.get("status") in ("ok", "partial"):
            status = str(summary["status"])
        else:
            status = "failed"
            if not error:
                error = f"crawl exited with code {result.returncode}"
                if not result.summary:
                    error += " and wrote no summary (see the log)"
        config = health = None
        if status in ("ok", "partial") and isinstance(summary.get("stats"), dict):
            # Succeeded: is it also right? (the figures against the job's own good runs)
            try:
                config = load_job_config(config_file, state_dir)
                assessment = assess(history, jid, site, kind, summary["stats"], config)
            except Exception as exc:  # noqa: BLE001 - the run itself is done: record it, unjudged
                log.error("health checks of run %s skipped: %s", run_id,
                          exc if isinstance(exc, NewsvaultError) else f"{type(exc).__name__}: {exc}")
            else:
                health = assessment.as_health()
                if assessment.degraded and status == "ok":
                    status = "degraded"
        history.finish_run(run_id, status=status, counts=counts,
                           snapshot_id=summary.get("snapshot_id"),
                           snapshot_state=summary.get("snapshot_state"), error=error, health=health)
        reasons = (health or {}).get("reasons") or []
        log.info(
            "run finished %s [%s] run %s: %s in %.1fs, %s, snapshot %s (%s)%s%s",
            jid, trigger, run_id, status, result.duration_seconds,
            " ".join(f"{k}={v}" for k, v in counts.items()) or "no counts",
            summary.get("snapshot_id") or "-", summary.get("snapshot_state") or "-",
            f": {error}" if error else "", f"; degraded: {'; '.join(reasons)}" if status == "degraded" else "",
        )
        prune_logs(log_dir)
        finished = history.get(run_id)
    finally:
        lock.release()
    # After the lock: a slow or retried alert delivery never holds up the job's next run.
    if finished is not None and config is not None:
        try:
            announce_transition(history, finished, config)
        except Exception:  # the run is recorded; a lost alert is only logged
            log.exception("health alert of run %s not announced", run_id)
    return finished.to_json() if finished else None


def record_not_started(history: RunHistory, *, run_id: str, job_id: str, trigger: str,
                       planned_at: str | None) -> None:
    """Record a run the daemon did not start because it is shutting down.

    A manual run is ``failed``, so the waiting ``newsvault trigger`` gets its
    answer at once instead of waiting out its timeout; a scheduled one never ran
    at its planned time, which is what ``missed`` means.
    """
    site, _, kind = job_id.partition(":")
    status = "failed" if trigger == "manual" else "missed"
    history.record(RunRecord(run_id=run_id, job_id=job_id, site=site, kind=kind, trigger=trigger,
                             status=status, planned_at=planned_at, finished_at=iso(utcnow()),
                             error=SHUTTING_DOWN_ERROR))
    log.info("run %s of %s [%s] not started: the daemon is shutting down", run_id, job_id, trigger)


def _as_dict(history: RunHistory, run_id: str) -> dict[str, Any] | None:
    record = history.get(run_id)
    return record.to_json() if record else None


_CHANGE_KEYS = ("new", "updated", "unchanged", "removed")


def summary_counts(summary: dict[str, Any]) -> dict[str, int]:
    """The counts worth keeping from a crawl summary: pages, items, changes, errors, bytes."""
    counts: dict[str, int] = {}
    for key in ("pages", "items", "errors"):
        if isinstance(summary.get(key), int):
            counts[key] = summary[key]
    extra = summary.get("counts")
    if isinstance(extra, dict):
        counts.update({k: v for k, v in extra.items() if isinstance(v, int)})
    raw_stats = summary.get("stats")
    stats: dict[str, Any] = raw_stats if isinstance(raw_stats, dict) else {}
    for key, value in sorted(stats.items()):
        if not isinstance(value, int) or not key.startswith("newsvault/"):
            continue
        last = key.rsplit("/", 1)[-1]
        if last in _CHANGE_KEYS and last not in counts:
            counts[last] = value
    # Bytes the archive holds of this run's snapshot (0 until committed), never bytes downloaded.
    if isinstance(summary.get("archived_bytes"), int):
        counts["bytes"] = summary["archived_bytes"]
    return counts
