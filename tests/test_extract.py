"""Extraction units on contract HTML: profile selectors, metadata fallbacks, generic extraction."""

from __future__ import annotations

from pathlib import Path

import pytest
from parsel import Selector

from spiders.extract import extract_article, extract_entries, http_date_to_iso
from spiders.extract.metadata import embedded_fields
from spiders.profile import load_profile, profile_from_dict

SITES = Path(__file__).resolve().parents[1] / "sites"
URL = "http://127.0.0.1:8000/news/42-secret-of-the-visit.html"

# An article page following the sample-site contract (a syndicated one, with an inline ad).
ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The secret of Putin's visit to Minsk: a danger signal for Ukraine | Sample News</title>
<link rel="canonical" href="http://127.0.0.1:8000/news/42-secret-of-the-visit.html">
<meta property="og:title" content="The secret of Putin's visit to Minsk: a danger signal for Ukraine">
<meta property="og:url" content="http://127.0.0.1:8000/news/42-secret-of-the-visit.html">
<meta property="og:image" content="http://127.0.0.1:8000/img/42.jpg">
<meta property="og:type" content="article">
<meta name="description" content="Putin's visit to Minsk caused a panic attack in the Ukrainian regime.">
<meta property="article:published_time" content="2026-12-30T15:30:00+03:00">
<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle","headline":"The secret of Putin's visit to Minsk: a danger signal for Ukraine","datePublished":"2026-12-30T15:30:00+03:00","dateModified":"2026-12-30T16:00:00+03:00","author":[{"@type":"Person","name":"Ivan Petrov"}],"articleSection":"Analytics","keywords":["Russia","Belarus"],"image":"http://127.0.0.1:8000/img/42.jpg","publisher":{"@type":"Organization","name":"Sample News"}}</script>
<style>body { font-family: sans-serif } .inline-ad { color: gray }</style><script>window.dataLayer = [];</script></head>
<body><header class="site-header"><a class="login" href="/login">Войти</a><nav class="sections"><a href="/section/politics/">Politics</a></nav></header>
<main><article class="article" data-id="42">
 <h1 class="article-title">The secret of Putin's visit to Minsk: a danger signal for Ukraine</h1>
 <div class="article-meta"><time class="published" datetime="2026-12-30T15:30:00+03:00">30.12.2026 15:30</time> <span class="author">Ivan Petrov</span> <a class="section" href="/section/analytics/">Analytics</a>
   <span class="views">1 020</span> <span class="comments-count">0</span></div>
 <figure class="article-image"><img src="/img/42.jpg" alt="Minsk"><figcaption class="image-credit">Image source: © РИА Новости Павел Бедняков</figcaption></figure>
 <div class="article-lead">Putin's visit to Minsk caused a panic attack in the Ukrainian regime.</div>
 <div class="article-body">
   <p class="source-note">The original article was published by the publication "Dune-e Ektesad", and the point of view given by the author may not coincide (in whole or in part) with the point of view of the editorial board.</p>
   <p>At the beginning of last week, Russian President Vladimir Putin paid a visit to the Republic of Belarus.</p>
   <div class="inline-ad">Реклама Лучшие цены</div>
   <p>However, the fact that Putin's trip to Minsk took place
      after a long break <a href="/x">immediately</a> gave rise to discussions.</p>
   <p>Ukrainian officials stated that at the time of the start of negotiations in Minsk, Russia suspended a series of airstrikes.</p>
 </div>
 <div class="article-source">Akharin khabar, Analytics section / Selected News</div>
 <div class="rights">The rights to this material belong to ...<br>The material is placed by the copyright holder in the public domain</div>
 <a class="original-link" href="https://example.org/original/42">Original publication</a>
 <div class="disclaimer">InoSMI materials contain ratings exclusively from foreign media and do not reflect the editorial board's position</div>
 <div class="tags"><span class="tags-label">The news mentions</span><ul><li><a class="tag" href="/tag/russia">Russia</a></li><li><a class="tag" href="/tag/belarus">Belarus</a></li></ul></div>
