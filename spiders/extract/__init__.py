"""Field extraction: profile selectors, then embedded metadata, then generic extraction."""

from __future__ import annotations

from spiders.extract.article import extract_article, http_date_to_iso, utc_now
from spiders.extract.discussion import extract_entries

__all__ = ["extract_article", "extract_entries", "http_date_to_iso", "utc_now"]
