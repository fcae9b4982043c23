"""The sample site: determinism, faults, encodings, ticks, ground truth, scale."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import parsel
import pytest

from samplesite import FURNITURE_STRINGS, SampleSite, SiteServer
from samplesite.model import SITE_TZ
from samplesite.render import render


class Fetched:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def text(self) -> str:
        return self.body.decode(self.headers.get_content_charset() or "utf-8")

    def sel(self) -> parsel.Selector:
        return parsel.Selector(text=self.text())


def fetch(base_url: str, path: str, method: str = "GET") -> Fetched:
    """One request, no redirects followed, on a fresh connection."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return Fetched(response.status, response.headers, response.read())
    finally:
        conn.close()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def extract_article(sel: parsel.Selector) -> dict[str, Any]:
    """What a selector-based extractor reads from the article contract."""
    body = sel.css("div.article-body > p:not(.source-note)")
    note = sel.css("p.source-note::text").get()
    source = re.search(r'publication "([^"]+)"', note).group(1) if note else None
    published = datetime.fromisoformat(sel.css("time.published::attr(datetime)").get())
    credit = "".join(sel.css("figcaption.image-credit ::text").getall())
    return {
        "title": sel.css("h1.article-title::text").get(),
        "canonical_url": sel.css("link[rel=canonical]::attr(href)").get(),
        "published_at": published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "published_raw": sel.css("time.published::text").get(),
        "authors": [a.strip() for a in sel.css("span.author ::text").getall() if a.strip()],
        "section": sel.css("a.section::text").get(),
        "tags": sel.css("a.tag::text").getall(),
        "views": int(sel.css("span.views::text").get().replace(" ", "")),
        "comment_count": int(sel.css("span.comments-count::text").get()),
        "image_credit": credit.removeprefix("Image source: © "),
        "source_name": source,
        "source_url": sel.css("a.original-link::attr(href)").get(),
        "lead": sel.css("div.article-lead::text").get(),
        "body": "\n\n".join("".join(p.css("::text").getall()).strip() for p in body),
        "language": sel.css("html::attr(lang)").get(),
    }


def assert_matches_truth(extracted: dict[str, Any], truth: dict[str, Any]) -> None:
    for key, value in extracted.items():
        assert value == truth[key], f"{truth['canonical_url']}: {key}"


def listed_paths(base_url: str, start: str) -> list[str]:
    """Follow rel=next from a listing and collect every article link."""
    out: list[str] = []
    path: str | None = start
    while path:
        page = fetch(base_url, path)
        assert page.status == 200, path
        sel = page.sel()
        out.extend(sel.css("ul.article-list a.article-link::attr(href)").getall())
        path = sel.css("a.next[rel=next]::attr(href)").get()
    return out


def article_id(path: str) -> int | None:
    match = re.match(r"/news/(\d+)-", path)
    return int(match[1]) if match else None


# ---- determinism -------------------------------------------------------------


def test_same_seed_gives_same_bytes_and_other_seed_differs() -> None:
    paths = ["/", "/?page=4", "/section/military/", "/discussions/", "/rss.xml", "/sitemap-1.xml"]
    one, two, other = SampleSite(300, seed=7), SampleSite(300, seed=7), SampleSite(300, seed=8)
    paths += [one.article_path(i) for i in (1, 150, 299)]
    for path in paths:
        a = render(one, *path.partition("?")[::2])
        b = render(two, *path.partition("?")[::2])
        assert a.status == b.status == 200
        assert a.body == b.body, path
    assert render(one, "/").body != render(other, "/").body
    assert one.article(42).body != other.article(42).body
    assert one.discussion_order() == two.discussion_order()


def test_article_pages_weigh_like_real_news_pages() -> None:
    site = SampleSite(300, seed=3)
    sizes = [len(render(site, site.article_path(i)).body) for i in range(1, 200, 7)]
    assert all(30_000 <= size <= 64_000 for size in sizes), sizes


# ---- faults over HTTP ----------------------------------------------------------


