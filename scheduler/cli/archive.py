"""Archive commands: `snapshots`, `show`, `verify`, `restore`, `prune`, `push`, `claim`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from archive.ids import snapshot_time
from archive.index import DigestIndex
from archive.locks import archive_lock
from archive.prune import DEFAULT_LOCK_WAIT_SECONDS, prune
from archive.restore import restore_snapshot
from archive.session import ArchiveSession
from archive.spool import spooled_entries
from archive.stores import SnapshotStore, open_store
from archive.verify import (
    committed_by_site,
    find_snapshot,
    latest_snapshot,
    load_manifest,
)
from archive.writers import WriterIdentity, claim
from catalog.ingest import committed_hook
from newsvault.config import Config
from newsvault.errors import IntegrityError, NewsvaultError, StoreError
from newsvault.names import KINDS
from scheduler.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, archive_option, config_from_args
from scheduler.crawl import cluster_writer
from scheduler.history import mark_snapshots_committed


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the archive commands."""

    def add(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, parents=[common], help=help_text, description=help_text + ".", epilog=f"Example: {example}")
        archive_option(parser)
        return parser

    snaps = add("snapshots", "list committed snapshots (and what waits in the spool)", "newsvault snapshots sample --kind articles --json")
    snaps.add_argument("site", nargs="?", metavar="SITE", help="only this site")
    snaps.add_argument("--kind", choices=KINDS, help="only this crawl kind")
    snaps.add_argument("--json", action="store_true", help="print JSON instead of a table")
    snaps.set_defaults(handler=cmd_snapshots)

    show = add("show", "print a snapshot's manifest", "newsvault show 20261125T063012Z-3f9a1c")
    show.add_argument("snapshot_id", metavar="ID")
    show.set_defaults(handler=cmd_show)

    verify = add("verify", "re-hash a snapshot's files against its manifest", "newsvault verify --all")
    target = verify.add_mutually_exclusive_group(required=True)
    target.add_argument("snapshot_id", nargs="?", metavar="ID")
    target.add_argument("--all", action="store_true", help="verify every committed snapshot")
    verify.set_defaults(handler=cmd_verify)

    restore = add("restore", "download a snapshot into a directory, verifying every checksum", "newsvault restore --latest sample --to ./restored --self-contained")
    which = restore.add_mutually_exclusive_group(required=True)
    which.add_argument("snapshot_id", nargs="?", metavar="ID")
    which.add_argument("--latest", metavar="SITE", help="the newest complete snapshot of SITE (any status with --any-status)")
    which.add_argument("--at", metavar="TIME", help="the newest snapshot started at or before TIME (ISO 8601; needs --site)")
    restore.add_argument("--site", metavar="SITE", help="the site for --at")
    restore.add_argument("--kind", choices=KINDS, help="crawl kind for --latest/--at (default: any)")
    restore.add_argument("--to", required=True, metavar="DIR", help="target directory (created; files are written only inside it)")
    restore.add_argument("--self-contained", action="store_true", help="resolve revisit records so the WARC stands alone")
    restore.add_argument("--any-status", action="store_true",
                         help="--latest/--at may pick a partial or failed snapshot (default: complete ones only)")
    restore.set_defaults(handler=cmd_restore)

    prune_p = add("prune", "delete old snapshots, keeping what the rules and revisit references need", "newsvault prune sample --keep-last 3 --keep-daily 7 --keep-weekly 4 --dry-run")
    prune_p.add_argument("site", nargs="?", metavar="SITE", help="only this site")
    prune_p.add_argument("--keep-last", type=int, default=0, metavar="N")
    prune_p.add_argument("--keep-daily", type=int, default=0, metavar="N")
    prune_p.add_argument("--keep-weekly", type=int, default=0, metavar="N")
    prune_p.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    prune_p.add_argument("--any-status", action="store_true",
                         help="the rules count partial and failed snapshots too (default: complete ones only)")
    prune_p.add_argument("--wait", type=float, default=DEFAULT_LOCK_WAIT_SECONDS, metavar="SECONDS",
                         help=f"wait this long for running crawls and pushes (default {DEFAULT_LOCK_WAIT_SECONDS:g})")
    prune_p.set_defaults(handler=cmd_prune)

    push = add("push", "upload snapshots waiting in the local spool", "newsvault push")
    push.set_defaults(handler=cmd_push)

    claim_p = add("claim", "make this state dir the writer of a site in the archive (when the old writer is gone)",
                  "newsvault claim sample --kind articles")
    claim_p.add_argument("site", metavar="SITE")
    claim_p.add_argument("--kind", choices=KINDS, action="append",
                         help="only this crawl kind (repeatable; default: both)")
    claim_p.set_defaults(handler=cmd_claim)


