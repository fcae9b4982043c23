"""The state store contract, run over both backends: SQLite (one host) and PostgreSQL (a cluster's shared state).

Every behaviour change tracking relies on: persistence across opens, buffered
reads, batched flushes, removals and rechecks, unreachable back-off, threads,
writes filed under a run that only apply_run makes visible, and two crawls
writing at once from their own processes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsvault.revisit import RevisitRecord, parse_time
from newsvault.sqldb import PostgresDatabase, SQLiteDatabase
from pipelines.state import STATE_FILE, SQLStateStore, apply_run, open_state_store, revisit_records

SITE = "sample"
T0, T1, T2, T3 = (f"2026-12-0{day}T06:00:00Z" for day in (1, 2, 3, 4))
RUN = "20261202T060000Z-sample-articles-0a1b2c3d"


@dataclass
class Backend:
    state_dir: Path
    url: str | None

    def open(self, **kwargs: Any) -> SQLStateStore:
        return open_state_store(self.state_dir, url=self.url, **kwargs)

    def article(self, site: str, url: str) -> Any:
        """The article's state as a fresh store opened now sees it."""
        store = self.open()
        try:
            return store.article_state(site, url)
        finally:
            store.close()

    def count(self, table: str) -> int:
        """Rows of ``table`` as another process reading the database sees them."""
        db = (PostgresDatabase(self.url, schema="", schema_lock="test") if self.url
              else SQLiteDatabase(self.state_dir / STATE_FILE, schema="", timeout=5))
        try:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return Backend(tmp_path / "state", url)


def _records(store: SQLStateStore, site: str = SITE) -> dict[str, RevisitRecord]:
    return {r.url: r for r in store.revisit_records(site)}


def test_articles_persist_across_opens(backend: Backend) -> None:
    store = backend.open()
    assert store.article_state(SITE, "u1") is None
    store.record_article(SITE, "u1", "h1", "2026-12-31T06:00:00Z", {"views": 5})
    assert store.article_state(SITE, "u1").content_hash == "h1"  # type: ignore[union-attr]  # buffered read
    store.close()
    store = backend.open()
    state = store.article_state(SITE, "u1")
    assert state is not None and state.content_hash == "h1" and state.volatile == {"views": 5}
    store.record_article(SITE, "u1", "h2", "2026-12-31T12:00:00Z", {"views": 9})
    store.close()
    state = backend.article(SITE, "u1")
    assert state is not None
    assert (state.content_hash, state.first_seen, state.last_seen) == (
        "h2", "2026-12-31T06:00:00Z", "2026-12-31T12:00:00Z")
    assert backend.count("article_counters") == 2  # every sighting's counters are history


def test_writes_are_batched_not_per_item(backend: Backend) -> None:
    store = backend.open(batch_size=3)
    store.record_article(SITE, "u1", "h", "t", {})
    store.record_article(SITE, "u2", "h", "t", {})
    assert backend.count("articles") == 0
    store.record_article(SITE, "u3", "h", "t", {})
    assert backend.count("articles") == 3
    store.record_article(SITE, "u4", "h", "t", {})
    store.commit()
    assert backend.count("articles") == 4
    store.close()


def test_revisit_records_and_removal(backend: Backend) -> None:
    store = backend.open()
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


def test_changes_and_unreachable_feed_the_revisit_records(backend: Backend) -> None:
    store = backend.open()
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


def test_threads(backend: Backend) -> None:
    store = backend.open()
    store.record_thread(SITE, "t/1", "a|1", "s0")
    store.close()
    store = backend.open()
    state = store.thread_state(SITE, "t/1")
    assert state is not None and state.fingerprint == "a|1"
    store.record_thread(SITE, "t/1", "b|2", "s1")
    assert store.thread_state(SITE, "t/1").fingerprint == "b|2"  # type: ignore[union-attr]
    assert store.thread_state(SITE, "t/2") is None
    store.close()


def test_a_runs_writes_count_only_once_applied(backend: Backend) -> None:
    """Filed under the run, its writes are seen by the run itself and by nobody else until apply_run."""
    before = backend.open()
    before.record_article(SITE, "u1", "h1", T0, {})
    before.close()
    run = backend.open(run=RUN)
    run.record_article(SITE, "u1", "h2", T1, {})  # edited in this run
    run.record_article(SITE, "u2", "h", T1, {})  # new in this run
    run.record_thread(SITE, "t/1", "a|1", T1)
    run.commit()
    assert run.article_state(SITE, "u1").content_hash == "h2"  # type: ignore[union-attr]  # its own flushed rows
    other = backend.open()
    assert other.article_state(SITE, "u1").content_hash == "h1"  # type: ignore[union-attr]
    assert other.article_state(SITE, "u2") is None and other.thread_state(SITE, "t/1") is None
    other.close()
    run.close()
    apply_run(backend.state_dir, RUN, url=backend.url)
    after = backend.open()
    assert after.article_state(SITE, "u1").content_hash == "h2"  # type: ignore[union-attr]
    assert after.article_state(SITE, "u1").removed is False  # type: ignore[union-attr]
    assert after.article_state(SITE, "u2") is not None and after.thread_state(SITE, "t/1") is not None
    assert _records(after)["u1"].changed_at == parse_time(T1)
    after.close()
    assert backend.count("pending_articles") == 0 and backend.count("pending_threads") == 0


def test_a_discarded_run_leaves_the_state_as_it_was(backend: Backend) -> None:
    run = backend.open(run=RUN)
    run.record_article(SITE, "u1", "h", T0, {})
    run.record_thread(SITE, "t/1", "a|1", T0)
    run.commit()
    run.discard_run(RUN)
    run.close()
    store = backend.open()
    assert store.article_state(SITE, "u1") is None and store.thread_state(SITE, "t/1") is None
    store.close()
    assert backend.count("pending_articles") == 0
    assert revisit_records(backend.state_dir, SITE, url=backend.url) == []


def test_a_removal_applied_with_its_run(backend: Backend) -> None:
    store = backend.open()
    store.record_article(SITE, "u1", "h", T0, {})
    store.close()
    run = backend.open(run=RUN)
    assert run.mark_removed(SITE, "u1", 410, T1) is True
    assert run.article_state(SITE, "u1").removed is True  # type: ignore[union-attr]
    run.close()
    assert backend.article(SITE, "u1").removed is False  # not yet applied
    apply_run(backend.state_dir, RUN, url=backend.url)
    record = {r.url: r for r in revisit_records(backend.state_dir, SITE, url=backend.url)}["u1"]
    assert record.removed_at == parse_time(T1) and record.gone_checks == 1


WRITER = textwrap.dedent(
    """
    import sys
    from pipelines.state import open_state_store
    store = open_state_store(sys.argv[1], batch_size=50, url=sys.argv[3] or None)
    kind = sys.argv[2]
    for i in range(2000):
        if kind == "articles":
            store.record_article("sample", f"a{i}", "h", "t", {"views": i})
        else:
            store.record_thread("sample", f"t{i}", "f", "t")
    store.close()
    """
)


def test_two_crawls_write_at_once(backend: Backend) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(backend.state_dir), kind, backend.url or ""],
                         stderr=subprocess.PIPE, text=True)
        for kind in ("articles", "discussions")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert backend.count("articles") == 2000
    assert backend.count("threads") == 2000


def test_a_shared_state_url_must_be_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL URL") as caught:
        open_state_store(tmp_path, url="mysql://user:secret@db/state")
    assert "secret" not in str(caught.value)
