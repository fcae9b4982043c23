"""A crawl's catalog rows prepared while it runs, so that adding its snapshot after the commit is short.

Adding a snapshot to the catalog (reading its items, hashing each article's
versioned fields, storing new versions and indexing their full text) used to
happen after the commit, on the crawl's critical path. Now the sidecar does
that work as the crawl writes its items: each new version's text goes into
``version_texts`` and the full-text index under the id it will have, the
rest of its row into ``prepared_versions``, each article sighting into
``prepared_sightings``. None of it is visible: queries read ``versions``
(``version_rows`` joined to their texts) and ``sightings``, and search joins
the index to ``versions``. Once the store confirms the commit, the ingest
moves the small prepared rows over in a few statements
(:func:`take_prepared`); the texts, written once, stay where they are.

The catalog must still hold exactly what the snapshot holds, so the prepared
rows are taken only when they account for every item of the manifest and
nothing needs the careful per-item path (a version seen twice in the
snapshot, or an earlier sighting than the catalog knows). Otherwise the
ingest reads the items file as always, reusing the full text already
indexed. Entries that are not used, and those of crawls that never commit,
leave the index and the texts again. Preparing is an optimisation only: any failure here
(a locked or foreign catalog) switches it off for the crawl.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.manifest import Manifest
from archive.snapshot_files import item_line
from catalog.db import Catalog, CatalogError
from catalog.versions import (
    ROW_COLUMNS,
    delete_texts,
    free_version_id,
    insert_texts,
    row_of,
    text_values,
    version_id,
    version_key,
    version_values,
)

log = logging.getLogger(__name__)

# The crawl stat: article versions prepared (indexed) ahead of the commit.
CATALOG_PREPARED_STAT = "newsvault/catalog/prepared"
# Articles prepared per transaction: the write lock is held for a few milliseconds at a time.
BATCH = 200
# A prepared row older than this belongs to a crawl that never committed: any ingest drops it.
PREPARED_TTL = timedelta(days=2)

_COLUMNS = ", ".join(ROW_COLUMNS)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def drop_prepared(db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> int:
    """Take prepared versions matching ``where`` out of the index, the texts and the table (in the caller's transaction)."""
    dropped = delete_texts(db, f"SELECT id FROM prepared_versions WHERE {where}", args)
    db.execute(f"DELETE FROM prepared_versions WHERE {where}", args)
    return dropped


def forget_snapshot(db: sqlite3.Connection, snapshot_id: str) -> None:
    """Drop what is left of a snapshot's prepared rows (its ingest is done, or it is catalogued already)."""
    drop_prepared(db, "snapshot_id = ?", (snapshot_id,))
    db.execute("DELETE FROM prepared_sightings WHERE snapshot_id = ?", (snapshot_id,))


def sweep_stale(db: sqlite3.Connection, now: datetime | None = None) -> int:
    """Drop the prepared rows of crawls that never committed (older than PREPARED_TTL); the versions dropped."""
    cutoff = ((now or datetime.now(UTC)) - PREPARED_TTL).strftime("%Y-%m-%dT%H:%M:%SZ")
    db.execute("DELETE FROM prepared_sightings WHERE prepared_at < ?", (cutoff,))
    return drop_prepared(db, "prepared_at < ?", (cutoff,))


def take_prepared(db: sqlite3.Connection, manifest: Manifest) -> int | None:
    """Move a committed snapshot's prepared rows into the catalog; its item count, or None to read its items.

    Called in the ingest's transaction, before anything of the snapshot is added.
    """
    snapshot_id = manifest.snapshot_id
    items = manifest.counts.get("items")
    by_type = manifest.counts.get("items_by_type") or {}
    if not isinstance(items, int) or set(by_type) - {"article"}:
        return None  # discussion items go the usual way
    sightings, distinct = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT site || ' ' || canonical_url || ' ' || content_hash)"
        " FROM prepared_sightings WHERE snapshot_id = ?", (snapshot_id,)).fetchone()
    if sightings != items or distinct != sightings:
        return None  # not every item was prepared (or salvaged), or a version is seen twice
    earlier = db.execute(
        "SELECT 1 FROM prepared_sightings p JOIN version_rows v ON v.site = p.site AND v.canonical_url = p.canonical_url"
        " AND v.content_hash = p.content_hash WHERE p.snapshot_id = ? AND p.fetched_at || ' ' || ? <"
        " (SELECT MIN(s.fetched_at || ' ' || s.snapshot_id) FROM sightings s WHERE s.version_id = v.id) LIMIT 1",
        (snapshot_id, snapshot_id)).fetchone()
    if earlier:
        return None  # this snapshot saw a known version first: its id and fields move (the per-item path)
    # New versions under their prepared ids (their text is stored and indexed under them already:
    # only these small rows move); one another snapshot brought meanwhile stays as it is, and its
    # prepared entry is dropped below.
    db.execute(
        f"INSERT INTO version_rows (id, {_COLUMNS}) SELECT id, {_COLUMNS} FROM prepared_versions p"
        " WHERE p.snapshot_id = ? AND NOT EXISTS (SELECT 1 FROM version_rows v WHERE v.site = p.site"
        " AND v.canonical_url = p.canonical_url AND v.content_hash = p.content_hash)", (snapshot_id,))
    # The ids were reserved for this snapshot: a version row under one is the one just moved.
    db.execute("DELETE FROM prepared_versions WHERE snapshot_id = ? AND id IN (SELECT id FROM version_rows)",
               (snapshot_id,))
    db.execute(
        "INSERT OR IGNORE INTO sightings (version_id, snapshot_id, fetched_at, views, comment_count)"
        " SELECT v.id, p.snapshot_id, p.fetched_at, p.views, p.comment_count FROM prepared_sightings p"
        " JOIN version_rows v ON v.site = p.site AND v.canonical_url = p.canonical_url"
        " AND v.content_hash = p.content_hash WHERE p.snapshot_id = ? ORDER BY p.seq", (snapshot_id,))
    return items


