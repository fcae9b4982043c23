"""The last item pipeline: streams every item into the snapshot's ``items.jsonl.gz``."""

from __future__ import annotations

from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler

from archive.scrapy_hooks import SnapshotExtension, require_extension


class SnapshotItemsPipeline:
    """Writes items to the staging dir of the crawl's SnapshotExtension."""

    def __init__(self, extension: SnapshotExtension) -> None:
        self.extension = extension

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SnapshotItemsPipeline:
        return cls(require_extension(crawler, "no snapshot to write items into"))

    def process_item(self, item: Any, spider: Any = None) -> Any:
        staging = self.extension.staging
        if staging is not None:
            # Clean items are plain dicts of JSON values already; only other
            # item types need itemadapter's (recursive, costly) conversion.
            staging.write_item(item if type(item) is dict else ItemAdapter(item).asdict())
        return item
