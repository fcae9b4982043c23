"""Placeholder; replaced by the real snapshot hooks."""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import NotConfigured


class WarcRecorderMiddleware:
    @classmethod
    def from_crawler(cls, crawler: Any) -> "WarcRecorderMiddleware":
        raise NotConfigured


class SnapshotExtension:
    @classmethod
    def from_crawler(cls, crawler: Any) -> "SnapshotExtension":
        raise NotConfigured