class CatalogPreparer:
    """Prepares a crawl's catalog rows in batches as its items are written (in the sidecar)."""

    def __init__(self, path: str | Path, archive_url: str, snapshot_id: str) -> None:
        self.path = Path(path)
        self.archive_url = archive_url
        self.snapshot_id = snapshot_id
        self.prepared = 0
        self._seq = 0
        self._pending: list[dict[str, Any]] = []
        self._catalog: Catalog | None = None
        self._off = False

    def add(self, item: dict[str, Any], line: bytes | None = None) -> None:
        """One item as written to the items file (anything but an article with a canonical URL counts nothing).

        ``line`` is the item's line of the items file when the caller has it already.
        """
        if self._off:
            return
        if item.get("type") != "article" or not item.get("canonical_url"):
            return  # not counted: a snapshot holding such an item is read the usual way
        # Exactly what the items file holds (its JSON), so the rows are those reading it would give.
        self._pending.append(json.loads(line if line is not None else item_line(item)))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        if self._off or not batch:
            return
        try:
            if self._catalog is None:
                self._catalog = Catalog(self.path, self.archive_url)
            with self._catalog.transaction() as db:
                self.prepared += self._prepare(db, batch, _now())
        except (sqlite3.Error, CatalogError, OSError) as exc:
            # The ingest then reads the items file: nothing is lost, it is only slower.
            log.info("catalog preparation is off for snapshot %s: %s", self.snapshot_id, exc)
            self._off = True

    def _prepare(self, db: sqlite3.Connection, batch: list[dict[str, Any]], prepared_at: str) -> int:
        """One batch: a sighting per item, a version row and index entry per version new to the catalog."""
        keyed = [(item.get("site") or "", item["canonical_url"], version_key(item), item) for item in batch]
        sightings = []
        for site, url, key, item in keyed:
            self._seq += 1
            sightings.append((self.snapshot_id, self._seq, prepared_at, site, url, key,
                              str(item.get("fetched_at") or ""), item.get("views"), item.get("comment_count")))
        db.executemany(
            "INSERT INTO prepared_sightings (snapshot_id, seq, prepared_at, site, canonical_url, content_hash,"
            " fetched_at, views, comment_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", sightings)
        # Versions the catalog holds (the commit adds a sighting) or this crawl prepared already: nothing to index.
        seen = self._known(db, [(site, url, key) for site, url, key, _ in keyed])
        text_rows, version_rows, taken = [], [], set()
        for site, url, key, item in keyed:
            if (site, url, key) in seen:
                continue
            seen.add((site, url, key))
            row_id = free_version_id(db, version_id(str(item.get("fetched_at") or ""), key))
            while row_id in taken:  # held by an earlier version of this batch, not written yet
                row_id = free_version_id(db, row_id + 1)
            taken.add(row_id)
            values = version_values(site, url, key, item)
            text_rows.append((row_id, *text_values(values)))
            version_rows.append((row_id, self.snapshot_id, prepared_at, *row_of(values)))
        insert_texts(db, text_rows)
        db.executemany(f"INSERT INTO prepared_versions (id, snapshot_id, prepared_at, {_COLUMNS})"
                       f" VALUES (?, ?, ?, {','.join('?' * len(ROW_COLUMNS))})", version_rows)
        return len(version_rows)

    def _known(self, db: sqlite3.Connection, keys: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which (site, canonical URL, content hash) the catalog holds or this snapshot prepared."""
        if not keys:
            return set()
        values = ", ".join(["(?, ?, ?)"] * len(keys))
        params = [part for key in keys for part in key]
        known = db.execute(f"SELECT site, canonical_url, content_hash FROM version_rows"
                           f" WHERE (site, canonical_url, content_hash) IN (VALUES {values})", params).fetchall()
        prepared = db.execute(f"SELECT site, canonical_url, content_hash FROM prepared_versions"
                              f" WHERE snapshot_id = ? AND (site, canonical_url, content_hash) IN (VALUES {values})",
                              [self.snapshot_id, *params]).fetchall()
        return {tuple(row) for row in known + prepared}  # type: ignore[misc]

    def close(self) -> None:
        """Prepare what is still buffered, then let the catalog go."""
        try:
            self.flush()
        finally:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None
