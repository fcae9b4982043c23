"""What both spiders share: the profile, start URLs, URL scope and page accounting."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import scrapy
import scrapy.exceptions
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError
from twisted.internet.error import (
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.python.failure import Failure
from w3lib.url import canonicalize_url

from spiders.profile import SiteProfile, find_profile

# Newer Scrapy versions wrap Twisted's download errors in their own types; match both.
_TOO_LARGE: list[type[BaseException]] = [CancelledError]
_TIMEOUT: list[type[BaseException]] = [TimeoutError, TCPTimedOutError]
_UNREACHABLE: list[type[BaseException]] = [ConnectionRefusedError, DNSLookupError]
for _names, _group in (
    (("DownloadCancelledError",), _TOO_LARGE),
    (("DownloadTimeoutError",), _TIMEOUT),
    (("DownloadConnectionRefusedError", "CannotResolveHostError"), _UNREACHABLE),
):
    for _name in _names:
        if hasattr(scrapy.exceptions, _name):
            _group.append(getattr(scrapy.exceptions, _name))

log = logging.getLogger(__name__)

# Query parameters that only say where a link was clicked, never what the page is.
TRACKING_PARAM = re.compile(r"^(utm_[a-z_]+|fbclid|gclid|yclid|mc_cid|mc_eid|_openstat|from|ref)$", re.IGNORECASE)
PAGE_STAT = "newsvault/pages/{}"


def url_key(url: str) -> str:
    """The identity of a URL for "seen" checks: tracking parameters and fragment dropped."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAM.match(k)]
    return canonicalize_url(urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), "")))


def _split_urls(value: str | Iterable[str] | None) -> list[str]:
    # `scrapy crawl -a start_urls=a,b` passes one comma-separated string.
    if value is None:
        return []
    if isinstance(value, str):
        return [u.strip() for u in value.split(",") if u.strip()]
    return [u for u in value if u]


def stage_settings(profile: Any) -> dict[str, Any]:
    """What the item stages need of a site profile, as plain settings (they never import the spiders)."""
    furniture = getattr(profile, "furniture", None)
    return {
        "NEWSVAULT_SITE": getattr(profile, "name", None),
        "NEWSVAULT_SITE_TIMEZONE": getattr(profile, "timezone", None) or "UTC",
        "NEWSVAULT_SITE_LANGUAGE": getattr(profile, "language", None) or None,
        "NEWSVAULT_STRIP_PATTERNS": list(getattr(furniture, "strip_patterns", None) or ()),
        "NEWSVAULT_REPLY_PATTERN": getattr(profile, "reply_pattern", None) or None,
    }


def failure_kind(failure: Failure) -> str:
    """The page stat a failed request counts under: http_<status>, timeout, unreachable, too_large, ..."""
    if failure.check(HttpError):
        return f"http_{failure.value.response.status}"
    if failure.check(IgnoreRequest):
        message = str(failure.value)
        if "robots" in message.lower():
            return "disallowed"
        if "max redirections" in message:
            return "redirect_loop"  # RedirectMiddleware gave up (REDIRECT_MAX_TIMES)
        if "DOWNLOAD_MAXSIZE" in message:
            # Scrapy's decompression guard: a gzip bomb or an oversized compressed page.
            return "too_large"
        return "ignored"
    if failure.check(*_TOO_LARGE):
        return "too_large"  # the downloader cancels a response past DOWNLOAD_MAXSIZE
    if failure.check(*_TIMEOUT):
        return "timeout"
    if failure.check(*_UNREACHABLE):
        return "unreachable"
    return "download_error"


class ProfileSpider(scrapy.Spider):
    """A spider driven by a site profile (``site`` name or ``profile`` object)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ProfileSpider:
        if kwargs.get("profile") is None and kwargs.get("sites_dir") is None:
            kwargs["sites_dir"] = crawler.settings.get("NEWSVAULT_SITES_DIR")
        spider = super().from_crawler(crawler, *args, **kwargs)
        # Redirects that lead nowhere are dropped before they are sent (an offsite one by
        # OffsiteMiddleware at scheduling, a loop by the dupefilter): no errback hears of them.
        crawler.signals.connect(spider.on_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(spider.on_dropped, signal=signals.request_dropped)
        return spider

    def __init__(
        self,
        site: str | None = None,
        profile: SiteProfile | None = None,
        start_urls: str | Iterable[str] | None = None,
        sites_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        if profile is None:
            if not site:
                raise ValueError("give a site profile name (-a site=NAME) or a profile")
            if sites_dir is None:
                import sites

                sites_dir = Path(sites.__file__).parent
            profile = find_profile(site, sites_dir)
        super().__init__(**kwargs)
        self.profile = profile
        self.site = profile.name
        self.override_urls = _split_urls(start_urls)
        self.allowed_domains = profile.domains(self.override_urls)
        self._start_failed = 0

    def stage_settings(self) -> dict[str, Any]:
        """This site's settings for the item stages (pipelines/sidecar.py asks for them)."""
        return stage_settings(self.profile)

    # --- scope -------------------------------------------------------------
    def in_scope(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        return any(host == d or host.endswith("." + d) for d in self.allowed_domains)

    # --- accounting ---------------------------------------------------------
    def count_page(self, reason: str, url: str = "") -> None:
        """Count a response the spider could not use, under ``newsvault/pages/<reason>``."""
        if self.crawler and self.crawler.stats:
            self.crawler.stats.inc_value(PAGE_STAT.format(reason))
        log.debug("page not used (%s): %s", reason, url)

    def inc_stat(self, key: str, count: int = 1) -> None:
        if self.crawler and self.crawler.stats:
            self.crawler.stats.inc_value(key, count)

    def on_error(self, failure: Failure) -> None:
        """Errback: classify a failed request into a page stat; never raises."""
        request = failure.request  # type: ignore[attr-defined]
        reason = failure_kind(failure)
        self.count_page(reason, request.url)
        if request.meta.get("nv_start"):
            self._start_failed += 1
            self.inc_stat("newsvault/start_urls/failed")
            first = self.crawler.stats.get_value("newsvault/start_urls/first_error") if self.crawler.stats else None
            if first is None and self.crawler.stats:
                self.crawler.stats.set_value(
                    "newsvault/start_urls/first_error", f"{request.url}: {reason} ({failure.getErrorMessage()})"[:300]
                )
        log.info("request failed (%s): %s", reason, request.url)

    def on_scheduled(self, request: scrapy.Request, spider: scrapy.Spider | None = None) -> None:
        """A redirect that leads off the site: OffsiteMiddleware drops it silently, so count it here."""
        if request.meta.get("redirect_times") and not self.in_scope(request.url):
            self._redirect_failed("offsite_redirect", request)

    def on_dropped(self, request: scrapy.Request, spider: scrapy.Spider | None = None) -> None:
        """A redirect back to a URL of its own chain (a loop the dupefilter dropped)."""
        if request.meta.get("redirect_times") and request.url in (request.meta.get("redirect_urls") or ()):
            self._redirect_failed("redirect_loop", request)

    def _redirect_failed(self, reason: str, request: scrapy.Request) -> None:
        self.count_page(reason, request.url)
        log.info("request failed (%s): %s", reason, (request.meta.get("redirect_urls") or [request.url])[0])

    def start_ok(self, response: scrapy.http.Response) -> None:
        if response.meta.get("nv_start"):
            self.inc_stat("newsvault/start_urls/ok")
