"""DedupePipeline: one item per canonical URL / thread within a run; exact and near duplicates linked.

- the same canonical URL (or discussion thread) twice: later ones dropped;
- the same content hash at another canonical URL: a slim record with
  ``duplicate_of`` replaces the full item;
- a body similar above ``NEWSVAULT_NEAR_DUPLICATE_THRESHOLD`` (MinHash LSH over
  word 5-shingles) to an earlier one: ``near_duplicate_of`` is set.

Per article a canonical URL, a hash and a 64-permutation MinHash with its LSH
band keys are kept, on disk (pipelines/run_index.py), for the run only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from datasketch import LeanMinHash, MinHash, MinHashLSH
from scrapy.exceptions import DropItem

from pipelines.run_index import RunIndex

logger = logging.getLogger(__name__)

STATS_PREFIX = "newsvault"
DEFAULT_THRESHOLD = 0.8
NUM_PERM = 64
SHINGLE_WORDS = 5
SLIM_FIELDS: tuple[str, ...] = (
    "type",
    "site",
    "url",
    "canonical_url",
    "title",
    "content_hash",
    "fetched_at",
)
_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """Word ``size``-shingles of lower-cased text (one shingle for shorter texts)."""
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


# The permutations depend only on (num_perm, seed); building them once saves
# both time and the 1 KiB each MinHash would otherwise carry.
_TEMPLATE = MinHash(num_perm=NUM_PERM)
_PERMUTATIONS, _SCHEME = _TEMPLATE.permutations, _TEMPLATE.scheme


def minhash(text: str) -> LeanMinHash | None:
    """Lean MinHash (hash values only) of the text's shingles, None for an empty text."""
    grams = shingles(text)
    if not grams:
        return None
    sketch = MinHash(num_perm=NUM_PERM, permutations=_PERMUTATIONS, scheme=_SCHEME)
    sketch.update_batch(list(grams))
    return LeanMinHash(sketch)


class DedupePipeline:
    """Within-run duplicate handling; see the module docstring."""

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, stats: Any = None) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold!r}")
        self.threshold = threshold
        self.stats = stats
        # datasketch's choice of bands x rows for this threshold, used by our
        # on-disk index the same way its in-memory MinHashLSH would.
        params = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._index = RunIndex(bands=params.b, rows=params.r)

    @classmethod
    def from_crawler(cls, crawler: Any) -> DedupePipeline:
        threshold = crawler.settings.getfloat(
            "NEWSVAULT_NEAR_DUPLICATE_THRESHOLD", DEFAULT_THRESHOLD
        )
        return cls(threshold=threshold, stats=crawler.stats)

    def close_spider(self) -> None:
        self._index.close()

    def process_item(self, item: Any) -> Any:
        kind = item.get("type")
        if kind == "article":
            return self._article(item)
        if kind == "discussion":
            key = item.get("thread_url") or ""
            if not self._index.add_key("discussion", key):
                # A thread that moved up while the list was paged shows twice.
                self._inc("duplicates")
                self._inc("duplicates/discussion")
                raise DropItem(f"duplicate thread in this run: {key}", log_level="DEBUG")
        return item

    def _article(self, item: Any) -> Any:
        canonical = item["canonical_url"]
        if not self._index.add_key("article", canonical):
            self._inc("duplicates")
            self._inc("duplicates/article")
            raise DropItem(f"duplicate canonical URL in this run: {canonical}", log_level="DEBUG")

        digest = item.get("content_hash")
        first = self._index.url_with_digest(digest) if digest else None
        if first is not None:
            self._inc("duplicates")
            self._inc("duplicates/article")
            slim = {key: item.get(key) for key in SLIM_FIELDS}
            slim["duplicate_of"] = first
            slim["schema_version"] = item.get("schema_version")
            return slim
        if digest:
            self._index.add_digest(digest, canonical)

        sketch = minhash(item.get("body") or "")
        if sketch is None:
            return item
        earlier = self._index.nearest(sketch.hashvalues, self.threshold)
        if earlier is not None:
            item["near_duplicate_of"] = earlier
            self._inc("near_duplicates")
        self._index.add_sketch(canonical, sketch.hashvalues)
        return item

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{key}")
