"""A cluster's queue of runs: procrastinate on PostgreSQL, fed by the leader, worked by every daemon.

- **One entry per fire.** The leader's scheduler fires a job at a planned
  time; :func:`enqueue_fire` then writes, in one transaction, a row of
  ``newsvault_fires`` keyed by (job, planned time) and the procrastinate job,
  after checking the leader's fencing token (:meth:`LeaderLease.holds`). A
  second fire of the same time (a new leader catching up, a deposed one
  waking) finds the row and enqueues nothing; a deposed leader fails the
  fence and enqueues nothing either.
- **At most one run per (site, kind).** Each job carries procrastinate's
  ``lock`` ``"<site>:<kind>"``: a worker never starts a job while another of
  the same lock is running. While one fire of a job waits, the next is not
  queued but recorded ``skipped-overlap``, as on one host, so a job slower
  than its interval never builds a backlog. (Checked in the fire's
  transaction rather than with procrastinate's ``queueing_lock``, which
  would also refuse to put a dead worker's run back while a fire waits.)
- **A dead worker's run is retried.** Each daemon's worker sends heartbeats;
  every daemon sweeps, now and then, the running jobs of workers whose
  heartbeat stopped (:meth:`RunQueue.retry_stalled`) back to the queue. The
  retry crawls under the same snapshot id (:func:`fire_snapshot_id`), so if
  the dead attempt's snapshot reached the archive after all, the archive's
  conditional commit refuses the second: one committed snapshot per fire.

procrastinate's own ``procrastinate_defer_jobs_v1`` is called inside our
transaction, which is why the fire row and the queue entry commit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from archive.ids import derived_snapshot_id
from newsvault.sqldb import pg_connect
from scheduler.leader import LeaderLease

log = logging.getLogger(__name__)

QUEUE = "newsvault-runs"
TASK = "newsvault.run"
# A worker whose heartbeat is this old is taken for dead and its runs are retried.
HEARTBEAT_SECONDS = 2.0
STALLED_AFTER_SECONDS = 15.0

FIRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS newsvault_fires (
    job_id TEXT NOT NULL,
    planned_at TEXT NOT NULL,
    fired_by TEXT NOT NULL,
    token BIGINT NOT NULL,
    queue_job BIGINT,
    fired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, planned_at)
)
"""


def ensure_schema(url: str, *more: str) -> None:
    """procrastinate's schema, the fires table and ``more`` tables, created once however many daemons start at once."""
    from procrastinate.schema import SchemaManager

    with pg_connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('newsvault-queue-schema'))")
        present = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        if not (present and present[0]):
            conn.execute(SchemaManager.get_schema())
        for schema in (FIRES_SCHEMA, *more):
            conn.execute(schema)


@dataclass(frozen=True)
class Fire:
    """One planned run of one job, as it travels through the queue."""

    job_id: str
    site: str
    kind: str
    planned_at: str  # ISO 8601 UTC, as the run history writes it
    trigger: str = "scheduled"
    # A manual run: the run id its requester waits for, and its own start URLs.
    run_id: str | None = None
    start_urls: tuple[str, ...] = ()

    @property
    def lock(self) -> str:
        return f"{self.site}:{self.kind}"

    def args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"job_id": self.job_id, "site": self.site, "kind": self.kind,
                                "planned_at": self.planned_at, "trigger": self.trigger}
        if self.run_id:
            args.update(run_id=self.run_id, start_urls=list(self.start_urls))
        return args

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Fire:
        return cls(**{**args, "start_urls": tuple(args.get("start_urls") or ())})


def fire_snapshot_id(fire: Fire) -> str:
    """The snapshot id of the run a fire asks for, the same on every attempt (see the module doc)."""
    return derived_snapshot_id(datetime.fromisoformat(fire.planned_at), f"{fire.job_id}@{fire.planned_at}")


def enqueue_manual(conn: Any, fire: Fire) -> int:
    """Queue a manual run from any host (no fence, no fire row: no schedule planned it); its queue id.

    It waits for its turn behind a running or waiting run of the same (site,
    kind), as a manual run does on one host, rather than overlap it.
    """
    row = conn.execute(
        "SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(%s, %s, 0, %s, NULL, %s::jsonb, NULL)"
        "::procrastinate_job_to_defer_v1]))[1]", (QUEUE, TASK, fire.lock, json.dumps(fire.args()))).fetchone()
    assert row is not None
    return int(row[0])


