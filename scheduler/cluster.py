"""A daemon as one host of a cluster: leadership, firing into the queue, working the queue.

Turned on by ``[cluster] url`` (PostgreSQL). Every host runs the same daemon
with the same config and sites:

- the job store (APScheduler's SQLAlchemy store) lives in the shared
  database, and only the leader's scheduler runs (:class:`LeaderLease`); the
  others keep theirs paused and poll the lease, so APScheduler's rule of one
  scheduler per job store holds;
- a fire does not crawl: it puts (job, planned time) in the queue
  (:func:`scheduler.run_queue.enqueue_fire`), fenced by the leader's token;
- every host's worker takes runs from the queue and crawls them as the
  single-host daemon does (the run history, change-tracking state and digest
  index are the shared ones), under a snapshot id that a retry reuses;
- a planned time the cluster missed (no leader for a while) is recorded
  ``missed`` once, and never when a run for it was queued after all.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from newsvault.sqldb import pg_connect
from scheduler.history import RunHistory, RunRecord, iso, new_run_id, utcnow
from scheduler.leader import CONNECT_TIMEOUT_SECONDS, LeaderLease, default_holder
from scheduler.run_queue import (
    Fire,
    RunQueue,
    enqueue_fire,
    enqueue_manual,
    ensure_schema,
    fire_snapshot_id,
)

log = logging.getLogger(__name__)


# Waits between attempts at a fire while the database is unreachable (a restart takes seconds).
FIRE_RETRY_PAUSES = (0.5, 1, 2, 4, 8)

CLUSTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS newsvault_cluster (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    cluster_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


# Each daemon's row, renewed with its lease loop: what `newsvault cluster status` shows of the hosts.
MEMBERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS newsvault_members (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_leader BOOLEAN NOT NULL DEFAULT FALSE,
    stopped_at TIMESTAMPTZ
)
"""


def cluster_id(url: str) -> str:
    """The cluster's name for itself, made once by the first host: the archive knows it as the writer."""
    with pg_connect(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('newsvault-cluster-id'))")
        conn.execute(CLUSTER_SCHEMA)
        conn.execute("INSERT INTO newsvault_cluster (cluster_id) VALUES (%s) ON CONFLICT DO NOTHING",
                     (uuid.uuid4().hex[:12],))
        row = conn.execute("SELECT cluster_id FROM newsvault_cluster").fetchone()
    assert row is not None
    return str(row[0])


@contextlib.contextmanager
def one_host_at_a_time(url: str, what: str) -> Iterator[None]:
    """Hosts starting at once take turns here: APScheduler creates its job table without a lock of its own."""
    with pg_connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"newsvault-{what}",))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"newsvault-{what}",))


def host_member_name() -> str:
    """This daemon's name in the cluster: host and pid."""
    return default_holder()


def sqlalchemy_url(libpq_url: str) -> str:
    """The cluster URL as SQLAlchemy spells it for psycopg 3 (the job store's driver)."""
    scheme, rest = libpq_url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else libpq_url


