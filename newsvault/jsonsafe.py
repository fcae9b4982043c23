"""One conversion of crawl stats to JSON, for the crawl summary, the run history and the manifest alike.

Scrapy's stats hold datetimes, lists (``newsvault/removed_urls``) and the odd
object. Every place that stores them uses this, so the manifest keeps what the
summary keeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON: datetimes as ISO strings, mappings and sequences recursively, anything else its str().

    A float that JSON cannot hold (NaN, infinity) becomes None: a manifest
    with one could not be checksummed, and a summary with one could not be read.
    """
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [json_safe(v) for v in items]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)
