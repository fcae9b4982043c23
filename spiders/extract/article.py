"""Building the raw article item from one page (see docs/architecture.md, "Raw items").

Per field: the profile's selectors in order, then embedded metadata (JSON-LD,
OpenGraph, <meta>), then trafilatura for title, body and date. Values stay raw
(counter text, credit text, attribution sentence): the clean pipeline parses them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from parsel import Selector
from w3lib.html import remove_tags

from spiders.extract.generic import generic_extract
from spiders.extract.metadata import embedded_fields
from spiders.extract.select import absolute, all_values, first_value, paragraphs
from spiders.profile import ARTICLE_FIELDS, SiteProfile

_LIST_FIELDS = ("authors", "tags")
_URL_FIELDS = ("image_url", "source_url", "canonical_url")
# Every selectable field but the body (read after furniture goes) and the lists.
_SCALAR_FIELDS = tuple(name for name in ARTICLE_FIELDS if name != "body" and name not in _LIST_FIELDS)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def http_date_to_iso(value: str | bytes | None) -> str | None:
    """An HTTP ``Date`` header as UTC ISO 8601, or None when absent or unreadable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _strip_furniture(root: Selector, profile: SiteProfile) -> None:
    for css in profile.furniture.strip_selectors:
        for node in root.css(css):
            node.drop()


def extract_article(
    html: str | Selector,
    url: str,
    profile: SiteProfile,
    *,
    request_url: str | None = None,
    server_date: str | None = None,
    fetched_at: str | None = None,
) -> dict[str, Any]:
    """The raw article item for a page at ``url`` (the final URL after redirects)."""
    root = html if isinstance(html, Selector) else Selector(text=html, base_url=url)
    fields = profile.articles.fields
    item: dict[str, Any] = {}

    # Everything but the body is read before furniture goes: some furniture
    # (a syndication note) is itself a field.
    for name in _SCALAR_FIELDS:
        item[name] = first_value(root, fields.get(name, []))
    for name in _LIST_FIELDS:
        item[name] = all_values(root, fields.get(name, []))

    meta = embedded_fields(root)
    for name, value in meta.items():
        if name != "body" and not item.get(name):
            item[name] = value

    _strip_furniture(root, profile)
    body = paragraphs(root, fields.get("body", []))
    extraction = "selectors"
    if not body or not item.get("title") or not item.get("published_at"):
        # The parsed page: generic extraction measures its visible text without parsing again.
        generic = generic_extract(root, url)
        if not body:
            body = generic.body
            extraction = "trafilatura"
        item["title"] = item.get("title") or generic.title
        item["published_at"] = item.get("published_at") or generic.date
    # JSON-LD articleBody often carries markup, teasers or related links, and
    # on the extraction dev set trafilatura's text scores better; it wins only
    # where the page text gave little of what the metadata holds.
    if meta.get("body") and extraction != "selectors":
        ld_body = [p.strip() for p in remove_tags(str(meta["body"])).split("\n") if p.strip()]
        if sum(map(len, body)) < sum(map(len, ld_body)) / 4:
            body = ld_body
            extraction = "jsonld"
    if not item.get("title"):
        item["title"] = " ".join((root.xpath("//title/text()").get() or "").split()) or None

    for name in _URL_FIELDS:
        item[name] = absolute(item.get(name), url)
    item["language"] = item.get("language") or profile.language

    return {
        "type": "article",
        "site": profile.name,
        "url": url,
        "canonical_url": item["canonical_url"],
        "title": item["title"],
        "lead": item["lead"],
        "body": "\n\n".join(body),
        "authors": item["authors"],
        "published_at": item["published_at"],
        "published_raw": item["published_raw"],
        "modified_at": item["modified_at"],
        "section": item["section"],
        "tags": item["tags"],
        "image_url": item["image_url"],
        "image_credit": item["image_credit"],
        "source_name": item["source_name"],
        "source_url": item["source_url"],
        "views": item["views"],
        "comment_count": item["comment_count"],
        "language": item["language"],
        "fetched_at": fetched_at or utc_now(),
        "_request_url": request_url or url,
        "_server_date": server_date,
        "_extraction": extraction,
    }
