"""Placeholder pass-through; replaced by the real pipeline."""

from __future__ import annotations

from typing import Any


class ValidatePipeline:
    def process_item(self, item: Any, spider: Any = None) -> Any:
        return item
