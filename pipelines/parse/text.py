"""Text normalisation, furniture removal and content hashing."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from w3lib.html import replace_entities

from newsvault.regex import Pattern, compile_safe

# Characters that carry no text: zero-width spaces/joiners, BOM, soft hyphen.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# Whitespace other than the space and the newline (what str.isspace() and re's \s
# know), then runs of spaces: together the same as collapsing every run of
# [^\S\n] to one space, at a fifth of the cost on article bodies, since most
# texts hold neither and a positive class or a literal is searched fast.
# (tests/test_text_normalise.py checks the class against str.isspace.)
_OTHER_SPACES = re.compile("[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_SPACE_RUNS = re.compile("  +")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")

# Generic furniture seen on news aggregators: removed wherever it appears in a
# line of the lead or body. Each pattern removes the furniture only, so a note
# glued to the first paragraph ("...editorial board.At the beginning") keeps
# the paragraph text. Beside each pattern, literals one of which every match
# contains (case-folded, see fold_for_search): a text with none of them skips
# the pattern, which spares a regex call per line per pattern for the great
# majority of articles, where no furniture is left.
GENERIC_FURNITURE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Syndication notes (the publication is read from them first).
    (
        (
            r"The original article was published by (?:the )?publication.*?"
            r"(?:point of view of the editorial board\.?|$)"
        ),
        ("the original article was published by",),
    ),
    (r"Оригинал публикации\s*:.*$", ("оригинал публикации",)),
    (
        (
            r"(?:Статья|Материал|Оригинальная статья)\s+опубликована?\s+(?:в\s+)?изданием\s*[«\"“].*?"
            r"(?:редакции\.?|$)"
        ),
        ("изданием",),
    ),
    # Image credits.
    (
        r"^\s*(?:Image source|Photo|Источник изображения|Источник фото|Фото)\s*:\s*(?:©|\(c\)).*$",
        ("©", "(c)"),
    ),
    # Comment prompts and newsletter boxes.
    (r"Do you want to leave a comment\??.*$", ("do you want to leave a comment",)),
    (r"Хотите оставить комментарий\??.*$", ("хотите оставить комментарий",)),
    (r"ПОДПИСКА НА НОВОСТИ.*$", ("подписка на новости",)),
    (r"Ежедневная рассылка новостей.*$", ("ежедневная рассылка новостей",)),
    (r"^\s*Subscribe to (?:our|the) newsletter.*$", ("newsletter",)),
    # Rights boilerplate under syndicated articles.
    (r"^\s*The rights to this material belong to.*$", ("the rights to this material belong to",)),
    (
        r"^\s*The material is placed by the copyright holder in the public domain\.?\s*$",
        ("the material is placed by the copyright holder in the public domain",),
    ),
    # Short inline ad labels between paragraphs. (RE2's \b knows ASCII words only,
    # so the end of the word is spelled out: end of line, or a non-letter.)
    (r"^\s*(?:Реклама|Advertisement)(?:[^\pL\pN_].{0,119})?$", ("реклама", "advertisement")),
)
GENERIC_FURNITURE: tuple[str, ...] = tuple(pattern for pattern, _ in GENERIC_FURNITURE_RULES)
# Pattern source -> required literals (a profile's patterns get theirs from furniture_hints).
FURNITURE_HINTS: dict[str, tuple[str, ...]] = dict(GENERIC_FURNITURE_RULES)
# A leading run of characters that are not regex syntax, after an optional "^".
_LITERAL_START = re.compile(r"\^?([^\\.^$*+?{}\[\]|()]+)")
_QUANTIFIERS = ("?", "*", "{")
_MIN_HINT = 3


def fold_for_search(text: str) -> str:
    """``text`` case-folded so that a literal re.IGNORECASE matches is a substring of it."""
    # re's IGNORECASE matches the Turkish dotted capital I and dotless i with
    # "i", where str.casefold() does not: map both first so no match is missed.
    return text.replace("\u0130", "i").replace("\u0131", "i").casefold()


@functools.cache
def furniture_hints(source: str) -> tuple[str, ...] | None:
    """Literals one of which every match of ``source`` contains (case-folded), or None if unknown.

    The generic patterns list theirs; for any other pattern, the plain text it
    starts with (``^Advertisement\\b.*$`` -> "advertisement"), when it has no
    alternation that could make that text optional.
    """
    if source in FURNITURE_HINTS:
        return FURNITURE_HINTS[source]
    match = _LITERAL_START.match(source)
    if match is None or "|" in source:
        return None
    literal = match.group(1)
    if source[match.end() : match.end() + 1] in _QUANTIFIERS:
        literal = literal[:-1]  # "abc?" makes its last character optional
    literal = fold_for_search(literal)
    return (literal,) if len(literal) >= _MIN_HINT else None


def normalise_text(value: object) -> str:
    """NFC, decode stray entities, drop invisible characters, collapse whitespace."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", replace_entities(str(value)))
    text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def compile_patterns(patterns: Iterable[str]) -> list[Pattern]:
    """Compile furniture regexes case-insensitively, one line at a time, on RE2 (newsvault/regex.py)."""
    return [compile_safe(p, ignore_case=True, multiline=True) for p in patterns]


def normalise_paragraphs(value: object, furniture: Sequence[Pattern] = ()) -> str:
    """Clean a multi-paragraph text: paragraphs separated by exactly one blank line."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", replace_entities(str(value)))
    text = _INVISIBLE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _collapse_spaces(text)
    blocks = [block.split("\n") for block in _PARAGRAPH_BREAK.split(text)]
    if furniture:
        blocks = _strip_furniture(blocks, furniture)
    paragraphs: list[str] = []
    for block in blocks:
        lines = [stripped for line in block if (stripped := line.strip())]
        if lines:
            paragraphs.append(" ".join(lines))
    return "\n\n".join(paragraphs)


def _collapse_spaces(text: str) -> str:
    """Every run of whitespace but newlines as one space."""
    if _OTHER_SPACES.search(text):
        text = _OTHER_SPACES.sub(" ", text)
    return _SPACE_RUNS.sub(" ", text) if "  " in text else text


def _strip_furniture(blocks: list[list[str]], furniture: Sequence[Pattern]) -> list[list[str]]:
    """Apply each pattern to every line, in order, as if line by line.

    A pattern with hints runs only when the text (as earlier patterns left
    it: a removal may join the pieces of a literal) contains one of them.
    """
    folded: str | None = None
    for pattern in furniture:
        hints = furniture_hints(pattern.pattern)
        if hints is not None:
            if folded is None:
                folded = fold_for_search("\n".join("\n".join(block) for block in blocks))
            if not any(hint in folded for hint in hints):
                continue
        changed = [[pattern.sub("", line) for line in block] for block in blocks]
        if changed != blocks:
            blocks, folded = changed, None
    return blocks


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
