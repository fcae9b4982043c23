"""Revisits in real crawls: the policy picks what is due, the budget caps it, gone and unreachable stay apart.

Time is moved by ageing the state file (what earlier runs saw is made weeks
old), not by waiting: the crawls themselves are real Scrapy against the sample
site on loopback.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from newsvault.revisit import parse_time
from pipelines.state import STATE_FILE, revisit_records
from samplesite.model import RSS_ITEMS, SampleSite
from samplesite.server import SiteServer

LONG_AGO = "2026-01-01T00:00:00Z"
SITE_ARTICLES = 150


def age_state(state_dir: Path) -> None:
    """Make every known article last seen (and last changed) long ago: all of them are overdue."""
    conn = sqlite3.connect(state_dir / STATE_FILE)
    with conn:
        conn.execute("UPDATE articles SET first_seen = ?, last_seen = ?, published_at = NULL, changed_at = NULL",
                     (LONG_AGO, LONG_AGO))
    conn.close()


def revisit_stats(summary: dict[str, Any]) -> dict[str, int]:
    prefix = "newsvault/revisit/"
    return {k[len(prefix):]: v for k, v in summary["stats"].items() if k.startswith(prefix)}


def output_urls(path: Path) -> set[str]:
    return {json.loads(line)["canonical_url"] for line in path.read_text("utf-8").splitlines()
            if json.loads(line).get("type") == "article"}


def test_a_due_removed_article_is_revisited_and_counted_removed(newsvault_cli) -> None:
    with SiteServer(SampleSite(articles=60)) as server:
        args = ("sample", "--start-url", server.base_url + "/")
        newsvault_cli.crawl_summary(*args)
        server.set_tick(1)
        removed = server.site.changes(0, 1)["removed"]
        assert len(removed) == 1
        # Seconds after the first crawl nothing is due: the tiers hold it back.
        fresh = newsvault_cli.crawl_summary(*args)
        assert revisit_stats(fresh).get("requested", 0) == 0
        assert "newsvault/removed" not in fresh["stats"]
        age_state(newsvault_cli.state_dir)
        summary = newsvault_cli.crawl_summary(*args)
    revisits = revisit_stats(summary)
    # Every live article was reached from the listings; only the removed one needed a revisit.
    assert revisits["due"] == 1 and revisits["requested"] == 1
    # The site's fault link to a missing article is a 404 on every run; the revisit adds one.
    assert summary["stats"]["newsvault/pages/gone"] == fresh["stats"]["newsvault/pages/gone"] + 1
    assert summary["stats"]["newsvault/removed"] == 1
    assert summary["stats"]["newsvault/removed_urls"] == removed
    record = {r.url: r for r in revisit_records(newsvault_cli.state_dir, "sample")}[removed[0]]
    assert record.removed_at is not None and record.gone_checks == 1


def test_budget_caps_revisits_most_overdue_first(newsvault_cli, tmp_path: Path) -> None:
    with SiteServer(SampleSite(articles=SITE_ARTICLES)) as server:
        newsvault_cli.crawl_summary("sample", "--start-url", server.base_url + "/sitemap.xml")
        age_state(newsvault_cli.state_dir)
        # The RSS feed as the only entry: most known articles are not reached, so they are due.
        entry = ("sample", "--start-url", server.base_url + "/rss.xml", "--no-archive")
        budget = {"NEWSVAULT_REVISIT_BUDGET": "7"}
        first_out, second_out = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
        first = revisit_stats(newsvault_cli.crawl_summary(*entry, "--output", str(first_out), env=budget))
        second = revisit_stats(newsvault_cli.crawl_summary(*entry, "--output", str(second_out), env=budget))
    assert first["requested"] == 7 and first["due"] >= SITE_ARTICLES - RSS_ITEMS
    assert first["deferred"] == first["due"] - 7
    # --no-archive keeps the state as it was, so the same 7 (the most overdue, then by URL) come first again.
    assert second["requested"] == 7 and second["due"] == first["due"]
    assert output_urls(first_out) == output_urls(second_out)
    assert len(output_urls(first_out)) <= RSS_ITEMS + 7
    records = revisit_records(newsvault_cli.state_dir, "sample")
    assert all(r.last_seen == parse_time(LONG_AGO) for r in records)


def test_budget_takes_the_rest_on_later_runs(newsvault_cli) -> None:
    with SiteServer(SampleSite(articles=SITE_ARTICLES)) as server:
        newsvault_cli.crawl_summary("sample", "--start-url", server.base_url + "/sitemap.xml")
        age_state(newsvault_cli.state_dir)
        entry = ("sample", "--start-url", server.base_url + "/rss.xml")
        budget = {"NEWSVAULT_REVISIT_BUDGET": "20"}
        runs = [revisit_stats(newsvault_cli.crawl_summary(*entry, env=budget)) for _ in range(3)]
    due = runs[0]["due"]
    assert due >= SITE_ARTICLES - RSS_ITEMS and runs[0]["requested"] == 20
    # Each archived run takes the next most overdue ones; the revisited are due again only in 15 minutes.
    assert runs[1]["due"] == due - 20 and runs[1]["requested"] == min(20, due - 20)
    assert runs[2]["due"] == due - 40


def test_moved_port_finishes_reports_the_host_once_and_removes_nothing(newsvault_cli) -> None:
    site = SampleSite(articles=200, tick=1)
    with SiteServer(site) as old:
        newsvault_cli.crawl_summary("sample", "--start-url", old.base_url + "/")
        old_prefix = old.base_url + "/"
    # The same site on another port: every known URL of the old port now has no server behind it.
    everything = {"NEWSVAULT_REVISIT_MODE": "all"}
    with SiteServer(SampleSite(articles=200, tick=1)) as new:
        result_file = newsvault_cli.root / "moved.json"
        result = newsvault_cli("crawl", "sample", "--start-url", new.base_url + "/", "--json-summary",
                               str(result_file), env=everything)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result_file.read_text("utf-8"))
    assert summary["status"] == "ok"
    revisits = revisit_stats(summary)
    assert revisits["hosts_down"] == 1
    # One batch went out before the host counted as down; the rest wait for the next run.
    assert revisits["requested"] < revisits["due"] and revisits["skipped_host_down"] > 0
    assert revisits["requested"] + revisits["skipped_host_down"] == revisits["due"]
    assert "newsvault/removed" not in summary["stats"]
    assert result.stderr.count("did not answer") == 1
    assert f"revisits: {revisits['requested']} of {revisits['due']} due" in result.stdout
    assert "1 host(s) down" in result.stdout
    old_records = [r for r in revisit_records(newsvault_cli.state_dir, "sample") if r.url.startswith(old_prefix)]
    assert old_records and all(r.removed_at is None for r in old_records)
    assert sum(r.failures for r in old_records) == revisits["unreachable"] > 0


def test_revisits_command_shows_the_queue_per_tier(newsvault_cli) -> None:
    empty = newsvault_cli("revisits", "sample", "--json")
    assert empty.returncode == 0, empty.stderr[-2000:]
    assert json.loads(empty.stdout)["articles"] == 0  # no state yet: an empty queue, no error
    with SiteServer(SampleSite(articles=60)) as server:
        summary = newsvault_cli.crawl_summary("sample", "--start-url", server.base_url + "/")
    known = len(revisit_records(newsvault_cli.state_dir, "sample"))
    assert known == summary["stats"]["newsvault/new/article"]
    queue = json.loads(newsvault_cli("revisits", "sample", "--json", "--next", "3").stdout)
    # Just crawled: none due yet, each article in the tier of its quiet time.
    assert queue["articles"] == known and queue["due_now"] == 0
    assert sum(tier["articles"] for tier in queue["tiers"]) == known
    assert len(queue["next_due"]) == 3
    age_state(newsvault_cli.state_dir)
    text = newsvault_cli("revisits", "sample")
    assert text.returncode == 0, text.stderr[-2000:]
    assert f"{known} known articles, {known} due now" in text.stdout
    assert "<3h (every 15m)" in text.stdout
    unknown = newsvault_cli("revisits", "no-such-site")
    assert unknown.returncode == 2 and "unknown site" in unknown.stderr


def test_realistic_edits_are_found_as_updates_by_a_real_crawl(newsvault_cli, tmp_path: Path) -> None:
    site = SampleSite(articles=80, edits="realistic")
    with SiteServer(site) as server:
        args = ("sample", "--start-url", server.base_url + "/")
        newsvault_cli.crawl_summary(*args)
        server.set_tick(8)  # two simulated days
        truth = site.changes(0, 8)
        output = tmp_path / "later.jsonl"
        newsvault_cli.crawl_summary(*args, "--output", str(output))
    items = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    updated = {item["canonical_url"] for item in items if item.get("change") == "updated"}
    assert truth["updated"] and updated == set(truth["updated"])
    kinds = {e.kind for url in truth["updated"] for e in site.timed_edits(int(url.rsplit("/", 1)[1].split("-")[0]))}
    assert len(kinds) >= 2


def test_a_revisit_that_is_refused_backs_off_instead_of_taking_every_budget(newsvault_cli) -> None:
    site = SampleSite(articles=SITE_ARTICLES)
    with SiteServer(site) as server:
        newsvault_cli.crawl_summary("sample", "--start-url", server.base_url + "/sitemap.xml")
        age_state(newsvault_cli.state_dir)
        site.ban_from_tick = site.tick  # deep pages now answer 403/429; the feed still answers
        entry = ("sample", "--start-url", server.base_url + "/rss.xml")
        budget = {"NEWSVAULT_REVISIT_BUDGET": "20", "NEWSVAULT_CRAWL_RETRY_TIMES": "0"}
        first = revisit_stats(newsvault_cli.crawl_summary(*entry, env=budget))
        failed = [r for r in revisit_records(newsvault_cli.state_dir, "sample") if r.failures]
        second = revisit_stats(newsvault_cli.crawl_summary(*entry, env=budget))
    assert first["requested"] == 20 and first["failed"] >= 10
    assert len(failed) == first["failed"] and all(r.removed_at is None for r in failed)
    # The refused ones back off: the next run takes others instead of the same ones again.
    assert second["due"] == first["due"] - 20
    assert "newsvault/removed" not in first and "hosts_down" not in first


def test_configured_host_down_failures_is_what_the_spider_counts() -> None:
    from scrapy.utils.test import get_crawler

    import settings as project
    from spiders.articles import ArticlesSpider

    crawler = get_crawler(ArticlesSpider, settings_dict={
        key: getattr(project, key) for key in dir(project) if key.isupper()} | {
        "NEWSVAULT_REVISIT": {"host_down_failures": 2}})
    spider = ArticlesSpider.from_crawler(crawler, site="sample")
    assert spider._hosts.limit == 2 and spider.revisit_policy.host_down_failures == 2