</article>
<div class="comment-prompt">Do you want to leave a comment? Register and/or Log in</div>
<div class="newsletter">ПОДПИСКА НА НОВОСТИ Ежедневная рассылка новостей на электронный почтовый ящик</div>
</main>
<aside class="discussion-sidebar"><h3>Discussion</h3><a class="update" href="/discussions/">Update</a><ul class="discussion-list">
<li class="discussion-entry"><span class="entry-time">24.09 01:36</span> <span class="entry-comments">1</span> <a class="entry-title" href="/threads/123">О поражении танков</a></li>
</ul></aside>
<footer>© Sample News</footer></body></html>
"""

DISCUSSION_HTML = """<html><body><ul class="discussion-list">
<li class="discussion-entry"><span class="entry-time">24.09 01:36</span> <span class="entry-comments">1</span>
 <a class="entry-title" href="/threads/123">О поражении (в смысле - выводе из строя) танков</a></li>
<li class="discussion-entry"><span class="entry-time">23.09 22:19</span> <span class="entry-comments">4 919</span>
 <a class="entry-title" href="/threads/7">Ответ на "«Снаряд прошил весь танк и вышел через корму»"</a></li>
</ul><a class="next" rel="next" href="/discussions/?page=2">Next</a></body></html>"""

FURNITURE = (
    "The original article was published",
    "Реклама",
    "InoSMI materials",
    "Do you want to leave a comment",
    "ПОДПИСКА",
    "The rights to this material",
    "Image source",
    "The news mentions",
)


@pytest.fixture(scope="module")
def sample_profile():
    return load_profile(SITES / "sample.toml")


@pytest.fixture(scope="module")
def generic_profile():
    return load_profile(SITES / "generic-sample.toml")


def test_selectors_give_the_raw_item_of_the_contract(sample_profile) -> None:
    item = extract_article(
        ARTICLE_HTML, URL + "?utm_source=x", sample_profile,
        request_url=URL + "?utm_source=x", server_date="2026-12-31T06:00:00Z", fetched_at="2026-12-31T06:00:01Z",
    )
    assert item["type"] == "article" and item["site"] == "sample"
    assert item["url"] == URL + "?utm_source=x" and item["_request_url"] == URL + "?utm_source=x"
    assert item["canonical_url"] == URL
    assert item["title"] == "The secret of Putin's visit to Minsk: a danger signal for Ukraine"
    assert item["lead"] == "Putin's visit to Minsk caused a panic attack in the Ukrainian regime."
    assert item["body"].split("\n\n") == [
        "At the beginning of last week, Russian President Vladimir Putin paid a visit to the Republic of Belarus.",
        "However, the fact that Putin's trip to Minsk took place after a long break immediately gave rise to discussions.",
        "Ukrainian officials stated that at the time of the start of negotiations in Minsk, Russia suspended a series of airstrikes.",
    ]
    # Raw values: the clean pipeline parses them, the extractor must not.
    assert item["views"] == "1 020" and item["comment_count"] == "0"
    assert item["image_credit"] == "Image source: © РИА Новости Павел Бедняков"
    assert item["source_name"].startswith('The original article was published by the publication "Dune-e Ektesad"')
    assert item["published_at"] == "2026-12-30T15:30:00+03:00"
    assert item["published_raw"] == "30.12.2026 15:30"
    assert item["modified_at"] == "2026-12-30T16:00:00+03:00"
    assert item["authors"] == ["Ivan Petrov"] and item["tags"] == ["Russia", "Belarus"]
    assert item["section"] == "Analytics" and item["language"] == "en"
    assert item["image_url"] == "http://127.0.0.1:8000/img/42.jpg"
    assert item["source_url"] == "https://example.org/original/42"
    assert item["_server_date"] == "2026-12-31T06:00:00Z" and item["fetched_at"] == "2026-12-31T06:00:01Z"
    assert item["_extraction"] == "selectors"
    for text in FURNITURE:
        assert text not in item["body"]


def test_generic_profile_falls_back_to_metadata_and_trafilatura(generic_profile) -> None:
    item = extract_article(ARTICLE_HTML, URL, generic_profile)
    assert item["title"] == "The secret of Putin's visit to Minsk: a danger signal for Ukraine"
    assert item["published_at"] == "2026-12-30T15:30:00+03:00"  # JSON-LD, machine-readable
    assert item["published_raw"] is None and item["views"] is None
    assert item["authors"] == ["Ivan Petrov"] and item["tags"] == ["Russia", "Belarus"]
    assert item["canonical_url"] == URL and item["section"] == "Analytics"
    assert item["_extraction"] == "trafilatura"
    assert "Russian President Vladimir Putin paid a visit" in item["body"]
    assert "ПОДПИСКА" not in item["body"]


ONE = "The first paragraph of the body. " * 4
TWO = "The second paragraph of the body. " * 4


def test_fallback_order_selector_then_jsonld_then_meta() -> None:
    profile = profile_from_dict({
        "name": "t", "start_urls": {"front": ["http://127.0.0.1/"]},
        "articles": {"url_patterns": "/news/", "fields": {
            "title": [{"css": "h2.missing"}, {"xpath": "//h1/text()"}],
            "body": {"css": "div.text"},
        }},
    })
    html = """<html><head><meta property="og:title" content="OG title">
    <meta property="article:published_time" content="2026-01-02T03:04:05Z">
    <script type="application/ld+json">{"@graph": [{"@type": "WebSite"}, {"@type": "NewsArticle",
      "headline": "LD title", "articleBody": "BODY", "author": "Ann"}]}</script>
    <script type="application/ld+json">{broken</script></head>
    <body><h1>Second selector</h1></body></html>""".replace("BODY", f"{ONE}\\n{TWO}")
    item = extract_article(html, "http://127.0.0.1/news/1", profile)
    assert item["title"] == "Second selector"
    # The page text is far shorter than the metadata body, so the metadata wins.
    assert item["body"] == f"{ONE.strip()}\n\n{TWO.strip()}" and item["_extraction"] == "jsonld"
    assert item["authors"] == ["Ann"]
    assert item["published_at"] == "2026-01-02T03:04:05Z"
    meta = embedded_fields(Selector(text=html.replace('"headline": "LD title",', "")))
    assert meta["title"] == "OG title"


def test_malformed_html_still_extracts(sample_profile) -> None:
    broken = ARTICLE_HTML.replace("</h1>", "").replace("</p>", "", 2).replace("</div>", "</span>", 1)
    item = extract_article(broken, URL, sample_profile)
    assert item["title"] and item["title"].startswith("The secret of Putin's visit to Minsk")
    assert "Russian President Vladimir Putin" in item["body"]


def test_discussion_entries(sample_profile) -> None:
    page = "http://127.0.0.1:8000/discussions/"
    entries = extract_entries(Selector(text=DISCUSSION_HTML), sample_profile, page, page)
    assert [e["thread_url"] for e in entries] == [
        "http://127.0.0.1:8000/threads/123", "http://127.0.0.1:8000/threads/7",
    ]
    assert entries[1]["title"] == 'Ответ на "«Снаряд прошил весь танк и вышел через корму»"'
    assert entries[1]["last_activity_raw"] == "23.09 22:19" and entries[1]["comment_count"] == "4 919"
    assert all(e["type"] == "discussion" and e["list_url"] == page for e in entries)


@pytest.mark.parametrize(("header", "expected"), [
    ("Thu, 31 Dec 2026 06:00:00 GMT", "2026-12-31T06:00:00Z"),
    (b"Fri, 01 Jan 2027 00:30:00 GMT", "2027-01-01T00:30:00Z"),
    ("not a date", None),
    (None, None),
])
def test_http_date(header, expected) -> None:
    assert http_date_to_iso(header) == expected
