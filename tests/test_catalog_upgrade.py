"""A catalog written with schema 1 (every version's text in its row) opens as schema 2, answering the same.

The upgrade moves the texts into version_texts, keeps every version, sighting
and prepared row, and rebuilds the full-text index over the moved texts;
FTS5's own integrity check compares that index with its content afterwards.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.index import archive_key
from catalog.db import SCHEMA_VERSION, Catalog, CatalogError
from catalog.prepare import sweep_stale
from catalog.query import search

ARCHIVE = "/archive-under-test"

# Schema 1, as newsvault wrote it before the texts moved into a table of their own.
SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    status TEXT NOT NULL,
    items INTEGER NOT NULL,
    bytes INTEGER
);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    url TEXT,
    title TEXT,
    lead TEXT,
    body TEXT,
    authors TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    published_at TEXT,
    modified_at TEXT,
    section TEXT,
    image_url TEXT,
    image_credit TEXT,
    source_name TEXT,
    source_url TEXT,
    language TEXT,
    duplicate_of TEXT,
    near_duplicate_of TEXT,
    UNIQUE (site, canonical_url, content_hash)
);
CREATE INDEX IF NOT EXISTS versions_url ON versions (canonical_url);
CREATE TABLE IF NOT EXISTS sightings (
    version_id INTEGER NOT NULL REFERENCES versions (id),
    snapshot_id TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    views INTEGER,
    comment_count INTEGER,
    PRIMARY KEY (version_id, snapshot_id)
);
CREATE INDEX IF NOT EXISTS sightings_snapshot ON sightings (snapshot_id);
CREATE INDEX IF NOT EXISTS sightings_time ON sightings (fetched_at);
CREATE TABLE IF NOT EXISTS removals (
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    PRIMARY KEY (site, canonical_url, snapshot_id)
);
CREATE TABLE IF NOT EXISTS observations (
    site TEXT NOT NULL,
    thread_url TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    list_url TEXT,
    position INTEGER,
    title TEXT,
    comment_count INTEGER,
    last_activity_at TEXT,
    is_reply INTEGER,
    reply_to_title TEXT,
    PRIMARY KEY (site, thread_url, snapshot_id)
);
CREATE INDEX IF NOT EXISTS observations_time ON observations (site, observed_at);
-- What a running crawl prepared ahead of its commit (catalog/prepare.py): its new
-- versions (already in versions_fts under these ids) and every article sighting.
CREATE TABLE IF NOT EXISTS prepared_versions (
    id INTEGER PRIMARY KEY,
    snapshot_id TEXT NOT NULL,
    prepared_at TEXT NOT NULL,
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    url TEXT,
    title TEXT,
    lead TEXT,
    body TEXT,
    authors TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    published_at TEXT,
    modified_at TEXT,
    section TEXT,
    image_url TEXT,
    image_credit TEXT,
    source_name TEXT,
    source_url TEXT,
    language TEXT,
    duplicate_of TEXT,
    near_duplicate_of TEXT
);
CREATE INDEX IF NOT EXISTS prepared_versions_key ON prepared_versions (snapshot_id, site, canonical_url, content_hash);
CREATE INDEX IF NOT EXISTS prepared_versions_age ON prepared_versions (prepared_at);
CREATE TABLE IF NOT EXISTS prepared_sightings (
    snapshot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    prepared_at TEXT NOT NULL,
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    views INTEGER,
    comment_count INTEGER,
    PRIMARY KEY (snapshot_id, seq)
);
CREATE INDEX IF NOT EXISTS prepared_sightings_age ON prepared_sightings (prepared_at);
CREATE VIRTUAL TABLE IF NOT EXISTS versions_fts USING fts5(
    title, lead, body, content='versions', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
"""

VERSION_1 = ("site", "canonical_url", "content_hash", "url", "title", "lead", "body", "authors", "tags",
             "published_at", "modified_at", "section", "image_url", "image_credit", "source_name", "source_url",
             "language", "duplicate_of", "near_duplicate_of")


