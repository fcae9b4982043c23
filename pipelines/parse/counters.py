"""Parse human-formatted counters ("1 020", "1,2K", "12 тыс.") into ints."""

from __future__ import annotations

import re

# Multiplier suffixes, English and Russian, lower-case without a trailing dot.
_SUFFIXES: dict[str, int] = {
    "k": 1_000,
    "к": 1_000,  # Cyrillic "к"
    "тыс": 1_000,
    "thousand": 1_000,
    "m": 1_000_000,
    "м": 1_000_000,
    "млн": 1_000_000,
    "mln": 1_000_000,
    "million": 1_000_000,
    "b": 1_000_000_000,
    "bn": 1_000_000_000,
    "млрд": 1_000_000_000,
    "billion": 1_000_000_000,
}
# Spaces used as thousands separators: plain, no-break, narrow no-break, thin.
_GROUP_SPACES = re.compile(r"(?<=\d)[ \u00a0\u202f\u2009'’](?=\d{3}(?:\D|$))")
_NUMBER = re.compile(r"(\d+(?:[.,]\d+)*)\s*([^\W\d_]+)?\.?", re.UNICODE)


def parse_counter(raw: object) -> int | None:
    """Return the counter value, or None when ``raw`` holds no number."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, float):
        return int(raw) if raw >= 0 else None
    text = _GROUP_SPACES.sub("", str(raw).strip())
    match = _NUMBER.search(text)
    if match is None:
        return None
    digits, suffix = match.group(1), (match.group(2) or "").lower()
    multiplier = _SUFFIXES.get(suffix, 1)
    value = _to_number(digits, has_multiplier=multiplier > 1)
    if value is None:
        return None
    return round(value * multiplier)


def _to_number(digits: str, *, has_multiplier: bool) -> float | None:
    """Read "1,020" / "1.020" as thousands groups but "1,2" / "1.5" as decimals."""
    separators = re.findall(r"[.,]", digits)
    if not separators:
        return float(digits)
    groups = re.split(r"[.,]", digits)
    # Several separators, or one followed by exactly three digits without a
    # multiplier ("1,020 views"), are thousands groups.
    if len(separators) > 1 or (len(groups[-1]) == 3 and not has_multiplier):
        if len(set(separators)) == 1:
            return float("".join(groups))
        # Mixed: "1,234.5" or "1.234,5" - the last separator is the decimal one.
        head, tail = re.split(r"[.,](?=\d+$)", digits)
        return float(re.sub(r"[.,]", "", head) + "." + tail)
    return float(digits.replace(",", "."))
