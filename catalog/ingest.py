"""Putting committed snapshots into the catalog: one as it commits, the missing ones (sync), or all (rebuild).

Only what is in a snapshot goes in (its manifest and its items), and only
snapshots that pass verification, so a catalog rebuilt from the archive
alone is the catalog the crawls built. Where two snapshots hold the same
version, the fields kept are those of its earliest sighting, whatever order
the snapshots arrive in.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from archive.manifest import ITEMS_NAME, Manifest
from archive.stores import SnapshotRef, SnapshotStore
from archive.verify import committed_by_site, verify_snapshot
from catalog.db import Catalog
from newsvault.errors import IntegrityError, StoreError

log = logging.getLogger(__name__)
# How long the copy over a live catalog waits for a push that is adding a snapshot.
BUSY_TIMEOUT_SECONDS = 60.0

# What makes an article version: every field but the counters, the fetch time
# and the bookkeeping. A byline or a date corrected is a new version; a view
# counter going up never is.
VERSION_FIELDS = (
    "title", "lead", "body", "authors", "tags", "published_at", "modified_at", "section",
    "image_url", "image_credit", "source_name", "source_url",
)
REMOVED_STAT = "newsvault/removed_urls"
# Far above any item a crawl writes (pages are capped at DOWNLOAD_MAXSIZE, 10 MiB
# by default): a longer line in an archive is damage, and is never held whole.
MAX_ITEM_LINE_CHARS = 64 * 1024 * 1024


def version_key(item: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of an article's versioned fields."""
    fields = {name: item.get(name) for name in VERSION_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _json_list(value: Any) -> str:
    return json.dumps(list(value or []), ensure_ascii=False)


def iter_items(stream: IO[bytes], *, max_line: int = MAX_ITEM_LINE_CHARS) -> Iterator[dict[str, Any]]:
    """The items of an items.jsonl.gz stream (a line that is not an object, or longer than ``max_line``, is skipped and logged)."""
    with gzip.open(stream, "rt", encoding="utf-8") as lines:
        number = 0
        while line := lines.readline(max_line + 1):
            number += 1
            if len(line) > max_line and not line.endswith("\n"):
                log.warning("items line %d is longer than %d characters; skipped", number, max_line)
                while (rest := lines.readline(max_line + 1)) and not rest.endswith("\n"):
                    pass  # read past the rest of that line, a bounded piece at a time
                continue
            try:
                item = json.loads(line)
            except ValueError:
                log.warning("items line %d is not JSON; skipped", number)
                continue
            if isinstance(item, dict):
                yield item


def ingest(catalog: Catalog, manifest: Manifest, items: Iterable[dict[str, Any]]) -> bool:
    """Add one committed snapshot (its manifest and items); False if the catalog has it already."""
    with catalog.transaction() as db:
        if db.execute("SELECT 1 FROM snapshots WHERE snapshot_id=?", (manifest.snapshot_id,)).fetchone():
            return False
        count = 0
        for item in items:
            count += 1
            kind = item.get("type")
            if kind == "article" and item.get("canonical_url"):
                _article(db, manifest.snapshot_id, item)
            elif kind == "discussion" and item.get("thread_url"):
                _observation(db, manifest.snapshot_id, item)
        removed = manifest.crawl_stats.get(REMOVED_STAT) or []
        db.executemany(
            "INSERT OR IGNORE INTO removals (site, canonical_url, snapshot_id, observed_at) VALUES (?, ?, ?, ?)",
            [(manifest.site, str(url), manifest.snapshot_id, manifest.finished_at) for url in removed],
        )
        db.execute(
            "INSERT INTO snapshots (snapshot_id, site, kind, started_at, finished_at, status, items)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (manifest.snapshot_id, manifest.site, manifest.kind, manifest.started_at, manifest.finished_at,
             manifest.status, count),
        )
    return True


_VERSION_COLUMNS = (
    "site", "canonical_url", "content_hash", "url", "title", "lead", "body", "authors", "tags", "published_at",
    "modified_at", "section", "image_url", "image_credit", "source_name", "source_url", "language", "duplicate_of",
    "near_duplicate_of",
)


