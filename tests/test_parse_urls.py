"""URL canonicalisation and the choice of canonical URL."""

from __future__ import annotations

import pytest

from pipelines.parse.urls import absolute_url, canonical_form, choose_canonical, same_site

BASE = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"{BASE}/news/5-a.html?utm_source=rss&utm_medium=feed", f"{BASE}/news/5-a.html"),
        (f"{BASE}/news/5-a.html#comments", f"{BASE}/news/5-a.html"),
        (f"{BASE}/news/5-a.html?fbclid=x&gclid=y&yclid=z", f"{BASE}/news/5-a.html"),
        (f"{BASE}/?page=2&utm_campaign=c", f"{BASE}/?page=2"),
        (f"{BASE}/s/?b=2&a=1&UTM_Source=x", f"{BASE}/s/?a=1&b=2"),
        ("HTTP://Example.COM/a%7eb?q=1", "http://example.com/a~b?q=1"),
        ("  http://example.com/x  ", "http://example.com/x"),
    ],
)
def test_canonical_form(raw: str, expected: str) -> None:
    assert canonical_form(raw) == expected


def test_relative_urls_join_the_base() -> None:
    assert canonical_form("/threads/7", base=f"{BASE}/discussions/?page=2") == f"{BASE}/threads/7"
    assert absolute_url("/img/1.jpg", f"{BASE}/news/1-a.html") == f"{BASE}/img/1.jpg"
    assert absolute_url("  ", BASE) is None


def test_rel_canonical_wins_when_same_site() -> None:
    print_url = f"{BASE}/print/5.html?utm_source=x"
    assert choose_canonical(print_url, f"{BASE}/news/5-a.html") == f"{BASE}/news/5-a.html"
    assert choose_canonical(print_url, "/news/5-a.html") == f"{BASE}/news/5-a.html"


def test_foreign_or_missing_canonical_falls_back_to_the_url() -> None:
    url = f"{BASE}/news/5-a.html?utm_source=x"
    assert choose_canonical(url, "http://other.example/news/5") == f"{BASE}/news/5-a.html"
    assert choose_canonical(url, None) == f"{BASE}/news/5-a.html"
    assert choose_canonical(url, "javascript:void(0)") == f"{BASE}/news/5-a.html"


def test_same_site_ignores_www() -> None:
    assert same_site("https://www.example.com/a", "https://example.com/b")
    assert not same_site("https://example.com/a", "https://example.org/a")
