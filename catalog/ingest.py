"""Putting committed snapshots into the catalog: one as it commits, the missing ones (sync), or all (rebuild).

Only what is in a snapshot goes in (its manifest and its items), and only
snapshots that pass verification, so a catalog rebuilt from the archive
alone is the catalog the crawls built. Where two snapshots hold the same
version, the fields kept are those of its earliest sighting, whatever order
the snapshots arrive in.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from archive.manifest import ITEMS_NAME, Manifest
from archive.stores import SnapshotRef, SnapshotStore
from archive.verify import committed_by_site, verify_snapshot
from catalog.db import Catalog
from catalog.prepare import forget_snapshot, sweep_stale, take_prepared
from catalog.versions import (
    ROW_COLUMNS,
    delete_texts,
    free_version_id,
    insert_texts,
    row_of,
    text_of,
    text_values,
    version_id,
    version_key,
    version_values,
)
from newsvault.errors import IntegrityError, StoreError

log = logging.getLogger(__name__)
# How long the copy over a live catalog waits for a push that is adding a snapshot.
BUSY_TIMEOUT_SECONDS = 60.0

REMOVED_STAT = "newsvault/removed_urls"
# Far above any item a crawl writes (pages are capped at DOWNLOAD_MAXSIZE, 10 MiB
# by default): a longer line in an archive is damage, and is never held whole.
MAX_ITEM_LINE_CHARS = 64 * 1024 * 1024


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


def ingest(catalog: Catalog, manifest: Manifest, items: Iterable[dict[str, Any]], *, prepared: bool = False) -> bool:
    """Add one committed snapshot (its manifest and items); False if the catalog has it already.

    With ``prepared`` (the crawl that wrote the snapshot just committed it), the
    rows its sidecar prepared are taken when they account for every item
    (catalog/prepare.py); ``items`` is then not read.
    """
    with catalog.transaction() as db:
        snapshot_id = manifest.snapshot_id
        if db.execute("SELECT 1 FROM snapshots WHERE snapshot_id=?", (snapshot_id,)).fetchone():
            forget_snapshot(db, snapshot_id)
            return False
        count = take_prepared(db, manifest) if prepared else None
        if count is None:
            count = 0
            held = _Prepared(db, snapshot_id)
            for item in items:
                count += 1
                kind = item.get("type")
                if kind == "article" and item.get("canonical_url"):
                    _article(db, snapshot_id, item, held)
                elif kind == "discussion" and item.get("thread_url"):
                    _observation(db, snapshot_id, item)
            held.forget_used()
        removed = manifest.crawl_stats.get(REMOVED_STAT) or []
        db.executemany(
            "INSERT OR IGNORE INTO removals (site, canonical_url, snapshot_id, observed_at) VALUES (?, ?, ?, ?)",
            [(manifest.site, str(url), snapshot_id, manifest.finished_at) for url in removed],
        )
        db.execute(
            "INSERT INTO snapshots (snapshot_id, site, kind, started_at, finished_at, status, items, bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (snapshot_id, manifest.site, manifest.kind, manifest.started_at, manifest.finished_at,
             manifest.status, count, manifest.total_bytes),
        )
        # What the crawl prepared and this snapshot does not hold (a version another snapshot
        # brought meanwhile, items past a salvaged prefix), and crawls that never committed.
        forget_snapshot(db, snapshot_id)
        sweep_stale(db)
    return True


def _insert_version(db: Any, row_id: int, values: tuple[Any, ...], *, indexed: bool = False) -> None:
    """A version's row, and its text (stored and indexed) unless ``indexed`` (its crawl wrote it under this id)."""
    marks = ",".join("?" * (len(ROW_COLUMNS) + 1))
    db.execute(f"INSERT INTO version_rows (id, {', '.join(ROW_COLUMNS)}) VALUES ({marks})", (row_id, *row_of(values)))
    if not indexed:
        insert_texts(db, [(row_id, *text_values(values))])


class _Prepared:
    """The versions this snapshot's crawl indexed ahead (catalog/prepare.py), for an ingest reading the items."""

    def __init__(self, db: Any, snapshot_id: str) -> None:
        self.db = db
        self.entries = {(r[0], r[1], r[2]): (r[3], (r[4], r[5], r[6])) for r in db.execute(
            "SELECT site, canonical_url, content_hash, id, COALESCE(title, ''), COALESCE(lead, ''), COALESCE(body, '')"
            " FROM prepared_versions JOIN version_texts USING (id) WHERE snapshot_id=?", (snapshot_id,))}
        self.used: list[tuple[int]] = []

    def take(self, site: str, url: str, key: str, values: tuple[Any, ...]) -> int | None:
        """The id the version's text is indexed under, if it was prepared with exactly this text."""
        entry = self.entries.pop((site, url, key), None) if self.entries else None
        if entry is None or entry[1] != text_of(values):
            return None  # an entry left on the list is dropped from the index at the end
        self.used.append((entry[0],))
        return int(entry[0])

    def add_version(self, site: str, url: str, key: str, values: tuple[Any, ...], fetched_at: str) -> int:
        """Insert a version first seen at ``fetched_at``: under its prepared id, else a new one; the id."""
        held = self.take(site, url, key, values)
        if held is not None:
            _insert_version(self.db, held, values, indexed=True)
            return held
        row_id = free_version_id(self.db, version_id(fetched_at, key))
        _insert_version(self.db, row_id, values)
        return row_id

    def forget_used(self) -> None:
        """The prepared versions taken are versions now (their texts stay, under the same ids)."""
        self.db.executemany("DELETE FROM prepared_versions WHERE id=?", self.used)


def _delete_version(db: Any, row_id: int) -> None:
    delete_texts(db, "?", (row_id,))
    db.execute("DELETE FROM version_rows WHERE id=?", (row_id,))


def _article(db: Any, snapshot_id: str, item: dict[str, Any], prepared: _Prepared) -> None:
    site, url, key = item.get("site") or "", item["canonical_url"], version_key(item)
    fetched_at = str(item.get("fetched_at") or "")
    values = version_values(site, url, key, item)
    row = db.execute("SELECT id FROM version_rows WHERE site=? AND canonical_url=? AND content_hash=?",
                     (site, url, key)).fetchone()
    if row is None:
        row_id = prepared.add_version(site, url, key, values, fetched_at)
    else:
        row_id = row[0]
        first = db.execute("SELECT MIN(fetched_at || ' ' || snapshot_id) FROM sightings WHERE version_id=?",
                           (row_id,)).fetchone()[0]
        if first is None or f"{fetched_at} {snapshot_id}" < first:
            # An earlier sighting arrived later (a late push): it decides the id and the unversioned fields.
            _delete_version(db, row_id)
            new_id = prepared.add_version(site, url, key, values, fetched_at)
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
        return ingest(catalog, manifest, iter_items(raw), prepared=True)


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

