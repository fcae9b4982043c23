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
import zlib
from typing import Any

import numpy as np
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


# One odd 64-bit multiplier per word position in a shingle (fixed, so a body
# always gets the same sketch), and the splitmix64 finaliser constants.
_POSITION_KEYS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD],
    dtype=np.uint64,
)
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def shingle_hashes(text: str, size: int = SHINGLE_WORDS) -> np.ndarray:
    """32-bit hashes of the word ``size``-shingles of lower-cased text (one for shorter texts).

    Hashed with numpy instead of one sha1 per shingle: each word gets a CRC-32 once, a shingle is a weighted
    sum of its words' CRCs (weights differ per position, so word order
    counts), mixed by the splitmix64 finaliser. Equal shingles hash equal;
    distinct ones collide about as rarely as any 32-bit hash.
    """
    words = _WORD.findall(text.lower())
    if not words:
        return np.empty(0, dtype=np.uint64)
    if size > len(_POSITION_KEYS):
        raise ValueError(f"shingles of at most {len(_POSITION_KEYS)} words")
    ids = np.fromiter((zlib.crc32(word.encode()) for word in words), dtype=np.uint64, count=len(words))
    width = min(size, len(words))
    count = len(words) - width + 1
    combined = np.zeros(count, dtype=np.uint64)
    for position in range(width):
        combined += ids[position : position + count] * _POSITION_KEYS[position]
    combined ^= combined >> np.uint64(30)
    combined *= _MIX_1
    combined ^= combined >> np.uint64(27)
    combined *= _MIX_2
    combined ^= combined >> np.uint64(31)
    return combined >> np.uint64(32)


# The permutations depend only on (num_perm, seed); building them once saves
# both time and the 1 KiB each MinHash would otherwise carry.
_TEMPLATE = MinHash(num_perm=NUM_PERM)
_PERMUTATIONS, _SCHEME = _TEMPLATE.permutations, _TEMPLATE.scheme


def minhash(text: str) -> LeanMinHash | None:
    """Lean MinHash (hash values only) of the text's shingles, None for an empty text."""
    hashes = shingle_hashes(text)
    if not len(hashes):
        return None
    # The shingles come hashed already: datasketch only applies its permutations.
    sketch = MinHash(num_perm=NUM_PERM, permutations=_PERMUTATIONS, scheme=_SCHEME, hashfunc=int)
    sketch.update_batch(hashes.tolist())
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
