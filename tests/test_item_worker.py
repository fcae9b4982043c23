"""The item worker: the clean/validate/dedupe/changes stages in a child process give what they give in-process."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from pipelines.worker import DEFAULT_STAGES, RecordingStats, Stages, replay_stats, run_on_item
from samplesite.model import SampleSite
from samplesite.server import SiteServer
from tests.plugins.cli import NewsvaultRunner, child_env
from tests.test_pipelines import Profile, raw_article

ARTICLES = 120
# Volatile per crawl: when each page was fetched.
VOLATILE = ("fetched_at",)


class DieOnThirdItem:
    """A stage that kills its process on the third item, as a crash of the worker would."""

    def __init__(self) -> None:
        self.seen = 0

    def process_item(self, item: Any) -> Any:
        self.seen += 1
        if self.seen == 3:
            os._exit(3)
        return item


class FailOnOddViews:
    def process_item(self, item: Any) -> Any:
        if item["views"] % 2:
            raise ValueError(f"odd views: {item['views']}")
        return item


def test_stats_recorded_in_the_worker_replay_to_the_same_values() -> None:
    direct = MemoryStatsCollector(get_crawler())
    recorded = RecordingStats()
    for stats in (direct, recorded):
        stats.inc_value("a")
        stats.inc_value("a", 2)
        stats.set_value("list", ["x", "y"])
        stats.max_value("m", 3)
        stats.max_value("m", 1)
        stats.min_value("n", 5)
        stats.min_value("n", 7)
    replayed = MemoryStatsCollector(get_crawler())
    replay_stats(recorded.take(), replayed)
    assert replayed.get_stats() == direct.get_stats()
    assert recorded.take() == []


def test_stages_reply_done_drop_and_count_like_the_pipelines(tmp_path: Path) -> None:
    settings = {"NEWSVAULT_STATE_DIR": str(tmp_path)}
    stages = Stages(DEFAULT_STAGES, settings, Profile(), "sample", "articles")
    kind, item, ops = run_on_item(stages, raw_article(5))
    assert kind == "done" and item["change"] == "new" and item["title"] == "The secret of Putin's visit"
    assert ("inc", "newsvault/new/article", (1, 0)) in ops
    kind, message, log_level, ops = run_on_item(stages, raw_article(6, title="  "))
    assert kind == "drop" and "missing_title" in message and log_level == "INFO"
    assert ("inc", "newsvault/dropped/missing_title", (1, 0)) in ops
    stages.close()


def test_a_failing_stage_fails_that_item_only() -> None:
    stages = Stages(["tests.test_item_worker.FailOnOddViews"], {}, Profile(), "sample", "articles")
    kind, message, trace, _ops = run_on_item(stages, {"views": 1})
    assert kind == "error" and message == "ValueError: odd views: 1" and "in process_item" in trace
    assert run_on_item(stages, {"views": 2}) == ("done", {"views": 2}, [])


@pytest.fixture(scope="module")
def site() -> Any:
    server = SiteServer(SampleSite(articles=ARTICLES)).start()
    yield server
    server.stop()


def crawl(root: Path, base_url: str, *, in_child: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    root.mkdir()
    output = root / "items.jsonl"
    summary = NewsvaultRunner(root).crawl_summary(
        "sample", "--kind", "articles", "--start-url", f"{base_url}/sitemap.xml", "--output", str(output),
        env={"NEWSVAULT_CRAWL_WORKER_PROCESSES": "true" if in_child else "false"},
    )
    items = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    return items, summary


def comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in item.items() if k not in VOLATILE} for item in items),
        key=lambda item: (item.get("type", ""), item.get("canonical_url") or item.get("url") or ""),
    )


def ours(stats: dict[str, Any]) -> dict[str, Any]:
    """newsvault's own stats, minus the snapshot id (new per crawl) and the worker processes' memory."""
    return {
        k: v
        for k, v in stats.items()
        if k.startswith("newsvault/") and k != "newsvault/snapshot_id" and not k.endswith("/max_rss_kb")
    }


def test_worker_and_in_process_give_the_same_items_and_stats(site: Any, tmp_path: Path) -> None:
    worker_items, worker_summary = crawl(tmp_path / "worker", site.base_url, in_child=True)
    local_items, local_summary = crawl(tmp_path / "local", site.base_url, in_child=False)
    assert len(worker_items) >= ARTICLES
    assert comparable(worker_items) == comparable(local_items)
    assert ours(worker_summary["stats"]) == ours(local_summary["stats"])
    assert ours(worker_summary["stats"]).get("newsvault/new/article", 0) >= ARTICLES - 10
    assert worker_summary["stats"].get("item_scraped_count") == local_summary["stats"].get("item_scraped_count")
    assert worker_summary["stats"]["newsvault/item_worker/max_rss_kb"] > 10_000  # the child reports its memory
    assert "newsvault/item_worker/max_rss_kb" not in local_summary["stats"]


def test_a_dead_worker_stops_the_crawl_and_leaves_a_partial_snapshot(site: Any, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        from newsvault.config import load_config
        from scheduler.crawl import run_crawl
        summary = run_crawl(
            load_config(), "sample", "articles", start_urls=[{site.base_url + "/sitemap.xml"!r}],
            settings={{"NEWSVAULT_WORKER_PIPELINES": [
                "pipelines.clean.CleanPipeline", "tests.test_item_worker.DieOnThirdItem"]}},
        )
        summary.write_json(sys.argv[1])
        """
    )
    runner = NewsvaultRunner(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "summary.json")],
        env=child_env(runner.base_env()), cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["stats"]["finish_reason"] == "item_worker_failed", result.stderr[-3000:]
    assert summary["status"] == "partial" and summary["items"] < ARTICLES
    manifests = list(runner.archive_dir.glob("snapshots/sample/articles/*/manifest.json"))
    spooled = list((runner.state_dir / "spool").glob("sample/articles/*/manifest.json"))
    statuses = [json.loads(p.read_text(encoding="utf-8"))["status"] for p in manifests + spooled]
    assert statuses and set(statuses) == {"partial"}


def test_ctrl_c_stops_the_crawl_gracefully_and_the_workers_finish_their_part(tmp_path: Path) -> None:
    """SIGINT to the whole process group (Ctrl-C in a terminal): the workers leave it to the crawl."""
    server = SiteServer(SampleSite(articles=3000)).start()
    try:
        runner = NewsvaultRunner(tmp_path)
        summary_path = tmp_path / "summary.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "crawl", "sample", "--kind", "articles",
             "--start-url", f"{server.base_url}/sitemap.xml", "--json-summary", str(summary_path)],
            env=child_env(runner.base_env()), cwd=tmp_path, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(5)
        assert proc.poll() is None, "the crawl ended before the signal"
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        server.stop()
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["finish_reason"] == "shutdown", stderr[-3000:]
    assert summary["snapshot_state"] == "committed", stderr[-3000:]
    assert "item worker" not in stderr  # neither worker failed
    (manifest_path,) = runner.archive_dir.glob("snapshots/sample/articles/*/manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["status"] == "partial" and 0 < manifest["counts"]["items"] < 3000
    with gzip.open(manifest_path.parent / "items.jsonl.gz", "rt", encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == manifest["counts"]["items"]
