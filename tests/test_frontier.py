"""The crawl frontier lives on disk, per crawl, and is gone when the crawl ends."""

from __future__ import annotations

from pathlib import Path

from samplesite.model import SampleSite
from samplesite.server import SiteServer
from tests.plugins.cli import NewsvaultRunner


def test_pending_requests_wait_on_disk_and_the_frontier_is_removed(tmp_path: Path) -> None:
    runner = NewsvaultRunner(tmp_path)
    with SiteServer(SampleSite(articles=60)).start() as server:
        stats = runner.crawl_summary("sample", "--no-archive", "--start-url", server.base_url + "/sitemap.xml")["stats"]
    assert stats["scheduler/enqueued/disk"] >= 60
    assert "scheduler/enqueued/memory" not in stats
    frontier = runner.state_dir / "frontier"
    assert frontier.is_dir() and not any(frontier.iterdir())


def test_disk_queue_can_be_turned_off(tmp_path: Path) -> None:
    runner = NewsvaultRunner(tmp_path, env={"NEWSVAULT_CRAWL_DISK_QUEUE": "false"})
    with SiteServer(SampleSite(articles=50)).start() as server:
        stats = runner.crawl_summary("sample", "--no-archive", "--start-url", server.base_url + "/sitemap.xml")["stats"]
    assert "scheduler/enqueued/disk" not in stats and stats["scheduler/enqueued/memory"] >= 50
