"""Crawl progress: a live line on a terminal, a periodic log line otherwise, nothing when off."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

log = logging.getLogger(__name__)


class CrawlProgress:
    """Shows pages, items, errors and the page rate while a crawl runs (setting NEWSVAULT_PROGRESS)."""

    def __init__(
        self,
        stats: Any,
        *,
        live: bool,
        interval: float,
        stream: TextIO | None = None,
    ) -> None:
        self.stats = stats
        self.live = live
        self.interval = interval
        self.stream = stream or sys.stderr
        self._loop: task.LoopingCall | None = None
        self._started = 0.0
        self._status: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        settings = crawler.settings
        if not settings.getbool("NEWSVAULT_PROGRESS"):
            raise NotConfigured
        # A live line only makes sense on a terminal; logs and pipes get a line every ~10 s.
        live = sys.stderr.isatty()
        ext = cls(
            crawler.stats,
            live=live,
            interval=0.5 if live else settings.getfloat("NEWSVAULT_PROGRESS_INTERVAL", 10.0),
        )
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def snapshot(self) -> dict[str, float]:
        """The counters shown: pages, items, errors and pages per second since the start."""
        get = self.stats.get_value
        pages = int(get("response_received_count", 0) or 0)
        elapsed = max(time.monotonic() - self._started, 1e-6) if self._started else 0.0
        errors = int(get("log_count/ERROR", 0) or 0) + int(get("downloader/exception_count", 0) or 0)
        return {
            "pages": pages,
            "items": int(get("item_scraped_count", 0) or 0),
            "errors": errors,
            "rate": pages / elapsed if elapsed else 0.0,
        }

    def line(self) -> str:
        s = self.snapshot()
        return f"pages {s['pages']:.0f}  items {s['items']:.0f}  errors {s['errors']:.0f}  {s['rate']:.1f} pages/s"

    def spider_opened(self, spider: Any) -> None:
        self._started = time.monotonic()
        if self.live:
            from rich.console import Console

            self._status = Console(file=self.stream).status(self.line())
            self._status.start()
        self._loop = task.LoopingCall(self.tick)
        self._loop.start(self.interval, now=False)

    def tick(self) -> None:
        if self._status is not None:
            self._status.update(self.line())
        else:
            log.info("progress: %s", self.line())

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._status is not None:
            self._status.stop()
            self._status = None
