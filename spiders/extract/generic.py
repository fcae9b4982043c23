"""Generic extraction with trafilatura, for pages whose profile and metadata say too little.

Precision mode scores best on the extraction dev set, but on some pages it keeps
only a notice (a reprint line, a "first published in" credit) and drops the
article itself: trafilatura's precision mode deletes any paragraph that is
almost wholly one link longer than 10 characters (100 in its other modes), so a
body of linked paragraphs goes and the notice stays. Recall mode finds that
article. The guard: when the precision result is a small fraction of what
recall mode finds and the recall result looks like an article, the recall
result is used. The recall pass only runs when the precision result is short
beside the page's visible text, which bounds what recall can find.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from parsel import Selector

log = logging.getLogger(__name__)

# The recall result replaces the precision one only when precision kept less
# than this share of recall's characters. On the extraction dev set the
# smallest share is 0.57, on a page where precision rightly drops a list of
# related stories; a notice kept instead of the article is typically under 0.2.
RECALL_SWITCH_RATIO = 0.25
# The recall pass runs only when precision kept less than this share of the
# page's visible text. Recall text is part of the page text, so with the same
# value as RECALL_SWITCH_RATIO this skips no page the guard would change; on
# the dev set it runs on 9 pages of 60.
RECALL_PASS_PAGE_SHARE = RECALL_SWITCH_RATIO
# "Looks like an article": at least this many characters (trafilatura's own
# min_extracted_size, below which it treats an extraction as too short)...
ARTICLE_MIN_CHARS = 250
# ...in at least this many paragraphs of at least ARTICLE_PARAGRAPH_CHARS
# characters, so a run of short menu or link lines never replaces a result.
ARTICLE_MIN_PARAGRAPHS = 3
ARTICLE_PARAGRAPH_CHARS = 40

# Elements under <body> whose text no reader sees.
_HIDDEN_TEXT_XPATH = "//body//script/text()|//body//style/text()|//body//noscript/text()|//body//template/text()"


@dataclass
class GenericResult:
    title: str | None
    body: list[str]
    date: str | None
    # Which trafilatura mode gave the body: "precision", or "recall" when the guard chose it.
    mode: str = "precision"


def visible_text_chars(root: Selector) -> int:
    """Characters of whitespace-normalised body text, without script/style/noscript/template."""
    total = len(root.xpath("normalize-space(//body)").get() or "")
    hidden = sum(len(" ".join(text.split())) for text in root.xpath(_HIDDEN_TEXT_XPATH).getall())
    return max(total - hidden, 0)


def _extract(html: str, url: str, favor: str) -> Any:
    # Imported here: trafilatura pulls in a lot and most pages never need it.
    import trafilatura

    return trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        # Measured on the extraction dev set (bench/extraction_quality.py):
        # precision mode without comments, tables kept, scores best.
        favor_precision=favor == "precision",
        favor_recall=favor == "recall",
        include_comments=False,
        include_tables=True,
        # Only dates the page states in markup, never guesses from the text.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )


def _body(doc: Any) -> list[str]:
    text = (getattr(doc, "text", None) or "") if doc is not None else ""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _chars(body: list[str]) -> int:
    return sum(map(len, body))


def looks_like_article(body: list[str]) -> bool:
    paragraphs = sum(1 for line in body if len(line) >= ARTICLE_PARAGRAPH_CHARS)
    return _chars(body) >= ARTICLE_MIN_CHARS and paragraphs >= ARTICLE_MIN_PARAGRAPHS


def generic_extract(html: str | Selector, url: str, *, recall_guard: bool = True) -> GenericResult:
    """Title, body paragraphs and date as trafilatura finds them.

    ``html`` may be the parsed page (its visible text is then measured without
    parsing again). ``recall_guard=False`` gives the precision result alone.
    """
    root = html if isinstance(html, Selector) else None
    source = root.get() if root is not None else str(html)
    doc = _extract(source, url, "precision")
    body, mode = _body(doc), "precision"

    if recall_guard:
        precision_chars = _chars(body)
        if root is None:
            root = Selector(text=source)
        if precision_chars < RECALL_PASS_PAGE_SHARE * visible_text_chars(root):
            recall_doc = _extract(source, url, "recall")
            recall_body = _body(recall_doc)
            if precision_chars < RECALL_SWITCH_RATIO * _chars(recall_body) and looks_like_article(recall_body):
                log.debug(
                    "generic extraction: precision kept %d of %d recall characters, using recall: %s",
                    precision_chars, _chars(recall_body), url,
                )
                body, mode = recall_body, "recall"
                doc = doc if doc is not None else recall_doc

    if doc is None:
        return GenericResult(None, [], None)
    return GenericResult(getattr(doc, "title", None) or None, body, getattr(doc, "date", None) or None, mode)
