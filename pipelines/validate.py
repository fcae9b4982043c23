"""ValidatePipeline: drop items that miss required fields or break the published JSON Schema.

A bad item never stops the crawl: it is dropped and its reason counted in
``newsvault/dropped/<reason>`` (``missing_title``, ``invalid_views``, ...).

Every item is checked by the schema compiled to Python code (fastjsonschema,
~20x faster than walking it); only an item that fails is walked again by
jsonschema, the reference implementation, which names the reason and has the
last word.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import fastjsonschema

from newsvault.items import ITEM_KINDS, item_json_schema
from pipelines.stages import ItemDropped

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

logger = logging.getLogger(__name__)

STATS_PREFIX = "newsvault/dropped"
# Fields that must be present and non-empty, per item type (the contract).
REQUIRED: dict[str, tuple[str, ...]] = {
    "article": ("url", "canonical_url", "title", "body", "fetched_at"),
    "discussion": ("thread_url", "title", "last_activity_at", "fetched_at"),
}
# A slim duplicate record keeps only what points at the first copy.
_DUPLICATE_REQUIRED = ("url", "canonical_url", "fetched_at")
# Types that pass untouched: change tracking consumes them.
PASS_THROUGH = frozenset({"gone", "unreachable"})


def first_missing(kind: str, item: Any) -> str | None:
    """The first required field of ``kind`` that is absent or empty in ``item``."""
    required = REQUIRED[kind] if not item.get("duplicate_of") else _DUPLICATE_REQUIRED
    for name in required:
        value = item.get(name)
        if value is None or (isinstance(value, str | list) and not value):
            return name
    return None


def validation_reason(
    item: dict[str, Any], validators: dict[str, Draft202012Validator]
) -> str | None:
    """The first reason ``item`` is invalid (``missing_<field>``, ``invalid_<field>``), or None."""
    kind = item.get("type")
    if not isinstance(kind, str) or kind not in validators:
        return "unknown_type"
    missing = first_missing(kind, item)
    if missing is not None:
        return f"missing_{missing}"
    error = next(iter(validators[kind].iter_errors(item)), None)
    if error is None:
        return None
    field = next((str(p) for p in error.absolute_path), None)
    if field is None and error.validator == "required":
        # "'x' is a required property": name the field.
        absent = [name for name in error.validator_value if name not in item]
        return f"missing_{absent[0]}" if absent else "invalid_item"
    return f"invalid_{field}" if field else "invalid_item"


class ValidatePipeline:
    """Check each clean item; drop and count the bad ones."""

    def __init__(self, *, stats: Any = None) -> None:
        self.stats = stats
        self.fast_checks: dict[str, Callable[[Any], Any]] = {
            kind: fastjsonschema.compile(item_json_schema(kind)) for kind in ITEM_KINDS
        }

    @functools.cached_property
    def validators(self) -> dict[str, Draft202012Validator]:
        # Built at the first item that fails the fast check: importing jsonschema
        # costs a quarter of a second at every crawl's start, mostly for nothing.
        from jsonschema import Draft202012Validator

        return {kind: Draft202012Validator(item_json_schema(kind)) for kind in ITEM_KINDS}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], stats: Any = None) -> ValidatePipeline:
        return cls(stats=stats)

    def process_item(self, item: Any) -> Any:
        kind = item.get("type")
        if not isinstance(kind, str):
            kind = ""
        if kind in PASS_THROUGH:
            return item
        if self._passes_fast_check(kind, item):
            return item
        reason = validation_reason(dict(item), self.validators)
        if reason is None:
            return item
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{reason}")
            self.stats.inc_value(STATS_PREFIX)
        url = item.get("url") or item.get("thread_url")
        raise ItemDropped(f"invalid {item.get('type')} item ({reason}): {url}", log_level="INFO")

    def _passes_fast_check(self, kind: str, item: Any) -> bool:
        """The required fields are filled and the compiled schema accepts the item."""
        check = self.fast_checks.get(kind)
        if check is None:
            return False
        if first_missing(kind, item) is not None:
            return False
        try:
            check(item)
        except fastjsonschema.JsonSchemaException:
            return False
        return True
