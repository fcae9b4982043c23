"""Embedded metadata: JSON-LD, OpenGraph and <meta> tags, as field fallbacks."""

from __future__ import annotations

import json
import logging
from typing import Any

from parsel import Selector

log = logging.getLogger(__name__)

_ARTICLE_TYPES = {
    "Article",
    "NewsArticle",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "BlogPosting",
    "Report",
    "WebPage",
}


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [obj for item in node for obj in _walk(item)]
    if isinstance(node, dict):
        found = [node]
        if "@graph" in node:
            found.extend(_walk(node["@graph"]))
        return found
    return []


def _types(obj: dict[str, Any]) -> set[str]:
    value = obj.get("@type", [])
    return set(value) if isinstance(value, list) else {str(value)}


def jsonld_article(root: Selector) -> dict[str, Any]:
    """The most article-like JSON-LD object on the page, or {}."""
    best: dict[str, Any] = {}
    for raw in root.xpath('//script[@type="application/ld+json"]/text()').getall():
        try:
            data = json.loads(raw)
        except ValueError:
            # Sites ship broken JSON-LD often enough; other fallbacks still apply.
            log.debug("unparseable JSON-LD block skipped")
            continue
        for obj in _walk(data):
            types = _types(obj)
            if types & _ARTICLE_TYPES and "headline" in obj:
                if "WebPage" not in types:
                    return obj
                best = best or obj
    return best


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [n for v in value for n in _names(v)]
    if isinstance(value, dict):
        name = value.get("name")
        return [str(name).strip()] if name else []
    return [str(value).strip()] if str(value).strip() else []


def _url(value: Any) -> str | None:
    if isinstance(value, list):
        return _url(value[0]) if value else None
    if isinstance(value, dict):
        return _url(value.get("url") or value.get("contentUrl"))
    return str(value).strip() if value else None


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _meta(root: Selector, *names: str) -> list[str]:
    values: list[str] = []
    for name in names:
        values.extend(
            v.strip()
            for v in root.xpath(f'//meta[@property="{name}" or @name="{name}" or @itemprop="{name}"]/@content').getall()
            if v.strip()
        )
    return values


def _first(*candidates: Any) -> Any:
    for candidate in candidates:
        if candidate:
            return candidate[0] if isinstance(candidate, list) else candidate
    return None


def embedded_fields(root: Selector) -> dict[str, Any]:
    """Field values from JSON-LD first, then OpenGraph/meta tags; missing ones are absent."""
    ld = jsonld_article(root)
    keywords = ld.get("keywords")
    if isinstance(keywords, str):
        keywords = [k.strip() for k in keywords.split(",")]
    fields: dict[str, Any] = {
        "title": _first(_text(ld.get("headline")), _meta(root, "og:title", "twitter:title")),
        "lead": _first(_text(ld.get("description")), _meta(root, "description", "og:description")),
        "body": _text(ld.get("articleBody")) and str(ld["articleBody"]).strip(),
        "authors": _names(ld.get("author")) or _meta(root, "author", "article:author"),
        "published_at": _first(
            _text(ld.get("datePublished")),
            _meta(root, "article:published_time", "datePublished", "pubdate"),
            root.xpath("//time/@datetime").getall(),
        ),
        "modified_at": _first(_text(ld.get("dateModified")), _meta(root, "article:modified_time", "dateModified")),
        "section": _first(_text(ld.get("articleSection")), _meta(root, "article:section")),
        "tags": [str(k).strip() for k in keywords if str(k).strip()] if isinstance(keywords, list) else _meta(root, "article:tag"),
        "image_url": _first(_url(ld.get("image")), _meta(root, "og:image")),
        "canonical_url": _first(root.xpath('//link[@rel="canonical"]/@href').getall(), _meta(root, "og:url")),
        "language": _first(root.xpath("/html/@lang").getall(), _text(ld.get("inLanguage")), _meta(root, "og:locale")),
    }
    return {k: v for k, v in fields.items() if v}
