"""What a cluster is doing, read from its database: ``newsvault cluster status`` and its JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from scheduler.leader import CONNECT_TIMEOUT_SECONDS, lease_state
from scheduler.run_queue import QUEUE


@dataclass
class Member:
    name: str
    host: str
    started_at: str
    last_heartbeat: str
    seconds_since_heartbeat: float
    leading: bool
    stopped_at: str | None


@dataclass
class ClusterStatus:
    leader: str | None
    leader_token: int | None
    leader_renewed_at: str | None
    members: list[Member] = field(default_factory=list)
    # procrastinate job states of the run queue: todo (waiting), doing (running), succeeded, failed...
    queue: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # queued runs taken more than once (a worker died or stopped answering)
    runs_per_host: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def cluster_status(url: str) -> ClusterStatus:
    """The leader, each daemon's last heartbeat, the queue and the runs per host."""
    import psycopg

    lease = lease_state(url)
    status = ClusterStatus(leader=lease.holder if lease else None, leader_token=lease.token if lease else None,
                           leader_renewed_at=lease.renewed_at if lease else None)
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        def table(name: str) -> bool:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
            return bool(row and row[0])

        if table("newsvault_members"):
            for name, host, started, beat, age, leading, stopped in conn.execute(
                    "SELECT name, host, started_at, last_heartbeat, EXTRACT(EPOCH FROM now() - last_heartbeat),"
                    " is_leader, stopped_at FROM newsvault_members ORDER BY name"):
                status.members.append(Member(name, host, str(_iso(started)), str(_iso(beat)), float(age),
                                             bool(leading), _iso(stopped)))
        if table("procrastinate_jobs"):
            for state, count in conn.execute("SELECT status::text, COUNT(*) FROM procrastinate_jobs"
                                             " WHERE queue_name = %s GROUP BY status", (QUEUE,)):
                status.queue[str(state)] = int(count)
            row = conn.execute("SELECT COUNT(*) FROM procrastinate_jobs WHERE queue_name = %s AND attempts > 1",
                               (QUEUE,)).fetchone()
            status.retried = int(row[0]) if row else 0
        if table("runs"):
            for host, run_status, count in conn.execute(
                    "SELECT COALESCE(host, '?'), status, COUNT(*) FROM runs GROUP BY 1, 2 ORDER BY 1, 2"):
                status.runs_per_host.setdefault(str(host), {})[str(run_status)] = int(count)
    return status
