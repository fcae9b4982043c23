"""Text normalisation, furniture removal, hashing."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from pipelines.parse.text import (
    GENERIC_FURNITURE,
    GENERIC_FURNITURE_RULES,
    clean_list,
    compile_patterns,
    content_hash,
    fold_for_search,
    furniture_hints,
    guess_language,
    normalise_paragraphs,
    normalise_text,
)

FURNITURE = compile_patterns(GENERIC_FURNITURE)


def test_normalise_text_nfc_spaces_entities() -> None:
    decomposed = unicodedata.normalize("NFD", "Ёлка")
    assert normalise_text(f"  {decomposed}\u00a0and\u200b  more &amp; \n x ") == "Ёлка and more & x"


def test_paragraphs_keep_exactly_one_blank_line() -> None:
    raw = "First  line\nsame para\n\n\n\n  Second\t para \r\n\r\nThird"
    assert normalise_paragraphs(raw) == "First line same para\n\nSecond para\n\nThird"


def test_whitespace_class_is_every_space_but_newline_and_space() -> None:
    from pipelines.parse.text import _OTHER_SPACES

    expected = {ch for ch in map(chr, range(sys.maxunicode + 1)) if ch.isspace()} - {" ", "\n"}
    found = {ch for ch in map(chr, range(sys.maxunicode + 1)) if _OTHER_SPACES.fullmatch(ch)}
    assert found == expected


@pytest.mark.parametrize("seed", range(4))
def test_collapsing_spaces_equals_the_plain_regex(seed: int) -> None:
    """Every run of whitespace but newlines becomes one space, as re.sub(r"[^\\S\\n]+", " ") does."""
    import random

    from pipelines.parse.text import _collapse_spaces

    plain = re.compile(r"[^\S\n]+")
    alphabet = ["a", "é", " ", "  ", "\n", "\t", "\r", "\u00a0", "\u2028", "\x0b", "\x1c", "\u3000", "\u200b"]
    rnd = random.Random(seed)
    for _ in range(5000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))
        assert _collapse_spaces(text) == plain.sub(" ", text), repr(text)


def test_generic_furniture_removed() -> None:
    raw = (
        'The original article was published by the publication "Dune-e Ektesad", and the point of '
        "view given by the author may not coincide (in whole or in part) with the point of view of the "
        "editorial board.At the beginning of last week, Putin visited.\n\n"
        "Image source: © РИА Новости\n\n"
        "Real paragraph.\n\n"
        "Реклама Купите слона\n\n"
        "Do you want to leave a comment? Register and/or Log in\n\n"
        "ПОДПИСКА НА НОВОСТИ\nЕжедневная рассылка новостей на электронный почтовый ящик\n\n"
        "The rights to this material belong to X"
    )
    assert (
        normalise_paragraphs(raw, FURNITURE)
        == "At the beginning of last week, Putin visited.\n\nReal paragraph."
    )


def test_profile_pattern_applies_per_line() -> None:
    patterns = compile_patterns([r"^InoSMI materials contain.*$"])
    assert normalise_paragraphs("Keep.\n\nInoSMI materials contain ratings", patterns) == "Keep."


# One line per generic rule that its pattern matches, in odd casings.
FURNITURE_LINES = [
    'THE ORIGINAL ARTICLE WAS PUBLISHED BY publication "X" ... point of view of the editorial board.',
    "Оригинал публикации: https://example.org/1",
    "Статья опубликована изданием «Коммерсант». Мнение редакции.",
    "PHOTO: (C) Someone",
    "do You Want To Leave A Comment? Log in",
    "ХОТИТЕ ОСТАВИТЬ КОММЕНТАРИЙ? Войдите",
    "подписка на новости",
    "ЕЖЕДНЕВНАЯ рассылка новостей на почту",
    "SUBSCRIBE TO THE NEWSLETTER now",
    "The Rights To This Material Belong To X",
    "The material is placed by the copyright holder in the public domain.",
    "ADVERTISEMENT below",
]
PROFILE_PATTERNS = [r"^InoSMI materials contain.*$", r"^Реклама(?:\PL.*)?$", r"Sponsored by .*$"]


def brute_force_paragraphs(value: str, patterns: list[re.Pattern[str]]) -> str:
    """Every pattern on every line, no shortcuts: what normalise_paragraphs must equal."""
    text = re.sub(r"[^\S\n]+", " ", value)
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = []
        for line in block.split("\n"):
            for pattern in patterns:
                line = pattern.sub("", line)
            if line.strip():
                lines.append(line.strip())
        if lines:
            paragraphs.append(" ".join(lines))
    return "\n\n".join(paragraphs)


def test_each_generic_rule_matches_its_sample_and_its_hint_is_there() -> None:
    assert len(FURNITURE_LINES) == len(GENERIC_FURNITURE_RULES)
    for line, (source, hints) in zip(FURNITURE_LINES, GENERIC_FURNITURE_RULES, strict=True):
        assert compile_patterns([source])[0].search(line), source
        assert any(hint in fold_for_search(line) for hint in hints), source


@pytest.mark.parametrize("line", FURNITURE_LINES + ["Реклама Купите", "INOSMI MATERIALS CONTAIN ratings", "sponsored by Y"])
def test_hints_never_skip_a_pattern_that_would_match(line: str) -> None:
    patterns = compile_patterns([*GENERIC_FURNITURE, *PROFILE_PATTERNS])
    for text in (line, f"Keep this.\n\n{line}\n\nAnd this.", f"Prefix {line}", f"Keep.\n{line}"):
        assert normalise_paragraphs(text, patterns) == brute_force_paragraphs(text, patterns)
    assert normalise_paragraphs(line, patterns) != line


def test_fold_for_search_keeps_every_ignorecase_match() -> None:
    """For each character of a hint, every character re.IGNORECASE equates with it folds the same."""
    hints = [hint for _, rule_hints in GENERIC_FURNITURE_RULES for hint in rule_hints]
    hints += [hint for source in PROFILE_PATTERNS for hint in furniture_hints(source) or ()]
    alphabet = set("".join(hints)) | set("abcdefghijklmnopqrstuvwxyzабвгдеёжзийклмнопрстуфхцчшщъыьэюя")
    cased = [chr(i) for i in range(sys.maxunicode + 1) if chr(i).lower() != chr(i) or chr(i).upper() != chr(i) or chr(i).casefold() != chr(i)]
    for char in alphabet:
        pattern = re.compile(re.escape(char), re.IGNORECASE)
        for other in cased:
            if pattern.fullmatch(other):
                assert fold_for_search(other) == fold_for_search(char), (char, other)


def test_hints_of_profile_patterns_are_their_literal_start_or_none() -> None:
    assert furniture_hints(r"^InoSMI materials contain.*$") == ("inosmi materials contain",)
    assert furniture_hints(r"^Реклама(?:\PL.*)?$") == ("реклама",)
    assert furniture_hints(r"Sponsored?") == ("sponsore",)  # the optional "d" is not required
    assert furniture_hints(r"Sponsored|Ad") is None  # alternation: nothing is required
    assert furniture_hints(r"(?i)sponsored") is None and furniture_hints(r"\s*x") is None


def test_clean_list_dedupes_and_drops_empty() -> None:
    assert clean_list([" A ", "A", "", None, "B"]) == ["A", "B"]
    assert clean_list("solo") == ["solo"]
    assert clean_list(None) == []


def test_content_hash_depends_on_each_part() -> None:
    base = content_hash("t", "l", "b")
    assert len(base) == 64
    assert base != content_hash("t2", "l", "b") != content_hash("t", "l", "b2")
    assert base == content_hash("t", "l", "b")


def test_guess_language() -> None:
    assert guess_language("Визит Путина в Минск") == "ru"
    assert guess_language("Putin's visit to Minsk") == "en"
    assert guess_language("123") is None
