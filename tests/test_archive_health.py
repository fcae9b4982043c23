"""An archive outage is visible: spooled runs say so, metrics count only what is committed, health turns bad."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archive.index import DigestIndex
from archive.push_log import PushLog
from archive.staging import Staging
from scheduler.health import ArchiveHealth
from scheduler.history import open_history
from scheduler.metrics import HistoryCollector, build_registry
from tests.plugins.cli import NewsvaultRunner


def _spooled_entry(spool: Path, index: DigestIndex) -> Staging:
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=index)
    staging.write_item({"type": "article", "url": "http://sample.test/a/1", "change": "new"})
    staging.finalise(finish_reason="finished")
    return staging


def test_health_and_metrics_show_the_spool_backlog_and_failing_pushes(tmp_path: Path) -> None:
    state, archive = tmp_path / "state", "s3://bucket/prefix"
    health = ArchiveHealth(state_dir=state, spool_dir=state / "spool", archive_url=archive)
    assert health.report()["ok"] and health.summary_line() is None

    entry = _spooled_entry(state / "spool", DigestIndex.in_state_dir(state, archive))
    PushLog.in_state_dir(state).record(archive, attempted=True, error="s3://bucket/prefix: cannot connect")
    PushLog.in_state_dir(state).record(archive, attempted=True, error="s3://bucket/prefix: cannot connect")
    report = health.report()
    assert not report["ok"]
    assert report["spool"]["entries"] == 1 and report["spool"]["bytes"] > 0
    assert report["spool"]["oldest_age_seconds"] is not None
    assert report["push"]["consecutive_failures"] == 2 and report["push"]["failures_total"] == 2
    line = health.summary_line() or ""
    assert "1 snapshot(s) waiting" in line and "cannot connect" in line

    registry = build_registry(HistoryCollector(open_history(state), archive=health))
    assert registry.get_sample_value("newsvault_spool_entries") == 1
    assert registry.get_sample_value("newsvault_push_failures_total") == 2
    assert registry.get_sample_value("newsvault_push_consecutive_failures") == 2

    # The archive is back: one good push clears the failing state.
    PushLog.in_state_dir(state).record(archive, attempted=True, error=None)
    entry.final_dir.rename(tmp_path / "gone")
    assert health.report()["ok"]
    assert registry.get_sample_value("newsvault_push_consecutive_failures") == 0
    assert registry.get_sample_value("newsvault_push_failures_total") == 2


def test_a_crawl_into_a_refusing_archive_says_spooled_and_why(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any, s3_server_factory: Any
) -> None:
    server = s3_server_factory()
    newsvault_cli.env.update(server.env())
    newsvault_cli.env["NEWSVAULT_ARCHIVE"] = server.archive_url("refusing")
    site = sample_site_factory(articles=60)
    server.stop()
    summary = newsvault_cli.crawl_summary("sample", "--start-url", site.base_url + "/")
    assert summary["status"] == "ok"  # the crawl did its job: its snapshot is safe in the spool
    assert summary["snapshot_state"] == "spooled"
    assert summary["archived_bytes"] is None
    assert "not in the archive yet" in summary["error"] and "cannot connect" in summary["error"]
    runs = newsvault_cli("runs")
    assert "1 snapshot(s) waiting in the spool" in runs.stderr and "push(es) failed" in runs.stderr

    server.start()
    push = newsvault_cli("push")
    assert push.returncode == 0, push.stdout + push.stderr
    status = PushLog.in_state_dir(newsvault_cli.state_dir).status(newsvault_cli.env["NEWSVAULT_ARCHIVE"])
    assert status.consecutive_failures == 0 and status.failures_total == 1
    assert "waiting" not in newsvault_cli("runs").stderr
    listing = json.loads(newsvault_cli("snapshots", "--json").stdout)
    assert [(r["snapshot_id"], r["state"]) for r in listing] == [(summary["snapshot_id"], "committed")]
