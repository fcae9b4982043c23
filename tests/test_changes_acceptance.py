"""Acceptance: change tracking against the real sample site, crawled in child processes.

Two ticks of the site's simulated clock; the counts of new, updated, unchanged
and removed articles and of moved discussion threads must equal the site's own
ground truth (``site.changes``) exactly.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.cli import FAST_CRAWL_ENV, run_newsvault

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTICLES = 80
PROFILE_BASE = "http://127.0.0.1:8000"


@dataclass
class Run:
    items: list[dict[str, Any]]
    stats: dict[str, Any]


class Crawler:
    """Crawls the running sample site with a profile pointed at it and one shared state dir."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self.state_dir = root / "state"
        sites = root / "sites"
        sites.mkdir()
        # A profile copy, not --start-url: known-URL rechecks (removals) use the profile's start URLs.
        profile = (REPO_ROOT / "sites" / "sample.toml").read_text("utf-8")
        (sites / "sample.toml").write_text(profile.replace(PROFILE_BASE, base_url), "utf-8")
        # Revisit every known article on every run: a tick moves the site's clock 6 h
        # while the crawls are seconds apart, so under the tiers nothing would be due yet.
        self.env = {**FAST_CRAWL_ENV, "NEWSVAULT_SITES_DIR": str(sites), "NEWSVAULT_REVISIT_MODE": "all"}
        self.count = 0

    def crawl(self, kind: str) -> Run:
        self.count += 1
        output = self.root / f"{kind}-{self.count}.jsonl"
        summary = self.root / f"{kind}-{self.count}.summary.json"
        proc = run_newsvault(
            "crawl",
            "sample",
            "--state-dir",
            str(self.state_dir),
            "--archive",
            str(self.root / "archive"),
            "--kind",
            kind,
            "--output",
            str(output),
            "--json-summary",
            str(summary),
            env=self.env,
            cwd=self.root,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        items = [
            json.loads(line) for line in output.read_text("utf-8").splitlines() if line.strip()
        ]
        return Run(items, json.loads(summary.read_text("utf-8"))["stats"])

    def crawl_both(self) -> tuple[Run, Run]:
        # Both kinds at once, as the daemon may run them: they share state.sqlite.
        with ThreadPoolExecutor(2) as pool:
            articles = pool.submit(self.crawl, "articles")
            discussions = pool.submit(self.crawl, "discussions")
            return articles.result(), discussions.result()


def changes_of(run: Run) -> Counter[str]:
    return Counter(item["change"] for item in run.items)


@pytest.fixture
def site_and_crawler(sample_site_factory: Any, tmp_path: Path) -> tuple[Any, Crawler]:
    server = sample_site_factory(articles=ARTICLES, tick=0)
    return server, Crawler(tmp_path, server.base_url)


def test_changes_between_ticks_match_the_ground_truth(
    site_and_crawler: tuple[Any, Crawler],
) -> None:
    server, crawler = site_and_crawler
    site = server.site
    live0 = site.live_ids(0)

    articles, discussions = crawler.crawl_both()
    assert changes_of(articles) == Counter(new=len(live0))
    assert changes_of(discussions) == Counter(new=site.thread_count(0))
    assert articles.stats["newsvault/new/article"] == len(live0)

    # Re-crawling the unchanged site: everything unchanged, nothing removed.
    articles, discussions = crawler.crawl_both()
    assert changes_of(articles) == Counter(unchanged=len(live0))
    assert changes_of(discussions) == Counter(unchanged=site.thread_count(0))
    assert "newsvault/removed" not in articles.stats

    server.set_tick(1)
    truth = site.changes(0, 1)
    articles, discussions = crawler.crawl_both()
    by_change: dict[str, set[str]] = {}
    for item in articles.items:
        by_change.setdefault(item["change"], set()).add(item["canonical_url"])
    assert by_change.get("new", set()) == set(truth["new"])
    assert by_change.get("updated", set()) == set(truth["updated"])
    assert by_change.get("unchanged", set()) == set(truth["unchanged"])
    assert articles.stats.get("newsvault/removed", 0) == len(truth["removed"])
    assert sorted(articles.stats.get("newsvault/removed_urls", [])) == sorted(truth["removed"])
    assert truth["removed"] and truth["updated"] and truth["new"]  # the tick really changed things

    moved = {i["thread_url"] for i in discussions.items if i["change"] == "updated"}
    fresh = {i["thread_url"] for i in discussions.items if i["change"] == "new"}
    assert moved == set(truth["threads_moved"])
    assert fresh == set(truth["threads_new"])
    assert discussions.stats["newsvault/updated/discussion"] == len(truth["threads_moved"])


def test_duplicates_and_fresh_state(site_and_crawler: tuple[Any, Crawler]) -> None:
    server, crawler = site_and_crawler
    site, specials = server.site, server.site.specials
    run = crawler.crawl("articles")
    canonical = [item["canonical_url"] for item in run.items]
    assert len(canonical) == len(set(canonical)) == len(site.live_ids(0))
    # The print copy and links with tracking parameters collapse into one item each.
    assert canonical.count(site.canonical_url(specials.printable)) == 1
    assert not [item["url"] for item in run.items if "utm_" in item["url"] or "#" in item["url"]]

    by_url = {item["canonical_url"]: item for item in run.items}
    near = {specials.near_original, specials.near_copy}
    linked = [i for i in run.items if i.get("near_duplicate_of")]
    assert len(linked) == 1
    assert {linked[0]["canonical_url"], linked[0]["near_duplicate_of"]} == {
        site.canonical_url(i) for i in near
    }
    exact = {site.canonical_url(i) for i in (specials.exact_original, specials.exact_reprint)}
    slim = [i for i in run.items if i.get("duplicate_of")]
    assert len(slim) == 1
    assert {slim[0]["canonical_url"], slim[0]["duplicate_of"]} == exact
    assert "body" not in slim[0]
    assert all(by_url[url]["change"] == "new" for url in exact)

    # Deleting the state store: the next crawl finds everything new, without errors.
    shutil.rmtree(crawler.state_dir)
    again = crawler.crawl("articles")
    assert changes_of(again) == Counter(new=len(site.live_ids(0)))
    assert again.stats.get("log_count/ERROR", 0) == 0
