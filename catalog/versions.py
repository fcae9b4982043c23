"""What makes an article version, and the row id it gets in the catalog (shared by ingest and preparation)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime
from typing import Any

# What makes an article version: every field but the counters, the fetch time
# and the bookkeeping. A byline or a date corrected is a new version; a view
# counter going up never is.
VERSION_FIELDS = (
    "title", "lead", "body", "authors", "tags", "published_at", "modified_at", "section",
    "image_url", "image_credit", "source_name", "source_url",
)


def version_key(item: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of an article's versioned fields."""
    fields = {name: item.get(name) for name in VERSION_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


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


def free_version_id(db: sqlite3.Connection, row_id: int) -> int:
    """``row_id``, or the next id after it that no version and no prepared version holds.

    Two versions first seen in the same second with the same key prefix are
    rare; an id a running crawl has indexed ahead of its commit is taken too
    (every version and every prepared one has its text row under its id).
    """
    while (db.execute("SELECT 1 FROM version_texts WHERE id=?", (row_id,)).fetchone()
           or db.execute("SELECT 1 FROM prepared_versions WHERE id=?", (row_id,)).fetchone()):
        row_id += 1
    return row_id


# The columns of a version row after its id, in the order version_values gives them.
VERSION_COLUMNS = (
    "site", "canonical_url", "content_hash", "url", "title", "lead", "body", "authors", "tags", "published_at",
    "modified_at", "section", "image_url", "image_credit", "source_name", "source_url", "language", "duplicate_of",
    "near_duplicate_of",
)


# A version row is stored in two halves under one id (catalog/db.py): its text
# (title, lead, body: version_texts, indexed in versions_fts) and the rest
# (version_rows, or prepared_versions while its crawl has not committed).
TEXT_COLUMNS = ("title", "lead", "body")
ROW_COLUMNS = tuple(name for name in VERSION_COLUMNS if name not in TEXT_COLUMNS)
_TEXT_AT = tuple(VERSION_COLUMNS.index(name) for name in TEXT_COLUMNS)
_ROW_AT = tuple(VERSION_COLUMNS.index(name) for name in ROW_COLUMNS)


def text_of(values: tuple[Any, ...]) -> tuple[str, str, str]:
    """A version row's (title, lead, body) as the full-text index holds them (absent as empty)."""
    title, lead, body = (values[i] for i in _TEXT_AT)
    return (title or "", lead or "", body or "")


def text_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A version row's (title, lead, body) as stored (absent as None)."""
    return tuple(values[i] for i in _TEXT_AT)


def row_of(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A version row's values in ROW_COLUMNS order."""
    return tuple(values[i] for i in _ROW_AT)


def insert_texts(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Store and index texts given as (id, title, lead, body) rows."""
    db.executemany("INSERT INTO version_texts (id, title, lead, body) VALUES (?, ?, ?, ?)", rows)
    db.executemany("INSERT INTO versions_fts (rowid, title, lead, body) VALUES (?, ?, ?, ?)",
                   [(row_id, title or "", lead or "", body or "") for row_id, title, lead, body in rows])


def delete_texts(db: sqlite3.Connection, select_ids: str, args: tuple[Any, ...] = ()) -> int:
    """Take the texts whose ids ``select_ids`` (a SELECT of one id column) gives out of the index and the table."""
    rows = db.execute(f"SELECT id, COALESCE(title, ''), COALESCE(lead, ''), COALESCE(body, '') FROM version_texts"
                      f" WHERE id IN ({select_ids})", args).fetchall()
    # External-content FTS5 forgets a row only when given the exact values it indexed.
    db.executemany("INSERT INTO versions_fts (versions_fts, rowid, title, lead, body) VALUES ('delete', ?, ?, ?, ?)",
                   [tuple(row) for row in rows])
    db.executemany("DELETE FROM version_texts WHERE id = ?", [(row[0],) for row in rows])
    return len(rows)


def _json_list(value: Any) -> str:
    return json.dumps(list(value or []), ensure_ascii=False)


def version_values(site: str, url: str, key: str, item: dict[str, Any]) -> tuple[Any, ...]:
    """An article item as a version row (VERSION_COLUMNS)."""
    return (site, url, key, item.get("url"), item.get("title"), item.get("lead"), item.get("body"),
            _json_list(item.get("authors")), _json_list(item.get("tags")), item.get("published_at"),
            item.get("modified_at"), item.get("section"), item.get("image_url"), item.get("image_credit"),
            item.get("source_name"), item.get("source_url"), item.get("language"), item.get("duplicate_of"),
            item.get("near_duplicate_of"))
