"""ChangeTrackingPipeline: mark each item new | updated | unchanged against earlier runs.

Articles compare by ``content_hash`` (counters are recorded but never make an
article "updated"); discussion entries compare by thread, on comment count and
last activity. ``gone`` items (404/410 on a known URL) are counted as removed
and dropped; ``unreachable`` items (a revisit that got no usable answer) are recorded
for the revisit policy's back-off and dropped, never counted as removals.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipelines.stages import ItemDropped
from pipelines.state import StateStore, apply_run, open_state_store

logger = logging.getLogger(__name__)

STATS_PREFIX = "newsvault"
# Counters that change without the article changing.
VOLATILE_FIELDS: tuple[str, ...] = ("views", "comment_count")


def thread_fingerprint(item: dict[str, Any]) -> str:
    """What makes a discussion entry "moved": its activity time and comment count."""
    return f"{item.get('last_activity_at')}|{item.get('comment_count')}"


class ChangeTrackingPipeline:
    """Compare items with the state store and record what this run saw.

    With ``run`` (the snapshot id) what it records waits for the snapshot to be
    finalised (:class:`ChangeStateCommitter`); a ``dry_run`` (no archive)
    compares and then forgets, so the state keeps describing the archive.
    """

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        state_url: str | None = None,
        store: StateStore | None = None,
        stats: Any = None,
        run: str | None = None,
        dry_run: bool = False,
        store_factory: Callable[..., StateStore] = open_state_store,
    ) -> None:
        if store is None and state_dir is None:
            raise ValueError("ChangeTrackingPipeline needs a state_dir or a store")
        self.state_dir = state_dir
        self.state_url = state_url
        self.store = store
        self.stats = stats
        self.run = run or (f"dry-{uuid.uuid4().hex}" if dry_run else None)
        self.dry_run = dry_run
        self._store_factory = store_factory
        self._removed_urls: list[str] = []

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], stats: Any = None) -> ChangeTrackingPipeline:
        return cls(
            state_dir=settings["NEWSVAULT_STATE_DIR"],
            state_url=settings.get("NEWSVAULT_STATE_URL"),
            stats=stats,
            run=settings.get("NEWSVAULT_SNAPSHOT_ID") or None,
            dry_run=not settings["NEWSVAULT_ARCHIVE_ENABLED"],
        )

    def open_spider(self) -> None:
        if self.store is None:
            assert self.state_dir is not None
            self.store = self._store_factory(self.state_dir, run=self.run, url=self.state_url)

    def close_spider(self) -> None:
        if self.store is not None:
            store, self.store = self.store, None
            try:
                if self.dry_run and self.run:
                    store.discard_run(self.run)
            finally:
                store.close()

    def process_item(self, item: Any) -> Any:
        if self.store is None:
            self.open_spider()
        assert self.store is not None
        kind = item.get("type")
        if kind == "gone":
            self._gone(item)
        if kind == "unreachable":
            self._unreachable(item)
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
        self.store.record_article(
            site, url, item["content_hash"], item["fetched_at"], volatile, published_at=item.get("published_at")
        )
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
        site = item.get("site") or ""
        status = int(item.get("status") or 0)
        known = self.store.article_state(site, url)
        if self.store.mark_removed(site, url, status, item.get("fetched_at") or ""):
            self._removed_urls.append(url)
            self._inc("removed")
            if self.stats is not None:
                # A fresh list each time: stats must stay JSON-safe and unshared.
                self.stats.set_value(f"{STATS_PREFIX}/removed_urls", list(self._removed_urls))
            reason = "removed"
        elif known is not None:
            self._inc("still_gone")
            reason = "removed earlier, still gone"
        else:
            self._inc("gone_unknown")
            reason = "not a known article"
        # Expected outcome, not a problem: keep it out of warning-level logs.
        raise ItemDropped(f"gone ({status}, {reason}): {url}", log_level="DEBUG")

    def _unreachable(self, item: Any) -> None:
        assert self.store is not None
        url = item.get("url") or ""
        self.store.record_unreachable(item.get("site") or "", url, item.get("fetched_at") or "")
        raise ItemDropped(f"no usable answer ({item.get('reason')}): {url}", log_level="DEBUG")

    def _count(self, change: str, kind: str) -> None:
        self._inc(change)
        self._inc(f"{change}/{kind}")

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{key}")


class ChangeStateCommitter:
    """Extension: once the run's snapshot is finalised, its change-tracking writes become the state.

    Runs in the crawl's process, after every item stage has closed (the
    stages flush their writes when the spider closes, before the snapshot is
    finalised), whether the stages run in the sidecar process or not.
    """

    def __init__(self, state_dir: str | Path, url: str | None = None) -> None:
        self.state_dir = state_dir
        self.url = url

    @classmethod
    def from_crawler(cls, crawler: Any) -> ChangeStateCommitter:
        from scrapy.exceptions import (
            NotConfigured,  # here: the stage above runs where Scrapy is not imported
        )

        from archive.scrapy_hooks import snapshot_finalised

        if not crawler.settings.getbool("NEWSVAULT_ARCHIVE_ENABLED"):
            raise NotConfigured("no archive: a dry run never changes the state")
        committer = cls(crawler.settings["NEWSVAULT_STATE_DIR"], crawler.settings.get("NEWSVAULT_STATE_URL"))
        crawler.signals.connect(committer.snapshot_finalised, signal=snapshot_finalised)
        return committer

    def snapshot_finalised(self, snapshot_id: str, manifest: Any = None) -> None:
        apply_run(self.state_dir, snapshot_id, url=self.url)
        logger.debug("change-tracking state of snapshot %s applied", snapshot_id)
