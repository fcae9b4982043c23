"""The item stages (clean, validate, dedupe, change tracking) run in order on one item, and their stats.

Nothing here imports Scrapy: the stages run in the crawl's sidecar process
(pipelines/sidecar_work.py), which would otherwise spend a third of a second
of CPU at every crawl's start importing it. A stage leaves an item out by
raising :class:`ItemDropped`; the crawl's pipeline turns that into Scrapy's
``DropItem``, so Scrapy counts and logs the drop as its own.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_STAGES = (
    "pipelines.clean.CleanPipeline",
    "pipelines.validate.ValidatePipeline",
    "pipelines.dedupe.DedupePipeline",
    "pipelines.changes.ChangeTrackingPipeline",
)

StatsOp = tuple[str, str, Any]


class ItemDropped(Exception):
    """A stage leaves this item out (a duplicate, an invalid item, a removed article's marker)."""

    def __init__(self, message: str, log_level: str = "WARNING") -> None:
        super().__init__(message)
        self.log_level = log_level


class RecordingStats:
    """Stats collector stand-in: sums what the stages record, for the crawl's collector to replay once.

    Calls on one key add up as the collector would apply them one by one:
    counts sum (the first ``start`` stands), the last ``set`` wins, maxima
    and minima keep the extreme. Keys keep the order of their first call.
    """

    def __init__(self) -> None:
        self._ops: dict[tuple[str, str], Any] = {}

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        earlier = self._ops.get(("inc", key))
        self._ops[("inc", key)] = (count, start) if earlier is None else (earlier[0] + count, earlier[1])

    def set_value(self, key: str, value: Any) -> None:
        self._ops[("set", key)] = value

    def max_value(self, key: str, value: Any) -> None:
        earlier = self._ops.get(("max", key), value)
        self._ops[("max", key)] = max(earlier, value)

    def min_value(self, key: str, value: Any) -> None:
        earlier = self._ops.get(("min", key), value)
        self._ops[("min", key)] = min(earlier, value)

    def take(self) -> list[StatsOp]:
        """What was recorded since the last take, as (op, key, value); the record starts empty again."""
        ops, self._ops = self._ops, {}
        return [(op, key, value) for (op, key), value in ops.items()]


def replay_stats(ops: Iterable[StatsOp], stats: Any) -> None:
    """Apply recorded calls to a real stats collector."""
    if stats is None:
        return
    for op, key, value in ops:
        if op == "inc":
            count, start = value
            stats.inc_value(key, count, start)
        elif op == "set":
            stats.set_value(key, value)
        elif op == "max":
            stats.max_value(key, value)
        elif op == "min":
            stats.min_value(key, value)


def load_stage(path: str) -> Any:
    """The class a dotted path names (``pipelines.clean.CleanPipeline``)."""
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"not a dotted path to a stage class: {path!r}")
    return getattr(importlib.import_module(module), name)


class Stages:
    """The configured stage pipelines, built from plain settings, run in order on one item."""

    def __init__(self, paths: Iterable[str], settings: dict[str, Any]) -> None:
        self.stats = RecordingStats()
        self.pipelines = [_build(load_stage(path), settings, self.stats) for path in paths]
        for pipeline in self.pipelines:
            if hasattr(pipeline, "open_spider"):
                pipeline.open_spider()

    def process(self, item: dict[str, Any]) -> dict[str, Any]:
        for pipeline in self.pipelines:
            item = pipeline.process_item(item)
        return item

    def close(self) -> None:
        errors = []
        for pipeline in self.pipelines:
            if hasattr(pipeline, "close_spider"):
                try:
                    pipeline.close_spider()
                except Exception as exc:  # noqa: BLE001 - every stage gets closed; the first failure is raised
                    errors.append(exc)
        for later in errors[1:]:
            log.error("closing an item stage failed as well: %s", later)
        if errors:
            raise errors[0]


def _build(cls: Any, settings: dict[str, Any], stats: RecordingStats) -> Any:
    if hasattr(cls, "from_settings"):
        return cls.from_settings(settings, stats)
    return cls()
