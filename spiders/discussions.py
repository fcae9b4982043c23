"""The `discussions` spider: walks a discussion list page by page, one raw entry per entry."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse

from spiders.base import ProfileSpider
from spiders.extract import extract_entries, http_date_to_iso, utc_now
from spiders.extract.select import links
from spiders.profile import SelectorSpec

log = logging.getLogger(__name__)

_DEFAULT_PAGINATION = [SelectorSpec(css="a[rel~=next]")]


class DiscussionsSpider(ProfileSpider):
    """Yields raw discussion entries with ``position`` counted over the whole list."""

    name = "discussions"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.profile.discussions is None:
            from newsvault.errors import ProfileError

            raise ProfileError(self.profile.source(), "discussions", "missing: this profile has no discussion list")

    def entry_urls(self) -> list[str]:
        return self.override_urls or self.profile.start_urls.discussions

    async def start(self) -> AsyncIterator[Any]:
        for url in self.entry_urls():
            # Pages are walked one after another so positions follow list order.
            yield scrapy.Request(
                url, callback=self.parse_list, errback=self.on_error, dont_filter=True,
                meta={"nv_start": True, "nv_list_url": url, "nv_page": 1, "nv_offset": 0},
            )

    def parse_list(self, response: Response) -> Iterator[Any]:
        self.start_ok(response)
        if not isinstance(response, TextResponse):
            self.count_page("not_listing", response.url)
            return
        config = self.profile.discussions
        assert config is not None
        list_url = response.meta.get("nv_list_url", response.url)
        offset = int(response.meta.get("nv_offset", 0))
        try:
            entries = extract_entries(response.selector, self.profile, response.url, response.url)
        except Exception:  # a broken page is counted, the walk stops here
            log.exception("cannot read discussion entries on %s", response.url)
            self.count_page("parse_error", response.url)
            return
        if not entries:
            self.count_page("no_entries", response.url)
            return
        fetched_at = utc_now()
        server_date = http_date_to_iso(response.headers.get("Date"))
        for index, entry in enumerate(entries, start=1):
            entry["position"] = offset + index
            entry["fetched_at"] = fetched_at
            entry["_server_date"] = server_date
            yield entry
        page = int(response.meta.get("nv_page", 1))
        if page >= config.max_pages:
            return
        for url in links(response.selector, config.pagination or _DEFAULT_PAGINATION, response.url)[:1]:
            if self.in_scope(url):
                yield scrapy.Request(
                    url, callback=self.parse_list, errback=self.on_error,
                    meta={"nv_list_url": list_url, "nv_page": page + 1, "nv_offset": offset + len(entries)},
                )
