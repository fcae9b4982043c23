"""Text normalisation, furniture removal and content hashing."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from w3lib.html import replace_entities

# Characters that carry no text: zero-width spaces/joiners, BOM, soft hyphen.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"[^\S\n]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")

# Generic furniture seen on news aggregators: removed wherever it appears in a
# line of the lead or body. Each pattern removes the furniture only, so a note
# glued to the first paragraph ("...editorial board.At the beginning") keeps
# the paragraph text.
GENERIC_FURNITURE: tuple[str, ...] = (
    # Syndication notes (the publication is read from them first).
    (
        r"The original article was published by (?:the )?publication.*?"
        r"(?:point of view of the editorial board\.?|$)"
    ),
    r"Оригинал публикации\s*:.*$",
    (
        r"(?:Статья|Материал|Оригинальная статья)\s+опубликована?\s+(?:в\s+)?изданием\s*[«\"“].*?"
        r"(?:редакции\.?|$)"
    ),
    # Image credits.
    r"^\s*(?:Image source|Photo|Источник изображения|Источник фото|Фото)\s*:\s*(?:©|\(c\)).*$",
    # Comment prompts and newsletter boxes.
    r"Do you want to leave a comment\??.*$",
    r"Хотите оставить комментарий\??.*$",
    r"ПОДПИСКА НА НОВОСТИ.*$",
    r"Ежедневная рассылка новостей.*$",
    r"^\s*Subscribe to (?:our|the) newsletter.*$",
    # Rights boilerplate under syndicated articles.
    r"^\s*The rights to this material belong to.*$",
    r"^\s*The material is placed by the copyright holder in the public domain\.?\s*$",
    # Short inline ad labels between paragraphs.
    r"^\s*(?:Реклама|Advertisement)\b.{0,120}$",
)


def normalise_text(value: object) -> str:
    """NFC, decode stray entities, drop invisible characters, collapse whitespace."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", replace_entities(str(value)))
    text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """Compile furniture regexes case-insensitively, one line at a time."""
    return [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns]


def normalise_paragraphs(value: object, furniture: Sequence[re.Pattern[str]] = ()) -> str:
    """Clean a multi-paragraph text: paragraphs separated by exactly one blank line."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", replace_entities(str(value)))
    text = _INVISIBLE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    paragraphs: list[str] = []
    for block in _PARAGRAPH_BREAK.split(text):
        lines = []
        for line in block.split("\n"):
            for pattern in furniture:
                line = pattern.sub("", line)
            line = line.strip()
            if line:
                lines.append(line)
        if lines:
            paragraphs.append(" ".join(lines))
    return "\n\n".join(paragraphs)


def clean_list(values: object) -> list[str]:
    """Normalise a list of short strings, dropping empties and repeats (order kept)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    seen: dict[str, None] = {}
    for value in values if isinstance(values, Iterable) else [values]:
        text = normalise_text(value)
        if text and text not in seen:
            seen[text] = None
    return list(seen)


def content_hash(title: str, lead: str, body: str) -> str:
    """sha256 of the normalised title, lead and body (counters excluded)."""
    payload = f"{title}\n{lead}\n{body}".encode()
    return hashlib.sha256(payload).hexdigest()


def guess_language(text: str) -> str | None:
    """'ru' when Cyrillic letters dominate, 'en' for Latin, None without letters."""
    cyrillic = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    if cyrillic == latin == 0:
        return None
    return "ru" if cyrillic > latin else "en"
