"""The catalog's SQLite file: one per archive, ``<state>/catalog.sqlite`` by default.

An article *version* is one content hash of one canonical URL: counters
(views, comments) are not part of the hash, so they never make a version;
each snapshot holding the version is a *sighting*, with the counters it saw.
A discussion thread has one *observation* per snapshot that listed it. Full
text of every version's title, lead and body is in an FTS5 index (the
``unicode61`` tokenizer: case-folded words in any script, Russian and English
alike).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Self

from archive.index import archive_key
from catalog.versions import ROW_COLUMNS
from newsvault.errors import NewsvaultError
from newsvault.sqlite import add_column, connect_wal

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"

# The columns of a version row that are its text (indexed in full), the rest
# being what identifies and describes it. catalog/versions.py writes both halves.
_ROW_COLUMNS_DDL = """
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    url TEXT,
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
    near_duplicate_of TEXT"""

# One statement per entry (the upgrade runs them inside its own transaction).
_SCHEMA_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    status TEXT NOT NULL,
    items INTEGER NOT NULL,
    bytes INTEGER
)""",
    # A version's text lives in version_texts under its id; its other columns here.
    # Split so that a crawl writes each text once, as its sidecar prepares it
    # (catalog/prepare.py), and its commit moves only these small rows.
    f"""CREATE TABLE IF NOT EXISTS version_rows (
    id INTEGER PRIMARY KEY,{_ROW_COLUMNS_DDL},
    UNIQUE (site, canonical_url, content_hash)
)""",
    "CREATE INDEX IF NOT EXISTS versions_url ON version_rows (canonical_url)",
    # Every version's text, and that of every version a running crawl prepared.
    "CREATE TABLE IF NOT EXISTS version_texts (id INTEGER PRIMARY KEY, title TEXT, lead TEXT, body TEXT)",
    # What every query reads: a version whole, as one row.
    """CREATE VIEW IF NOT EXISTS versions AS SELECT
    r.id AS id, r.site AS site, r.canonical_url AS canonical_url, r.content_hash AS content_hash, r.url AS url,
    t.title AS title, t.lead AS lead, t.body AS body, r.authors AS authors, r.tags AS tags,
    r.published_at AS published_at, r.modified_at AS modified_at, r.section AS section, r.image_url AS image_url,
    r.image_credit AS image_credit, r.source_name AS source_name, r.source_url AS source_url,
    r.language AS language, r.duplicate_of AS duplicate_of, r.near_duplicate_of AS near_duplicate_of
FROM version_rows r JOIN version_texts t ON t.id = r.id""",
    """CREATE TABLE IF NOT EXISTS sightings (
    version_id INTEGER NOT NULL REFERENCES version_rows (id),
    snapshot_id TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    views INTEGER,
    comment_count INTEGER,
    PRIMARY KEY (version_id, snapshot_id)
)""",
    "CREATE INDEX IF NOT EXISTS sightings_snapshot ON sightings (snapshot_id)",
    "CREATE INDEX IF NOT EXISTS sightings_time ON sightings (fetched_at)",
    """CREATE TABLE IF NOT EXISTS removals (
    site TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    PRIMARY KEY (site, canonical_url, snapshot_id)
)""",
    """CREATE TABLE IF NOT EXISTS observations (
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
)""",
    "CREATE INDEX IF NOT EXISTS observations_time ON observations (site, observed_at)",
    # What a running crawl prepared ahead of its commit (catalog/prepare.py): its new versions
    # (their text already in version_texts and versions_fts under these ids) and every article sighting.
    f"""CREATE TABLE IF NOT EXISTS prepared_versions (
    id INTEGER PRIMARY KEY,
    snapshot_id TEXT NOT NULL,
    prepared_at TEXT NOT NULL,{_ROW_COLUMNS_DDL}
)""",
    "CREATE INDEX IF NOT EXISTS prepared_versions_key ON prepared_versions (snapshot_id, site, canonical_url, content_hash)",
    "CREATE INDEX IF NOT EXISTS prepared_versions_age ON prepared_versions (prepared_at)",
    """CREATE TABLE IF NOT EXISTS prepared_sightings (
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
)""",
    "CREATE INDEX IF NOT EXISTS prepared_sightings_age ON prepared_sightings (prepared_at)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS versions_fts USING fts5(
    title, lead, body, content='version_texts', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
)""",
)
_SCHEMA = ";\n".join(_SCHEMA_STATEMENTS) + ";\n"


class CatalogError(NewsvaultError, ValueError):
    """The catalog cannot answer: it indexes another archive, or a query is malformed."""


class Catalog:
    """An open catalog of one archive."""

    def __init__(self, path: str | Path, archive_url: str, *, create: bool = True, upgrade: bool = True) -> None:
        """Open (or with ``create`` make) the catalog at ``path``.

        A catalog an older newsvault wrote is upgraded in place, unless
        ``upgrade`` is off (a crawl's sidecar: it must not stall the crawl),
        which then gets a CatalogError instead.
        """
        self.path = Path(path)
        if not create and not self.path.exists():
            raise CatalogError(f"no catalog at {self.path}: run `newsvault catalog rebuild`")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.archive = archive_key(archive_url)
        self.db = connect_wal(self.path, schema=_SCHEMA, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self._claim_archive(upgrade)
        if "bytes" not in {row[1] for row in self.db.execute("PRAGMA table_info(snapshots)")}:
            # Catalogs written before snapshot sizes were kept: their rows stay unsized until a rebuild.
            add_column(self.db, "snapshots", "bytes", "INTEGER")

    def _claim_archive(self, upgrade: bool) -> None:
        with self.transaction():
            rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            if not rows:
                self.db.executemany("INSERT INTO meta VALUES (?, ?)",
                                    [("archive", self.archive), ("schema_version", SCHEMA_VERSION)])
                return
        if rows.get("archive") != self.archive:
            raise CatalogError(f"{self.path} indexes {rows.get('archive')}, not {self.archive}: "
                               "give --catalog another file, or rebuild it for this archive")
        if rows.get("schema_version") == "1" and upgrade:
            _upgrade_from_1(self.db, self.path)
        elif rows.get("schema_version") != SCHEMA_VERSION:
            raise CatalogError(f"{self.path} has catalog schema {rows.get('schema_version')}, "
                               f"this newsvault reads {SCHEMA_VERSION}: run `newsvault catalog rebuild`")

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def counts(self) -> dict[str, int]:
        """How much the catalog holds: snapshots, articles, versions, thread observations."""
        queries = {
            "snapshots": "SELECT COUNT(*) FROM snapshots",
            "articles": "SELECT COUNT(DISTINCT canonical_url) FROM version_rows",
            "versions": "SELECT COUNT(*) FROM version_rows",
            "observations": "SELECT COUNT(*) FROM observations",
        }
        return {name: int(self.db.execute(sql).fetchone()[0]) for name, sql in queries.items()}

    def snapshot_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT snapshot_id FROM snapshots")}

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (the write lock up front: two crawls may ingest at once)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")



def _upgrade_from_1(db: sqlite3.Connection, path: Path) -> None:
    """Schema 1 (every version's text in its row) to 2 (texts in version_texts), in one transaction.

    The full-text index is rebuilt over the moved texts: on a large catalog
    this takes minutes, once. Two processes opening the old file at once: the
    second finds the work done when it gets the lock.
    """
    with _Transaction(db):
        if db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] != "1":
            return
        log.warning("upgrading the catalog %s to schema %s (its full-text index is rebuilt once)", path, SCHEMA_VERSION)
        for old_index in ("versions_url", "prepared_versions_key", "prepared_versions_age"):
            db.execute(f"DROP INDEX IF EXISTS {old_index}")
        db.execute("DROP TABLE IF EXISTS versions_fts")
        db.execute("ALTER TABLE versions RENAME TO versions_1")
        db.execute("ALTER TABLE prepared_versions RENAME TO prepared_versions_1")
        for statement in _SCHEMA_STATEMENTS:
            db.execute(statement)
        columns = ", ".join(ROW_COLUMNS)
        db.execute(f"INSERT INTO version_rows (id, {columns}) SELECT id, {columns} FROM versions_1")
        db.execute(f"INSERT INTO prepared_versions (id, snapshot_id, prepared_at, {columns})"
                   f" SELECT id, snapshot_id, prepared_at, {columns} FROM prepared_versions_1")
        for old in ("versions_1", "prepared_versions_1"):
            db.execute(f"INSERT INTO version_texts (id, title, lead, body) SELECT id, title, lead, body FROM {old}")
            db.execute(f"DROP TABLE {old}")
        db.execute("INSERT INTO versions_fts (versions_fts) VALUES ('rebuild')")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