def test_front_page_links_every_fault(sample_site: SiteServer) -> None:
    hrefs = set(fetch(sample_site.base_url, "/").sel().css("a.article-link::attr(href)").getall())
    linked = [f for f in sample_site.site.fault_urls() if f["linked"]]
    front = {"missing-404", "oversize", "robots-disallowed", "redirect-chain", "print-duplicate"}
    for fault in linked:
        if fault["name"] in front:
            assert path_of(fault["url"]) in hrefs, fault["name"]
    robots = fetch(sample_site.base_url, "/robots.txt").text()
    assert "User-agent: *\nDisallow: /private/" in robots
    assert f"Sitemap: {sample_site.base_url}/sitemap.xml" in robots


def test_flaky_article_fails_once_then_serves(sample_site: SiteServer) -> None:
    path = sample_site.site.article_path(sample_site.site.specials.flaky)
    assert fetch(sample_site.base_url, path).status == 500
    second = fetch(sample_site.base_url, path)
    assert second.status == 200
    assert "article-title" in second.text()


def test_missing_article_is_404_and_removed_is_410(sample_site: SiteServer) -> None:
    fault = next(f for f in sample_site.site.fault_urls() if f["name"] == "missing-404")
    assert fetch(sample_site.base_url, path_of(fault["url"])).status == 404
    sample_site.set_tick(1)
    removed = sample_site.site.changes(0, 1)["removed"]
    assert len(removed) == 1
    assert fetch(sample_site.base_url, path_of(removed[0])).status == 410


def test_redirect_chain_reaches_the_article(sample_site: SiteServer) -> None:
    site = sample_site.site
    target = site.specials.redirect
    first = fetch(sample_site.base_url, f"/go/{target}")
    assert first.status == 301
    assert first.headers["Location"] == f"/r/{target}"
    second = fetch(sample_site.base_url, first.headers["Location"])
    assert second.status == 302
    final = fetch(sample_site.base_url, second.headers["Location"])
    assert final.status == 200
    assert final.sel().css("link[rel=canonical]::attr(href)").get() == site.canonical_url(target)


def test_slow_article_takes_about_a_second(sample_site: SiteServer) -> None:
    path = sample_site.site.article_path(sample_site.site.specials.slow)
    # The page declares its delay (no clock needed) ...
    assert render(sample_site.site, path).delay == pytest.approx(1.0)
    assert render(sample_site.site, sample_site.site.article_path(1)).delay == 0
    # ... and the server waits it out: a lower bound, which a slow machine cannot break
    # (a hang ends at fetch's 30 s socket timeout).
    started = time.monotonic()
    assert fetch(sample_site.base_url, path).status == 200
    assert time.monotonic() - started >= 0.9


def test_oversize_and_big_pages_stream_their_declared_size(
    sample_site_factory: Any,
) -> None:
    running = sample_site_factory(articles=60, oversize_bytes=3 * 1024 * 1024)
    fault = next(f for f in running.site.fault_urls() if f["name"] == "oversize")
    page = fetch(running.base_url, path_of(fault["url"]))
    assert page.status == 200
    assert int(page.headers["Content-Length"]) == len(page.body) == 3 * 1024 * 1024
    assert page.body.endswith(b"</body></html>")
    head = fetch(running.base_url, "/faults/big-10mb.html", method="HEAD")
    assert int(head.headers["Content-Length"]) == 10 * 1024 * 1024


def test_gzip_bomb_is_small_on_the_wire_and_huge_decompressed(sample_site: SiteServer) -> None:
    page = fetch(sample_site.base_url, "/faults/gzip-bomb")
    assert page.headers["Content-Encoding"] == "gzip"
    assert len(page.body) < 2 * 1024 * 1024
    # Count the decompressed bytes in bounded chunks, member after member.
    total, data = 0, page.body
    while data:
        decompressor = zlib.decompressobj(31)
        while data:
            chunk = decompressor.decompress(data, 16 * 1024 * 1024)
            assert chunk.count(0) == len(chunk)
            total += len(chunk)
            data = decompressor.unconsumed_tail
            if decompressor.eof:
                break
        data = decompressor.unused_data
    assert total == 1024**3


