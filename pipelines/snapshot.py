"""The last item pipeline: streams every item into the snapshot's ``items.jsonl.gz``."""

from __future__ import annotations

from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from archive.scrapy_hooks import WRITER_FAILED_REASON, SnapshotExtension, require_extension


class SnapshotItemsPipeline:
    """Writes items to the staging dir of the crawl's SnapshotExtension."""

    def __init__(self, extension: SnapshotExtension) -> None:
        self.extension = extension

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SnapshotItemsPipeline:
        return cls(require_extension(crawler, "no snapshot to write items into"))

    def process_item(self, item: Any, spider: Any = None) -> Any:
        staging = self.extension.staging
        if staging is None or self.extension.error is not None:
            # An item that is not archived is not passed on as if it were.
            raise DropItem("not archived: " + (self.extension.error or "no snapshot is open"))
        try:
            # Clean items are plain dicts of JSON values already; only other
            # item types need itemadapter's (recursive, costly) conversion.
            staging.write_item(item if type(item) is dict else ItemAdapter(item).asdict())
        except OSError as exc:
            self.extension.fail(f"the snapshot writer failed: {exc}", close_reason=WRITER_FAILED_REASON)
            raise DropItem(f"not archived: {exc}") from exc
        return item
