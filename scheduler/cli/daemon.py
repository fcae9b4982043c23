"""`newsvault daemon`, `runs`, `jobs` and `trigger`: the scheduler from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from newsvault.errors import ConfigError
from newsvault.names import KINDS
from scheduler.cli.common import EXIT_FAILED, EXIT_OK, archive_option, config_from_args


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's commands."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "daemon", parents=[common], formatter_class=fmt,
        help="run the scheduler in the foreground",
        description="Run every scheduled (site, kind) crawl until SIGTERM or Ctrl-C.",
        epilog="Example: newsvault daemon --metrics-port 9310",
    )
    archive_option(p)
    p.add_argument("--metrics-port", type=int, metavar="P",
                   help="serve /healthz and /metrics on this port (0: any free port)")
    p.add_argument("--web-port", type=int, metavar="P",
                   help="serve the web view on this port too (0: any free port; host: [web] host)")
    p.add_argument("--start-url", action="append", default=[], metavar="SITE[:KIND]=URL",
                   help="crawl SITE (or only its KIND job) from URL instead of the profile's "
                        "start URLs (repeatable)")
    p.add_argument("--run-now", action="store_true", help="run every job once right away")
    p.set_defaults(handler=cmd_daemon)

    p = subparsers.add_parser(
        "runs", parents=[common], formatter_class=fmt, help="show the run history",
        description="Show recent runs, newest first.",
        epilog="Example: newsvault runs sample --limit 5 --json",
    )
    p.add_argument("site", nargs="?", help="only this site")
    p.add_argument("--kind", choices=KINDS, help="only this kind")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_runs)

    p = subparsers.add_parser(
        "health", parents=[common], formatter_class=fmt, help="show each job's run-health figures",
        description="Show the latest judged run of each job: its health figures beside the median of the "
        "job's good runs, and why it is degraded if it is.",
        epilog="Example: newsvault health sample --json",
    )
    p.add_argument("site", nargs="?", help="only this site")
    p.add_argument("--json", action="store_true", help="one JSON object per job")
    p.set_defaults(handler=cmd_health)

    p = subparsers.add_parser(
        "jobs", parents=[common], formatter_class=fmt, help="show scheduled jobs",
        description="Show each job's schedule and next run time, from the config and the job store.",
        epilog="Example: newsvault jobs --json",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_jobs)

    p = subparsers.add_parser(
        "trigger", parents=[common], formatter_class=fmt, help="run a crawl now",
        description="Run a crawl now: through the running daemon if there is one (it waits for a "
                    "running crawl of the same job), else in this process. Recorded as 'manual'.",
        epilog="Example: newsvault trigger sample --kind discussions",
    )
    archive_option(p)
    p.add_argument("site")
    p.add_argument("--kind", choices=KINDS, default="articles", help="default: articles")
    p.add_argument("--start-url", action="append", default=[], metavar="URL",
                   help="crawl from this URL instead of the profile's start URLs")
    p.add_argument("--no-wait", action="store_true",
                   help="with a daemon: return once the request is queued")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="with a daemon: give up waiting after S seconds (default: crawl timeout + 60)")
    p.set_defaults(handler=cmd_trigger)


def _start_urls(values: list[str]) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for value in values:
        site, sep, url = value.partition("=")
        if not sep or not site or not url:
            raise ConfigError("command line", "--start-url", f"expected SITE[:KIND]=URL, got {value!r}")
        mapping.setdefault(site, []).append(url)
    return mapping


def cmd_daemon(args: argparse.Namespace) -> int:
    from scheduler.daemon import run_daemon

    config = config_from_args(args)
    return run_daemon(config, metrics_port=args.metrics_port, web_port=args.web_port,
                      start_urls=_start_urls(args.start_url), run_now=args.run_now)


def cmd_runs(args: argparse.Namespace) -> int:
    from scheduler.health import ArchiveHealth
    from scheduler.history import open_history

    config = config_from_args(args)
    history = open_history(config.state_dir, url=config.cluster.url_value)
    try:
        job_id = f"{args.site}:{args.kind}" if args.site and args.kind else None
        runs = history.list_runs(site=args.site, job_id=job_id, limit=args.limit)
        if args.kind and not job_id:
            runs = [r for r in runs if r.kind == args.kind]
    finally:
        history.close()
    for run in runs:
        if args.json:
            print(json.dumps(run.to_json(), ensure_ascii=False))
        else:
            counts = " ".join(f"{k}={v}" for k, v in run.counts.items())
            snapshot = f"{run.snapshot_id} ({run.snapshot_state or '-'})" if run.snapshot_id else "-"
            why = run.error or "; ".join(run.reasons if run.status == "degraded" else [])
            print(f"{run.planned_at or '-':27} {run.job_id:22} {run.trigger:9} {run.status:15} "
                  f"{snapshot:36} {counts}{'  ' + why if why else ''}")
    if not args.json:
        # What the rows cannot say: snapshots still waiting for the archive, and why.
        note = ArchiveHealth(state_dir=config.state_dir, spool_dir=config.spool_dir,
                             archive_url=config.archive.url).summary_line()
        if note:
            print(f"archive: {note}", file=sys.stderr)
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    from newsvault.run_health import label, show
    from scheduler.history import open_history
    from scheduler.run_checks import job_health

    config = config_from_args(args)
    history = open_history(config.state_dir, url=config.cluster.url_value)
    try:
        jobs = job_health(history, config, site=args.site)
    finally:
        history.close()
    if not jobs and not args.json:
        print("no judged runs yet" + (f" of {args.site}" if args.site else ""), file=sys.stderr)
    for job in jobs:
        if args.json:
            print(json.dumps(job.as_dict(), ensure_ascii=False))
            continue
        run = job.run
        print(f"{run.job_id}: {run.status} (run {run.run_id}, finished {run.finished_at}); "
              f"baseline: median of {job.baseline_runs} good runs")
        for reason in run.reasons:
            print(f"  ! {reason}")
        for figure, value in job.figures.items():
            usual = job.medians.get(figure)
            print(f"  {label(figure):28} {show(figure, value):>9}   {show(figure, usual) if usual is not None else '-':>9}")
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from scheduler.daemon import stored_jobs
    from scheduler.history import iso
    from scheduler.lock import daemon_running
    from scheduler.schedules import collect_jobs

    config = config_from_args(args)
    specs = collect_jobs(config)
    stored = stored_jobs(config)
    running = daemon_running(config.state_dir)
    if not args.json:
        print(f"daemon: {'running' if running else 'not running'} on {config.state_dir}")
    for spec in specs:
        job = stored.get(spec.job_id)
        next_run = iso(job.next_run_time) if job is not None and job.next_run_time else None
        row = {"job_id": spec.job_id, "site": spec.site, "kind": spec.kind,
               "schedule": spec.describe(), "next_run_time": next_run,
               "in_job_store": job is not None, "daemon_running": running}
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{spec.job_id:22} {spec.describe():34} next: {next_run or 'not scheduled yet'}")
    return EXIT_OK


def cmd_trigger(args: argparse.Namespace) -> int:
    from scheduler.daemon import crawl_options
    from scheduler.jobs import job_kwargs, run_job
    from scheduler.lock import daemon_running
    from scheduler.trigger import request_trigger, wait_for_run

    config = config_from_args(args)
    if daemon_running(config.state_dir):
        run_id = request_trigger(config.state_dir, args.site, args.kind, start_urls=args.start_url)
        print(f"requested run {run_id} of {args.site}:{args.kind} from the daemon")
        if args.no_wait:
            return EXIT_OK
        timeout = args.timeout or config.daemon.crawl_timeout_seconds + 60
        waited = wait_for_run(config.state_dir, run_id, timeout, history_url=config.cluster.url_value)
        if waited.outcome == "finished" and waited.record is not None:
            record = waited.record
            _print_result(record.run_id, record.status, record.snapshot_id, record.error)
            return EXIT_OK if record.status == "ok" else EXIT_FAILED
        if waited.outcome == "timeout":
            print(f"run {run_id} did not finish within {timeout:.0f}s", file=sys.stderr)
        else:
            what = "before running" if waited.outcome == "daemon_gone_before" else "during"
            print(f"run {run_id}: the daemon stopped {what} it", file=sys.stderr)
        return EXIT_FAILED

    kwargs = job_kwargs(args.site, args.kind, options=crawl_options(config),
                        crawl_timeout=config.daemon.crawl_timeout_seconds, start_urls=args.start_url)
    print(f"no daemon on {config.state_dir}: running {args.site}:{args.kind} here")
    result = run_job(**kwargs, trigger="manual")
    if not result:
        print("the run did not start", file=sys.stderr)
        return EXIT_FAILED
    _print_result(result["run_id"], result["status"], result["snapshot_id"], result["error"])
    return EXIT_OK if result["status"] == "ok" else EXIT_FAILED


def _print_result(run_id: str, status: str, snapshot_id: str | None, error: str | None) -> None:
    print(f"run {run_id}: {status}, snapshot {snapshot_id or '-'}" + (f": {error}" if error else ""))
