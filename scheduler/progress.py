"""Placeholder; replaced by the live progress display."""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import NotConfigured


class CrawlProgress:
    @classmethod
    def from_crawler(cls, crawler: Any) -> "CrawlProgress":
        raise NotConfigured
