"""Reading the archive: `catalog`, `history`, `diff`, `thread`, `changes`, `search`, `export`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from newsvault.config import Config
from scheduler.cli.common import EXIT_FAILED, EXIT_OK, archive_option, config_from_args


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the commands that read the catalog."""

    def add(name: str, help_text: str, example: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, parents=[common], help=help_text, description=help_text + ".",
                                       epilog=f"Example: {example}")
        archive_option(parser)
        parser.add_argument("--catalog", metavar="FILE", help="the catalog file (default: <state>/catalog.sqlite)")
        if json_flag:
            parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    cat = add("catalog", "rebuild the catalog from the archive alone, add what it lacks, or show what it holds",
              "newsvault catalog rebuild", json_flag=True)
    cat.add_argument("action", choices=("rebuild", "sync", "status"))
    cat.set_defaults(handler=cmd_catalog)

    hist = add("history", "an article's versions: when, in which snapshots, what changed",
               "newsvault history https://example.org/news/1-story.html")
    hist.add_argument("url", metavar="URL")
    hist.set_defaults(handler=cmd_history)

    diff = add("diff", "what changed between two versions of an article (fields, paragraphs, words)",
               "newsvault diff https://example.org/news/1-story.html --from 1 --to 2 --format html", json_flag=False)
    diff.add_argument("url", metavar="URL")
    diff.add_argument("--from", dest="from_version", metavar="V",
                      help="version number (negative: from the end) or a snapshot id holding it (default: the one before --to)")
    diff.add_argument("--to", dest="to_version", metavar="V", help="version number or snapshot id (default: the latest)")
    diff.add_argument("--format", choices=("text", "json", "html"), default="text")
    diff.set_defaults(handler=cmd_diff)

    thread = add("thread", "a discussion thread over time: comment count and last activity per observation",
                 "newsvault thread https://example.org/threads/42")
    thread.add_argument("url", metavar="URL")
    thread.set_defaults(handler=cmd_thread)

    changes = add("changes", "what was new, updated and removed on a site in a time window",
                  "newsvault changes sample --since 2026-12-01T00:00:00Z")
    changes.add_argument("site", metavar="SITE")
    changes.add_argument("--since", required=True, metavar="TIME", help="ISO 8601 (no zone: UTC)")
    changes.add_argument("--until", metavar="TIME", help="ISO 8601 (default: now)")
    changes.set_defaults(handler=cmd_changes)

    search = add("search", "full text over every version of every archived article",
                 'newsvault search "grain corridor" --site sample')
    search.add_argument("query", metavar="QUERY", help="words, \"a phrase\", OR, NOT, prefix* (SQLite FTS5 syntax)")
    search.add_argument("--site", metavar="SITE")
    search.add_argument("--since", metavar="TIME")
    search.add_argument("--until", metavar="TIME")
    search.add_argument("--limit", type=int, default=50, metavar="N")
    search.set_defaults(handler=cmd_search)

    export = add("export", "export articles, versions or discussion observations (or one snapshot as WACZ)",
                 "newsvault export versions --format parquet --to versions.parquet", json_flag=False)
    export.add_argument("what", metavar="WHAT",
                        help="articles (latest versions), versions (every version), observations, or a snapshot id (--format wacz)")
    export.add_argument("--format", choices=("jsonl", "csv", "parquet", "wacz"), default="jsonl")
    export.add_argument("--to", required=True, metavar="FILE")
    export.add_argument("--site", metavar="SITE")
    export.set_defaults(handler=cmd_export)


def _catalog(config: Config, args: argparse.Namespace, *, create: bool = False) -> Any:
    from catalog.db import Catalog

    return Catalog(Path(args.catalog) if args.catalog else config.catalog_path, config.archive.url, create=create)


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))