class ClusterMember:
    """This daemon's part in the cluster; the daemon calls :meth:`start`, :meth:`fire`, :meth:`stop`."""

    def __init__(self, url: str, *, history: RunHistory, on_lead: Callable[[], None],
                 on_step_down: Callable[[], None], run_fire: Callable[[Fire, int], Any],
                 concurrency: int, name: str) -> None:
        self.url = url
        self.history = history
        self.on_lead = on_lead
        self.on_step_down = on_step_down
        ensure_schema(url, MEMBERS_SCHEMA)
        self.lease = LeaderLease(url, holder=name)
        self.name = name
        self._fire_conn: Any = None
        self._connection().execute(
            "INSERT INTO newsvault_members (name, host) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET"
            " started_at = now(), last_heartbeat = now(), is_leader = FALSE, stopped_at = NULL",
            (name, socket.gethostname()))
        self._fire_lock = threading.Lock()
        self.queue = RunQueue(url, run_fire, concurrency=concurrency, name=name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- leadership ----------------------------------------------------------------
    def start(self) -> None:
        self.queue.start()
        self._thread = threading.Thread(target=self._lead_loop, name="cluster-lease", daemon=True)
        self._thread.start()

    def _lead_loop(self) -> None:
        while not self._stop.is_set():
            was_leader = self.lease.is_leader
            try:
                leads = self.lease.renew() if was_leader else self.lease.try_acquire() is not None
            except Exception as exc:  # noqa: BLE001 - the lease's database is down: not leading
                log.warning("cluster lease: %s", exc)
                leads = False
            if leads and not was_leader:
                if self._stop.is_set():  # took the lease while stopping: hand it straight on
                    self.lease.release()
                    break
                log.info("this daemon leads the cluster now (token %s)", self.lease.token)
                try:
                    self.on_lead()
                except Exception as exc:  # noqa: BLE001 - e.g. the database went away meanwhile
                    # A leader that cannot start its scheduler must not keep the lease: hand it on, try again.
                    log.error("cannot take up leadership (%s); the lease is released", exc)
                    self.lease.release()
                    leads = False
            elif was_leader and not leads:
                log.warning("this daemon no longer leads the cluster; its scheduler pauses")
                self.on_step_down()
            self._heartbeat(leads)
            self._stop.wait(self.lease.renew_seconds if leads else self.lease.poll_seconds)

    def _heartbeat(self, leading: bool) -> None:
        try:
            with self._fire_lock:
                self._connection().execute("UPDATE newsvault_members SET last_heartbeat = now(), is_leader = %s"
                                        " WHERE name = %s", (leading, self.name))
        except Exception as exc:  # noqa: BLE001 - the database is down; the lease loop says so too
            log.debug("cluster heartbeat not written: %s", exc)

    @property
    def is_leader(self) -> bool:
        return self.lease.is_leader

    # -- fires -----------------------------------------------------------------------
    def fire(self, job_id: str, planned: datetime, trigger: str = "scheduled") -> str:
        """Queue the run of ``job_id`` planned for ``planned`` (the leader's scheduler calls this)."""
        site, _, kind = job_id.partition(":")
        fire = Fire(job_id=job_id, site=site, kind=kind, planned_at=str(iso(planned)), trigger=trigger)
        with self._fire_lock:
            outcome = self._with_retries(lambda conn: enqueue_fire(conn, self.lease, fire))
        log.info("fire %s at %s: %s", job_id, fire.planned_at, outcome)
        return outcome

    def queue_manual(self, fire: Fire) -> None:
        """Queue a manual run (any host may, leader or not)."""
        with self._fire_lock:
            job = self._with_retries(lambda conn: enqueue_manual(conn, fire))
        log.info("manual run %s of %s queued (queue job %s)", fire.run_id, fire.job_id, job)

    def record_missed(self, job_id: str, planned: datetime, error: str) -> bool:
        """Record a planned time nobody ran as missed, unless a run for it was queued; True if recorded."""
        planned_at = str(iso(planned))

        def claim(conn: Any) -> Any:
            with conn.transaction(), conn.cursor() as cursor:
                if not self.lease.holds(cursor):
                    return None
                return cursor.execute(
                    "INSERT INTO newsvault_fires (job_id, planned_at, fired_by, token) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (job_id, planned_at) DO NOTHING RETURNING job_id",
                    (job_id, planned_at, f"missed by {self.lease.holder}", self.lease.token)).fetchone()

        with self._fire_lock:
            claimed = self._with_retries(claim)
        if claimed is None:
            return False
        site, _, kind = job_id.partition(":")
        self.history.record(RunRecord(run_id=new_run_id(planned), job_id=job_id, site=site, kind=kind,
                                      trigger="scheduled", status="missed", planned_at=planned_at,
                                      finished_at=iso(utcnow()), error=error))
        return True

    def stop(self, grace: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.queue.stop(grace)
        self.lease.release()
        with contextlib.suppress(Exception):
            self._connection().execute("UPDATE newsvault_members SET stopped_at = now(), is_leader = FALSE"
                                       " WHERE name = %s", (self.name,))
        if self._fire_conn is not None:
            self._fire_conn.close()

    # -- the connection fires go through ----------------------------------------------------
    def _connection(self) -> Any:
        """The fires' connection, opened again after the database restarted or the link broke."""
        if self._fire_conn is None or self._fire_conn.closed or self._fire_conn.broken:
            if self._fire_conn is not None:
                self._fire_conn.close()
            self._fire_conn = pg_connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                         application_name="newsvault fires")
        return self._fire_conn

    def _with_retries(self, work: Callable[[Any], Any]) -> Any:
        """``work(connection)``, again on a new connection while the database is unreachable (a restart).

        A fire that still fails is raised: APScheduler logs it, and the planned
        time is then recorded missed by whichever host leads next.
        """
        import psycopg

        for pause in FIRE_RETRY_PAUSES:
            try:
                return work(self._connection())
            except psycopg.OperationalError as exc:
                log.warning("cluster database unreachable (%s); trying again in %ss", exc, pause)
                self._stop.wait(pause)
        return work(self._connection())


def attempt_run_id(fire: Fire, attempt: int) -> str:
    """The run history id of one attempt at a fire: the fire's snapshot id and the attempt number.

    A manual run's first attempt keeps the id its requester waits for.
    """
    if fire.run_id:
        return fire.run_id if attempt == 1 else f"{fire.run_id}-a{attempt}"
    return f"{fire_snapshot_id(fire)}-a{attempt}"