def version_id(first_seen: str, key: str) -> int:
    """A version's row id, from when it was first seen (then its key): ids sort as versions appeared.

    So the id is the same however the catalog was built, and search can walk
    the newest versions first without ranking every match.
    """
    try:
        seconds = int(datetime.fromisoformat(first_seen).timestamp())
    except ValueError:
        seconds = 0
    return (max(seconds, 0) << 20) | int(key[:5], 16)


def _version_values(site: str, url: str, key: str, item: dict[str, Any]) -> tuple[Any, ...]:
    return (site, url, key, item.get("url"), item.get("title"), item.get("lead"), item.get("body"),
            _json_list(item.get("authors")), _json_list(item.get("tags")), item.get("published_at"),
            item.get("modified_at"), item.get("section"), item.get("image_url"), item.get("image_credit"),
            item.get("source_name"), item.get("source_url"), item.get("language"), item.get("duplicate_of"),
            item.get("near_duplicate_of"))


def _insert_version(db: Any, row_id: int, values: tuple[Any, ...]) -> None:
    marks = ",".join("?" * (len(_VERSION_COLUMNS) + 1))
    db.execute(f"INSERT INTO versions (id, {', '.join(_VERSION_COLUMNS)}) VALUES ({marks})", (row_id, *values))
    db.execute("INSERT INTO versions_fts (rowid, title, lead, body) VALUES (?, ?, ?, ?)",
               (row_id, values[4] or "", values[5] or "", values[6] or ""))


def _delete_version(db: Any, row_id: int) -> tuple[Any, ...]:
    row = db.execute(f"SELECT {', '.join(_VERSION_COLUMNS)} FROM versions WHERE id=?", (row_id,)).fetchone()
    db.execute("INSERT INTO versions_fts (versions_fts, rowid, title, lead, body) VALUES ('delete', ?, ?, ?, ?)",
               (row_id, row[4] or "", row[5] or "", row[6] or ""))
    db.execute("DELETE FROM versions WHERE id=?", (row_id,))
    return tuple(row)


def _article(db: Any, snapshot_id: str, item: dict[str, Any]) -> None:
    site, url, key = item.get("site") or "", item["canonical_url"], version_key(item)
    fetched_at = str(item.get("fetched_at") or "")
    values = _version_values(site, url, key, item)
    row = db.execute("SELECT id FROM versions WHERE site=? AND canonical_url=? AND content_hash=?",
                     (site, url, key)).fetchone()
    if row is None:
        row_id = version_id(fetched_at, key)
        while db.execute("SELECT 1 FROM versions WHERE id=?", (row_id,)).fetchone():
            row_id += 1  # two versions first seen in the same second with the same key prefix
        _insert_version(db, row_id, values)
    else:
        row_id = row[0]
        first = db.execute("SELECT MIN(fetched_at || ' ' || snapshot_id) FROM sightings WHERE version_id=?",
                           (row_id,)).fetchone()[0]
        if first is None or f"{fetched_at} {snapshot_id}" < first:
            # An earlier sighting arrived later (a late push): it decides the id and the unversioned fields.
            _delete_version(db, row_id)
            new_id = version_id(fetched_at, key)
            while db.execute("SELECT 1 FROM versions WHERE id=?", (new_id,)).fetchone():
                new_id += 1
            _insert_version(db, new_id, values)
            db.execute("UPDATE sightings SET version_id=? WHERE version_id=?", (new_id, row_id))
            row_id = new_id
    db.execute(
        "INSERT OR IGNORE INTO sightings (version_id, snapshot_id, fetched_at, views, comment_count)"
        " VALUES (?, ?, ?, ?, ?)",
        (row_id, snapshot_id, fetched_at, item.get("views"), item.get("comment_count")),
    )


def _observation(db: Any, snapshot_id: str, item: dict[str, Any]) -> None:
    db.execute(
        "INSERT OR IGNORE INTO observations (site, thread_url, snapshot_id, observed_at, list_url, position, title,"
        " comment_count, last_activity_at, is_reply, reply_to_title) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (item.get("site") or "", item["thread_url"], snapshot_id, str(item.get("fetched_at") or ""),
         item.get("list_url"), item.get("position"), item.get("title"), item.get("comment_count"),
         item.get("last_activity_at"), int(bool(item.get("is_reply"))), item.get("reply_to_title")),
    )


