"""Read image credits, source publications and reply titles out of raw page text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from newsvault.regex import Pattern, compile_safe
from pipelines.parse.text import fold_for_search

# "Image source: © X", "Фото: © X", "© X", "(c) X".
_CREDIT_PREFIX = re.compile(
    r"^\s*(?:(?:image source|image|photo|picture|credit|источник изображения|источник фото|"
    r"источник|фото|изображение)\s*:?\s*)?(?:©|\(c\)|copyright\b)?\s*",
    re.IGNORECASE,
)
_QUOTED = r"[«\"“„]\s*(?P<name>[^»\"”]+?)\s*[»\"”]"
_SOURCE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"published by (?:the )?publication\s*" + _QUOTED, re.IGNORECASE),
    re.compile(r"опубликован[аоы]?\s+(?:в\s+)?издани(?:ем|и)\s*" + _QUOTED, re.IGNORECASE),
    re.compile(
        r"Оригинал публикации\s*:\s*(?:" + _QUOTED + r"|(?P<bare>[^,.;\n]+))", re.IGNORECASE
    ),
    re.compile(
        r"(?:^|\b)(?:source|источник)\s*:\s*(?:" + _QUOTED + r"|(?P<bare2>[^,;\n]+))", re.IGNORECASE
    ),
)
# One literal per note pattern (the first three) that every match contains, case-folded.
_SOURCE_HINTS = ("published by ", "опубликован", "оригинал публикации")
# A raw value this short without attribution wording is taken as the name itself.
_MAX_BARE_NAME = 120
_ATTRIBUTION_WORDS = re.compile(r"published|publication|опубликован|издани|оригинал", re.IGNORECASE)

DEFAULT_REPLY_PATTERNS: tuple[str, ...] = (
    r'^Ответ на "(.*)"$',
    r"^Ответ на «(.*)»$",
    r"^Re: (.*)$",
)


def parse_image_credit(raw: str | None) -> str | None:
    """'Image source: © РИА Новости Павел Бедняков' -> 'РИА Новости Павел Бедняков'."""
    if not raw:
        return None
    credit = _CREDIT_PREFIX.sub("", raw, count=1).strip(" \t.,;:-–—")
    return credit or None


def parse_source_name(raw: str | None) -> str | None:
    """Return the publication named in a syndication note, or a bare name as is."""
    if not raw:
        return None
    for pattern in _SOURCE_PATTERNS:
        match = pattern.search(raw)
        if match:
            name = next(v for v in match.groupdict().values() if v)
            return name.strip(" \t.,;:") or None
    text = raw.strip()
    if len(text) <= _MAX_BARE_NAME and not _ATTRIBUTION_WORDS.search(text):
        return text.strip(" \t.,;:") or None
    return None


def find_source_name(text: str) -> str | None:
    """Publication named anywhere in ``text`` (used when the spider found no note)."""
    # Most bodies name no source: a literal that every match holds skips the
    # regex search (case-folded the way re.IGNORECASE matches, see fold_for_search).
    folded = fold_for_search(text)
    for pattern, hint in zip(_SOURCE_PATTERNS[:3], _SOURCE_HINTS, strict=True):
        if hint not in folded:
            continue
        match = pattern.search(text)
        if match:
            name = next(v for v in match.groupdict().values() if v)
            return name.strip(" \t.,;:") or None
    return None


def compile_reply_patterns(patterns: str | Iterable[str] | None) -> list[Pattern]:
    """One regex or several (a profile's: RE2, see newsvault/regex.py); the first group is the title replied to."""
    if patterns is None:
        patterns = DEFAULT_REPLY_PATTERNS
    elif isinstance(patterns, str):
        patterns = [patterns]
    return [compile_safe(p) for p in patterns]


def parse_reply(title: str, patterns: Sequence[Pattern]) -> tuple[bool, str | None]:
    """(is_reply, reply_to_title) for a discussion title."""
    for pattern in patterns:
        match = pattern.match(title)
        if match:
            inner = match.group(1) if match.groups() else None
            return True, (inner.strip() if inner else None) or None
    return False, None
