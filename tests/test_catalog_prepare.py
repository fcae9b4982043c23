"""Catalog rows prepared during a crawl (catalog/prepare.py): invisible until the commit, the same catalog after it.

Real SQLite catalogs and real ingests. FTS5's own integrity check compares
the full-text index with the versions table, so an entry left in the index,
or one missing from it, fails these tests; each prepared ingest is compared
with the same snapshot ingested from its items alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.manifest import Manifest
from catalog.db import Catalog
from catalog.ingest import ingest
from catalog.prepare import CatalogPreparer, sweep_stale
from catalog.query import search

ARCHIVE = "/archive-under-test"


def _article(n: int, word: str, fetched: str = "2026-12-01T10:00:00+00:00", **extra: Any) -> dict[str, Any]:
    return {"type": "article", "site": "sample", "canonical_url": f"https://news.test/a/{n}",
            "url": f"https://news.test/a/{n}", "title": f"Headline {n} {word}", "lead": "A lead.",
            "body": f"Body of {n} about {word}.", "authors": ["A. Writer"], "fetched_at": fetched, "views": n, **extra}


def _manifest(snapshot_id: str, items: list[dict[str, Any]]) -> Manifest:
    by_type: dict[str, dict[str, int]] = {}
    for item in items:
        by_type.setdefault(item["type"], {}).setdefault("new", 0)
        by_type[item["type"]]["new"] += 1
    return Manifest(snapshot_id=snapshot_id, site="sample", kind="articles", started_at="2026-12-01T10:00:00Z",
                    finished_at="2026-12-01T10:05:00Z", status="complete", finish_reason="finished",
                    counts={"items": len(items), "items_by_type": by_type}, crawl_stats={},
                    previous_snapshot_id=None, refers_to=[], files=[])


def _not_read() -> Iterator[dict[str, Any]]:
    raise AssertionError("the items were read although every row was prepared")
    yield {}  # pragma: no cover - makes this a generator


def _index_matches_versions(catalog: Catalog) -> None:
    """FTS5's check of the index against its content table (raises on any extra or missing entry)."""
    catalog.db.execute("INSERT INTO versions_fts (versions_fts, rank) VALUES ('integrity-check', 1)")


def _prepare(path: Path, snapshot_id: str, items: list[dict[str, Any]]) -> CatalogPreparer:
    preparer = CatalogPreparer(path, ARCHIVE, snapshot_id)
    for item in items:
        preparer.add(item)
    preparer.close()
    return preparer