def ingest_from_dir(catalog: Catalog, directory: Path, manifest: Manifest) -> bool:
    """A snapshot whose files are on this disk (a spool entry just committed)."""
    with open(directory / ITEMS_NAME, "rb") as raw:
        return ingest(catalog, manifest, iter_items(raw))


def ingest_from_store(catalog: Catalog, store: SnapshotStore, ref: SnapshotRef, *,
                      committed_ids: set[str] | None = None) -> bool:
    """Verify a committed snapshot, then add it; IntegrityError (nothing added) if it fails verification.

    The items are read from the copy verification wrote as it hashed them, so
    what goes into the catalog is exactly what was verified, downloaded once.
    """
    with tempfile.TemporaryDirectory(prefix="newsvault-catalog-") as scratch:
        copy = Path(scratch) / ITEMS_NAME
        manifest = verify_snapshot(store, ref, committed_ids=committed_ids, keep={ITEMS_NAME: copy})
        if manifest.file(ITEMS_NAME) is None:
            return ingest(catalog, manifest, ())
        with open(copy, "rb") as raw:
            return ingest(catalog, manifest, iter_items(raw))


@dataclass
class RebuildReport:
    """What a rebuild or sync did."""

    ingested: int = 0
    items: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # snapshot id -> why


Progress = Callable[[int, int, str], None]


def sync(catalog: Catalog, store: SnapshotStore, *, progress: Progress | None = None) -> RebuildReport:
    """Add every committed snapshot the catalog does not have yet (oldest first); name the ones that fail."""
    report = RebuildReport()
    known = catalog.snapshot_ids()
    listed = store.list_snapshots()
    # One listing serves every snapshot's revisit check (verify would list the site per snapshot).
    committed = committed_by_site(listed)
    todo = [ref for ref in listed if ref.snapshot_id not in known]
    for done, ref in enumerate(todo, start=1):
        try:
            if ingest_from_store(catalog, store, ref, committed_ids=committed[ref.site]):
                report.ingested += 1
        except (IntegrityError, StoreError) as exc:
            report.skipped[ref.snapshot_id] = str(exc)
            log.warning("snapshot %s not catalogued: %s", ref.snapshot_id, exc)
        if progress:
            progress(done, len(todo), ref.snapshot_id)
    report.items = int(catalog.db.execute("SELECT COALESCE(SUM(items), 0) FROM snapshots").fetchone()[0])
    return report


def rebuild(path: Path, archive_url: str, store: SnapshotStore, *, progress: Progress | None = None) -> RebuildReport:
    """A new catalog at ``path`` from the archive alone; it replaces the old one only once complete.

    It is built in a scratch file, then copied over the catalog with SQLite's
    backup API, which writes the pages in one transaction: a push adding a
    snapshot meanwhile, or a reader, sees the old catalog or the new one, never
    a mix, and no other connection's WAL is pulled away. Snapshots committed
    while the rebuild ran are added by a sync right after.
    """
    tmp = path.with_name(f".{path.name}.rebuild-{os.getpid()}")
    scratch_files = (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm"))
    for leftover in scratch_files:
        leftover.unlink(missing_ok=True)
    try:
        catalog = Catalog(tmp, archive_url)
        try:
            report = sync(catalog, store, progress=progress)
            path.parent.mkdir(parents=True, exist_ok=True)
            live = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
            try:
                catalog.db.backup(live)
            finally:
                live.close()
        finally:
            catalog.close()
    finally:
        for leftover in scratch_files:
            leftover.unlink(missing_ok=True)
    with Catalog(path, archive_url) as rebuilt:
        late = sync(rebuilt, store)
    report.ingested += late.ingested
    report.skipped.update(late.skipped)
    report.items = late.items
    return report


def committed_hook(path: Path, archive_url: str) -> Callable[[Path, Manifest], None]:
    """What a push calls for each snapshot it commits: add it to the catalog at ``path`` from its local files."""

    def add(entry: Path, manifest: Manifest) -> None:
        with Catalog(path, archive_url) as catalog:
            ingest_from_dir(catalog, entry, manifest)

    return add