# --- helpers -------------------------------------------------------------------
def _store(config: Config) -> SnapshotStore:
    return open_store(config.archive.url, config.scrapy_settings())


def _progress() -> bool:
    return sys.stderr.isatty()


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise NewsvaultError(f"--at: not an ISO 8601 time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- handlers ------------------------------------------------------------------
def cmd_snapshots(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    store = _store(config)
    rows: list[dict[str, Any]] = []
    for ref in store.list_snapshots(args.site, args.kind):
        try:
            manifest = load_manifest(store, ref)
        except (IntegrityError, StoreError) as exc:
            # One damaged manifest must not hide the rest of the archive; verify says more.
            rows.append({"snapshot_id": ref.snapshot_id, "site": ref.site, "kind": ref.kind, "status": "damaged",
                         "state": "committed", "error": str(exc)})
            continue
        rows.append(
            {
                "snapshot_id": ref.snapshot_id,
                "site": ref.site,
                "kind": ref.kind,
                "status": manifest.status,
                "started_at": manifest.started_at,
                "items": manifest.counts.get("items", 0),
                "pages": manifest.counts.get("pages", 0),
                "revisits": manifest.counts.get("revisits", 0),
                "bytes": manifest.total_bytes,
                "state": "committed",
            }
        )
    for site, kind, snapshot_id, partial in spooled_entries(config.spool_dir):
        if (args.site and site != args.site) or (args.kind and kind != args.kind):
            continue
        rows.append({"snapshot_id": snapshot_id, "site": site, "kind": kind, "state": "partial-in-spool" if partial else "spooled"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no snapshots")
        return EXIT_OK
    print(f"{'SNAPSHOT':24} {'SITE':12} {'KIND':11} {'STATE':16} {'STATUS':8} {'ITEMS':>6} {'PAGES':>6} {'BYTES':>10}")
    for row in rows:
        print(
            f"{row['snapshot_id']:24} {row['site']:12} {row['kind']:11} {row['state']:16} {row.get('status', '-'):8} "
            f"{row.get('items', '-'):>6} {row.get('pages', '-'):>6} {row.get('bytes', '-'):>10}"
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(config_from_args(args))
    manifest = load_manifest(store, find_snapshot(store, args.snapshot_id))
    sys.stdout.write(manifest.to_json().decode("utf-8"))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from archive.verify_log import VerifyLog, verify_and_record

    config = config_from_args(args)
    store = _store(config)
    refs = store.list_snapshots() if args.all else [find_snapshot(store, args.snapshot_id)]
    committed = committed_by_site(refs)
    # Each outcome is recorded, so the web view shows when a snapshot was last checked.
    log = VerifyLog.in_state_dir(config.state_dir, config.archive.url)
    failed = 0
    for ref in refs:
        result = verify_and_record(store, ref, log, committed_ids=committed[ref.site] if args.all else None)
        if not result.ok:
            failed += 1
            print(f"FAILED {ref.snapshot_id}: {result.problem}", file=sys.stderr)
            continue
        # Older manifests carry no checksum of their own: their files check out, their values cannot.
        note = f"; {result.problem}" if result.problem else ""
        print(f"ok {ref.snapshot_id} ({result.files} files, {result.bytes} bytes{note})")
    if failed:
        print(f"newsvault: error: {failed} of {len(refs)} snapshots failed verification", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    store = _store(config_from_args(args))
    if args.snapshot_id:
        ref = find_snapshot(store, args.snapshot_id)
    elif args.latest:
        ref = latest_snapshot(store, args.latest, args.kind, any_status=args.any_status)
    else:
        if not args.site:
            print("newsvault: error: --at needs --site", file=sys.stderr)
            return EXIT_USAGE
        ref = latest_snapshot(store, args.site, args.kind, at=_parse_time(args.at), any_status=args.any_status)
    result = restore_snapshot(store, ref, args.to, self_contained=args.self_contained, progress=_progress())
    extra = f", {result.resolved_revisits} revisits resolved" if args.self_contained else ""
    print(f"restored {ref.snapshot_id} ({ref.site}/{ref.kind}, started {snapshot_time(ref.snapshot_id).isoformat()}) into {result.target}{extra}")
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    if not (args.keep_last or args.keep_daily or args.keep_weekly):
        print("newsvault: error: give at least one of --keep-last, --keep-daily, --keep-weekly", file=sys.stderr)
        return EXIT_USAGE
    config = config_from_args(args)
    store = _store(config)
    index = DigestIndex.in_state_dir(config.state_dir, config.archive.url, url=config.cluster.url_value)
    try:
        plan = prune(
            store, site=args.site, keep_last=args.keep_last, keep_daily=args.keep_daily, keep_weekly=args.keep_weekly,
            dry_run=args.dry_run, spool_dir=config.spool_dir, index=index,
            lock=archive_lock(config.archive.url, config.state_dir), lock_wait_seconds=args.wait,
            any_status=args.any_status,
        )
    finally:
        index.close()
    verb = "would delete" if args.dry_run else "deleted"
    for ref in plan.delete:
        print(f"{verb} {ref.snapshot_id} ({ref.site}/{ref.kind})")
    for ref in plan.protected:
        print(f"kept {ref.snapshot_id} ({ref.site}/{ref.kind}): later snapshots' revisit records (committed or spooled) "
              "point to it, or an unreadable manifest might")
    for ref, why in plan.damaged.items():
        print(f"kept {ref.snapshot_id} ({ref.site}/{ref.kind}): its manifest cannot be read ({why})", file=sys.stderr)
    print(f"{len(plan.keep)} kept, {len(plan.delete)} {verb}")
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with ArchiveSession(config.archive.url, state_dir=config.state_dir, spool_dir=config.spool_dir,
                        settings=config.scrapy_settings(), lock_wait_seconds=config.archive.lock_wait_seconds,
                        progress=_progress(),
                        on_committed=committed_hook(config.catalog_path, config.archive.url),
                        state_url=config.cluster.url_value, writer=cluster_writer(config)) as session:
        results = session.push()
    mark_snapshots_committed(config.state_dir, [r.snapshot_id for r in results if r.ok])
    if not results:
        print("spool is empty")
        return EXIT_OK
    for r in results:
        note = " (salvaged from a killed crawl)" if r.salvaged else ""
        detail = f": {r.error}" if r.error else ""
        print(f"{r.state} {r.snapshot_id} ({r.site}/{r.kind}){note}{detail}")
    # "busy": another push holds the entry and is uploading it right now, which is not a failure.
    return EXIT_OK if all(r.ok or r.state == "busy" for r in results) else EXIT_FAILED


def cmd_claim(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    store = _store(config)
    identity = cluster_writer(config) or WriterIdentity.of(config.state_dir)
    for kind in args.kind or list(KINDS):
        previous = claim(store, args.site, kind, identity)
        before = f" (was {previous.describe()})" if previous and previous != identity else ""
        print(f"{args.site}/{kind} in {store.url} is now written by {identity.describe()}{before}")
    return EXIT_OK
