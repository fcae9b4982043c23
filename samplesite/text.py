"""Deterministic text generation (titles, sentences, paragraphs, slugs) from the banks."""

from __future__ import annotations

import random
import re

from samplesite import banks

_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def rng_for(seed: int, *parts: int | str) -> random.Random:
    """A Random seeded from the site seed and a key; str seeds hash with sha512, so stable."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def sentence(rng: random.Random, language: str) -> str:
    if language == "ru":
        if rng.random() < 0.25:
            return rng.choice(banks.RU_STANDALONE)
        return (
            f"{rng.choice(banks.RU_SUBJECTS)} {rng.choice(banks.RU_VERBS)}"
            f"{rng.choice(banks.RU_TAILS)}, что {rng.choice(banks.RU_CLAUSES)}."
        )
    if rng.random() < 0.25:
        return rng.choice(banks.EN_STANDALONE)
    return (
        f"{rng.choice(banks.EN_SUBJECTS)} {rng.choice(banks.EN_VERBS)}"
        f"{rng.choice(banks.EN_TAILS)} that {rng.choice(banks.EN_CLAUSES)}."
    )


def paragraph(rng: random.Random, language: str) -> str:
    return " ".join(sentence(rng, language) for _ in range(rng.randint(3, 8)))


def title(rng: random.Random, language: str) -> str:
    if language == "ru":
        topics, claims, full = banks.RU_TITLE_TOPICS, banks.RU_TITLE_CLAIMS, banks.RU_TITLE_FULL
    else:
        topics, claims, full = banks.EN_TITLE_TOPICS, banks.EN_TITLE_CLAIMS, banks.EN_TITLE_FULL
    if rng.random() < 0.3:
        return rng.choice(full)
    return f"{rng.choice(topics)}: {rng.choice(claims)}"


def slugify(text: str, max_words: int = 8) -> str:
    latin = "".join(banks.TRANSLIT.get(ch, ch) for ch in text.lower())
    words = [w for w in _SLUG_JUNK.split(latin) if w]
    return "-".join(words[:max_words]) or "article"


def group_thousands(value: int) -> str:
    """1020 -> '1 020', the site's visible counter format."""
    return f"{value:,}".replace(",", " ")
