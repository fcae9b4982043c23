"""SQLite state store specifics: the file, WAL mode, a file written by an older version.

What every backend must do is in test_state_contract.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from newsvault.revisit import parse_time
from pipelines.state import STATE_FILE, open_state_store

SITE = "sample"
T0, T1, T2 = (f"2026-12-0{day}T06:00:00Z" for day in (1, 2, 3))


def test_open_creates_dir_and_uses_wal(tmp_path: Path) -> None:
    store = open_state_store(tmp_path / "a" / "b")
    store.close()
    path = tmp_path / "a" / "b" / STATE_FILE
    assert path.is_file()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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
    record = {r.url: r for r in store.revisit_records(SITE)}["u1"]
    assert record.last_seen == parse_time(T1) and record.failures == 0 and record.changed_at is None
    store.record_article(SITE, "u1", "h2", T2, {})
    assert {r.url: r for r in store.revisit_records(SITE)}["u1"].changed_at == parse_time(T2)
    store.close()