def enqueue_fire(conn: Any, lease: LeaderLease, fire: Fire) -> str:
    """Put one fire in the queue if this daemon leads and it is not there yet.

    ``conn``: an autocommit psycopg connection. Returns ``"enqueued"``,
    ``"duplicate"`` (this job's planned time was fired already),
    ``"skipped-overlap"`` (an earlier fire of the job still waits) or
    ``"not-leader"`` (the fence refused it).
    """
    with conn.transaction(), conn.cursor() as cursor:
        if not lease.holds(cursor):
            return "not-leader"
        row = cursor.execute(
            "INSERT INTO newsvault_fires (job_id, planned_at, fired_by, token) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (job_id, planned_at) DO NOTHING RETURNING job_id",
            (fire.job_id, fire.planned_at, lease.holder, lease.token)).fetchone()
        if row is None:
            return "duplicate"
        # Only the fenced leader queues, one fire at a time: nothing can slip in between check and insert.
        if cursor.execute("SELECT 1 FROM procrastinate_jobs WHERE queue_name = %s AND lock = %s AND status = 'todo'"
                          " LIMIT 1", (QUEUE, fire.lock)).fetchone():
            return "skipped-overlap"
        deferred = cursor.execute(
            "SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(%s, %s, 0, %s, NULL, %s::jsonb, NULL)"
            "::procrastinate_job_to_defer_v1]))[1]",
            (QUEUE, TASK, fire.lock, json.dumps(fire.args()))).fetchone()
        assert deferred is not None  # the function returns one id per job
        job = deferred[0]
        cursor.execute("UPDATE newsvault_fires SET queue_job = %s WHERE job_id = %s AND planned_at = %s",
                       (job, fire.job_id, fire.planned_at))
    return "enqueued"


class RunQueue:
    """This daemon's worker on the queue: runs fires with ``run_fire`` (blocking, in a thread) until stopped."""

    def __init__(self, url: str, run_fire: Callable[[Fire, int], Any], *, concurrency: int, name: str) -> None:
        self.url = url
        self.run_fire = run_fire
        self.concurrency = concurrency
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None

    def _app(self) -> Any:
        import procrastinate

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url))

        @app.task(name=TASK, queue=QUEUE, pass_context=True)
        def run(context: Any, **args: Any) -> None:
            fire = Fire.from_args(args)
            self.run_fire(fire, int(context.job.attempts or 0) + 1)

        return app

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="run-queue", daemon=True)
        self._thread.start()
        self._started.wait(30)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except asyncio.CancelledError:
            log.info("the run queue's worker stopped")
        except BaseException as exc:  # noqa: BLE001 - reported by the daemon
            self.error = exc
            log.error("the run queue's worker stopped: %s", exc)
        finally:
            self._started.set()
            loop.close()

    async def _serve(self) -> None:
        app = self._app()
        async with app.open_async():
            worker = asyncio.ensure_future(app.run_worker_async(
                queues=[QUEUE], concurrency=self.concurrency, name=self.name, install_signal_handlers=False,
                update_heartbeat_interval=HEARTBEAT_SECONDS, stalled_worker_timeout=STALLED_AFTER_SECONDS,
                fetch_job_polling_interval=1.0, delete_jobs="never"))
            sweeper = asyncio.ensure_future(self._sweep(app))
            self._main = worker
            self._started.set()
            try:
                await worker
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    async def _sweep(self, app: Any) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.retry_stalled(app)
            except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                log.warning("cannot look for stalled runs: %s", exc)

    @staticmethod
    async def retry_stalled(app: Any) -> int:
        """Put the running jobs of workers gone silent back in the queue; how many."""
        retried = 0
        for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=STALLED_AFTER_SECONDS):
            try:
                await app.job_manager.retry_job(job)
            except Exception as exc:  # noqa: BLE001 - another daemon's sweep retried it first
                log.debug("stalled run %s not retried here: %s", job.id, exc)
                continue
            retried += 1
            log.warning("run %s (%s) was on a worker that stopped answering; retried", job.id, job.task_kwargs)
        return retried

    def stop(self, timeout: float) -> None:
        """Stop taking runs; let running ones finish (the daemon stops their crawls on its own grace)."""
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(timeout)
