"""DedupePipeline: one item per canonical URL / thread within a run; exact and near duplicates linked.

- the same canonical URL (or discussion thread) twice: later ones dropped;
- the same content hash at another canonical URL: a slim record with
  ``duplicate_of`` replaces the full item;
- a body similar above ``NEWSVAULT_NEAR_DUPLICATE_THRESHOLD`` (MinHash LSH over
  word 5-shingles) to an earlier one: ``near_duplicate_of`` is set.

Per article only a canonical URL, a hash and a 64-permutation MinHash are kept.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from datasketch import LeanMinHash, MinHash, MinHashLSH
from scrapy.exceptions import DropItem

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
        self._seen_urls: set[tuple[str, str]] = set()
        self._by_hash: dict[str, str] = {}
        self._sketches: dict[str, LeanMinHash] = {}
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)

    @classmethod
    def from_crawler(cls, crawler: Any) -> DedupePipeline:
        threshold = crawler.settings.getfloat(
            "NEWSVAULT_NEAR_DUPLICATE_THRESHOLD", DEFAULT_THRESHOLD
        )
        return cls(threshold=threshold, stats=crawler.stats)

    def process_item(self, item: Any) -> Any:
        kind = item.get("type")
        if kind == "article":
            return self._article(item)
        if kind == "discussion":
            key = item.get("thread_url") or ""
            if ("discussion", key) in self._seen_urls:
                # A thread that moved up while the list was paged shows twice.
                self._inc("duplicates")
                self._inc("duplicates/discussion")
                raise DropItem(f"duplicate thread in this run: {key}", log_level="DEBUG")
            self._seen_urls.add(("discussion", key))
        return item

    def _article(self, item: Any) -> Any:
        canonical = item["canonical_url"]
        if ("article", canonical) in self._seen_urls:
            self._inc("duplicates")
            self._inc("duplicates/article")
            raise DropItem(f"duplicate canonical URL in this run: {canonical}", log_level="DEBUG")
        self._seen_urls.add(("article", canonical))

        digest = item.get("content_hash")
        first = self._by_hash.get(digest) if digest else None
        if first is not None:
            self._inc("duplicates")
            self._inc("duplicates/article")
            slim = {key: item.get(key) for key in SLIM_FIELDS}
            slim["duplicate_of"] = first
            slim["schema_version"] = item.get("schema_version")
            return slim
        if digest:
            self._by_hash[digest] = canonical

        sketch = minhash(item.get("body") or "")
        if sketch is None:
            return item
        earlier = self._nearest(sketch)
        if earlier is not None:
            item["near_duplicate_of"] = earlier
            self._inc("near_duplicates")
        self._lsh.insert(canonical, sketch)
        self._sketches[canonical] = sketch
        return item

    def _nearest(self, sketch: LeanMinHash) -> str | None:
        """The most similar earlier article at or above the threshold (LSH candidates, checked)."""
        best: tuple[float, str] | None = None
        for key in self._lsh.query(sketch):
            similarity = sketch.jaccard(self._sketches[key])
            if similarity >= self.threshold and (best is None or similarity > best[0]):
                best = (similarity, key)
        return best[1] if best else None

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{key}")
