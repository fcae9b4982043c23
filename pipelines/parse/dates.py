"""Date parsing: machine-readable ISO, human dates (ru/en, relative), year inference.

Every result is an aware UTC datetime; ``to_utc_iso`` renders it with a ``Z``.
Human dates are read in the site's timezone relative to a reference time (the
server's ``Date`` header, else the fetch time) so "вчера в 18:05" means the
site's yesterday, not the crawler's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_LANGUAGES: tuple[str, ...] = ("ru", "en")
# "24.09 01:36" (discussion lists) and "30.12.2026 15:30" (article pages); the
# common forms skip dateparser, which is slow and guesses the order of numbers.
_DAY_MONTH_TIME = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.?\s*(?:в\s+|,\s*)?(\d{1,2}):(\d{2})\s*$")
_DAY_MONTH_YEAR_TIME = re.compile(
    r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\s*(?:г\.?)?\s*(?:в\s+|,\s*)?(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"
)
_HAS_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_RELATIVE_WORDS = re.compile(
    r"ago|назад|today|yesterday|сегодня|вчера|позавчера|now|сейчас|только что|tomorrow|завтра",
    re.IGNORECASE,
)
# "N units ago" counts elapsed time, so it is computed in UTC: wall-clock
# arithmetic in the site zone would be off by an hour across a DST change.
_ELAPSED = re.compile(r"\bago\b|назад", re.IGNORECASE)
# A date without a year may be slightly ahead of the reference (the site's
# clock against ours); further ahead means it belongs to the previous year.
# The reference is normally the page's own Date header, so an hour is ample.
FUTURE_TOLERANCE = timedelta(hours=1)


def to_utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, to the second."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def zone(name: str | None) -> ZoneInfo:
    """ZoneInfo for a profile timezone name; UTC when absent."""
    return ZoneInfo(name or "UTC")


def parse_iso(value: object, tz: ZoneInfo | None = None) -> datetime | None:
    """Machine-readable date (ISO 8601, optionally with Z/offset) -> aware UTC.

    A value without an offset is read in ``tz`` (the site's zone).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz or UTC)
    return moment.astimezone(UTC)


def parse_reference(server_date: object, fetched_at: object) -> datetime:
    """The reference "now" for relative dates: server Date header, else fetch time, else now."""
    for value in (server_date, fetched_at):
        if not value:
            continue
        moment = parse_iso(value)
        if moment is None and isinstance(value, str):
            try:
                moment = parsedate_to_datetime(value)  # RFC 7231 "Thu, 31 Dec 2026 06:00:00 GMT"
            except (TypeError, ValueError):
                moment = None
            if moment is not None and moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        if moment is not None:
            return moment.astimezone(UTC)
    return datetime.now(UTC)


def _localize(naive: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: an ambiguous wall time (DST fall-back) is read as the first one.
    return naive.replace(tzinfo=tz).astimezone(UTC)


def infer_year(
    day: int, month: int, hour: int, minute: int, reference: datetime, tz: ZoneInfo
) -> datetime | None:
    """Date without a year: the reference's (site-local) year, one back if that is in the future."""
    local_ref = reference.astimezone(tz)
    for year in range(local_ref.year, local_ref.year - 5, -1):
        try:
            candidate = _localize(datetime(year, month, day, hour, minute), tz)
        except ValueError:  # 29.02 in a non-leap year, or nonsense like 31.04
            continue
        if candidate <= reference + FUTURE_TOLERANCE:
            return candidate
    return None


def _dateparser() -> Any:
    """dateparser, imported at the first date the common forms miss (its import alone is some 40 ms of CPU at every crawl start)."""
    import dateparser

    return dateparser


def parse_human_date(
    raw: object,
    reference: datetime,
    tz: ZoneInfo,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
) -> datetime | None:
    """Visible date text ("30.12.2026 15:30", "вчера в 18:05", "2 hours ago") -> aware UTC."""
    if raw is None:
        return None
    text = " ".join(str(raw).split())
    if not text:
        return None
    match = _DAY_MONTH_TIME.match(text)
    if match:
        day, month, hour, minute = (int(g) for g in match.groups())
        return infer_year(day, month, hour, minute, reference, tz)
    match = _DAY_MONTH_YEAR_TIME.match(text)
    if match:
        day, month, year = int(match[1]), int(match[2]), int(match[3])
        hour, minute, second = (int(g) if g else 0 for g in match.groups()[3:])
        try:
            return _localize(datetime(year, month, day, hour, minute, second), tz)
        except ValueError:
            return None
    iso = parse_iso(text, tz)
    if iso is not None:
        return iso
    if _ELAPSED.search(text):
        utc_ref = reference.astimezone(UTC).replace(tzinfo=None)
        elapsed = _dateparser().parse(
            text, languages=list(languages), settings={"RELATIVE_BASE": utc_ref}
        )
        if elapsed is not None:
            return (
                elapsed.replace(tzinfo=UTC) if elapsed.tzinfo is None else elapsed.astimezone(UTC)
            )
    local_ref = reference.astimezone(tz).replace(tzinfo=None)
    parsed = _dateparser().parse(
        text,
        languages=list(languages),
        settings={"RELATIVE_BASE": local_ref, "PREFER_DATES_FROM": "past"},
    )
    if parsed is None:
        return None
    moment = parsed.astimezone(UTC) if parsed.tzinfo else _localize(parsed, tz)
    if not _HAS_YEAR.search(text) and not _RELATIVE_WORDS.search(text):
        # dateparser put it in the reference's year; apply the no-future rule.
        while moment > reference + FUTURE_TOLERANCE:
            try:
                moment = _localize(parsed.replace(year=parsed.year - 1), tz)
            except ValueError:
                return None
            parsed = parsed.replace(year=parsed.year - 1)
    return moment
