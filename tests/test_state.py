"""SQLite state store: persistence, batching, removal, two writers at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from newsvault.revisit import RevisitRecord, parse_time
from pipelines.state import STATE_FILE, SQLiteStateStore, open_state_store

SITE = "sample"
T0, T1, T2, T3 = (f"2026-12-0{day}T06:00:00Z" for day in (1, 2, 3, 4))


def test_open_creates_dir_and_uses_wal(tmp_path: Path) -> None:
    store = open_state_store(tmp_path / "a" / "b")
    store.close()
    path = tmp_path / "a" / "b" / STATE_FILE
    assert path.is_file()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_articles_persist_across_opens(tmp_path: Path) -> None:
    store = open_state_store(tmp_path)
    assert store.article_state(SITE, "u1") is None
    store.record_article(SITE, "u1", "h1", "2026-12-31T06:00:00Z", {"views": 5})
    assert store.article_state(SITE, "u1").content_hash == "h1"  # type: ignore[union-attr]  # buffered read
    store.close()
    store = open_state_store(tmp_path)
    state = store.article_state(SITE, "u1")
    assert state is not None and state.content_hash == "h1" and state.volatile == {"views": 5}
    store.record_article(SITE, "u1", "h2", "2026-12-31T12:00:00Z", {"views": 9})
    store.close()
    state = open_state_store(tmp_path).article_state(SITE, "u1")
    assert state is not None
    assert (state.content_hash, state.first_seen, state.last_seen) == (
        "h2",
        "2026-12-31T06:00:00Z",
        "2026-12-31T12:00:00Z",
    )
    # Every sighting's counters are history.
    rows = (
        sqlite3.connect(tmp_path / STATE_FILE)
        .execute("SELECT count(*) FROM article_counters")
        .fetchone()
    )
    assert rows[0] == 2


def test_writes_are_batched_not_per_item(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / STATE_FILE, batch_size=3)
    reader = sqlite3.connect(tmp_path / STATE_FILE)
    count = "SELECT count(*) FROM articles"
    store.record_article(SITE, "u1", "h", "t", {})
    store.record_article(SITE, "u2", "h", "t", {})
    assert reader.execute(count).fetchone()[0] == 0
    store.record_article(SITE, "u3", "h", "t", {})
    assert reader.execute(count).fetchone()[0] == 3
    store.record_article(SITE, "u4", "h", "t", {})
    store.commit()
    assert reader.execute(count).fetchone()[0] == 4
    store.close()


def _records(store: SQLiteStateStore, site: str = SITE) -> dict[str, RevisitRecord]:
    return {r.url: r for r in store.revisit_records(site)}


def test_revisit_records_and_removal(tmp_path: Path) -> None:
    store = open_state_store(tmp_path)
    for url in ("u1", "u2", "u3"):
        store.record_article(SITE, url, "h", T0, {}, published_at="2026-12-01T00:00:00+01:00")
    store.record_article("other", "x1", "h", T0, {})
    records = _records(store)
    assert sorted(records) == ["u1", "u2", "u3"]
    assert records["u1"].published_at == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert records["u1"].changed_at is None and records["u1"].removed_at is None
    assert store.mark_removed(SITE, "u2", 410, T1) is True
    assert store.mark_removed(SITE, "u2", 410, T1) is False  # the same run: counted once
    assert store.mark_removed(SITE, "never-seen", 404, T1) is False
    records = _records(store)
    assert records["u2"].removed_at == parse_time(T1) and records["u2"].gone_checks == 1
    assert store.article_state(SITE, "u2").removed is True  # type: ignore[union-attr]
    # A later 404 on a removed article is a recheck, not a second removal.
    assert store.mark_removed(SITE, "u2", 404, T2) is False
    records = _records(store)
    assert records["u2"].removed_at == parse_time(T1) and records["u2"].gone_checks == 2
    store.record_article(SITE, "u2", "h", T3, {})  # back again: a fresh start
    back = _records(store)["u2"]
    assert back.removed_at is None and back.gone_checks == 0 and back.first_seen == parse_time(T3)
    store.close()


def test_changes_and_unreachable_feed_the_revisit_records(tmp_path: Path) -> None:
    store = open_state_store(tmp_path)
    store.record_article(SITE, "u1", "h1", T0, {})
    store.record_article(SITE, "u1", "h1", T1, {})  # unchanged
    assert _records(store)["u1"].changed_at is None
    store.record_article(SITE, "u1", "h2", T2, {})  # edited
    assert _records(store)["u1"].changed_at == parse_time(T2)
    store.record_unreachable(SITE, "u1", T3)
    store.commit()
    store.record_unreachable(SITE, "u1", T3)
    store.record_unreachable(SITE, "never-seen", T3)  # nothing to back off: ignored
    record = _records(store)["u1"]
    assert record.failures == 2 and record.failed_at == parse_time(T3)
    assert record.removed_at is None  # no answer is never a removal
    assert [r.url for r in store.revisit_records(SITE)] == ["u1"]
    store.record_article(SITE, "u1", "h2", T3, {})  # it answered again
    record = _records(store)["u1"]
    assert record.failures == 0 and record.failed_at is None and record.changed_at == parse_time(T2)
    store.close()


def test_state_file_of_an_older_version_gains_the_revisit_columns(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / STATE_FILE)
    old.executescript(
        "CREATE TABLE articles (site TEXT NOT NULL, canonical_url TEXT NOT NULL, content_hash TEXT NOT NULL,"
        " first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, volatile TEXT NOT NULL DEFAULT '{}',"
        " removed_at TEXT, removed_status INTEGER, PRIMARY KEY (site, canonical_url));"
        f"INSERT INTO articles (site, canonical_url, content_hash, first_seen, last_seen) VALUES ('{SITE}', 'u1', 'h', '{T0}', '{T1}');"
    )
    old.commit()
    old.close()
    store = open_state_store(tmp_path)
    record = _records(store)["u1"]
    assert record.last_seen == parse_time(T1) and record.failures == 0 and record.changed_at is None
    store.record_article(SITE, "u1", "h2", T2, {})
    assert _records(store)["u1"].changed_at == parse_time(T2)
    store.close()


def test_threads(tmp_path: Path) -> None:
    store = open_state_store(tmp_path)
    store.record_thread(SITE, "t/1", "a|1", "s0")
    store.close()
    store = open_state_store(tmp_path)
    state = store.thread_state(SITE, "t/1")
    assert state is not None and state.fingerprint == "a|1"
    store.record_thread(SITE, "t/1", "b|2", "s1")
    assert store.thread_state(SITE, "t/1").fingerprint == "b|2"  # type: ignore[union-attr]
    assert store.thread_state(SITE, "t/2") is None
    store.close()


WRITER = textwrap.dedent(
    """
    import sys
    from pipelines.state import open_state_store
    store = open_state_store(sys.argv[1], batch_size=50)
    kind = sys.argv[2]
    for i in range(2000):
        if kind == "articles":
            store.record_article("sample", f"a{i}", "h", "t", {"views": i})
        else:
            store.record_thread("sample", f"t{i}", "f", "t")
    store.close()
    """
)


def test_two_crawls_write_at_once(tmp_path: Path) -> None:
    open_state_store(tmp_path).close()  # create the schema once, as the first crawl would
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), kind], stderr=subprocess.PIPE, text=True
        )
        for kind in ("articles", "discussions")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    db = sqlite3.connect(tmp_path / STATE_FILE)
    assert db.execute("SELECT count(*) FROM articles").fetchone()[0] == 2000
    assert db.execute("SELECT count(*) FROM threads").fetchone()[0] == 2000
