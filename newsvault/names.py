"""The names every part agrees on: what a site may be called and which kinds of crawl there are.

One rule, here: the profile loader refuses a site name the archive could not
store (``news.example`` used to load and fail only when the spider opened).
"""

from __future__ import annotations

import re
from typing import Literal, get_args

# A site name is one path segment of the archive: letters, digits, "_" and "-".
SITE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
SITE_RE = re.compile(SITE_NAME_PATTERN)
Kind = Literal["articles", "discussions"]
KINDS: tuple[Kind, ...] = get_args(Kind)


def check_site(site: str) -> str:
    if not SITE_RE.match(site):
        raise ValueError(f"bad site name {site!r} (letters, digits, '_' and '-', starting with a letter or digit)")
    return site


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"bad kind {kind!r} (expected one of {', '.join(KINDS)})")
    return kind
