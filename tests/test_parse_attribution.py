"""Image credits, source publications, replies."""

from __future__ import annotations

import pytest

from pipelines.parse.attribution import (
    compile_reply_patterns,
    find_source_name,
    parse_image_credit,
    parse_reply,
    parse_source_name,
)

NOTE = (
    'The original article was published by the publication "Dune-e Ektesad", and the point '
    "of view given by the author may not coincide (in whole or in part) with the point of view "
    "of the editorial board."
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Image source: © РИА Новости Павел Бедняков", "РИА Новости Павел Бедняков"),
        ("Image source: ©РИА Новости", "РИА Новости"),
        ("Фото: © ТАСС / Иван Иванов", "ТАСС / Иван Иванов"),
        ("© Reuters", "Reuters"),
        ("(c) AP Photo", "AP Photo"),
        ("Getty Images", "Getty Images"),
        ("Image source: ©", None),
        (None, None),
    ],
)
def test_image_credit(raw: str | None, expected: str | None) -> None:
    assert parse_image_credit(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (NOTE, "Dune-e Ektesad"),
        ("The original article was published by the publication «Al Mayadeen»", "Al Mayadeen"),
        ("Оригинал публикации: Hürriyet", "Hürriyet"),
        ("Статья опубликована изданием «Известия», мнение автора ...", "Известия"),
        ("Dune-e Ektesad", "Dune-e Ektesad"),
        ("The original article was published somewhere unnamed", None),
        (None, None),
    ],
)
def test_source_name(raw: str | None, expected: str | None) -> None:
    assert parse_source_name(raw) == expected


def test_source_found_inside_body_text() -> None:
    assert find_source_name(f"{NOTE}\n\nFirst paragraph.") == "Dune-e Ektesad"
    assert find_source_name("No note here.") is None


@pytest.mark.parametrize("seed", range(3))
def test_source_hints_never_skip_a_note(seed: int) -> None:
    """The literal prefilter finds what searching every pattern finds, in any casing."""
    import random

    from pipelines.parse.attribution import _SOURCE_PATTERNS

    def unfiltered(text: str) -> str | None:
        for pattern in _SOURCE_PATTERNS[:3]:
            match = pattern.search(text)
            if match:
                return next(v for v in match.groupdict().values() if v).strip(" \t.,;:") or None
        return None

    pieces = ["published by the publication", "PUBLISHED BY PUBLICATION", "Published By Publication",
              "PUBL\u0130SHED BY publication", "опубликована изданием", "ОПУБЛИКОВАН В ИЗДАНИИ",
              "Оригинал публикации:", "ОРИГИНАЛ ПУБЛИКАЦИИ :", " «Известия»", ' "Dune"', " Hürriyet", " text", "\n"]
    rnd = random.Random(seed)
    found = 0
    for _ in range(3000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 6)))
        expected = unfiltered(text)
        found += expected is not None
        assert find_source_name(text) == expected, repr(text)
    assert found > 500  # the notes were really exercised


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        (
            'Ответ на "«Снаряд прошил весь танк и вышел через корму»"',
            (True, "«Снаряд прошил весь танк и вышел через корму»"),
        ),
        ('Ответ на "ПВО: мысли вслух"', (True, "ПВО: мысли вслух")),
        ("Re: Lame Duck", (True, "Lame Duck")),
        ('О "западной" танковой школе.', (False, None)),
        ("Lame Duck: Will Biden agree", (False, None)),
    ],
)
def test_default_reply_patterns(title: str, expected: tuple[bool, str | None]) -> None:
    assert parse_reply(title, compile_reply_patterns(None)) == expected


def test_profile_reply_pattern_with_named_group() -> None:
    patterns = compile_reply_patterns('^Ответ на "(?P<title>.*)"$')
    assert parse_reply('Ответ на "X"', patterns) == (True, "X")
    assert parse_reply("Re: X", patterns) == (False, None)