def test_no_charset_article_is_utf8_without_declaration(sample_site: SiteServer) -> None:
    site = sample_site.site
    article_id = site.specials.no_charset
    page = fetch(sample_site.base_url, site.article_path(article_id))
    assert page.headers["Content-Type"] == "text/html"
    assert b"charset" not in page.body.lower()
    truth = site.article_truth(article_id)
    assert truth["language"] == "ru"
    assert_matches_truth(extract_article(page.sel()), truth)


def test_windows_1251_pages_decode_to_the_truth(sample_site: SiteServer) -> None:
    site = sample_site.site
    ids = [i for i in site.live_ids() if site.encoding(i) == "windows-1251"]
    assert len(ids) >= 10
    for article_id in ids[:6]:
        page = fetch(sample_site.base_url, site.article_path(article_id))
        assert page.headers["Content-Type"] == "text/html; charset=windows-1251"
        assert b'<meta charset="windows-1251">' in page.body
        with pytest.raises(UnicodeDecodeError):
            page.body.decode("utf-8")
        sel = parsel.Selector(text=page.body.decode("windows-1251"))
        truth = site.article_truth(article_id)
        assert re.search("[а-яА-Я]", truth["body"])
        assert_matches_truth(extract_article(sel), truth)


def test_malformed_article_still_yields_every_field(sample_site: SiteServer) -> None:
    site = sample_site.site
    article_id = site.specials.malformed
    page = fetch(sample_site.base_url, site.article_path(article_id))
    markup = page.text().split('class="article-body"')[1].split('class="article-source"')[0]
    truth = site.article_truth(article_id)
    assert markup.count("</p>") == (1 if truth["source_name"] else 0)  # paragraphs left open
    assert "<b>" in markup and markup.index("</i>") < markup.index("</b>")  # crossed nesting
    assert_matches_truth(extract_article(page.sel()), site.article_truth(article_id))


def test_print_url_points_canonical_to_the_news_url(sample_site: SiteServer) -> None:
    site = sample_site.site
    page = fetch(sample_site.base_url, f"/print/{site.specials.printable}.html")
    assert page.status == 200
    truth = site.article_truth(site.specials.printable)
    assert_matches_truth(extract_article(page.sel()), truth)


# ---- ground truth -----------------------------------------------------------


def test_ground_truth_matches_rendered_pages(sample_site: SiteServer) -> None:
    site = sample_site.site
    sample = list(range(1, 301, 13)) + sorted(site.specials.ids() - {site.specials.flaky,
                                                                         site.specials.slow})
    for article_id in sample:
        truth = site.article_truth(article_id)
        for text in (truth["title"], truth["lead"], truth["body"]):
            assert not any(f in text for f in FURNITURE_STRINGS), article_id
        page = fetch(sample_site.base_url, site.article_path(article_id) + "?utm_source=x")
        assert_matches_truth(extract_article(page.sel()), truth)
        assert truth["url"] == truth["canonical_url"] == site.canonical_url(article_id)


def test_expected_articles_cover_every_listing_and_the_duplicate_pairs(
    sample_site: SiteServer,
) -> None:
    site = sample_site.site
    expected = site.expected_articles()
    assert len(expected) == 300
    assert {a["language"] for a in expected} == {"en", "ru"}
    front = {article_id(p) for p in listed_paths(sample_site.base_url, "/")} - {None}
    sections: set[int | None] = set()
    for slug in ("politics", "economy", "military", "world", "analytics"):
        sections |= {article_id(p) for p in listed_paths(sample_site.base_url, f"/section/{slug}/")}
    truth_ids = {article_id(path_of(a["canonical_url"])) for a in expected}
    assert front - {900000001, 900000002} == truth_ids
    assert sections == truth_ids
    sp = site.specials
    reprint, original = site.article_truth(sp.exact_reprint), site.article_truth(sp.exact_original)
    assert reprint["duplicate_of"] == original["canonical_url"] != reprint["canonical_url"]
    assert (reprint["title"], reprint["lead"], reprint["body"]) == (
        original["title"], original["lead"], original["body"])
    copy, source = site.article_truth(sp.near_copy), site.article_truth(sp.near_original)
    assert copy["near_duplicate_of"] == source["canonical_url"]
    assert copy["body"] != source["body"]
    assert copy["source_name"] is not None
    assert _jaccard(copy["body"], source["body"]) > 0.85
    others = [a["body"] for a in expected[40:60]]
    assert max(_jaccard(a, b) for a in others for b in others if a is not b) < 0.6
    dupes = [a for a in expected if a["duplicate_of"] or a["near_duplicate_of"]]
    assert len(dupes) == 2


