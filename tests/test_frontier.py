"""The crawl frontier lives on disk, per crawl, and is gone when the crawl ends."""

from __future__ import annotations

import json
from pathlib import Path

from samplesite.model import SampleSite
from samplesite.server import SiteServer
from tests.plugins.cli import NewsvaultRunner


def test_pending_requests_wait_on_disk_and_the_frontier_is_removed(tmp_path: Path) -> None:
    runner = NewsvaultRunner(tmp_path)
    summary = tmp_path / "summary.json"
    with SiteServer(SampleSite(articles=60)).start() as server:
        result = runner("crawl", "sample", "--no-archive", "--json-summary", str(summary),
                        "--start-url", server.base_url + "/sitemap.xml")
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(summary.read_text(encoding="utf-8"))["stats"]
    assert stats["scheduler/enqueued/disk"] >= 60
    assert "scheduler/enqueued/memory" not in stats
    frontier = runner.state_dir / "frontier"
    assert frontier.is_dir() and not any(frontier.iterdir())


def test_disk_queue_can_be_turned_off(tmp_path: Path) -> None:
    runner = NewsvaultRunner(tmp_path, env={"NEWSVAULT_CRAWL_DISK_QUEUE": "false"})
    summary = tmp_path / "summary.json"
    with SiteServer(SampleSite(articles=50)).start() as server:
        result = runner("crawl", "sample", "--no-archive", "--json-summary", str(summary),
                        "--start-url", server.base_url + "/sitemap.xml")
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(summary.read_text(encoding="utf-8"))["stats"]
    assert "scheduler/enqueued/disk" not in stats and stats["scheduler/enqueued/memory"] >= 50
