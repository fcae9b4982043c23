"""The sidecar: the stages and the snapshot's files in a child process give what they give in-process."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from pipelines.sidecar_work import SidecarCore
from pipelines.stages import DEFAULT_STAGES, RecordingStats, replay_stats
from samplesite.model import SampleSite
from samplesite.server import SiteServer
from spiders.base import stage_settings
from tests.plugins.cli import NewsvaultRunner, child_env, wait_for_responses
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


class ScrapyDropper:
    """A stage of a user's own that raises Scrapy's DropItem."""

    def process_item(self, item: Any) -> Any:
        from scrapy.exceptions import DropItem

        raise DropItem("not wanted", log_level="INFO")


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


def _settings(tmp_path: Path) -> dict[str, Any]:
    import settings as project

    defaults = {k: getattr(project, k) for k in dir(project) if k.isupper()}
    return {**defaults, "NEWSVAULT_STATE_DIR": str(tmp_path), **stage_settings(Profile())}


def test_stages_reply_done_drop_and_count_like_the_pipelines(tmp_path: Path) -> None:
    core = SidecarCore(DEFAULT_STAGES, _settings(tmp_path), files=None)
    kind, item = core.item(raw_article(5))
    assert kind == "done" and item["change"] == "new" and item["title"] == "The secret of Putin's visit"
    kind, item = core.item(raw_article(7))
    assert kind == "done" and item["change"] == "new"
    kind, message, log_level = core.item(raw_article(6, title="  "))
    assert kind == "drop" and "missing_title" in message and log_level == "INFO"
    error, ops, _counts = core.close()
    # The stats come summed, once, with the close.
    assert error is None
    assert ("inc", "newsvault/new/article", (2, 0)) in ops
    assert ("inc", "newsvault/dropped/missing_title", (1, 0)) in ops


def test_a_stage_raising_scrapys_drop_item_drops_the_item() -> None:
    core = SidecarCore(["tests.test_sidecar.ScrapyDropper"], {}, files=None)
    assert core.item({"views": 1}) == ("drop", "not wanted", "INFO")


def test_the_sidecar_and_its_stages_never_import_scrapy_or_twisted() -> None:
    """The child starts with only what its work needs (Scrapy's import alone is a third of a second of CPU)."""
    code = textwrap.dedent(f"""
        import sys
        import pipelines.sidecar_work
        from pipelines.stages import Stages
        Stages({list(DEFAULT_STAGES)!r}, {{"NEWSVAULT_NEAR_DUPLICATE_THRESHOLD": 0.8, "NEWSVAULT_STATE_DIR": sys.argv[1],
               "NEWSVAULT_ARCHIVE_ENABLED": True, "NEWSVAULT_SNAPSHOT_ID": "20261208T000000Z-abcdef"}})
        print(sorted(name for name in sys.modules if name.split(".")[0] in ("scrapy", "twisted", "itemadapter")))
    """)
    with tempfile.TemporaryDirectory() as state:
        out = subprocess.run([sys.executable, "-c", code, state], env=child_env(), capture_output=True, text=True,
                             check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_failing_stage_fails_that_item_only() -> None:
    core = SidecarCore(["tests.test_sidecar.FailOnOddViews"], {}, files=None)
    kind, message, trace = core.item({"views": 1})
    assert kind == "error" and message == "ValueError: odd views: 1" and "in process_item" in trace
    assert core.item({"views": 2}) == ("done", {"views": 2})


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
        # One request at a time: which of an exact-duplicate pair is "the duplicate" follows arrival
        # order, and this test compares the two paths, not two orders.
        env={"NEWSVAULT_CRAWL_WORKER_PROCESSES": "true" if in_child else "false",
             "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "1", "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "1"},
    )
    items = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    return items, summary


def comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items minus their fetch times, in a total order: two crawls finish pages in different orders,
    and items that share a URL (a slimmed duplicate and its original) must not compare by arrival."""
    return sorted(
        ({k: v for k, v in item.items() if k not in VOLATILE} for item in items),
        key=lambda item: (item.get("type", ""), item.get("canonical_url") or item.get("url") or "",
                          json.dumps(item, sort_keys=True, ensure_ascii=False)),
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
    worker, local = comparable(worker_items), comparable(local_items)
    differing = [(w, lo) for w, lo in zip(worker, local, strict=False) if w != lo][:1]
    assert worker == local, f"{len(worker)} vs {len(local)} items; first difference: " + "; ".join(
        f"{k}: {w.get(k)!r} != {lo.get(k)!r}" for w, lo in differing for k in sorted(set(w) | set(lo))
        if w.get(k) != lo.get(k))
    assert ours(worker_summary["stats"]) == ours(local_summary["stats"])
    assert ours(worker_summary["stats"]).get("newsvault/new/article", 0) >= ARTICLES - 10
    assert worker_summary["stats"].get("item_scraped_count") == local_summary["stats"].get("item_scraped_count")
    assert worker_summary["stats"]["newsvault/sidecar/max_rss_kb"] > 10_000  # the child reports its memory
    assert "newsvault/sidecar/max_rss_kb" not in local_summary["stats"]


def test_a_dead_sidecar_stops_the_crawl_fails_the_run_and_its_snapshot_is_salvaged(site: Any, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        from newsvault.config import load_config
        from scheduler.crawl import run_crawl
        summary = run_crawl(
            load_config(), "sample", "articles", start_urls=[{site.base_url + "/sitemap.xml"!r}],
            settings={{"NEWSVAULT_WORKER_PIPELINES": [
                "pipelines.clean.CleanPipeline", "tests.test_sidecar.DieOnThirdItem"]}},
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
    assert summary["stats"]["finish_reason"] == "sidecar_failed", result.stderr[-3000:]
    # Items were processed that the archive never got: the run failed, whatever was written is salvaged.
    assert summary["status"] == "failed" and summary["items"] < ARTICLES
    assert "sidecar" in summary["error"]
    manifests = list(runner.archive_dir.glob("snapshots/sample/articles/*/manifest.json"))
    spooled = list((runner.state_dir / "spool").glob("sample/articles/*/manifest.json"))
    statuses = [json.loads(p.read_text(encoding="utf-8"))["status"] for p in manifests + spooled]
    assert statuses == ["partial"]
    assert runner("verify", "--all").returncode == 0


def test_ctrl_c_stops_the_crawl_gracefully_and_the_sidecar_finishes_its_part(tmp_path: Path) -> None:
    """SIGINT to the whole process group (Ctrl-C in a terminal): the sidecar leaves it to the crawl."""
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
        wait_for_responses(runner.state_dir / "spool", 100, proc)  # well into the crawl, far from its end
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        server.stop()
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["finish_reason"] == "shutdown", stderr[-3000:]
    assert summary["snapshot_state"] == "committed", stderr[-3000:]
    assert "sidecar" not in stderr  # the sidecar did not fail
    (manifest_path,) = runner.archive_dir.glob("snapshots/sample/articles/*/manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["status"] == "partial" and 0 < manifest["counts"]["items"] < 3000
    with gzip.open(manifest_path.parent / "items.jsonl.gz", "rt", encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == manifest["counts"]["items"]


def test_a_large_page_beside_others_never_deadlocks_the_pipe(site: Any, tmp_path: Path) -> None:
    """A 10 MiB page fills the pipe while replies wait: the sidecar must keep reading (it used to hang)."""
    runner = NewsvaultRunner(tmp_path)
    summary = runner.crawl_summary("sample", "--start-url", f"{site.base_url}/sitemap.xml",
                                   "--start-url", f"{site.base_url}/faults/big-10mb.html")
    assert summary["status"] == "ok" and summary["finish_reason"] == "finished"
    assert summary["items"] >= ARTICLES and summary["snapshot_state"] == "committed"
