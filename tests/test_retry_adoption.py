"""A retried cluster run first looks for what its dead attempt left: a committed snapshot, staging files.

The three-host test reaches these paths only when the kill lands at the
right moment; here each is set up on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.manifest import MANIFEST_NAME
from archive.staging import PARTIAL_SUFFIX, entry_dir
from archive.stores import SnapshotRef, open_store
from newsvault.config import load_config
from scheduler.daemon import Daemon
from scheduler.history import open_history
from scheduler.run_queue import Fire, fire_snapshot_id

FIRE = Fire(job_id="sample:articles", site="sample", kind="articles", planned_at="2026-12-02T10:00:00+00:00")


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    config = load_config(env={}, overrides={"state.dir": str(tmp_path / "state"),
                                            "archive.url": str(tmp_path / "archive")})
    made = Daemon(config)
    made.history = open_history(config.state_dir)
    return made


def test_a_retry_whose_snapshot_is_committed_records_ok_and_does_not_crawl(daemon: Daemon) -> None:
    snapshot_id = fire_snapshot_id(FIRE)
    store = open_store(daemon.config.archive.url)
    store.put_bytes_if_absent(SnapshotRef(snapshot_id, FIRE.site, FIRE.kind).key(MANIFEST_NAME), b"{}")

    assert daemon._retry_finds_it_done(FIRE, "run-2", snapshot_id) is True

    [record] = daemon.history.list_runs()
    assert (record.run_id, record.status, record.snapshot_id, record.snapshot_state) == (
        "run-2", "ok", snapshot_id, "committed")
    assert record.planned_at == FIRE.planned_at and "earlier attempt" in (record.error or "")


def test_a_retry_sets_the_dead_attempts_staging_aside_and_crawls_again(daemon: Daemon) -> None:
    snapshot_id = fire_snapshot_id(FIRE)
    final = entry_dir(daemon.config.spool_dir, FIRE.site, FIRE.kind, snapshot_id)
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    partial.mkdir(parents=True)
    (partial / "items.jsonl").write_text('{"url": "x"}\n', encoding="utf-8")

    assert daemon._retry_finds_it_done(FIRE, "run-2", snapshot_id) is False

    assert not partial.exists() and not final.exists()  # the retry can stage afresh
    [aside] = [p for p in final.parent.iterdir() if p.name.startswith(snapshot_id)]
    assert (aside / "items.jsonl").read_text(encoding="utf-8") == '{"url": "x"}\n'  # kept, not deleted
    assert daemon.history.list_runs() == []  # nothing recorded: the run crawls
