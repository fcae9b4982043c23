"""Text normalisation, furniture removal, hashing."""

from __future__ import annotations

import unicodedata

from pipelines.parse.text import (
    GENERIC_FURNITURE,
    clean_list,
    compile_patterns,
    content_hash,
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
