"""Generic extraction with trafilatura, for pages whose profile and metadata say too little."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class GenericResult:
    title: str | None
    body: list[str]
    date: str | None


def generic_extract(html: str, url: str) -> GenericResult:
    """Title, body paragraphs and date as trafilatura finds them."""
    # Imported here: trafilatura pulls in a lot and most pages never need it.
    import trafilatura

    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        # Measured on the extraction dev set (bench/extraction_quality.py):
        # precision mode without comments, tables kept, scores best.
        favor_precision=True,
        include_comments=False,
        include_tables=True,
        # Only dates the page states in markup, never guesses from the text.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if doc is None:
        return GenericResult(None, [], None)
    text = getattr(doc, "text", None) or ""
    body = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return GenericResult(getattr(doc, "title", None) or None, body, getattr(doc, "date", None) or None)
