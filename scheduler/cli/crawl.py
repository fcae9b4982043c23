"""`newsvault sites`, `newsvault crawl` and `newsvault revisits`: list site profiles, run one crawl, show the revisit queue."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from newsvault.errors import UnknownSiteError
from newsvault.names import KINDS
from scheduler.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, archive_option, config_from_args

# Stats the pipelines set, shown in the summary when present.
_SUMMARY_COUNTS = ("new", "updated", "unchanged", "removed", "duplicates", "near_duplicates", "dropped")


def snapshot_id_arg(value: str) -> str:
    from archive.ids import is_snapshot_id

    if not is_snapshot_id(value):
        raise argparse.ArgumentTypeError(f"not a snapshot id (YYYYMMDDTHHMMSSZ-xxxxxx): {value!r}")
    return value


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `sites`, `crawl` and `revisits`."""
    sites = subparsers.add_parser(
        "sites",
        parents=[common],
        help="list the site profiles",
        description="List the site profiles: name, domains, crawl kinds and schedules.",
        epilog="Example: newsvault sites",
    )
    sites.set_defaults(handler=cmd_sites)

    crawl = subparsers.add_parser(
        "crawl",
        parents=[common],
        help="run one crawl of a site now",
        description="Run one crawl of SITE and archive it as a snapshot.",
        epilog="Example: newsvault crawl sample --kind articles --start-url http://127.0.0.1:8000/ --output items.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    crawl.add_argument("site", metavar="SITE", help="site profile name (see `newsvault sites`)")
    crawl.add_argument("--kind", choices=KINDS, default="articles", help="what to crawl (default: articles)")
    crawl.add_argument(
        "--start-url", dest="start_urls", action="append", metavar="URL",
        help="start here instead of the profile's start URLs (repeatable)",
    )
    crawl.add_argument("--output", metavar="FILE.jsonl", help="also write the items here, one JSON object per line")
    crawl.add_argument("--no-archive", action="store_true", help="do not write or upload a snapshot")
    crawl.add_argument("--json-summary", metavar="FILE", help="write the run summary as JSON")
    crawl.add_argument("--snapshot-id", type=snapshot_id_arg, metavar="ID",
                       help="commit under this snapshot id (a cluster's retried run reuses its first attempt's)")
    crawl.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="live progress on stderr (default: setting NEWSVAULT_PROGRESS)",
    )
    archive_option(crawl)
    crawl.set_defaults(handler=cmd_crawl)

    revisits = subparsers.add_parser(
        "revisits",
        parents=[common],
        help="show which known articles the next crawls revisit",
        description="Show the revisit queue of SITE: known articles per tier (time since their last change), "
        "how many are due now, and the next due times.",
        epilog="Example: newsvault revisits sample --next 5",
    )
    revisits.add_argument("site", metavar="SITE", help="site profile name (see `newsvault sites`)")
    revisits.add_argument("--next", type=int, default=10, metavar="N", help="list the next N due articles (default 10)")
    revisits.add_argument("--json", action="store_true", help="print the queue as JSON")
    revisits.set_defaults(handler=cmd_revisits)


def _schedule_text(schedule: Any) -> str:
    if schedule is None or not schedule.enabled:
        return "-"
    if schedule.cron:
        return f"cron {schedule.cron}"
    if schedule.interval_seconds:
        return f"every {schedule.interval_seconds}s"
    return "-"


