"""`newsvault sites` and `newsvault crawl`: list site profiles, run one crawl."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from newsvault.errors import UnknownSiteError
from newsvault.names import KINDS
from scheduler.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, archive_option, config_from_args

# Stats the pipelines set, shown in the summary when present.
_SUMMARY_COUNTS = ("new", "updated", "unchanged", "removed", "duplicates", "near_duplicates", "dropped")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `sites` and `crawl`."""
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
    crawl.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="live progress on stderr (default: setting NEWSVAULT_PROGRESS)",
    )
    archive_option(crawl)
    crawl.set_defaults(handler=cmd_crawl)


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