def _left(catalog: Catalog) -> tuple[int, int]:
    db = catalog.db
    return (db.execute("SELECT COUNT(*) FROM prepared_versions").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM prepared_sightings").fetchone()[0])


def _content(catalog: Catalog) -> list[Any]:
    db = catalog.db
    return [[tuple(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in ("versions", "sightings", "snapshots")]


def _from_items_alone(tmp_path: Path, snapshots: list[tuple[str, list[dict[str, Any]]]]) -> list[Any]:
    with Catalog(tmp_path / "plain.sqlite", ARCHIVE) as plain:
        for snapshot_id, items in snapshots:
            ingest(plain, _manifest(snapshot_id, items), items)
        return _content(plain)


def test_prepared_rows_are_invisible_until_the_commit_which_takes_them_without_reading_items(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    items = [_article(n, "zeppelin") for n in range(250)]  # more than one batch
    assert _prepare(path, "S1", items).prepared == 250
    with Catalog(path, ARCHIVE) as catalog:
        assert search(catalog, "zeppelin")["hits"] == []
        assert catalog.counts()["versions"] == 0
        indexed: list[str] = []
        catalog.db.set_trace_callback(lambda sql: indexed.append(sql) if "INTO versions_fts (rowid" in sql else None)
        assert ingest(catalog, _manifest("S1", items), _not_read(), prepared=True)
        catalog.db.set_trace_callback(None)
        assert indexed == []  # nothing indexed twice
        assert len(search(catalog, "zeppelin", limit=500)["hits"]) == 250
        assert _left(catalog) == (0, 0)
        _index_matches_versions(catalog)
        assert _content(catalog) == _from_items_alone(tmp_path, [("S1", items)])


def test_a_second_crawl_adds_sightings_and_only_its_new_versions(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    first = [_article(n, "osprey") for n in range(20)]
    second = ([_article(n, "osprey", fetched="2026-12-01T12:00:00+00:00") for n in range(10)]
              + [_article(n, "edited", fetched="2026-12-01T12:00:00+00:00") for n in range(10, 20)])
    with Catalog(path, ARCHIVE) as catalog:
        for snapshot_id, items in (("S1", first), ("S2", second)):
            preparer = _prepare(path, snapshot_id, items)
            assert ingest(catalog, _manifest(snapshot_id, items), _not_read(), prepared=True)
        assert preparer.prepared == 10  # the edited ten
        _index_matches_versions(catalog)
        assert _content(catalog) == _from_items_alone(tmp_path, [("S1", first), ("S2", second)])


def test_when_rows_do_not_account_for_every_item_the_items_are_read(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    items = [_article(n, "otter") for n in range(5)]
    _prepare(path, "PART", items + [_article(99, "beyond-the-salvaged-prefix")])
    with Catalog(path, ARCHIVE) as catalog:
        # Salvaged: the manifest has the first five only, so the six prepared rows cannot be taken.
        with pytest.raises(AssertionError, match="items were read"):
            ingest(catalog, _manifest("PART", items), _not_read(), prepared=True)
        assert ingest(catalog, _manifest("PART", items), items, prepared=True)
        assert _left(catalog) == (0, 0)
        _index_matches_versions(catalog)
        assert search(catalog, "salvaged")["hits"] == []
        assert _content(catalog) == _from_items_alone(tmp_path, [("PART", items)])


def test_an_earlier_sighting_arriving_later_takes_the_per_item_path(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    late = [_article(n, "heron", fetched="2026-12-01T12:00:00+00:00") for n in range(3)]
    early = [_article(n, "heron", fetched="2026-12-01T08:00:00+00:00") for n in range(3)]
    with Catalog(path, ARCHIVE) as catalog:
        _prepare(path, "EARLY", early)  # prepared, then spooled while a later crawl committed first
        assert ingest(catalog, _manifest("LATE", late), late)
        assert ingest(catalog, _manifest("EARLY", early), early, prepared=True)
        _index_matches_versions(catalog)
        assert _left(catalog) == (0, 0)
        assert _content(catalog) == _from_items_alone(tmp_path, [("LATE", late), ("EARLY", early)])


def test_a_crawl_that_never_commits_leaves_nothing_after_the_sweep(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    _prepare(path, "DEAD", [_article(n, "walrus") for n in range(10)])
    with Catalog(path, ARCHIVE) as catalog:
        # The texts are stored and indexed ahead of their rows, and nothing shows them.
        _index_matches_versions(catalog)
        assert catalog.db.execute("SELECT COUNT(*) FROM version_texts").fetchone()[0] == 10
        assert search(catalog, "walrus")["hits"] == [] and catalog.counts()["versions"] == 0
        with catalog.transaction() as db:
            assert sweep_stale(db, now=datetime.now(UTC)) == 0  # a live crawl's rows stay
            assert sweep_stale(db, now=datetime.now(UTC) + timedelta(days=3)) == 10
        _index_matches_versions(catalog)
        assert _left(catalog) == (0, 0)
        assert catalog.db.execute("SELECT COUNT(*) FROM version_texts").fetchone()[0] == 0
        assert search(catalog, "walrus")["hits"] == []


def test_ids_a_crawl_holds_are_not_given_to_other_versions(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    items = [_article(1, "heron")]
    _prepare(path, "RUNNING", items)
    with Catalog(path, ARCHIVE) as catalog:
        held = catalog.db.execute("SELECT id FROM prepared_versions").fetchone()[0]
        # The same version committed by another snapshot first: it must not take the held id.
        assert ingest(catalog, _manifest("OTHER", items), items)
        (given,) = catalog.db.execute("SELECT id FROM versions").fetchone()
        assert given != held
        assert ingest(catalog, _manifest("RUNNING", items), _not_read(), prepared=True)
        _index_matches_versions(catalog)
        assert _left(catalog) == (0, 0)
        assert catalog.db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 2


def test_a_catalog_of_another_archive_turns_preparation_off(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    Catalog(path, "/some-other-archive").close()
    preparer = _prepare(path, "S1", [_article(n, "lynx") for n in range(300)])
    assert preparer.prepared == 0
    with Catalog(path, "/some-other-archive") as catalog:
        assert _left(catalog) == (0, 0)
