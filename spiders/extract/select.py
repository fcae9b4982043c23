"""Applying profile selectors to a parsel tree: text, attributes, links, paragraphs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import urljoin

from parsel import Selector, SelectorList

from spiders.profile import SelectorSpec

_BLOCK_TAGS = {"p", "li", "blockquote", "h2", "h3", "h4", "h5", "h6", "pre"}


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace (including NBSP) to one space."""
    return " ".join(text.split())


def node_text(node: Selector) -> str:
    """The whitespace-normalised text of an element, or the value of a text/attribute node."""
    if isinstance(node.root, str):
        return normalize_space(node.root)
    return normalize_space("".join(node.xpath(".//text()").getall()))


def select(root: Selector, spec: SelectorSpec) -> SelectorList[Selector]:
    return root.css(spec.css) if spec.css else root.xpath(spec.xpath or "")


def _values(root: Selector, spec: SelectorSpec) -> Iterator[str]:
    for node in select(root, spec):
        if spec.attr:
            value = node.attrib.get(spec.attr) if not isinstance(node.root, str) else None
            if value is not None:
                yield value.strip()
        else:
            yield node_text(node)


def first_value(root: Selector, specs: Iterable[SelectorSpec]) -> str | None:
    """The first non-empty value the ordered fallback selectors find."""
    for spec in specs:
        for value in _values(root, spec):
            if value:
                return value
    return None


def all_values(root: Selector, specs: Iterable[SelectorSpec]) -> list[str]:
    """Every non-empty value of the first selector that finds any."""
    for spec in specs:
        values = [v for v in _values(root, spec) if v]
        if values:
            return values
    return []


def paragraphs(root: Selector, specs: Iterable[SelectorSpec]) -> list[str]:
    """Paragraph texts under the first selector that finds any: block children, else the element text."""
    for spec in specs:
        found: list[str] = []
        for node in select(root, spec):
            if isinstance(node.root, str):
                found.append(normalize_space(node.root))
                continue
            blocks = node.xpath(
                ".//*[self::p or self::li or self::blockquote or self::h2 or self::h3"
                " or self::h4 or self::h5 or self::h6 or self::pre]"
                "[not(ancestor::p or ancestor::li or ancestor::blockquote)]"
            )
            if blocks:
                found.extend(node_text(b) for b in blocks)
            else:
                found.append(node_text(node))
        found = [p for p in found if p]
        if found:
            return found
    return []


def links(root: Selector, specs: Iterable[SelectorSpec], base_url: str) -> list[str]:
    """Absolute URLs from link selectors (``attr``, else the element's href), in page order."""
    urls: list[str] = []
    for spec in specs:
        for node in select(root, spec):
            if isinstance(node.root, str):
                href: str | None = node.root
            else:
                href = node.attrib.get(spec.attr or "href")
            if href and not href.strip().lower().startswith(("javascript:", "mailto:", "#")):
                urls.append(urljoin(base_url, href.strip()))
    return urls


def absolute(url: str | None, base_url: str) -> str | None:
    """``url`` joined to ``base_url``; None when missing or malformed (e.g. ``http://[bad``)."""
    if not url:
        return None
    try:
        return urljoin(base_url, url)
    except ValueError:  # a broken link loses that field, never the whole page
        return None