def _version(n: int, word: str) -> tuple[object, ...]:
    return ("sample", f"https://news.test/a/{n}", f"hash{n}", f"https://news.test/a/{n}?x", f"Headline {n}",
            None if n == 2 else f"Lead {n}", f"Body {n} about {word}.", "[\"A. Writer\"]", "[]",
            "2026-12-01T09:00:00Z", None, "World", None, None, None, None, "en", None, None)


def _catalog_1(path: Path) -> list[tuple[object, ...]]:
    """A schema-1 catalog of three versions (one without a lead), two sightings each, one prepared version."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("archive", archive_key(ARCHIVE)), ("schema_version", "1")])
    rows = [(n * 1000, *_version(n, word)) for n, word in ((1, "otter"), (2, "heron"), (3, "otter"))]
    marks = ",".join("?" * (len(VERSION_1) + 1))
    db.executemany(f"INSERT INTO versions (id, {', '.join(VERSION_1)}) VALUES ({marks})", rows)
    db.executemany("INSERT INTO versions_fts (rowid, title, lead, body) VALUES (?, ?, ?, ?)",
                   [(r[0], r[5] or "", r[6] or "", r[7] or "") for r in rows])
    for snapshot in ("S1", "S2"):
        db.execute("INSERT INTO snapshots VALUES (?, 'sample', 'articles', '2026-12-01T10:00:00Z',"
                   " '2026-12-01T10:05:00Z', 'complete', 3, 100)", (snapshot,))
        db.executemany("INSERT INTO sightings VALUES (?, ?, '2026-12-01T10:01:00Z', 5, NULL)",
                       [(r[0], snapshot) for r in rows])
    prepared = (9000, "RUNNING", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), *_version(9, "walrus"))
    db.execute(f"INSERT INTO prepared_versions (id, snapshot_id, prepared_at, {', '.join(VERSION_1)})"
               f" VALUES (?, ?, ?, {','.join('?' * len(VERSION_1))})", prepared)
    db.execute("INSERT INTO versions_fts (rowid, title, lead, body) VALUES (?, ?, ?, ?)",
               (9000, prepared[7], prepared[8], prepared[9]))
    db.commit()
    db.close()
    return rows


def _index_matches_its_content(catalog: Catalog) -> None:
    catalog.db.execute("INSERT INTO versions_fts (versions_fts, rank) VALUES ('integrity-check', 1)")


def test_a_schema_1_catalog_is_upgraded_in_place_and_answers_the_same(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    rows = _catalog_1(path)
    with Catalog(path, ARCHIVE) as catalog:
        assert catalog.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == SCHEMA_VERSION
        columns = ", ".join(("id", *VERSION_1))
        assert [tuple(r) for r in catalog.db.execute(f"SELECT {columns} FROM versions ORDER BY id")] == rows
        assert catalog.counts() == {"snapshots": 2, "articles": 3, "versions": 3, "observations": 0}
        _index_matches_its_content(catalog)
        hits = search(catalog, "otter")["hits"]
        assert sorted(hit["canonical_url"] for hit in hits) == ["https://news.test/a/1", "https://news.test/a/3"]
        # The running crawl's prepared version kept its text and stays out of sight until it commits.
        assert search(catalog, "walrus")["hits"] == []
        assert catalog.db.execute("SELECT body FROM version_texts WHERE id = 9000").fetchone()[0] == "Body 9 about walrus."
        with catalog.transaction() as db:
            assert sweep_stale(db, now=datetime.now(UTC) + timedelta(days=3)) == 1
        _index_matches_its_content(catalog)
        assert catalog.db.execute("SELECT COUNT(*) FROM version_texts").fetchone()[0] == 3
    with Catalog(path, ARCHIVE) as again:  # opening it again changes nothing
        assert again.counts()["versions"] == 3
        _index_matches_its_content(again)


def test_a_crawls_sidecar_never_upgrades_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    _catalog_1(path)
    with pytest.raises(CatalogError, match="catalog schema 1"):
        Catalog(path, ARCHIVE, upgrade=False)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