def cmd_sites(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from spiders.profile import list_profiles

    config = config_from_args(args)
    table = Table("name", "domains", "kinds", "schedule", box=None, pad_edge=False)
    for profile in list_profiles(config.sites_dir):
        schedules = []
        for kind in profile.kinds:
            override = config.schedules.get(profile.name, {}).get(kind)
            schedules.append(f"{kind}: {_schedule_text(override or getattr(profile.schedule, kind))}")
        table.add_row(profile.name, ", ".join(profile.domains()), ", ".join(profile.kinds), "; ".join(schedules))
    Console(width=200).print(table)
    return EXIT_OK


def format_summary(summary: Any) -> str:
    stats = summary.stats
    lines = [
        f"{summary.site} {summary.kind}: {summary.status} ({summary.finish_reason})",
        f"  pages {summary.pages}  items {summary.items}  errors {summary.errors}",
    ]
    counts = [f"{name} {stats[f'newsvault/{name}']}" for name in _SUMMARY_COUNTS if f"newsvault/{name}" in stats]
    if counts:
        lines.append("  " + "  ".join(counts))
    revisits = {k.removeprefix("newsvault/revisit/"): v for k, v in stats.items() if k.startswith("newsvault/revisit/")}
    if revisits.get("due"):
        line = f"  revisits: {revisits.get('requested', 0)} of {revisits['due']} due"
        if revisits.get("deferred"):
            line += f" ({revisits['deferred']} wait for the next run: budget)"
        if revisits.get("unreachable"):
            line += f"; {revisits['unreachable']} unanswered"
        if revisits.get("hosts_down"):
            line += f"; {revisits['hosts_down']} host(s) down, {revisits.get('skipped_host_down', 0)} skipped"
        lines.append(line)
    skipped = sorted((k.removeprefix("newsvault/pages/"), v) for k, v in stats.items() if k.startswith("newsvault/pages/"))
    if skipped:
        lines.append("  pages not used: " + ", ".join(f"{k} {v}" for k, v in skipped))
    if summary.snapshot_id:
        lines.append(f"  snapshot {summary.snapshot_id} ({summary.snapshot_state})")
    if summary.output:
        lines.append(f"  items written to {summary.output}")
    return "\n".join(lines)


def cmd_crawl(args: argparse.Namespace) -> int:
    from scheduler.crawl import run_crawl

    config = config_from_args(args)
    try:
        summary = run_crawl(
            config,
            args.site,
            args.kind,
            start_urls=args.start_urls,
            output=args.output,
            archive=not args.no_archive,
            settings=None if args.progress is None else {"NEWSVAULT_PROGRESS": args.progress},
            snapshot_id=args.snapshot_id,
        )
    except UnknownSiteError as exc:
        print(f"newsvault: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json_summary:
        summary.write_json(args.json_summary)
    print(format_summary(summary))
    if summary.status == "failed":
        print(f"newsvault: crawl failed: {summary.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_revisits(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from scheduler.revisits import revisit_queue

    if args.next < 0:
        print(f"newsvault: error: --next must be 0 or more, got {args.next}", file=sys.stderr)
        return EXIT_USAGE
    try:
        queue = revisit_queue(config_from_args(args), args.site, upcoming=args.next)
    except UnknownSiteError as exc:
        print(f"newsvault: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(queue.as_dict(), indent=2))
        return EXIT_OK
    policy = queue.policy
    print(f"{args.site}: {queue.articles} known articles, {queue.due_now} due now "
          f"(mode {policy.mode}, at most {policy.budget} revisits per run)")
    if policy.mode != "policy":
        print("  mode all: every known live article is revisited on every run" if policy.mode == "all"
              else "  mode off: known articles are not revisited")
    table = Table("tier (quiet since the last change)", "articles", "due now", "next due", box=None, pad_edge=False)
    for tier in (*queue.tiers, queue.gone):
        table.add_row(tier.label, str(tier.articles), str(tier.due_now), _when(tier.next_due, queue.now))
    Console(width=200).print(table)
    print(f"  unreachable, backing off: {queue.unreachable}; gone and left the queue: {queue.dropped}")
    if queue.next_due:
        print("next due:")
        for when, url in queue.next_due:
            print(f"  {_when(when, queue.now)}  {url}")
    return EXIT_OK


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    stamp = moment.strftime("%Y-%m-%d %H:%M UTC")
    if moment <= now:
        return f"{stamp} (due)"
    minutes = int((moment - now).total_seconds() // 60)
    ahead = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} d"
    return f"{stamp} (in {ahead})"
