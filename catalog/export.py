"""Exports: articles (latest versions), every version, discussion observations; and a snapshot as WACZ.

Rows come from the catalog in a stable order; times stay UTC (ISO strings
with ``Z`` in JSON Lines and CSV, timezone-aware timestamps in Parquet).
A WACZ is built by the ``wacz`` package (py-wacz) from a self-contained
restore of the snapshot, so it stands alone: its WARCs, a CDXJ index,
``pages.jsonl`` (the snapshot's articles) and ``datapackage.json`` with every
file's sha256.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.restore import restore_snapshot
from archive.stores import SnapshotRef, SnapshotStore
from catalog.db import Catalog, CatalogError

ARTICLE_COLUMNS = (
    "site", "canonical_url", "version", "versions", "first_seen", "last_seen", "snapshots", "url", "title", "lead",
    "body", "authors", "tags", "published_at", "modified_at", "section", "image_url", "image_credit", "source_name",
    "source_url", "language", "duplicate_of", "near_duplicate_of",
)
OBSERVATION_COLUMNS = (
    "site", "thread_url", "observed_at", "snapshot_id", "list_url", "position", "title", "comment_count",
    "last_activity_at", "is_reply", "reply_to_title",
)
TIME_COLUMNS = {"first_seen", "last_seen", "published_at", "modified_at", "observed_at", "last_activity_at"}
LIST_COLUMNS = {"authors", "tags", "snapshots"}
WHATS = ("articles", "versions", "observations")


def _version_rows(catalog: Catalog, *, latest_only: bool, site: str | None) -> Iterator[dict[str, Any]]:
    where, args = ("WHERE v.site=?", (site,)) if site else ("", ())
    rows = catalog.db.execute(
        "SELECT v.*, MIN(s.fetched_at) AS first_seen, MAX(s.fetched_at) AS last_seen,"
        " GROUP_CONCAT(s.snapshot_id) AS snapshot_list FROM versions v JOIN sightings s ON s.version_id=v.id"
        f" {where} GROUP BY v.id ORDER BY v.site, v.canonical_url, first_seen, v.content_hash", args)
    group: list[dict[str, Any]] = []
    for row in rows:
        record = {k: row[k] for k in row.keys() if k not in ("id", "snapshot_list", "content_hash")}  # noqa: SIM118 - a Row iterates values
        record["authors"] = json.loads(record["authors"] or "[]")
        record["tags"] = json.loads(record["tags"] or "[]")
        record["snapshots"] = sorted(set(row["snapshot_list"].split(",")))
        if group and (group[0]["site"], group[0]["canonical_url"]) != (record["site"], record["canonical_url"]):
            yield from _numbered(group, latest_only)
            group = []
        group.append(record)
    if group:
        yield from _numbered(group, latest_only)


def _numbered(group: list[dict[str, Any]], latest_only: bool) -> Iterator[dict[str, Any]]:
    for number, record in enumerate(group, start=1):
        record["version"], record["versions"] = number, len(group)
    yield from (group[-1:] if latest_only else group)


def _observation_rows(catalog: Catalog, *, site: str | None) -> Iterator[dict[str, Any]]:
    where, args = ("WHERE site=?", (site,)) if site else ("", ())
    for row in catalog.db.execute(f"SELECT * FROM observations {where} ORDER BY site, thread_url, observed_at, snapshot_id",
                                  args):
        record = {k: row[k] for k in OBSERVATION_COLUMNS}
        record["is_reply"] = bool(record["is_reply"])
        yield record


def export_rows(catalog: Catalog, what: str, fmt: str, target: Path, *, site: str | None = None) -> int:
    """Write ``what`` (articles, versions, observations) as ``fmt`` (jsonl, csv, parquet); the row count."""
    if what not in WHATS:
        raise CatalogError(f"export what? {what!r} (one of {', '.join(WHATS)}, or a snapshot id with --format wacz)")
    columns = OBSERVATION_COLUMNS if what == "observations" else ARTICLE_COLUMNS
    rows = (_observation_rows(catalog, site=site) if what == "observations"
            else _version_rows(catalog, latest_only=what == "articles", site=site))
    target.parent.mkdir(parents=True, exist_ok=True)
    writers = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}
    if fmt not in writers:
        raise CatalogError(f"unknown export format {fmt!r}")
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        count = writers[fmt](rows, columns, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)  # only left there when writing failed
    return count


def _jsonl(rows: Iterator[dict[str, Any]], columns: tuple[str, ...], path: Path) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n")
            count += 1
    return count


def _csv(rows: Iterator[dict[str, Any]], columns: tuple[str, ...], path: Path) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            # Lists as JSON: a CSV cell holds one value, and authors contain commas.
            writer.writerow([json.dumps(row.get(c), ensure_ascii=False) if c in LIST_COLUMNS else row.get(c)
                             for c in columns])
            count += 1
    return count


def _parquet(rows: Iterator[dict[str, Any]], columns: tuple[str, ...], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def arrow_type(column: str) -> Any:
        if column in TIME_COLUMNS:
            return pa.timestamp("us", tz="UTC")
        if column in LIST_COLUMNS:
            return pa.list_(pa.string())
        if column in ("version", "versions", "position", "comment_count"):
            return pa.int64()
        if column == "is_reply":
            return pa.bool_()
        return pa.string()

    schema = pa.schema([(c, arrow_type(c)) for c in columns])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append({c: _time(row.get(c)) if c in TIME_COLUMNS else row.get(c) for c in columns})
            count += 1
            if len(batch) >= 10_000:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return count


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def export_wacz(store: SnapshotStore, ref: SnapshotRef, target: Path) -> Path:
    """The snapshot as a WACZ 1.1.1 package at ``target`` (it stands alone: revisits resolved)."""
    from wacz.main import main as wacz_main

    from archive.manifest import ITEMS_NAME
    from catalog.ingest import iter_items

    with tempfile.TemporaryDirectory(prefix="nv-wacz-") as tmp:
        restored = Path(tmp) / "snapshot"
        result = restore_snapshot(store, ref, restored, self_contained=True, progress=False)
        warcs = sorted(str(restored / name) for name in result.files if name.endswith(".warc.gz"))
        if not warcs:
            raise CatalogError(f"snapshot {ref.snapshot_id} has no WARC to export")
        # A page's ts must be its capture's WARC-Date (py-wacz matches pages to captures by ts/url).
        captured = _capture_dates(warcs)
        pages = Path(tmp) / "pages.jsonl"
        with open(pages, "w", encoding="utf-8") as out, open(restored / ITEMS_NAME, "rb") as items:
            out.write(json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}) + "\n")
            for item in iter_items(items):
                url = item.get("url")
                if item.get("type") == "article" and url in captured:
                    out.write(json.dumps({"url": url, "ts": captured[url], "title": item.get("title") or ""},
                                         ensure_ascii=False) + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        built = Path(tmp) / "out.wacz"
        code = wacz_main(["create", "-o", str(built), "--hash-type", "sha256", "-p", str(pages),
                          "--title", f"newsvault snapshot {ref.snapshot_id}", *warcs])
        if code not in (0, None) or not built.exists():
            raise CatalogError(f"the WACZ of {ref.snapshot_id} could not be built (wacz exit {code})")
        shutil.move(str(built), target)
    return target


def _capture_dates(warcs: list[str]) -> dict[str, str]:
    """URL -> WARC-Date of its last successful (2xx) response capture in ``warcs``."""
    from warcio.archiveiterator import ArchiveIterator

    dates: dict[str, str] = {}
    for path in warcs:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "response" and record.http_headers is not None:
                    status = record.http_headers.get_statuscode() or ""
                    if status.startswith("2"):
                        dates[record.rec_headers.get_header("WARC-Target-URI")] = record.rec_headers.get_header("WARC-Date")
    return dates

