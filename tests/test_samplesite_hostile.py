"""The sample site's hostile content (``SampleSite(hostile=True)``, ``--hostile``).

Headlines and discussion titles carry markup as text, escaped wherever a page
shows them, so the crawl extracts the literal ``<script>...``; hostile article
bodies carry live markup (script, ``javascript:`` link, handlers, broken tags)
that a careless replay would execute. Every payload sets ``window.__nvHostile``.
Off by default: then nothing hostile is anywhere.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import html5lib
import parsel
import pytest

from pipelines.clean import CleanPipeline
from samplesite import SampleSite, SiteServer
from samplesite.__main__ import build_parser
from samplesite.hostile import HOOK, THREAD_IDS
from samplesite.model import PAGE_SIZE, SIDEBAR_ENTRIES, SITE_NAME
from samplesite.render import render
from spiders.extract import extract_article, extract_entries
from spiders.profile import SiteProfile, load_profile
from tests.plugins.samplesite import SiteFactory

SITES = Path(__file__).resolve().parents[1] / "sites"
XHTML = "{http://www.w3.org/1999/xhtml}"
HOOK_NAME = "__nvHostile"


def fetch(base_url: str, path: str) -> tuple[int, str]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        charset = response.headers.get_content_charset() or "utf-8"
        return response.status, response.read().decode(charset)
    finally:
        conn.close()


def page(site: SampleSite, path: str, query: str = "") -> str:
    response = render(site, path, query)
    if response.status == 500:  # the flaky article fails its first request
        response = render(site, path, query)
    assert response.status == 200, path
    assert isinstance(response.body, bytes)
    content_type = dict(response.headers).get("Content-Type", "")
    charset = content_type.partition("charset=")[2] or "utf-8"
    return response.body.decode(charset)


def live_spots(html: str) -> list[str]:
    """Where the hook could run as a browser parses the page: scripts, on* handlers, javascript: URLs.

    A ``<script type="application/ld+json">`` is a data block, never run.
    """
    doc = html5lib.parse(html)
    spots: list[str] = []
    for element in doc.iter():
        tag = str(element.tag).replace(XHTML, "")
        kind = element.get("type", "").strip().lower()
        runs = kind in ("", "module", "text/javascript", "application/javascript")  # not a data block
        if tag == "script" and runs and HOOK_NAME in (element.text or ""):
            spots.append(f"<script> {element.text!r}")
        for name, value in element.attrib.items():
            if HOOK_NAME not in value:
                continue
            if name.lower().startswith("on") or value.strip().lower().startswith("javascript:"):
                spots.append(f"<{tag} {name}={value!r}>")
    return spots


def css_text(sel: parsel.Selector, css: str) -> str:
    return "".join(sel.css(css).xpath(".//text()").getall())


@pytest.fixture(scope="module")
def profile() -> SiteProfile:
    return load_profile(SITES / "sample.toml")


@pytest.fixture(scope="module")
def clean(profile: SiteProfile) -> CleanPipeline:
    return CleanPipeline(
        timezone=profile.timezone, strip_patterns=profile.furniture.strip_patterns,
        reply_pattern=profile.reply_pattern, default_language=profile.language,
    )


@pytest.fixture
def hostile_site(sample_site_factory: SiteFactory) -> SiteServer:
    return sample_site_factory(articles=300, hostile=True)


# ---- off by default -----------------------------------------------------------


def _every_page(site: SampleSite) -> Iterator[tuple[str, str]]:
    yield "/", ""
    for number in range(2, site.page_count() + 1):
        yield "/", f"page={number}"
    for number in range(1, -(-site.thread_count() // PAGE_SIZE) + 1):
        yield "/discussions/", f"page={number}"
    yield "/rss.xml", ""
    for article_id in site.live_ids():
        yield site.article_path(article_id), ""
    for tid in range(1, site.thread_count() + 1):
        yield f"/threads/{tid}", ""


def test_off_by_default_nothing_hostile_anywhere() -> None:
    site = SampleSite(120, tick=2)
    assert site.hostile is False
    assert site.specials.hostile == ()
    assert site.hostile_thread_ids() == []
    assert site.hostile_truth() == {"articles": [], "threads": []}
    for path, query in _every_page(site):
        text = page(site, path, query)
        assert HOOK_NAME not in text, (path, query)
        assert "onerror" not in text and "onmouseover" not in text, (path, query)


def test_hostile_changes_nothing_else_at_tick_zero() -> None:
    plain, hostile = SampleSite(300), SampleSite(300, hostile=True)
    others = set(plain.live_ids()) - set(hostile.specials.hostile)
    for article_id in sorted(others):
        assert hostile.article_truth(article_id) == plain.article_truth(article_id), article_id
    assert hostile.specials.ids() - plain.specials.ids() == set(hostile.specials.hostile)
    rows = {row["thread_url"]: row for row in plain.expected_discussions()}
    planted = {hostile.thread_url(tid) for tid in THREAD_IDS}
    quoting = {hostile.thread_url(tid) for tid in hostile.hostile_thread_ids()} - planted
    for row in hostile.expected_discussions():
        if row["thread_url"] in planted:
            continue
        old = rows[row["thread_url"]]
        if row["thread_url"] in quoting:  # a reply quoting a planted title: only the quote differs
            assert (row["title"], row["reply_to_title"]) != (old["title"], old["reply_to_title"])
            row = {**row, "title": old["title"], "reply_to_title": old["reply_to_title"]}
        for key in ("title", "last_activity_at", "comment_count", "is_reply", "reply_to_title"):
            assert row[key] == old[key], (row["thread_url"], key)


# ---- which ids, and the ground truth -----------------------------------------------


@pytest.mark.parametrize("articles", [50, 300, 1000])
def test_hostile_ids_are_fixed_offsets_on_the_first_front_page(articles: int) -> None:
    site = SampleSite(articles, hostile=True)
    assert site.specials.hostile == (articles - 5, articles - 7)
    singles = {v for k, v in vars(site.specials).items() if k != "hostile"}
    assert not singles & set(site.specials.hostile)
    assert set(site.specials.hostile) <= set(site.listing(1))
    assert site.hostile_thread_ids()[: len(THREAD_IDS)] == list(THREAD_IDS)
    for seed in range(8):  # the planted threads lead the sidebar at tick 0 for any seed
        order = SampleSite(articles, seed=seed, hostile=True).discussion_order()
        assert {tid for tid, _, _ in order[: len(THREAD_IDS)]} == set(THREAD_IDS)
    truth = site.hostile_truth()
    assert [a["id"] for a in truth["articles"]] == list(site.specials.hostile)
    for entry in truth["articles"]:
        assert entry["url"] == site.canonical_url(entry["id"]) == site.base_url + entry["path"]
        assert entry["title"] == site.article_truth(entry["id"])["title"]
        assert entry["lead"] == site.article_truth(entry["id"])["lead"]
        assert "<script>" in entry["title"] and HOOK in entry["title"] and entry["live"]
    assert all(site.encoding(i) == "utf-8" for i in site.specials.hostile)


def test_hostile_articles_survive_ticks_unedited() -> None:
    for edits in ("ticks", "realistic"):
        site = SampleSite(100, hostile=True, edits=edits)
        titles = {e["id"]: e["title"] for e in site.hostile_truth()["articles"]}
        site.set_tick(40)
        assert {e["id"]: e["title"] for e in site.hostile_truth()["articles"]} == titles
        assert all(site.is_live(i) for i in titles)
        assert all(site.article(i).version == 0 for i in titles)
        assert set(THREAD_IDS) <= set(site.hostile_thread_ids())


# ---- article pages ----------------------------------------------------------------


def test_front_page_lists_the_hostile_articles_as_escaped_text(hostile_site: SiteServer) -> None:
    site = hostile_site.site
    status, html = fetch(hostile_site.base_url, "/")
    assert status == 200
    sel = parsel.Selector(text=html)
    links = dict(zip(sel.css("a.article-link::attr(href)").getall(),
                     [css_text(link, "*") for link in sel.css("a.article-link")], strict=True))
    for entry in site.hostile_truth()["articles"]:
        href = next(h for h in links if h.startswith(entry["path"]))
        assert links[href] == entry["title"]
    assert "&lt;script&gt;window.__nvHostile=1;alert(1)&lt;/script&gt;" in html
    assert live_spots(html) == []


def test_article_page_escapes_the_headline_and_carries_live_markup_in_the_body(
    hostile_site: SiteServer,
) -> None:
    site = hostile_site.site
    for entry in site.hostile_truth()["articles"]:
        status, html = fetch(hostile_site.base_url, entry["path"])
        assert status == 200
        sel = parsel.Selector(text=html)
        title = entry["title"]
        assert sel.css("title::text").get() == f"{title} | {SITE_NAME}"
        assert css_text(sel, "h1.article-title") == title
        assert sel.css("meta[property='og:title']::attr(content)").get() == title
        assert sel.css("figure.article-image img::attr(alt)").get() == title
        assert sel.css("meta[name=description]::attr(content)").get() == entry["lead"]
        assert css_text(sel, "div.article-lead") == entry["lead"]
        ld = json.loads(sel.css("script[type='application/ld+json']::text").get() or "{}")
        assert ld["headline"] == title
        head, _, rest = html.partition('<div class="article-body">')
        body, _, tail = rest.partition('<div class="article-source">')
        # Nothing outside the body can run: the headline is text in <title>, <h1>, meta, alt, JSON-LD.
        assert "&lt;script&gt;" in head.split("<title>", 1)[1].split("</title>", 1)[0]
        # (JSON-LD holds the headline as "<script>...<\\/script>": inert inside its script element.)
        assert f"<script>{HOOK}=1</script>" not in head + tail and "</script><img" not in head
        assert live_spots(head) == [] and live_spots(tail) == []
        # The body is live markup a careless replay would execute.
        assert f"<script>{HOOK}=1</script>" in body
        assert f'<a href="javascript:{HOOK}=1">' in body
        for handler in ("onmouseover", "onclick", "onload", "onerror"):
            assert f'{handler}="{HOOK}=1"' in body, handler
        assert body.count("</div>") == body.count("<div") + 2  # the stray one and the body's own
        assert body.rstrip().endswith("nor this italic one.</span></div></div>")
        spots = live_spots(html)
        assert len(spots) >= 7, spots
        assert any(s.startswith("<script>") for s in spots)
        assert any("javascript:" in s for s in spots)


def test_crawl_extracts_the_literal_hostile_text(
    hostile_site: SiteServer, profile: SiteProfile, clean: CleanPipeline,
) -> None:
    site = hostile_site.site
    for article_id in site.specials.hostile:
        url = site.canonical_url(article_id)
        status, html = fetch(hostile_site.base_url, site.article_path(article_id))
        assert status == 200
        raw = extract_article(html, url, profile)
        raw["fetched_at"] = "2026-12-31T06:00:00Z"
        item = clean.process_item(raw)
        truth = site.article_truth(article_id)
        for key in ("canonical_url", "title", "lead", "body", "authors", "tags", "published_at"):
            assert item[key] == truth[key], (article_id, key)
        assert f"<script>{HOOK}=1</script>" in item["body"]  # the escaped <code> paragraph
        assert "open the full dossier" in item["body"]


# ---- discussions --------------------------------------------------------------


def test_hostile_threads_lead_the_sidebar_as_escaped_text(hostile_site: SiteServer) -> None:
    site = hostile_site.site
    truth = {t["id"]: t for t in site.hostile_truth()["threads"]}
    assert [tid for tid, _, _ in site.discussion_order()[: len(THREAD_IDS)]] == sorted(THREAD_IDS, reverse=True)
    status, html = fetch(hostile_site.base_url, "/")
    assert status == 200
    sel = parsel.Selector(text=html)
    entries = sel.css("aside.discussion-sidebar a.entry-title")
    assert len(entries) == SIDEBAR_ENTRIES
    for entry in entries[: len(THREAD_IDS)]:
        tid = int(entry.attrib["href"].rsplit("/", 1)[1])
        assert css_text(entry, "*") == truth[tid]["title"]
    assert "Обсуждение: &lt;script&gt;window.__nvHostile=1;alert(1)&lt;/script&gt;" in html
    assert live_spots(html) == []


def test_discussion_list_pages_escape_the_titles_and_the_crawl_reads_them_as_text(
    hostile_site: SiteServer, profile: SiteProfile, clean: CleanPipeline,
) -> None:
    site = hostile_site.site
    expected = {row["thread_url"]: row for row in site.expected_discussions()}
    hostile = {t["url"]: t for t in site.hostile_truth()["threads"]}
    seen: set[str] = set()
    number = 1
    while True:
        list_url = site.discussion_list_url(number)
        status, html = fetch(hostile_site.base_url, list_url.removeprefix(site.base_url))
        if status == 404:
            break
        assert status == 200
        assert live_spots(html) == [], list_url
        for raw in extract_entries(parsel.Selector(text=html), profile, list_url, list_url):
            raw["fetched_at"] = "2026-12-31T06:00:00Z"
            item = clean.process_item(raw)
            if item["thread_url"] in hostile:
                seen.add(item["thread_url"])
                assert item["title"] == hostile[item["thread_url"]]["title"]
                row = expected[item["thread_url"]]
                for key in ("title", "is_reply", "reply_to_title", "last_activity_at", "comment_count"):
                    assert item[key] == row[key], (item["thread_url"], key)
        number += 1
    assert seen == set(hostile)
    assert {site.thread_url(tid) for tid in THREAD_IDS} <= seen
    titles = [hostile[site.thread_url(tid)]["title"] for tid in THREAD_IDS]
    assert any("<script>" in t for t in titles)
    assert any('" onmouseover="' in t for t in titles)
    assert any(t.startswith("javascript:") for t in titles)


def test_thread_pages_escape_the_title(hostile_site: SiteServer) -> None:
    site = hostile_site.site
    for entry in site.hostile_truth()["threads"]:
        status, html = fetch(hostile_site.base_url, entry["path"])
        assert status == 200
        sel = parsel.Selector(text=html)
        assert sel.css("title::text").get() == f"{entry['title']} | {SITE_NAME}"
        assert css_text(sel, "article.thread h1") == entry["title"]
        assert live_spots(html) == [], entry["path"]


def test_rss_stays_well_formed_with_hostile_titles() -> None:
    site = SampleSite(300, hostile=True)
    body = render(site, "/rss.xml").body
    assert isinstance(body, bytes)
    root = ElementTree.fromstring(body)
    titles = [item.findtext("title") for item in root.iter("item")]
    for entry in site.hostile_truth()["articles"]:
        assert entry["title"] in titles


# ---- command line ---------------------------------------------------------------


def test_cli_hostile_flag() -> None:
    assert build_parser().parse_args([]).hostile is False
    assert build_parser().parse_args(["--hostile"]).hostile is True
    proc = subprocess.Popen(
        [sys.executable, "-m", "samplesite", "--port", "0", "--articles", "60", "--hostile"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        status, html = fetch(base_url, "/")
        assert status == 200
        assert "&lt;script&gt;window.__nvHostile=1;alert(1)&lt;/script&gt;" in html
        status, html = fetch(base_url, SampleSite(60, hostile=True).article_path(55))
        assert status == 200 and f"<script>{HOOK}=1</script>" in html
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
