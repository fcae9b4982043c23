"""Date parsing: a table of raw strings (ru/en, absolute/relative, New Year, DST) -> UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.parse.dates import (
    FUTURE_TOLERANCE,
    infer_year,
    parse_human_date,
    parse_iso,
    parse_reference,
    to_utc_iso,
    zone,
)

MSK = "Europe/Moscow"
BER = "Europe/Berlin"
DEC31 = "2026-12-31T06:00:00Z"  # 09:00 in Moscow, 31 December
JAN1 = "2027-01-01T00:10:00Z"  # 03:10 in Moscow, 1 January
DST_ON = "2026-03-29T10:00:00Z"  # Berlin switched to CEST at 01:00Z that day
DST_GAP = "2026-03-29T02:30:00Z"  # 04:30 CEST, two hours after the switch

CASES = [
    # raw, reference, zone, expected UTC
    ("30.12.2026 15:30", DEC31, MSK, "2026-12-30T12:30:00Z"),
    ("31.12.2026 00:05", DEC31, MSK, "2026-12-30T21:05:00Z"),
    ("24.09 01:36", DEC31, MSK, "2026-09-23T22:36:00Z"),
    ("31.12 23:50", JAN1, MSK, "2026-12-31T20:50:00Z"),
    ("01.01 02:00", JAN1, MSK, "2026-12-31T23:00:00Z"),
    ("01.01 04:00", JAN1, MSK, "2027-01-01T01:00:00Z"),
    ("02.01 12:00", JAN1, MSK, "2026-01-02T09:00:00Z"),
    ("сегодня 12:30", DEC31, MSK, "2026-12-31T09:30:00Z"),
    ("вчера в 18:05", DEC31, MSK, "2026-12-30T15:05:00Z"),
    ("сегодня, 01:15", JAN1, MSK, "2026-12-31T22:15:00Z"),
    ("вчера 23:59", JAN1, MSK, "2026-12-31T20:59:00Z"),
    ("2 hours ago", DEC31, MSK, "2026-12-31T04:00:00Z"),
    ("5 минут назад", DEC31, MSK, "2026-12-31T05:55:00Z"),
    ("3 часа назад", JAN1, MSK, "2026-12-31T21:10:00Z"),
    ("30 декабря 2026, 15:30", DEC31, MSK, "2026-12-30T12:30:00Z"),
    ("30 декабря 12:30", DEC31, MSK, "2026-12-30T09:30:00Z"),
    ("31 декабря 23:50", JAN1, MSK, "2026-12-31T20:50:00Z"),
    ("1 января 2027 10:00", JAN1, MSK, "2027-01-01T07:00:00Z"),
    ("December 30, 2026 3:30 PM", DEC31, MSK, "2026-12-30T12:30:00Z"),
    ("Dec 31 11:00 PM", JAN1, MSK, "2026-12-31T20:00:00Z"),
    ("yesterday 18:05", DEC31, MSK, "2026-12-30T15:05:00Z"),
    ("today at 08:00", DEC31, MSK, "2026-12-31T05:00:00Z"),
    ("1 day ago", DEC31, MSK, "2026-12-30T06:00:00Z"),
    ("2026-12-30T15:30:00+03:00", DEC31, MSK, "2026-12-30T12:30:00Z"),
    ("2026-12-30T12:30:00Z", DEC31, MSK, "2026-12-30T12:30:00Z"),
    ("2026-12-30 15:30", DEC31, MSK, "2026-12-30T12:30:00Z"),
    ("30.12.2026 15:30", DEC31, "UTC", "2026-12-30T15:30:00Z"),
    ("28.03.2026 12:00", DST_ON, BER, "2026-03-28T11:00:00Z"),
    ("29.03.2026 12:00", DST_ON, BER, "2026-03-29T10:00:00Z"),
    ("29.03 01:30", DST_ON, BER, "2026-03-29T00:30:00Z"),
    ("29.03 03:30", DST_ON, BER, "2026-03-29T01:30:00Z"),
    ("вчера в 12:00", DST_ON, BER, "2026-03-28T11:00:00Z"),
    ("2 hours ago", DST_GAP, BER, "2026-03-29T00:30:00Z"),
    ("24.10.2026 12:00", DST_ON, BER, "2026-10-24T10:00:00Z"),
    ("25.10.2026 12:00", DST_ON, BER, "2026-10-25T11:00:00Z"),
    ("12 Nov 2026 10:00", DEC31, BER, "2026-11-12T09:00:00Z"),
]


@pytest.mark.parametrize(("raw", "reference", "tz", "expected"), CASES)
def test_human_dates_to_utc(raw: str, reference: str, tz: str, expected: str) -> None:
    moment = parse_human_date(raw, parse_reference(reference, None), zone(tz))
    assert moment is not None, raw
    assert to_utc_iso(moment) == expected


def test_table_is_large_and_covers_both_languages() -> None:
    assert len(CASES) >= 30
    assert any(any("а" <= ch <= "я" for ch in raw) for raw, *_ in CASES)
    assert {tz for *_, tz, _ in CASES} >= {MSK, BER, "UTC"}


@pytest.mark.parametrize("raw", ["", "   ", "garbage text", "99.99 99:99", None])
def test_unparseable_dates_are_none(raw: str | None) -> None:
    assert parse_human_date(raw, parse_reference(DEC31, None), zone(MSK)) is None


def test_no_year_is_never_in_the_future() -> None:
    reference = parse_reference(JAN1, None)
    for day, month, hour in [(31, 12, 12), (15, 6, 12), (2, 1, 12), (1, 1, 12), (1, 1, 23)]:
        moment = infer_year(day, month, hour, 0, reference, zone(MSK))
        assert moment is not None
        assert moment <= reference + FUTURE_TOLERANCE
    # Later on the same day than the page's own clock: that was a year ago.
    late = infer_year(1, 1, 23, 0, reference, zone(MSK))
    assert late is not None and late.year == reference.year - 1


def test_leap_day_without_year_goes_back_to_a_leap_year() -> None:
    moment = infer_year(29, 2, 10, 0, parse_reference("2027-03-01T00:00:00Z", None), zone("UTC"))
    assert moment is not None and to_utc_iso(moment) == "2024-02-29T10:00:00Z"


def test_reference_prefers_server_date_and_reads_http_dates() -> None:
    assert parse_reference("Thu, 31 Dec 2026 06:00:00 GMT", "2020-01-01T00:00:00Z") == datetime(
        2026, 12, 31, 6, tzinfo=UTC
    )
    assert parse_reference(None, "2026-12-31T06:00:00+00:00") == datetime(
        2026, 12, 31, 6, tzinfo=UTC
    )


def test_iso_with_offset_converts_and_naive_uses_site_zone() -> None:
    assert to_utc_iso(parse_iso("2026-06-01T12:00:00+02:00")) == "2026-06-01T10:00:00Z"  # type: ignore[arg-type]
    assert to_utc_iso(parse_iso("2026-06-01T12:00:00", zone(BER))) == "2026-06-01T10:00:00Z"  # type: ignore[arg-type]
    assert parse_iso("not a date") is None
