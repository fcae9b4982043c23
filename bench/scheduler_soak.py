"""Scheduler soak: the daemon running several short-interval jobs for minutes, measured from outside.

A small sample site (its own process), two profiles pointing at it (``sample``
and a copy ``sample2``), and a config with interval jobs every ``--interval``
seconds: sample articles (one section page: the front page links the
1-second "slow" fault page), sample
discussions and sample2 discussions. ``newsvault daemon`` runs as a child for
``--minutes``; then it gets SIGTERM and ``newsvault runs --json`` gives the
history.

Reported per job: planned runs (whole intervals in the soak), fired (history
rows of scheduled runs, whatever their status), ran, overlaps (two runs of
one job whose start..end intersect, and ``skipped-overlap`` rows), start lag
p50/p99 (started_at - planned_at); the daemon's own CPU seconds / wall time
(its children excluded) and its RSS after start-up and at the end.

    python bench/scheduler_soak.py [--quick] [--minutes 10] [--interval 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from common import (
    FAST_CRAWL_ENV,
    PYTHON,
    SampleSiteProcess,
    Table,
    child_env,
    run_child,
    write_json,
    write_sample_profile,
)

JOBS = (("sample", "articles"), ("sample", "discussions"), ("sample2", "discussions"))
WARMUP_SECONDS = 5.0


def _config(interval: int) -> str:
    lines = []
    for site, kind in JOBS:
        lines += [
            f"[schedules.{site}.{kind}]",
            f"interval_seconds = {interval}",
            "jitter_seconds = 0",
            "enabled = true",
            "",
        ]
    lines += [
        "[daemon]",
        "misfire_grace_seconds = 600",
        "crawl_timeout_seconds = 120",
        "shutdown_grace_seconds = 30",
        "",
    ]
    return "\n".join(lines)


def _profiles(sites: Path, base_url: str) -> None:
    for name in ("sample", "sample2"):
        path = write_sample_profile(sites, base_url, name=name, articles=300)
        text = path.read_text(encoding="utf-8")
        # One listing page only: a short crawl, so the interval rather than the crawl sets the pace.
        text = re.sub(r"(?m)^max_pages = 200$", "max_pages = 1", text)
        text = re.sub(r"(?ms)^\[schedule\.articles\].*", "", text)  # the config's schedules rule
        path.write_text(text, encoding="utf-8")


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def analyse(
    runs: list[dict[str, Any]], soak_seconds: float, interval: int
) -> tuple[Table, dict[str, Any]]:
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_job[run["job_id"]].append(run)
    table = Table(
        [
            "job",
            "planned",
            "fired",
            "ran",
            "ok",
            "failed/timeout",
            "skipped-overlap",
            "missed",
            "overlaps",
            "lag p50 s",
            "lag p99 s",
        ]
    )
    lags_all: list[float] = []
    totals: Counter[str] = Counter()
    for site, kind in JOBS:
        job = f"{site}:{kind}"
        rows = [r for r in by_job.get(job, []) if r.get("trigger") == "scheduled"]
        statuses = Counter(r["status"] for r in rows)
        ran = [r for r in rows if r.get("started_at")]
        lags: list[float] = []
        spans: list[tuple[datetime, datetime]] = []
        for r in ran:
            started, planned_at = _parse(r["started_at"]), _parse(r.get("planned_at"))
            if started is None:
                continue
            if planned_at is not None:
                lags.append((started - planned_at).total_seconds())
            spans.append((started, _parse(r.get("finished_at")) or started))
        lags_all += lags
        spans.sort()
        overlaps = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
        planned = int(soak_seconds // interval)
        failed = statuses["failed"] + statuses["timeout"]
        table.add(
            job,
            planned,
            len(rows),
            len(ran),
            statuses["ok"],
            failed,
            statuses["skipped-overlap"],
            statuses["missed"],
            overlaps,
            percentile(lags, 0.5),
            percentile(lags, 0.99),
        )
        totals.update(
            {
                "planned": planned,
                "fired": len(rows),
                "ran": len(ran),
                "ok": statuses["ok"],
                "failed": failed,
                "skipped_overlap": statuses["skipped-overlap"],
                "missed": statuses["missed"],
                "overlaps": overlaps,
            }
        )
    summary = {
        **totals,
        "lag_p50": percentile(lags_all, 0.5),
        "lag_p99": percentile(lags_all, 0.99),
        "lag_max": max(lags_all, default=float("nan")),
    }
    return table, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 minute")
    parser.add_argument("--minutes", type=float, help="soak length (default 10)")
    parser.add_argument(
        "--interval", type=int, default=5, help="seconds between runs of each job (default 5)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    minutes = args.minutes or (1.0 if args.quick else 10.0)

    import psutil

    with tempfile.TemporaryDirectory(prefix="nv-soak-") as tmp, SampleSiteProcess(300) as site:
        work = Path(tmp)
        _profiles(work / "sites", site.base_url)
        config = work / "newsvault.toml"
        config.write_text(_config(args.interval), encoding="utf-8")
        env = child_env(
            {
                **FAST_CRAWL_ENV,
                "NEWSVAULT_SITES_DIR": str(work / "sites"),
                "NEWSVAULT_STATE_DIR": str(work / "state"),
                "NEWSVAULT_ARCHIVE": str(work / "archive"),
            }
        )
        cli = [PYTHON, "-m", "scheduler"]
        daemon = subprocess.Popen(
            [
                *cli,
                "daemon",
                "--config",
                str(config),
                "--start-url",
                f"sample:articles={site.base_url}/section/politics/",
            ],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=(work / "daemon.err").open("wb"),
        )
        started = time.monotonic()
        proc = psutil.Process(daemon.pid)
        time.sleep(WARMUP_SECONDS)
        if daemon.poll() is not None:
            raise RuntimeError(
                f"daemon exited at start: {(work / 'daemon.err').read_text()[-2000:]}"
            )
        cpu0 = sum(proc.cpu_times()[:2])
        rss_start = proc.memory_info().rss / 1024**2
        t0 = time.monotonic()
        deadline = started + minutes * 60
        while time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(1)
        if daemon.poll() is not None:
            raise RuntimeError(
                f"daemon died during the soak: {(work / 'daemon.err').read_text()[-2000:]}"
            )
        cpu1 = sum(proc.cpu_times()[:2])
        rss_end = proc.memory_info().rss / 1024**2
        measured_wall = time.monotonic() - t0
        soak_seconds = time.monotonic() - started
        daemon.send_signal(signal.SIGTERM)
        try:
            exit_code = daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            exit_code = daemon.wait()
        listing = run_child(
            [*cli, "runs", "--json", "--limit", "100000", "--config", str(config)],
            env=env,
            cwd=work,
        ).check("newsvault runs")
        runs = [
            json.loads(line) for line in listing.stdout.splitlines() if line.strip().startswith("{")
        ]

    table, summary = analyse(runs, soak_seconds, args.interval)
    idle_cpu = (cpu1 - cpu0) / measured_wall
    print(
        f"scheduler soak: {minutes:g} min, {len(JOBS)} jobs every {args.interval} s, 300-article sample site"
    )
    print(table.render())
    print(
        f"start lag over all runs: p50 {summary['lag_p50']:.3f} s, p99 {summary['lag_p99']:.3f} s, max {summary['lag_max']:.3f} s"
    )
    print(
        f"overlapping runs of one job: {summary['overlaps']} (must be 0); skipped-overlap rows: {summary['skipped_overlap']}"
    )
    print(
        f"daemon's own CPU: {cpu1 - cpu0:.2f} s over {measured_wall:.0f} s = {idle_cpu * 100:.2f} % of a core (children excluded)"
    )
    print(
        f"daemon RSS: {rss_start:.1f} MB after start-up, {rss_end:.1f} MB at the end ({rss_end / rss_start:.2f}x); "
        f"exit code on SIGTERM {exit_code}"
    )
    write_json(
        args.json,
        {
            "minutes": minutes,
            "interval": args.interval,
            "jobs": table.as_dicts(),
            **summary,
            "daemon_cpu_seconds": cpu1 - cpu0,
            "measured_wall_seconds": measured_wall,
            "idle_cpu_fraction": idle_cpu,
            "rss_start_mb": rss_start,
            "rss_end_mb": rss_end,
            "exit_code": exit_code,
            "runs": len(runs),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
