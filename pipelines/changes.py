"""ChangeTrackingPipeline: mark each item new | updated | unchanged against earlier runs.

Articles compare by ``content_hash`` (counters are recorded but never make an
article "updated"); discussion entries compare by thread, on comment count and
last activity. ``gone`` items (404/410 on a known URL) are counted as removed
and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.exceptions import DropItem

from pipelines.state import StateStore, open_state_store

logger = logging.getLogger(__name__)

STATS_PREFIX = "newsvault"
# Counters that change without the article changing.
VOLATILE_FIELDS: tuple[str, ...] = ("views", "comment_count")


def thread_fingerprint(item: dict[str, Any]) -> str:
    """What makes a discussion entry "moved": its activity time and comment count."""
    return f"{item.get('last_activity_at')}|{item.get('comment_count')}"


class ChangeTrackingPipeline:
    """Compare items with the state store and record what this run saw."""

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        store: StateStore | None = None,
        stats: Any = None,
        store_factory: Callable[[str | Path], StateStore] = open_state_store,
    ) -> None:
        if store is None and state_dir is None:
            raise ValueError("ChangeTrackingPipeline needs a state_dir or a store")
        self.state_dir = state_dir
        self.store = store
        self.stats = stats
        self._store_factory = store_factory
        self._removed_urls: list[str] = []

    @classmethod
    def from_crawler(cls, crawler: Any) -> ChangeTrackingPipeline:
        pipeline = cls(
            state_dir=crawler.settings.get("NEWSVAULT_STATE_DIR") or "var", stats=crawler.stats
        )
        # Flush at idle so the spider's recheck of known URLs sees this run's writes.
        crawler.signals.connect(pipeline.flush, signal=signals.spider_idle)
        return pipeline

    def open_spider(self) -> None:
        if self.store is None:
            assert self.state_dir is not None
            self.store = self._store_factory(self.state_dir)

    def close_spider(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def flush(self) -> None:
        if self.store is not None:
            self.store.commit()

    def process_item(self, item: Any) -> Any:
        if self.store is None:
            self.open_spider()
        assert self.store is not None
        kind = item.get("type")
        if kind == "gone":
            self._gone(item)
        if kind == "article":
            self._article(item)
        elif kind == "discussion":
            self._discussion(item)
        return item

    def _article(self, item: Any) -> None:
        assert self.store is not None
        site, url = item["site"], item["canonical_url"]
        previous = self.store.article_state(site, url)
        if previous is None or previous.removed:
            change = "new"
        elif previous.content_hash != item["content_hash"]:
            change = "updated"
        else:
            change = "unchanged"
        volatile = {k: item[k] for k in VOLATILE_FIELDS if item.get(k) is not None}
        self.store.record_article(site, url, item["content_hash"], item["fetched_at"], volatile)
        self._count(change, "article")
        item["change"] = change

    def _discussion(self, item: Any) -> None:
        assert self.store is not None
        site, url = item["site"], item["thread_url"]
        fingerprint = thread_fingerprint(item)
        previous = self.store.thread_state(site, url)
        if previous is None:
            change = "new"
        elif previous.fingerprint != fingerprint:
            change = "updated"
        else:
            change = "unchanged"
        self.store.record_thread(site, url, fingerprint, item["fetched_at"])
        self._count(change, "discussion")
        item["change"] = change

    def _gone(self, item: Any) -> None:
        assert self.store is not None
        url = item.get("url") or ""
        status = int(item.get("status") or 0)
        if self.store.mark_removed(
            item.get("site") or "", url, status, item.get("fetched_at") or ""
        ):
            self._removed_urls.append(url)
            self._inc("removed")
            if self.stats is not None:
                # A fresh list each time: stats must stay JSON-safe and unshared.
                self.stats.set_value(f"{STATS_PREFIX}/removed_urls", list(self._removed_urls))
            reason = "removed"
        else:
            self._inc("gone_unknown")
            reason = "not a known live article"
        # Expected outcome, not a problem: keep it out of warning-level logs.
        raise DropItem(f"gone ({status}, {reason}): {url}", log_level="DEBUG")

    def _count(self, change: str, kind: str) -> None:
        self._inc(change)
        self._inc(f"{change}/{kind}")

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{key}")
