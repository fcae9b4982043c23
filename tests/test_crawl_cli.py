"""`newsvault crawl` end to end: exit codes, summaries, archiving; the progress extension."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from samplesite.model import SampleSite
from samplesite.server import SiteServer
from scheduler.progress import CrawlProgress


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def small_site():
    server = SiteServer(SampleSite(articles=60)).start()
    yield server
    server.stop()


def test_unreachable_site_fails_with_one_line_reason(newsvault_cli, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/"
    summary_file = tmp_path / "summary.json"
    result = newsvault_cli("crawl", "sample", "--start-url", url, "--no-archive", "--json-summary", str(summary_file),
                           env={"NEWSVAULT_CRAWL_RETRY_TIMES": "0"})
    assert result.returncode == 1, result.stderr[-2000:]
    reason = [line for line in result.stderr.splitlines() if line.startswith("newsvault: crawl failed:")]
    assert len(reason) == 1 and url in reason[0] and "unreachable" in reason[0]
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert summary["status"] == "failed" and summary["pages"] == 0 and summary["items"] == 0
    assert summary["error"] == reason[0].removeprefix("newsvault: crawl failed: ")


def test_crawl_archives_a_snapshot(newsvault_cli, small_site, tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    result = newsvault_cli("crawl", "sample", "--kind", "discussions", "--start-url",
                           small_site.base_url + "/discussions/", "--json-summary", str(summary_file))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert summary["status"] == "ok" and summary["finish_reason"] == "finished"
    assert summary["items"] == len(small_site.site.expected_discussions())
    assert summary["snapshot_id"] and summary["snapshot_state"] in ("committed", "spooled")
    assert f"snapshot {summary['snapshot_id']}" in result.stdout
    assert f"items {summary['items']}" in result.stdout


def test_page_limit_closes_early_as_partial(newsvault_cli, small_site, tmp_path: Path) -> None:
    sites_dir = tmp_path / "sites"
    sites_dir.mkdir()
    (sites_dir / "tiny.toml").write_text(
        'name = "tiny"\n[start_urls]\nfront = ["http://127.0.0.1:1/"]\n'
        "[articles]\nurl_patterns = '/news/\\d+-'\n[limits]\nmax_pages = 5\n",
        encoding="utf-8",
    )
    output = tmp_path / "out.jsonl"
    summary_file = tmp_path / "summary.json"
    result = newsvault_cli("crawl", "tiny", "--start-url", small_site.base_url + "/", "--no-archive",
                           "--output", str(output), "--json-summary", str(summary_file),
                           env={"NEWSVAULT_SITES_DIR": str(sites_dir),
                                # Few requests in flight, so the close comes soon after the limit.
                                "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "1",
                                "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert summary["status"] == "partial" and summary["finish_reason"] == "closespider_pagecount"
    lines = output.read_text(encoding="utf-8").splitlines()
    assert 0 < len(lines) < 20 and all(json.loads(line)["type"] == "article" for line in lines)


def test_help_carries_examples(newsvault_cli) -> None:
    for command in ("crawl", "sites"):
        result = newsvault_cli(command, "--help")
        assert result.returncode == 0
        assert f"Example: newsvault {command}" in result.stdout


class _Stream:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_progress_counts_and_switch() -> None:
    crawler = get_crawler(settings_dict={"NEWSVAULT_PROGRESS": True})
    stats = MemoryStatsCollector(crawler)
    stats.set_value("response_received_count", 12)
    stats.set_value("item_scraped_count", 10)
    stats.set_value("log_count/ERROR", 1)
    stats.set_value("downloader/exception_count", 2)
    progress = CrawlProgress(stats, live=False, interval=10, stream=_Stream())
    line = progress.line()
    assert "pages 12" in line and "items 10" in line and "errors 3" in line

    from scrapy.exceptions import NotConfigured

    with pytest.raises(NotConfigured):
        CrawlProgress.from_crawler(get_crawler(settings_dict={"NEWSVAULT_PROGRESS": False}))
