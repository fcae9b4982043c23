"""The recall guard of generic extraction: a precision result that keeps almost nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from parsel import Selector

from spiders.extract import extract_article, generic
from spiders.extract.generic import generic_extract, looks_like_article
from spiders.profile import load_profile

SITES = Path(__file__).resolve().parents[1] / "sites"
URL = "http://127.0.0.1:8000/news/7-harbour-budget.html"
NOTICE = "This article was first published by the Coastal Gazette and is reprinted with permission."

# A reprinted article whose every paragraph links to its place in the original:
# precision mode takes the paragraphs for link boilerplate and keeps the notice.
PARAGRAPHS = [
    "The council passed the harbour budget on Tuesday night.",
    "Dredging of the north channel starts in the spring.",
    "Ferry fares rise by five percent from the first of June.",
    "The fishing fleet gets a new cold store on the east quay.",
    "Two new berths will take the larger cruise ships from 2026.",
    "The lifeboat station moves to the old customs house.",
    "Parking at the marina becomes free on Sundays.",
    "The mayor called it the biggest harbour plan in a generation.",
]
REPRINT_HTML = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Harbour budget passes | Coastal Daily</title></head><body>
<header><nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/sport/">Sport</a></nav></header>
<main><article><h1>Harbour budget passes</h1>
<div class="article-body">
<p class="reprint"><em>{NOTICE}</em></p>
{"".join(f'<p><a href="https://gazette.example/harbour-budget#p{i}">{text}</a></p>' for i, text in enumerate(PARAGRAPHS))}
</div></article></main>
<footer>© Coastal Daily</footer></body></html>"""

# An ordinary article, precision's result is right.
STORY = [
    (
        "The regional council approved the harbour budget late on Tuesday after a debate that ran "
        "past midnight, with eleven members in favour and four against."
    ),
    (
        "Most of the money goes to dredging the north channel, which has silted up since the storms "
        "of last winter and now closes to larger vessels at low tide."
    ),
    (
        "Ferry operators warned that fares would rise by about five percent from June to cover higher "
        "fuel costs, a change the council said it could not prevent."
    ),
    (
        "The fishing cooperative welcomed a new cold store on the east quay, which it said would let "
        "its members sell directly to buyers inland instead of through the auction."
    ),
]
RELATED = ["Storm damage closes coastal road", "New lighthouse keeper appointed", "Cruise season starts early"]
ORDINARY_HTML = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Council passes harbour budget | Coastal Daily</title></head><body>
<header><nav><a href="/">Home</a> <a href="/news/">News</a></nav></header>
<main><article><h1>Council passes harbour budget</h1>
<div class="article-body">{"".join(f"<p>{text}</p>" for text in STORY)}</div>
<div class="related"><h2>Related stories</h2><ul>
{"".join(f'<li><a href="/news/{i}.html">{text}</a></li>' for i, text in enumerate(RELATED))}
</ul></div></article></main>
<footer>© Coastal Daily</footer></body></html>"""

# The same article on a page with much more chrome (a site map) and teasers
# that recall mode keeps and precision mode rightly drops: the recall pass
# runs, but precision kept most of what recall finds.
TEASERS = [
    f"Teaser {i}: the coastal road closed again after the storm, and the council promised repairs "
    "before the summer season begins."
    for i in range(3)
]
SITE_MAP = " ".join(f'<a href="/s{i}">Section number {i} of the site</a>' for i in range(80))
CHROME_HTML = ORDINARY_HTML.replace(
    '<div class="related">',
    f'<div class="teaser-list">{"".join(f"<p>{text}</p>" for text in TEASERS)}</div><div class="related">',
).replace("<footer>", f'<footer><div class="site-map">{SITE_MAP}</div>')


def _count_passes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = generic._extract

    def counting(html: str, url: str, favor: str):
        calls.append(favor)
        return real(html, url, favor)

    monkeypatch.setattr(generic, "_extract", counting)
    return calls


@pytest.fixture(scope="module")
def generic_profile():
    return load_profile(SITES / "generic-sample.toml")


def test_precision_alone_keeps_only_the_reprint_notice() -> None:
    # The failure the guard exists for, as trafilatura's precision mode gives it.
    result = generic_extract(REPRINT_HTML, URL, recall_guard=False)
    assert result.body == [NOTICE]
    assert result.mode == "precision"


def test_guard_takes_the_article_recall_finds() -> None:
    result = generic_extract(REPRINT_HTML, URL)
    assert result.mode == "recall"
    for text in PARAGRAPHS:
        assert text in result.body
    assert result.title == "Harbour budget passes"


def test_generic_profile_item_gets_the_article(generic_profile) -> None:
    item = extract_article(REPRINT_HTML, URL, generic_profile)
    assert item["_extraction"] == "trafilatura"
    assert "The council passed the harbour budget on Tuesday night." in item["body"]
    assert "The mayor called it the biggest harbour plan in a generation." in item["body"]
    assert len(item["body"]) > 4 * len(NOTICE)


def test_guard_keeps_a_correct_precision_result(monkeypatch) -> None:
    plain = generic_extract(CHROME_HTML, URL, recall_guard=False)
    assert plain.body == STORY
    calls = _count_passes(monkeypatch)
    guarded = generic_extract(CHROME_HTML, URL)
    # Recall ran (precision kept little of the page) and found the teasers too,
    # but precision kept most of what it found: the precision result stands.
    assert calls == ["precision", "recall"]
    recall_body = generic._body(generic._extract(CHROME_HTML, URL, "recall"))
    assert TEASERS[0] in recall_body
    assert guarded.mode == "precision" and guarded.body == STORY


def test_recall_pass_skipped_when_precision_keeps_much_of_the_page(monkeypatch) -> None:
    # The precision result is most of the page's visible text: recall cannot
    # find four times as much, so its pass is not run at all.
    calls = _count_passes(monkeypatch)
    result = generic_extract(Selector(text=ORDINARY_HTML), URL)
    assert calls == ["precision"] and result.body == STORY and result.mode == "precision"


def test_recall_result_must_look_like_an_article() -> None:
    assert looks_like_article(STORY)
    assert looks_like_article(PARAGRAPHS)
    # Menu-like lines: many, but short.
    assert not looks_like_article(["Home", "News", "Sport", "Weather", "Contact us"] * 20)
    # One long line is not paragraphs.
    assert not looks_like_article([" ".join(STORY)])
    assert not looks_like_article([])
