"""The last item pipeline: streams every item into the snapshot's ``items.jsonl.gz``."""

from __future__ import annotations

from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from archive.scrapy_hooks import SnapshotExtension, find_extension


class SnapshotItemsPipeline:
    """Writes items to the staging dir of the crawl's SnapshotExtension."""

    def __init__(self, extension: SnapshotExtension) -> None:
        self.extension = extension

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SnapshotItemsPipeline:
        if not crawler.settings.getbool("NEWSVAULT_ARCHIVE_ENABLED"):
            raise NotConfigured("archive disabled (NEWSVAULT_ARCHIVE_ENABLED)")
        ext = find_extension(crawler)
        if ext is None:
            raise NotConfigured("SnapshotExtension is not enabled; no snapshot to write items into")
        return cls(ext)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        staging = self.extension.staging
        if staging is not None:
            staging.write_item(ItemAdapter(item).asdict())
        return item
