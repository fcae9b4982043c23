"""Counter parsing: grouped digits, decimal multipliers, Russian suffixes."""

from __future__ import annotations

import pytest

from pipelines.parse.counters import parse_counter


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1 020", 1020),
        ("1\u00a0020", 1020),
        ("1\u202f020", 1020),
        ("1 234 567", 1234567),
        ("1,020", 1020),
        ("1,2K", 1200),
        ("1.2k", 1200),
        ("1.5M", 1500000),
        ("12 тыс.", 12000),
        ("2,5 млн", 2500000),
        ("3К", 3000),
        ("0", 0),
        ("4919", 4919),
        ("views: 345", 345),
        (17, 17),
        (3.0, 3),
    ],
)
def test_counters(raw: object, expected: int) -> None:
    assert parse_counter(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "—", "no comments", -5, True])
def test_not_a_counter(raw: object) -> None:
    assert parse_counter(raw) is None
