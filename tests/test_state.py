"""SQLite state store: persistence, batching, removal, two writers at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from pipelines.state import STATE_FILE, SQLiteStateStore, open_state_store

SITE = "sample"


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


def test_known_urls_and_removal(tmp_path: Path) -> None:
    store = open_state_store(tmp_path)
    for url in ("u1", "u2", "u3"):
        store.record_article(SITE, url, "h", "t0", {})
    store.record_article("other", "x1", "h", "t0", {})
    assert store.known_article_urls(SITE) == ["u1", "u2", "u3"]
    assert store.mark_removed(SITE, "u2", 410, "t1") is True
    assert store.mark_removed(SITE, "u2", 410, "t2") is False  # already removed
    assert store.mark_removed(SITE, "never-seen", 404, "t2") is False
    assert store.known_article_urls(SITE) == ["u1", "u3"]
    assert store.article_state(SITE, "u2").removed is True  # type: ignore[union-attr]
    store.record_article(SITE, "u2", "h", "t3", {})  # back again
    assert store.known_article_urls(SITE) == ["u1", "u2", "u3"]
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