def _jaccard(a: str, b: str) -> float:
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = text.lower().split()
        return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def test_rss_and_sitemaps_list_live_articles(sample_site: SiteServer) -> None:
    site = sample_site.site
    sample_site.set_tick(2)
    live = {site.canonical_url(i) for i in site.live_ids()}
    rss = parsel.Selector(text=fetch(sample_site.base_url, "/rss.xml").text(), type="xml")
    links = rss.xpath("//item/link/text()").getall()
    assert len(links) == 50 and set(links) <= live
    assert links == [site.canonical_url(i) for i in site.live_ids()[:50]]
    index = parsel.Selector(text=fetch(sample_site.base_url, "/sitemap.xml").text(), type="xml")
    index.remove_namespaces()
    urls: list[str] = []
    for loc in index.xpath("//sitemap/loc/text()").getall():
        sitemap = parsel.Selector(text=fetch(sample_site.base_url, path_of(loc)).text(), type="xml")
        sitemap.remove_namespaces()
        urls += sitemap.xpath("//url/loc/text()").getall()
    assert len(urls) == len(set(urls)) and set(urls) == live


def test_expected_discussions_match_the_discussion_pages(sample_site: SiteServer) -> None:
    site = sample_site.site
    sample_site.set_tick(1)
    expected = site.expected_discussions()
    seen: list[dict[str, Any]] = []
    path: str | None = "/discussions/"
    while path:
        sel = fetch(sample_site.base_url, path).sel()
        for entry in sel.css("li.discussion-entry"):
            seen.append({
                "list_url": sample_site.base_url + path,
                "thread_url": sample_site.base_url + entry.css("a.entry-title::attr(href)").get(),
                "title": entry.css("a.entry-title::text").get(),
                "last_activity_raw": entry.css("span.entry-time::text").get(),
                "comment_count": int(entry.css("span.entry-comments::text").get()),
            })
        path = sel.css("a.next[rel=next]::attr(href)").get()
    assert len(seen) == len(expected) == site.thread_count()
    for position, (got, want) in enumerate(zip(seen, expected, strict=True), start=1):
        assert want["position"] == position
        assert got == {k: want[k] for k in got}
        if want["is_reply"]:
            assert want["title"] == f'Ответ на "{want["reply_to_title"]}"'
    assert any(e["is_reply"] and "«" in e["reply_to_title"] for e in expected)
    times = [e["last_activity_at"] for e in expected]
    assert times == sorted(times, reverse=True)
    sidebar = fetch(sample_site.base_url, site.article_path(5)).sel()
    titles = sidebar.css("aside.discussion-sidebar a.entry-title::text").getall()
    assert titles == [e["title"] for e in expected[:15]]


# ---- ticks -------------------------------------------------------------------


