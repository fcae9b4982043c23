"""ValidatePipeline: drop items that miss required fields or break the published JSON Schema.

A bad item never stops the crawl: it is dropped and its reason counted in
``newsvault/dropped/<reason>`` (``missing_title``, ``invalid_views``, ...).
"""

from __future__ import annotations

import logging
from typing import Any

from jsonschema import Draft202012Validator
from scrapy.exceptions import DropItem

from newsvault.items import ITEM_KINDS, item_json_schema

logger = logging.getLogger(__name__)

STATS_PREFIX = "newsvault/dropped"
# Fields that must be present and non-empty, per item type (the contract).
REQUIRED: dict[str, tuple[str, ...]] = {
    "article": ("url", "canonical_url", "title", "body", "fetched_at"),
    "discussion": ("thread_url", "title", "last_activity_at", "fetched_at"),
}
# Types that pass untouched: change tracking consumes them.
PASS_THROUGH = frozenset({"gone"})


def validation_reason(
    item: dict[str, Any], validators: dict[str, Draft202012Validator]
) -> str | None:
    """The first reason ``item`` is invalid (``missing_<field>``, ``invalid_<field>``), or None."""
    kind = item.get("type")
    if kind not in validators:
        return "unknown_type"
    required = (
        REQUIRED[kind] if not item.get("duplicate_of") else ("url", "canonical_url", "fetched_at")
    )
    for name in required:
        value = item.get(name)
        if value is None or (isinstance(value, str | list) and not value):
            return f"missing_{name}"
    error = next(iter(validators[kind].iter_errors(item)), None)
    if error is None:
        return None
    field = next((str(p) for p in error.absolute_path), None)
    if field is None and error.validator == "required":
        # "'x' is a required property": name the field.
        missing = [name for name in error.validator_value if name not in item]
        return f"missing_{missing[0]}" if missing else "invalid_item"
    return f"invalid_{field}" if field else "invalid_item"


class ValidatePipeline:
    """Check each clean item; drop and count the bad ones."""

    def __init__(self, *, stats: Any = None) -> None:
        self.stats = stats
        self.validators: dict[str, Draft202012Validator] = {
            kind: Draft202012Validator(item_json_schema(kind)) for kind in ITEM_KINDS
        }

    @classmethod
    def from_crawler(cls, crawler: Any) -> ValidatePipeline:
        return cls(stats=crawler.stats)

    def process_item(self, item: Any) -> Any:
        if item.get("type") in PASS_THROUGH:
            return item
        reason = validation_reason(dict(item), self.validators)
        if reason is None:
            return item
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{reason}")
            self.stats.inc_value(STATS_PREFIX)
        url = item.get("url") or item.get("thread_url")
        raise DropItem(f"invalid {item.get('type')} item ({reason}): {url}", log_level="INFO")
