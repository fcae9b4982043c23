"""Timed edits the way news sites make them: mostly within hours of publication, some days later.

The sample site's default model edits one article per tick (every 6 h), which
is what its change-tracking tests count. With ``edits="realistic"`` it edits
instead on this schedule, drawn per article from its own Random (so nothing is
replayed and 100,000 articles stay instant): about a third of the articles
are edited, some more than once; each edit comes a delay after the previous
one (or after publication), drawn from

    70 %  5 min .. 3 h      18 %  3 h .. 1 day
     8 %  1 .. 7 days        4 %  7 .. 30 days

and is one of: a headline rewrite, a paragraph added, a paragraph removed, a
typo fixed, a byline changed. :func:`edit_schedule` is the ground truth (time
and kind of every edit); :func:`apply_edit` makes the edited article.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from samplesite import banks, text

if TYPE_CHECKING:
    from samplesite.model import Article

EDIT_KINDS = ("headline", "paragraph_added", "paragraph_removed", "typo", "byline")
_KIND_WEIGHTS = (25, 25, 10, 25, 15)
EDITED_SHARE = 0.35
# After each edit, the chance of one more (at most MAX_EDITS per article).
ANOTHER_EDIT = 0.3
MAX_EDITS = 3
_DELAYS = (  # (weight, shortest, longest)
    (70, timedelta(minutes=5), timedelta(hours=3)),
    (18, timedelta(hours=3), timedelta(days=1)),
    (8, timedelta(days=1), timedelta(days=7)),
    (4, timedelta(days=7), timedelta(days=30)),
)


@dataclass(frozen=True)
class TimedEdit:
    """One edit of the ground truth: which article, when (UTC), what kind, and the version it makes (1, 2, ...)."""

    article_id: int
    at: datetime
    kind: str
    version: int


def _delay(rng: random.Random) -> timedelta:
    _, shortest, longest = rng.choices(_DELAYS, weights=[d[0] for d in _DELAYS])[0]
    return shortest + (longest - shortest) * rng.random()


def edit_schedule(seed: int, article_id: int, published: datetime) -> tuple[TimedEdit, ...]:
    """Every edit this article will ever get, oldest first (empty for most articles)."""
    rng = text.rng_for(seed, "timed-edits", article_id)
    if rng.random() >= EDITED_SHARE:
        return ()
    edits: list[TimedEdit] = []
    at = published
    while True:
        at = (at + _delay(rng)).replace(microsecond=0)
        kind = rng.choices(EDIT_KINDS, weights=_KIND_WEIGHTS)[0]
        edits.append(TimedEdit(article_id, at, kind, len(edits) + 1))
        if len(edits) >= MAX_EDITS or rng.random() >= ANOTHER_EDIT:
            return tuple(edits)


def apply_edit(article: Article, edit: TimedEdit, seed: int) -> Article:
    """The article after ``edit``; its ``edit_ops`` say what changed, as the tick edits do."""
    rng = text.rng_for(seed, "timed-edit", edit.article_id, edit.version)
    paragraphs = list(article.paragraphs)
    title, authors = article.title, article.authors
    ops: tuple[tuple[str | int, ...], ...]
    kind = edit.kind
    if kind == "paragraph_removed" and len(paragraphs) < 3:
        kind = "paragraph_added"  # too short to lose a paragraph and stay an article
    if kind == "headline":
        title = text.title(rng, article.language)
        if title == article.title:
            title += " (updated)" if article.language == "en" else " (обновлено)"
        ops = (("title",),)
    elif kind == "paragraph_added":
        where = rng.randint(1, len(paragraphs))
        paragraphs.insert(where, text.paragraph(rng, article.language))
        ops = (("insert", where),)
    elif kind == "paragraph_removed":
        where = rng.randrange(1, len(paragraphs))
        del paragraphs[where]
        ops = (("delete", where),)
    elif kind == "typo":
        where = rng.randrange(len(paragraphs))
        paragraphs[where] = _fix_a_typo(paragraphs[where], rng)
        ops = (("replace", where, where),)
    else:  # byline
        pool = banks.RU_AUTHORS if article.language == "ru" else banks.EN_AUTHORS
        authors = tuple(rng.sample([name for name in pool if name not in article.authors], 1))
        ops = (("authors",),)
    return replace(article, title=title, authors=authors, paragraphs=tuple(paragraphs), modified=edit.at,
                   version=edit.version, edit_ops=ops)


def _fix_a_typo(paragraph: str, rng: random.Random) -> str:
    """One word of the paragraph spelled differently (two letters swapped, or one doubled)."""
    words = paragraph.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    if not candidates:
        return paragraph + " " + words[-1]
    i = rng.choice(candidates)
    word = words[i]
    j = rng.randrange(1, len(word) - 2)
    swapped = word[:j] + word[j + 1] + word[j] + word[j + 2:]
    words[i] = swapped if swapped != word else word[:j] + word[j] + word[j:]
    return " ".join(words)