def test_ticks_change_exactly_what_changes_reports(sample_site: SiteServer) -> None:
    site, base = sample_site.site, sample_site.base_url
    before = {a["canonical_url"]: a for a in site.expected_articles()}
    threads_before = {e["thread_url"]: e for e in site.expected_discussions()}
    answer = fetch(base, "/_control/tick?value=2", method="POST")
    assert answer.status == 200 and json.loads(answer.body)["tick"] == 2
    assert site.tick == 2
    assert fetch(base, "/").headers["Date"] == "Thu, 31 Dec 2026 18:00:00 GMT"
    diff = site.changes(0, 2)
    assert len(diff["new"]) == 6 and len(diff["removed"]) == 2 and len(diff["updated"]) >= 1
    after = {a["canonical_url"]: a for a in site.expected_articles()}
    assert set(after) == set(diff["new"]) | set(diff["updated"]) | set(diff["unchanged"])
    assert set(before) == set(diff["removed"]) | set(diff["updated"]) | set(diff["unchanged"])
    front = set(listed_paths(base, "/"))
    for url in diff["new"]:
        assert any(p.startswith(path_of(url)) for p in front)
    for url in diff["removed"]:
        assert fetch(base, path_of(url)).status == 410
        assert not any(p.startswith(path_of(url)) for p in front)

    def content(item: dict[str, Any]) -> tuple[str, str, str]:
        return item["title"], item["lead"], item["body"]

    for url in diff["updated"]:
        assert content(after[url]) != content(before[url])
        assert after[url]["modified_at"] > before[url]["modified_at"]
    for url in diff["unchanged"]:
        assert content(after[url]) == content(before[url])
    grew = [u for u in diff["unchanged"] if after[u]["views"] > before[u]["views"]]
    assert grew, "counters grow between ticks"
    threads_after = {e["thread_url"]: e for e in site.expected_discussions()}
    assert set(threads_after) - set(threads_before) == set(diff["threads_new"])
    assert len(diff["threads_new"]) == 4
    for url, entry in threads_before.items():
        moved = (entry["last_activity_at"], entry["comment_count"]) != (
            threads_after[url]["last_activity_at"], threads_after[url]["comment_count"])
        assert moved == (url in diff["threads_moved"])
    assert diff["threads_moved"]
    # Going back is deterministic too: tick 0 reads as it did.
    sample_site.set_tick(0)
    assert {a["canonical_url"]: a for a in site.expected_articles()} == before


def test_new_year_entries_are_from_the_previous_year(sample_site_factory: Any) -> None:
    running = sample_site_factory(tick=3)
    page = fetch(running.base_url, "/discussions/")
    assert page.headers["Date"] == "Fri, 01 Jan 2027 00:00:00 GMT"
    entries = running.site.expected_discussions()
    raws = [e["last_activity_raw"] for e in entries]
    assert "31.12 23:50" in raws
    new_year = next(e for e in entries if e["last_activity_raw"] == "31.12 23:50")
    assert new_year["last_activity_at"] == "2026-12-31T20:50:00Z"
    assert any(r.startswith("01.01") for r in raws)
    december_days = {r[:5] for r in raws if r[3:5] == "12"}
    assert {"31.12", "30.12", "29.12"} <= december_days
    fetched = running.site.now()
    old = [e for e in entries
           if (fetched - datetime.fromisoformat(e["last_activity_at"])).days > 7]
    assert len(old) >= 3
    assert all(datetime.fromisoformat(e["last_activity_at"]) <= fetched for e in entries)
    assert "31.12 23:50" in page.sel().css("span.entry-time::text").getall()
    local = datetime.fromisoformat(new_year["last_activity_at"]).astimezone(SITE_TZ)
    assert (local.year, local.month, local.day) == (2026, 12, 31)


# ---- scale and CLI -------------------------------------------------------------


