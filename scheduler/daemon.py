"""The scheduler daemon: APScheduler 3.x jobs in a persistent store, one child crawl per run.

One job per (site, kind), id ``"<site>:<kind>"``, in a SQLAlchemy job store
(SQLite under the state dir by default), so a restart resumes the schedule and
records the runs it missed. Manual runs arrive as request files in
``<state>/triggers/`` (see :func:`request_trigger`), which the daemon polls.
SIGTERM/SIGINT stop scheduling, let running crawls finish within the shutdown
grace, then stop them (SIGTERM, SIGKILL) and exit 0.

With ``[cluster] url`` the daemon is one host of several (scheduler/cluster.py):
the job store, run history and state are the shared PostgreSQL ones, only the
leader's scheduler fires, and a fire queues the run for any host's worker.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from newsvault.config import Config
from scheduler import jobs
from scheduler.health import ArchiveHealth
from scheduler.history import RunRecord, iso, new_run_id, open_history, utcnow
from scheduler.launcher import CrawlOptions, Launcher
from scheduler.lock import DaemonLock
from scheduler.metrics import HistoryCollector, MetricsServer, build_registry
from scheduler.schedules import JobSpec, build_trigger, collect_jobs, describe
from scheduler.trigger import TRIGGERS_DIR

if TYPE_CHECKING:
    from scheduler.cluster import ClusterMember
    from scheduler.run_queue import Fire
    from web.server import WebServer

log = logging.getLogger(__name__)

TRIGGER_POLL_SECONDS = 0.5
# Most missed runs recorded for one job on restart (a long outage with a short interval).
MAX_MISSED_RECORDED = 1000


def run_times_until(job: Job, now: datetime, limit: int = MAX_MISSED_RECORDED + 1) -> list[datetime]:
    """The job's planned run times from its next run time up to ``now`` (its trigger's public API only)."""
    times: list[datetime] = []
    moment = job.next_run_time
    while moment is not None and moment <= now:
        times.append(moment)
        if len(times) > limit:
            times.pop(0)  # a long outage with a short interval: only the latest are recorded
        moment = job.trigger.get_next_fire_time(moment, now)
    return times


def crawl_options(config: Config) -> CrawlOptions:
    """The --config/--state-dir/--archive every child crawl gets: the daemon's own."""
    source = config.source
    config_file = str(Path(source).resolve()) if source != "<defaults>" and Path(source).is_file() else None
    archive = config.archive.url
    if "://" not in archive:
        archive = str(Path(archive).resolve())
    return CrawlOptions(config_file=config_file, state_dir=str(config.state_dir.resolve()),
                        archive_url=archive)


def make_scheduler(config: Config, max_workers: int = 8) -> BackgroundScheduler:
    cluster_url = config.cluster.url_value
    if cluster_url and not config.daemon.jobstore_url:
        from scheduler.cluster import sqlalchemy_url

        jobstore_url = sqlalchemy_url(cluster_url)
    else:
        jobstore_url = config.jobstore_url
    # A shared database may restart: a pooled connection is checked before use, not found dead mid-query.
    engine_options = {"pool_pre_ping": True} if cluster_url else None
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=jobstore_url, engine_options=engine_options),
                   "transient": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": config.daemon.misfire_grace_seconds},
        timezone=UTC,
    )


