"""Crawl acceptance against the sample site on loopback: real server, real crawls in child processes.

One articles crawl per profile and one discussions crawl of a 300-article site,
each shared by the tests of this module.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from samplesite.model import FURNITURE_STRINGS, SampleSite
from samplesite.server import SiteServer
from tests.plugins.cli import NewsvaultRunner

ARTICLES = 300
# Every string of the page furniture, as the sample site defines it.
FURNITURE = FURNITURE_STRINGS
EXACT_FIELDS = ("title", "url", "canonical_url", "views", "comment_count", "image_credit",
                "source_name", "source_url", "tags", "published_at", "section", "authors", "language")


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


class Crawl:
    def __init__(self, items: list[dict[str, Any]], summary: dict[str, Any], returncode: int, stderr: str) -> None:
        self.items = items
        self.summary = summary
        self.stats = summary.get("stats", {})
        self.returncode = returncode
        self.stderr = stderr

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [i for i in self.items if i["type"] == kind]


def crawl(runner: NewsvaultRunner, name: str, *args: str) -> Crawl:
    output = runner.root / f"{name}.jsonl"
    summary = runner.root / f"{name}.json"
    result = runner(*args, "--no-archive", "--output", str(output), "--json-summary", str(summary))
    assert result.returncode == 0, result.stderr[-3000:]
    items = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    return Crawl(items, json.loads(summary.read_text(encoding="utf-8")), result.returncode, result.stderr)


@pytest.fixture(scope="module")
def site_server():
    server = SiteServer(SampleSite(articles=ARTICLES)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> NewsvaultRunner:
    return NewsvaultRunner(tmp_path_factory.mktemp("crawl"))


@pytest.fixture(scope="module")
def articles_crawl(site_server, runner) -> Crawl:
    return crawl(runner, "articles", "crawl", "sample", "--kind", "articles", "--start-url", site_server.base_url + "/")


@pytest.fixture(scope="module")
def truth(site_server) -> dict[str, dict[str, Any]]:
    return {a["url"]: a for a in site_server.site.expected_articles()}


def test_every_article_yielded_exactly_once(articles_crawl, truth) -> None:
    urls = Counter(a["url"] for a in articles_crawl.of_type("article"))
    assert not [u for u, n in urls.items() if n > 1]
    assert set(urls) == set(truth)
    assert len(truth) == ARTICLES
    assert articles_crawl.summary["status"] == "ok"


def test_fields_equal_ground_truth(articles_crawl, truth) -> None:
    articles = [a for a in articles_crawl.of_type("article") if not a.get("duplicate_of")]
    assert len(articles) >= ARTICLES - 1
    mismatches = Counter()
    body_ok = 0
    for item in articles:
        expected = truth[item["url"]]
        for field in EXACT_FIELDS:
            if item.get(field) != expected[field]:
                mismatches[field] += 1
        body_ok += _norm(item["body"]) == _norm(expected["body"])
        for text in FURNITURE:
            assert text not in item["body"], (item["url"], text)
    assert not mismatches, mismatches
    assert body_ok / len(articles) >= 0.99


def test_duplicates_are_linked(articles_crawl, site_server) -> None:
    by_url = {a["url"]: a for a in articles_crawl.of_type("article")}
    sp, site = site_server.site.specials, site_server.site
    # Which one of a pair comes first depends on crawl order; the pair must be linked one way.
    for key, a, b in (("duplicate_of", sp.exact_reprint, sp.exact_original),
                      ("near_duplicate_of", sp.near_copy, sp.near_original)):
        first, second = site.canonical_url(a), site.canonical_url(b)
        assert (by_url[first].get(key), by_url[second].get(key)) in ((second, None), (None, first)), key
    # The print copy and the redirect chain lead to articles archived under their canonical URL.
    assert site.canonical_url(sp.printable) in by_url and site.canonical_url(sp.redirect) in by_url


def test_faults_are_counted_not_yielded(articles_crawl, site_server) -> None:
    stats = articles_crawl.stats
    faults = {f["name"]: f for f in site_server.site.fault_urls()}
    urls = {a["url"] for a in articles_crawl.of_type("article")}
    assert stats.get("newsvault/pages/too_large", 0) >= 1
    assert stats.get("newsvault/pages/gone", 0) >= 1  # the 404 listing link
    assert stats.get("newsvault/pages/disallowed", 0) >= 1
    assert stats.get("robotstxt/forbidden", 0) >= 1
    for name in ("missing-404", "oversize", "robots-disallowed"):
        assert faults[name]["url"] not in urls
    # The 500 is retried and the article arrives.
    assert stats.get("retry/reason_count/500 Internal Server Error", 0) >= 1
    assert faults["flaky-500"]["url"] in urls
    for name in ("slow", "malformed", "no-charset", "redirect-chain", "windows-1251"):
        assert (faults[name].get("final_url") or faults[name]["url"]) in urls, name
    assert articles_crawl.summary["errors"] == 0


def test_encodings_decode_to_cyrillic(articles_crawl, site_server, truth) -> None:
    site = site_server.site
    by_url = {a["url"]: a for a in articles_crawl.of_type("article")}
    cp1251 = [u for u, t in truth.items() if site.encoding(int(re.search(r"/news/(\d+)-", u).group(1))) == "windows-1251"]
    assert cp1251
    no_charset = site.canonical_url(site.specials.no_charset)
    for url in [*cp1251, no_charset]:
        assert by_url[url]["title"] == truth[url]["title"]
        assert _norm(by_url[url]["body"]) == _norm(truth[url]["body"])
    assert any(re.search("[а-яА-Я]", by_url[u]["title"]) for u in cp1251)


def test_discussion_entries_all_yielded(site_server, runner) -> None:
    result = crawl(runner, "discussions", "crawl", "sample", "--kind", "discussions",
                   "--start-url", site_server.base_url + "/discussions/")
    expected = site_server.site.expected_discussions()
    entries = result.of_type("discussion")
    assert [e["position"] for e in entries] == list(range(1, len(expected) + 1))
    for entry, want in zip(entries, expected, strict=True):
        for field in ("thread_url", "title", "last_activity_raw", "list_url", "comment_count",
                      "is_reply", "reply_to_title", "last_activity_at"):
            assert entry.get(field) == want[field], (field, entry, want)


def test_discussions_fetched_in_january_keep_december_in_the_old_year(runner) -> None:
    # Tick 4 is 1 January 2027, 09:00 in Moscow: the list still shows "31.12" entries.
    site = SampleSite(articles=60, tick=4)
    with SiteServer(site).start() as server:
        result = crawl(runner, "discussions-january", "crawl", "sample", "--kind", "discussions",
                       "--start-url", server.base_url + "/discussions/")
    expected = site.expected_discussions()
    entries = result.of_type("discussion")
    assert [e["last_activity_at"] for e in entries] == [w["last_activity_at"] for w in expected]
    now = site.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(e["last_activity_at"] <= now for e in entries)
    december = [e for e in entries if e["last_activity_raw"].startswith("31.12")]
    assert december, "the list should cross New Year"
    # 31.12 in Moscow is 30 or 31 December in UTC, and never of 2027.
    assert all(e["last_activity_at"].startswith(("2026-12-30", "2026-12-31")) for e in december)
    assert any(e["last_activity_at"].startswith("2027-01-01") for e in entries)


def test_generic_profile_yields_title_body_date(site_server, runner, truth) -> None:
    result = crawl(runner, "generic", "crawl", "generic-sample", "--start-url", site_server.base_url + "/")
    articles = [a for a in result.of_type("article") if not a.get("duplicate_of")]
    assert {a["url"] for a in result.of_type("article")} == set(truth)
    for item in articles:
        assert item["title"] == truth[item["url"]]["title"]
        assert item["published_at"] == truth[item["url"]]["published_at"]
        assert len(item["body"]) > 100