def test_hundred_thousand_articles_start_instantly(sample_site_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # "Instantly" without a stopwatch: every article is generated from its own Random
    # (text.rng_for), so count those. Starting a 100,000-article site must generate no
    # more than a minimal one does, and serving one page only what that page shows.
    from samplesite import text
    from samplesite.model import MIN_ARTICLES

    generated: list[tuple[Any, ...]] = []
    real_rng_for = text.rng_for

    def counting_rng_for(seed: int, *parts: int | str) -> Any:
        generated.append(parts)
        return real_rng_for(seed, *parts)

    monkeypatch.setattr(text, "rng_for", counting_rng_for)
    sample_site_factory(articles=MIN_ARTICLES)
    at_small_start = len(generated)
    generated.clear()
    running = sample_site_factory(articles=100_000)
    at_start = len(generated)
    assert at_start == at_small_start and at_start < 50, generated[:20]
    site = running.site
    assert site._events == []  # no tick replayed ahead of a request
    page = fetch(running.base_url, site.article_path(99_999))
    assert page.status == 200
    for_one_page = len(generated) - at_start
    assert 0 < for_one_page < 1_000, for_one_page  # what one page shows, nowhere near 100,000
    assert_matches_truth(extract_article(page.sel()), site.article_truth(99_999))
    last = fetch(running.base_url, f"/?page={site.page_count()}").sel()
    assert "/news/1-" in " ".join(last.css("a.article-link::attr(href)").getall())
    before_sitemap = len(generated)
    sitemap = fetch(running.base_url, "/sitemap-10.xml")
    assert sitemap.status == 200
    listed = sitemap.body.count(b"<loc>")
    assert listed > 0
    # A sitemap needs a slug and a lastmod per URL it lists: a few generations each, not the site.
    assert len(generated) - before_sitemap <= 3 * listed, (len(generated) - before_sitemap, listed)


def test_cli_prints_base_url_first_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "samplesite", "--port", "0", "--articles", "60", "--tick", "1",
         "--clock", "2026-06-01T12:00:00Z"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        page = fetch(base_url, "/")
        assert page.status == 200
        assert page.headers["Date"] == "Mon, 01 Jun 2026 18:00:00 GMT"
        assert fetch(base_url, "/_control/tick?value=5", method="POST").status == 200
        assert json.loads(fetch(base_url, "/_control/state").body)["tick"] == 5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 50"):
        SampleSite(10)
    with pytest.raises(ValueError, match="timezone-aware"):
        SampleSite(100, clock=datetime(2026, 1, 1))
    result = subprocess.run([sys.executable, "-m", "samplesite", "--articles", "3"],
                            check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "at least 50" in result.stderr



def test_realistic_edits_are_timed_mostly_soon_after_publication_with_every_kind() -> None:
    from collections import Counter

    from samplesite.edits import EDIT_KINDS

    site = SampleSite(articles=3000, edits="realistic")
    edits = [e for i in range(1, site.max_id() + 1) for e in site.timed_edits(i)]
    assert edits == [e for i in range(1, site.max_id() + 1) for e in SampleSite(3000, edits="realistic").timed_edits(i)]
    assert set(Counter(e.kind for e in edits)) == set(EDIT_KINDS)
    edited = {e.article_id for e in edits}
    assert 0.25 < len(edited) / site.max_id() < 0.45
    since_publication = [e.at - site.article(e.article_id, 0).published for e in edits if e.version == 1]
    assert sum(d <= timedelta(hours=3) for d in since_publication) / len(since_publication) > 0.6
    assert any(d > timedelta(days=2) for d in since_publication)  # some come days later
    # The per-tick edits are off in this model.
    with pytest.raises(ValueError, match="timed_edits"):
        site.edited_at(1)


def test_realistic_edit_changes_the_article_at_its_time_as_its_ops_say() -> None:
    site = SampleSite(articles=400, edits="realistic")
    seen: set[str] = set()
    for article_id in range(1, site.max_id() + 1):
        for edit in site.timed_edits(article_id):
            if edit.kind in seen or edit.version != 1 or edit.at <= site.now(0):
                continue
            tick = next(t for t in range(1, 400) if site.now(t) >= edit.at)
            if not site.is_live(article_id, tick):
                continue
            before, after = site.article(article_id, tick - 1), site.article(article_id, tick)
            assert before.version == 0 and after.version >= 1 and after.modified >= edit.at
            ops = {op[0] for op in after.edit_ops} if after.version == 1 else set()
            if after.version == 1:
                if edit.kind == "headline":
                    assert after.title != before.title and ops == {"title"}
                elif edit.kind == "byline":
                    assert after.authors != before.authors and ops == {"authors"}
                elif edit.kind == "paragraph_added":
                    assert len(after.paragraphs) == len(before.paragraphs) + 1
                elif edit.kind == "paragraph_removed":
                    assert len(after.paragraphs) == len(before.paragraphs) - 1
                else:  # typo: one word of one paragraph
                    changed = [i for i, (a, b) in enumerate(zip(before.paragraphs, after.paragraphs)) if a != b]
                    assert len(changed) == 1 and ops == {"replace"}
                    words = zip(before.paragraphs[changed[0]].split(), after.paragraphs[changed[0]].split())
                    assert sum(a != b for a, b in words) == 1
                seen.add(edit.kind)
            truth = site.changes(tick - 1, tick)
            assert site.canonical_url(article_id) in truth["updated"]
    assert len(seen) == 5