class Daemon:
    """One daemon process: scheduler, history, launcher, trigger watcher, metrics."""

    def __init__(self, config: Config, *, metrics_port: int | None = None, web_port: int | None = None,
                 start_urls: Mapping[str, list[str]] | None = None, run_now: bool = False) -> None:
        self.config = config
        self.state_dir = config.state_dir
        self.metrics_port = metrics_port if metrics_port is not None else config.daemon.metrics_port
        self.start_urls = {k: list(v) for k, v in (start_urls or {}).items()}
        self.run_now = run_now
        self.options = crawl_options(config)
        self.stop_event = threading.Event()
        self.specs: list[JobSpec] = []
        self.metrics: MetricsServer | None = None
        self.web_port = web_port
        self.web: WebServer | None = None
        self.watcher: threading.Thread | None = None
        self.archive_health = ArchiveHealth(state_dir=config.state_dir, spool_dir=config.spool_dir,
                                            archive_url=config.archive.url)
        self.cluster_url = config.cluster.url_value
        self.cluster: ClusterMember | None = None
        # Held while leadership starts the scheduler, and by shutdown while it pauses it.
        self._leading = threading.Lock()
        self.runtime: jobs.JobRuntime | None = None

    def _start_urls_for(self, site: str, kind: str) -> list[str]:
        """Start URLs given for ``site:kind``, else for ``site``, else none (the profile's)."""
        return self.start_urls.get(f"{site}:{kind}") or self.start_urls.get(site) or []

    # -- start ---------------------------------------------------------------------
    def run(self) -> int:
        self.specs = collect_jobs(self.config)  # ConfigError before anything starts
        if self.web_port is not None:
            from web.security import check_binding

            check_binding(self.config.web.host, self.config.web.token_value)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = DaemonLock(self.state_dir)
        lock.acquire()
        self.history = open_history(self.state_dir, url=self.cluster_url)
        try:
            for rec in self.history.recover_interrupted():
                log.warning("run %s of %s was interrupted by a daemon stop; recorded as failed",
                            rec.run_id, rec.job_id)
            self.launcher = Launcher(kill_with_parent=bool(self.cluster_url))
            self.runtime = jobs.JobRuntime(history=self.history, launcher=self.launcher)
            jobs.install_runtime(self.runtime)
            self.scheduler = make_scheduler(self.config, max_workers=max(4, 2 * len(self.specs) + 2))
            self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
            # APScheduler tells listeners, not the job, which planned time a run serves.
            self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
            if self.cluster_url:
                from scheduler.cluster import one_host_at_a_time

                with one_host_at_a_time(self.cluster_url, "job-store"):
                    self.scheduler.start(paused=True)
            else:
                self.scheduler.start(paused=True)
            self._install_signals()
            if self.cluster_url:
                self._join_cluster()  # the scheduler resumes when this daemon leads
            else:
                self._sync_jobs()
            self._start_metrics()
            self._start_web()
            self.watcher = threading.Thread(target=self._watch_triggers, name="triggers", daemon=True)
            self.watcher.start()
            if not self.cluster_url:
                self.scheduler.resume()
            log.info("daemon running on %s with %d job(s); pid %s%s", self.state_dir,
                     len(self.specs), os.getpid(), " (cluster member)" if self.cluster_url else "")
            self.stop_event.wait()
            self._shutdown()
            return 0
        finally:
            jobs.install_runtime(None)
            if self.cluster is not None:
                self.cluster.stop(0)
            if self.metrics:
                self.metrics.stop()
            if self.web:
                self.web.stop()
            self.history.close()
            lock.release()

    def _sync_jobs(self) -> None:
        """Make the job store match the config: add, replace changed, keep unchanged, remove stale."""
        wanted = {spec.job_id: spec for spec in self.specs}
        stored = {job.id: job for job in self.scheduler.get_jobs(jobstore="default")}
        for jid in stored.keys() - wanted.keys():
            log.info("removing job %s: no longer in the config", jid)
            self.scheduler.remove_job(jid, jobstore="default")
        now = utcnow()
        # A cluster's stored jobs only name what to fire; each host crawls with its own paths.
        options = CrawlOptions(config_file=None, state_dir="", archive_url=None) if self.cluster_url else self.options
        for jid, spec in wanted.items():
            kwargs = jobs.job_kwargs(spec.site, spec.kind, options=options,
                                     crawl_timeout=self.config.daemon.crawl_timeout_seconds,
                                     start_urls=self._start_urls_for(spec.site, spec.kind),
                                     schedule=spec.fingerprint())
            job = stored.get(jid)
            if (job is not None and job.kwargs == kwargs and job.next_run_time is not None
                    and job.func is self._job_function()):
                # Unchanged: keep its stored next run time so missed runs are caught up.
                self._record_missed_on_restart(job, now)
                if self.run_now:
                    job.modify(next_run_time=now)
                log.info("job %s: %s, next run %s", jid, spec.describe(), job.next_run_time)
                continue
            trigger = build_trigger(spec.schedule, source=spec.source, key=spec.key)
            # next_run_time=None would pause the job, so pass it only to run now.
            extra: dict[str, Any] = {"next_run_time": now} if self.run_now else {}
            new = self.scheduler.add_job(
                self._job_function(), trigger=trigger, id=jid, name=jid, kwargs=kwargs,
                jobstore="default", replace_existing=True, coalesce=True, max_instances=1,
                misfire_grace_time=self.config.daemon.misfire_grace_seconds, **extra,
            )
            log.info("job %s: %s (%s), next run %s", jid, spec.describe(),
                     "changed" if job is not None else "new", new.next_run_time)

    def _record_missed_on_restart(self, job: Job, now: datetime) -> None:
        """Record every run planned while the daemon was down, except the one coalesced into a run.

        The coalesced one runs as a catch-up (trigger "missed"), or, if it is
        past the misfire grace, APScheduler reports it and it is recorded then.
        """
        run_times = run_times_until(job, now)
        for planned in run_times[:-1][-MAX_MISSED_RECORDED:]:
            self._record(job.id, "missed", planned, "scheduled", "the daemon was not running")
        if len(run_times) > 1:
            log.warning("job %s missed %d run(s) while the daemon was down", job.id, len(run_times) - 1)

    def _record(self, jid: str, status: str, planned: datetime | None, trigger: str, error: str) -> None:
        if self.cluster is not None and status == "missed" and planned is not None:
            # Once per planned time across the cluster, and never for a time a run was queued for.
            self.cluster.record_missed(jid, planned, error)
            return
        site, _, kind = jid.partition(":")
        self.history.record(RunRecord(
            run_id=new_run_id(planned), job_id=jid, site=site, kind=kind, trigger=trigger,
            status=status, planned_at=iso(planned), finished_at=iso(utcnow()), error=error))

    def _on_submitted(self, event: SchedulerEvent) -> None:
        if isinstance(event, JobSubmissionEvent):
            jobs.planned_times.submitted(event.job_id, event.scheduled_run_times)

    def _on_event(self, event: SchedulerEvent) -> None:
        jid = getattr(event, "job_id", "")
        if jid.startswith("manual:"):
            return
        if event.code == EVENT_JOB_MISSED and isinstance(event, JobExecutionEvent):
            self._record(jid, "missed", event.scheduled_run_time, "scheduled",
                         "missed its start by more than the misfire grace")
        elif event.code == EVENT_JOB_MAX_INSTANCES and isinstance(event, JobSubmissionEvent):
            planned = event.scheduled_run_times[-1] if event.scheduled_run_times else None
            self._record(jid, "skipped-overlap", planned, "scheduled",
                         "the previous run of this job is still running")

    # -- cluster -------------------------------------------------------------------------
    def _job_function(self) -> Any:
        return jobs.fire_job if self.cluster_url else jobs.run_job

    def _join_cluster(self) -> None:
        from scheduler.cluster import ClusterMember, host_member_name

        assert self.cluster_url is not None and self.runtime is not None
        self.cluster = ClusterMember(
            self.cluster_url, history=self.history, on_lead=self._lead, on_step_down=self.scheduler.pause,
            run_fire=self._run_fire, concurrency=max(1, self.config.cluster.workers),
            name=host_member_name())
        self.runtime.fire = self.cluster.fire
        self.cluster.start()

    def _lead(self) -> None:
        """This daemon just took the lease: make the shared job store match the config, then fire."""
        assert self.runtime is not None
        with self._leading:
            if self.stop_event.is_set():
                return  # stopping: the scheduler stays paused (the lease goes with the stop)
            self.runtime.started_at = utcnow()
            self._sync_jobs()
            self.scheduler.resume()

    def _run_fire(self, fire: Fire, attempt: int) -> None:
        """One run from the queue, on this host (a procrastinate worker thread)."""
        from scheduler.cluster import attempt_run_id
        from scheduler.run_queue import fire_snapshot_id

        run_id, snapshot_id = attempt_run_id(fire, attempt), fire_snapshot_id(fire)
        for earlier in range(1, attempt):
            row = self.history.get(attempt_run_id(fire, earlier))
            if row is not None and row.status == "running":
                self.history.finish_run(row.run_id, status="failed",
                                        error="its host stopped answering; the run was retried")
        if attempt > 1 and self._retry_finds_it_done(fire, run_id, snapshot_id):
            return
        kwargs = jobs.job_kwargs(fire.site, fire.kind, options=self.options,
                                 crawl_timeout=self.config.daemon.crawl_timeout_seconds,
                                 start_urls=list(fire.start_urls) or self._start_urls_for(fire.site, fire.kind))
        jobs.run_job(**kwargs, trigger=fire.trigger, run_id=run_id, planned_at=fire.planned_at,
                     snapshot_id=snapshot_id)

    def _retry_finds_it_done(self, fire: Fire, run_id: str, snapshot_id: str) -> bool:
        """Before a retry crawls: was the dead attempt's snapshot committed after all? Set its leftovers aside.

        A host can die between its push and the run's history row: the
        snapshot is in the archive and the retry must say so, not fail on the
        archive refusing a second commit of the id. Leftover staging of the id
        on this host (the dead attempt ran here) is renamed out of the spool's
        way, kept on disk, so the retry can stage afresh.
        """
        from archive.manifest import MANIFEST_NAME
        from archive.staging import PARTIAL_SUFFIX, entry_dir
        from archive.stores import SnapshotRef, open_store

        final = entry_dir(self.config.spool_dir, fire.site, fire.kind, snapshot_id)
        for leftover in (final, final.with_name(final.name + PARTIAL_SUFFIX)):
            if leftover.exists():
                aside = leftover.with_name(f"{leftover.name}.superseded-{run_id.rsplit('-', 1)[-1]}")
                leftover.rename(aside)
                log.warning("run %s: an earlier attempt's files of snapshot %s were set aside in %s",
                            run_id, snapshot_id, aside)
        try:
            # Committed means its manifest is there (manifest last): one request, not a listing of the site.
            store = open_store(self.config.archive.url, self.config.scrapy_settings())
            committed = store.exists(SnapshotRef(snapshot_id, fire.site, fire.kind).key(MANIFEST_NAME))
        except Exception as exc:  # noqa: BLE001 - unknown: crawl again; the archive refuses a second commit anyway
            log.warning("run %s: cannot tell whether snapshot %s is committed (%s); crawling again", run_id,
                        snapshot_id, exc)
            return False
        if committed:
            self.history.record(RunRecord(
                run_id=run_id, job_id=fire.job_id, site=fire.site, kind=fire.kind, trigger=fire.trigger,
                status="ok", planned_at=fire.planned_at, started_at=iso(utcnow()), finished_at=iso(utcnow()),
                snapshot_id=snapshot_id, snapshot_state="committed",
                error="committed by an earlier attempt before its host stopped answering; not crawled again"))
            log.warning("run %s: snapshot %s was committed by an earlier attempt; not crawled again",
                        run_id, snapshot_id)
        return committed

    # -- signals and shutdown --------------------------------------------------------
    def _install_signals(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def stop(self) -> None:
        self.stop_event.set()

    def _shutdown(self) -> None:
        grace = self.config.daemon.shutdown_grace_seconds
        with self._leading:  # no lease taken from here on resumes the scheduler
            self.scheduler.pause()
        if self.cluster is not None:
            self.cluster.stop(grace)  # no new run from the queue; the lease goes to a standby
        self.launcher.stop_accepting()
        self._refuse_pending_manual_runs()
        if self.launcher.running():
            log.info("waiting up to %ss for %d running crawl(s)", grace, self.launcher.running())
            if not self.launcher.wait_all(grace):
                log.warning("stopping %d crawl(s) still running after %ss", self.launcher.running(), grace)
                self.launcher.stop_all()
        # APScheduler 3's shutdown wakes its thread once more, and that pass submits due jobs (it only
        # skips a paused scheduler, and the state is "stopped" by then) to the executor it just shut
        # down, then moves their next run time on: a planned run lost and never recorded missed. With
        # the job store detached first, that pass finds no job; the jobs stay stored for the next start.
        self.scheduler.remove_jobstore("default")
        self.scheduler.shutdown(wait=True)
        log.info("daemon stopped")

    # -- manual triggers -------------------------------------------------------------
    def _watch_triggers(self) -> None:
        directory = self.state_dir / TRIGGERS_DIR
        directory.mkdir(parents=True, exist_ok=True)
        while not self.stop_event.wait(TRIGGER_POLL_SECONDS):
            for path in sorted(directory.glob("*.json")):
                if self.stop_event.is_set():
                    break  # the rest is answered by _refuse_pending_manual_runs
                try:
                    request = json.loads(path.read_text(encoding="utf-8"))
                    path.unlink()
                except (OSError, ValueError) as exc:
                    log.warning("ignoring trigger request %s: %s", path.name, exc)
                    path.unlink(missing_ok=True)
                    continue
                self._submit_manual(request)

    def _submit_manual(self, request: dict[str, Any]) -> None:
        site, kind = str(request.get("site", "")), str(request.get("kind", ""))
        run_id = str(request.get("run_id") or new_run_id())
        kwargs = jobs.job_kwargs(site, kind, options=self.options,
                                 crawl_timeout=self.config.daemon.crawl_timeout_seconds,
                                 start_urls=request.get("start_urls") or self._start_urls_for(site, kind))
        kwargs.update(trigger="manual", run_id=run_id, planned_at=request.get("requested_at"))
        log.info("manual run %s of %s:%s requested", run_id, site, kind)
        if self.cluster is not None:
            # Through the queue like every run of a cluster: one per (site, kind) at a time, on any host.
            from scheduler.run_queue import Fire

            self.cluster.queue_manual(Fire(
                job_id=f"{site}:{kind}", site=site, kind=kind, trigger="manual", run_id=run_id,
                planned_at=str(request.get("requested_at") or iso(utcnow())),
                start_urls=tuple(request.get("start_urls") or ())))
            return
        self.scheduler.add_job(jobs.run_job, trigger="date", id=f"manual:{run_id}",
                               jobstore="transient", kwargs=kwargs, misfire_grace_time=None)

    def _refuse_pending_manual_runs(self) -> None:
        """Record every manual run asked for but not started as failed: the daemon is stopping.

        Called once the scheduler is paused and the launcher refuses new crawls,
        so a waiting ``newsvault trigger`` gets its answer now. Runs already handed
        to a job thread record themselves (see :func:`jobs.record_not_started`).
        """
        if self.watcher is not None:
            self.watcher.join()  # it stops between two requests; none is half submitted
        for job in self.scheduler.get_jobs(jobstore="transient"):
            try:
                self.scheduler.remove_job(job.id, jobstore="transient")
            except JobLookupError:
                continue  # just handed to a job thread, which records it
            kwargs = job.kwargs
            jobs.record_not_started(self.history, run_id=str(kwargs["run_id"]),
                                    job_id=f"{kwargs['site']}:{kwargs['kind']}", trigger="manual",
                                    planned_at=kwargs.get("planned_at"))
        directory = self.state_dir / TRIGGERS_DIR
        for path in sorted(directory.glob("*.json")):
            try:
                request = json.loads(path.read_text(encoding="utf-8"))
                path.unlink()
            except (OSError, ValueError) as exc:
                log.warning("ignoring trigger request %s: %s", path.name, exc)
                continue
            if not isinstance(request, dict) or not request.get("run_id"):
                continue
            run_id = str(request["run_id"])
            if self.history.get(run_id) is None:
                jobs.record_not_started(
                    self.history, run_id=run_id,
                    job_id=f"{request.get('site', '')}:{request.get('kind', '')}", trigger="manual",
                    planned_at=request.get("requested_at"))

    # -- health and metrics ----------------------------------------------------------
    def _start_metrics(self) -> None:
        if self.metrics_port is None:
            return
        collector = HistoryCollector(self.history, running_crawls=self.launcher.running,
                                     scheduler_running=lambda: self.scheduler.running,
                                     archive=self.archive_health)
        self.metrics = MetricsServer(self.config.daemon.metrics_host, self.metrics_port,
                                     registry=build_registry(collector), health=self.health)
        self.metrics.start()
        host, port = self.metrics.address
        (self.state_dir / "metrics.addr").write_text(f"{host}:{port}\n", encoding="ascii")

    def _start_web(self) -> None:
        if self.web_port is None:
            return
        from web.server import WebServer

        try:
            self.web = WebServer(self.config, port=self.web_port, next_runs=self._next_runs,
                                 daemon_running=lambda: True).start()
        except OSError as exc:
            # The crawls matter more than their view: archiving goes on without it.
            log.error("web view not started on %s:%s: %s; the daemon runs without it",
                      self.config.web.host, self.web_port, exc.strerror or exc)
            return
        host, port = self.web.address
        (self.state_dir / "web.addr").write_text(f"{host}:{port}\n", encoding="ascii")

    def _next_runs(self) -> dict[str, str | None]:
        """The live scheduler's next run time of each job (the web view's dashboard)."""
        return {job.id: iso(job.next_run_time) if job.next_run_time else None
                for job in self.scheduler.get_jobs(jobstore="default")}

    def health(self) -> dict[str, Any]:
        from apscheduler.schedulers.base import STATE_RUNNING

        running = self.scheduler.state == STATE_RUNNING
        last = self.history.last_runs()
        job_list = []
        for spec in self.specs:
            job = self.scheduler.get_job(spec.job_id)
            job_list.append({
                "id": spec.job_id, "schedule": describe(spec.schedule),
                "next_run_time": iso(job.next_run_time) if job and job.next_run_time else None,
                "last_run": last[spec.job_id].to_json() if spec.job_id in last else None,
            })
        archive = self.archive_health.report()
        return {"ok": running and archive["ok"], "scheduler_running": running, "pid": os.getpid(),
                "running_crawls": self.launcher.running(), "archive": archive, "jobs": job_list}


def run_daemon(config: Config, *, metrics_port: int | None = None, web_port: int | None = None,
               start_urls: Mapping[str, list[str]] | None = None, run_now: bool = False) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT; return the exit code (0).

    Raises ConfigError for a bad schedule and DaemonLockedError when another
    daemon runs on the same state directory.
    """
    return Daemon(config, metrics_port=metrics_port, web_port=web_port, start_urls=start_urls,
                  run_now=run_now).run()


# -- used by the CLI (no daemon needed) ------------------------------------------------
def stored_jobs(config: Config) -> dict[str, Job]:
    """The jobs in the persistent store, read without starting a scheduler."""
    store = SQLAlchemyJobStore(url=config.jobstore_url)
    url = config.jobstore_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return {}
    store.start(BackgroundScheduler(timezone=UTC), "default")
    try:
        return {job.id: job for job in store.get_all_jobs()}
    finally:
        store.shutdown()