def cmd_catalog(args: argparse.Namespace) -> int:
    from archive.progress import count_bar
    from archive.stores import open_store
    from catalog.ingest import rebuild, sync

    config = config_from_args(args)
    path = Path(args.catalog) if args.catalog else config.catalog_path
    if args.action == "status":
        with _catalog(config, args) as catalog:
            data = {"catalog": str(path), "archive": catalog.archive, **catalog.counts()}
        if args.json:
            _print(data)
        else:
            print(" ".join(f"{k} {v}" for k, v in data.items()))
        return EXIT_OK
    store = open_store(config.archive.url, config.scrapy_settings())
    with count_bar(f"catalog {args.action}") as progress:
        if args.action == "rebuild":
            report = rebuild(path, config.archive.url, store, progress=progress)
        else:
            with _catalog(config, args, create=True) as catalog:
                report = sync(catalog, store, progress=progress)
    for snapshot_id, why in sorted(report.skipped.items()):
        print(f"skipped {snapshot_id}: {why}", file=sys.stderr)
    if args.json:
        _print({"ingested": report.ingested, "items": report.items, "skipped": report.skipped})
    else:
        print(f"{args.action}: {report.ingested} snapshot(s) added, {report.items} items in the catalog, "
              f"{len(report.skipped)} skipped")
    return EXIT_FAILED if report.skipped else EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from catalog.query import history

    config = config_from_args(args)
    with _catalog(config, args) as catalog:
        data = history(catalog, args.url)
    if args.json:
        _print(data)
        return EXIT_OK
    print(f"{data['canonical_url']} ({data['site']}): {len(data['versions'])} version(s)")
    for row in data["versions"]:
        changed = ", ".join(row["changed_fields"]) or "first seen"
        print(f"  v{row['version']:<3} {row['first_seen']}  {len(row['snapshots'])} snapshot(s)  "
              f"body {row['body_chars']} ({row['body_delta']:+d})  {changed}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from catalog.db import CatalogError
    from catalog.diff import diff, to_html, to_text
    from catalog.query import pick_version, versions

    config = config_from_args(args)
    with _catalog(config, args) as catalog:
        found = versions(catalog, args.url)
    new = pick_version(found, args.to_version, -1)
    old = pick_version(found, args.from_version, max(0, new.number - 2))
    if old.number > new.number:
        raise CatalogError(f"--from version {old.number} is newer than --to version {new.number}")
    result = diff(old, new)
    if args.format == "json":
        _print(result)
    else:
        sys.stdout.write(to_html(result) if args.format == "html" else to_text(result))
    return EXIT_OK


def cmd_thread(args: argparse.Namespace) -> int:
    from catalog.query import thread

    config = config_from_args(args)
    with _catalog(config, args) as catalog:
        data = thread(catalog, args.url)
    if args.json:
        _print(data)
        return EXIT_OK
    print(f"{data['thread_url']} ({data['site']}): {data['title']}")
    for row in data["observations"]:
        print(f"  {row['observed_at']}  comments {row['comment_count']}  last activity {row['last_activity_at']}"
              f"  position {row['position']}")
    return EXIT_OK


def cmd_changes(args: argparse.Namespace) -> int:
    from catalog.query import changes

    config = config_from_args(args)
    with _catalog(config, args) as catalog:
        data = changes(catalog, args.site, args.since, args.until)
    if args.json:
        _print(data)
        return EXIT_OK
    for group in ("articles", "threads"):
        for what, urls in data[group].items():
            print(f"{group} {what}: {len(urls)}")
            for url in urls:
                print(f"  {url}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from catalog.query import search

    config = config_from_args(args)
    with _catalog(config, args) as catalog:
        data = search(catalog, args.query, site=args.site, since=args.since, until=args.until, limit=args.limit)
    if args.json:
        _print(data)
        return EXIT_OK
    if not data["hits"]:
        print("no match")
    for hit in data["hits"]:
        note = "  (only in earlier versions)" if hit["only_in_earlier_versions"] else ""
        print(f"{hit['canonical_url']}  versions {','.join(map(str, hit['versions']))} of "
              f"{hit['latest_version']}{note}\n  {hit['title']}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from catalog import export

    config = config_from_args(args)
    if args.format == "wacz":
        from archive.stores import open_store
        from archive.verify import find_snapshot

        store = open_store(config.archive.url, config.scrapy_settings())
        ref = find_snapshot(store, args.what)
        path = export.export_wacz(store, ref, Path(args.to))
        print(f"exported snapshot {ref.snapshot_id} as WACZ: {path}")
        return EXIT_OK
    with _catalog(config, args) as catalog:
        count = export.export_rows(catalog, args.what, args.format, Path(args.to), site=args.site)
    print(f"exported {count} {args.what} to {args.to} ({args.format})")
    return EXIT_OK
