"""URL canonicalisation: w3lib canonical form without tracking parameters or fragment."""

from __future__ import annotations

import functools
import re
from urllib.parse import urljoin, urlsplit

from w3lib.url import canonicalize_url, url_query_cleaner

# Click-tracking parameters that never change what a page shows.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "ysclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "_openstat",
        "_ga",
        "_gl",
        "twclid",
        "ttclid",
    }
)
_TRACKING_PREFIXES: tuple[str, ...] = ("utm_",)
_PARAM_NAME = re.compile(r"(?:^|&)([^=&]+)")


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


# An article's URL and its rel=canonical are usually the same string, and each
# is canonicalised more than once per item: w3lib's canonical form is costly.
@functools.lru_cache(maxsize=4096)
def canonical_form(url: str, base: str | None = None) -> str:
    """Absolute, w3lib-canonical URL without tracking parameters and fragment."""
    url = url.strip()
    if base:
        url = urljoin(base, url)
    query = urlsplit(url).query
    tracking = [name for name in _PARAM_NAME.findall(query) if _is_tracking(name)]
    if tracking:
        url = url_query_cleaner(url, tracking, remove=True, unique=False, keep_fragments=True)
    return canonicalize_url(url, keep_fragments=False)


def _site_host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def same_site(a: str, b: str) -> bool:
    """True when both URLs are on the same host (ignoring a leading www.)."""
    return bool(_site_host(a)) and _site_host(a) == _site_host(b)


def choose_canonical(url: str, rel_canonical: str | None) -> str:
    """rel=canonical when usable (absolute after joining, http(s), same site), else ``url``.

    Both inputs are canonicalised; a canonical pointing to another site is
    ignored because a page cannot claim another site's identity.
    """
    clean_url = canonical_form(url)
    if rel_canonical and rel_canonical.strip():
        candidate = canonical_form(rel_canonical, base=url)
        if urlsplit(candidate).scheme in ("http", "https") and same_site(candidate, clean_url):
            return candidate
    return clean_url


def absolute_url(value: str | None, base: str) -> str | None:
    """Join a possibly relative URL to ``base``; None/blank stays None."""
    if value is None or not str(value).strip():
        return None
    try:
        return urljoin(base, str(value).strip())
    except ValueError:  # malformed (e.g. an unclosed IPv6 bracket): the field is dropped
        return None
