"""Counts behind the run-health figures: which fields each article has, and where its body came from.

Counted by the clean stage on every cleaned article (before dedupe, so a run
of reprints still shows its coverage): ``newsvault/coverage/articles``, one
``newsvault/coverage/<field>`` per non-empty field, and
``newsvault/extraction/<path>`` for the body's source (``selectors``: the
profile's own; ``jsonld``: the page's metadata; ``trafilatura``: generic
extraction). A site that changes its markup shows here first: the selectors
stop matching and the fallbacks take over with weaker bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from newsvault.run_health import COVERAGE_FIELDS, EXTRACTION_PATHS

COVERAGE_STATS = "newsvault/coverage/{}"
EXTRACTION_STATS = "newsvault/extraction/{}"


def count_article(stats: Any, item: Mapping[str, Any], extraction: str | None) -> None:
    """Add one cleaned article to the coverage and extraction-path counts (``stats`` may be None)."""
    if stats is None:
        return
    stats.inc_value(COVERAGE_STATS.format("articles"))
    for name in COVERAGE_FIELDS:
        if item.get(name):
            stats.inc_value(COVERAGE_STATS.format(name))
    stats.inc_value(EXTRACTION_STATS.format(extraction if extraction in EXTRACTION_PATHS else "unknown"))
