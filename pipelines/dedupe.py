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

import functools
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipelines.minhash import NUM_PERM, lsh_bands, sketch
from pipelines.run_index import RunIndex
from pipelines.stages import ItemDropped

logger = logging.getLogger(__name__)

STATS_PREFIX = "newsvault"
SHINGLE_WORDS = 5
# (false positive, false negative) weights for the LSH banding.
LSH_WEIGHTS = (0.1, 0.9)
SLIM_FIELDS: tuple[str, ...] = (
    "type",
    "site",
    "url",
    "canonical_url",
    "title",
    "content_hash",
    "fetched_at",
)


# Polynomial string hashing modulo 2**64 (numpy's uint64 arithmetic wraps):
# an odd base, so it has an inverse and a window's hash can be shifted to
# position 0. Powers are cached up to _POWERS_CACHED characters.
_BASE = 0x100000001B3
_BASE_INVERSE = pow(_BASE, -1, 2**64)
_POWERS_CACHED = 1 << 20
_powers = np.ones(1, dtype=np.uint64)
_inverse_powers = np.ones(1, dtype=np.uint64)
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SPACE = ord(" ")


def _power_tables(length: int) -> tuple[np.ndarray, np.ndarray]:
    """base**i and base**-i (mod 2**64) for i < ``length``."""
    global _powers, _inverse_powers
    if len(_powers) >= length:
        return _powers, _inverse_powers
    size = max(length, 2 * len(_powers))
    powers = np.empty(size, dtype=np.uint64)
    inverse = np.empty(size, dtype=np.uint64)
    powers[0] = inverse[0] = 1
    powers[1:] = np.cumprod(np.full(size - 1, _BASE, dtype=np.uint64))
    inverse[1:] = np.cumprod(np.full(size - 1, _BASE_INVERSE, dtype=np.uint64))
    if size <= _POWERS_CACHED:
        _powers, _inverse_powers = powers, inverse
    return powers, inverse


@functools.cache
def _word_table() -> np.ndarray:
    """Which code points below U+10000 re's ``\\w`` matches: str.isalnum() or the underscore."""
    return np.fromiter((chr(code).isalnum() for code in range(0x10000)), dtype=bool, count=0x10000) | (
        np.arange(0x10000) == ord("_"))


def _is_word(codes: np.ndarray) -> np.ndarray:
    """A word-character mask for an array of code points."""
    table = _word_table()
    astral = codes >= len(table)
    mask = table[np.where(astral, 0, codes)]
    if astral.any():  # beyond the table (emoji, historic scripts): asked one distinct code point at a time
        for code in np.unique(codes[astral]).tolist():
            mask[codes == code] = chr(code).isalnum()
    return mask


def word_codes(text: str) -> np.ndarray:
    """The code points of the lower-cased words of ``text`` (runs of ``\\w``) joined by single spaces.

    The same characters as ``" ".join(re.findall(r"\\w+", text.lower()))``,
    in a few array operations instead of a list of word strings.
    """
    codes = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32)
    if not len(codes):
        return codes.astype(np.uint64)
    word = _is_word(codes)
    # Keep every word character, and one separator after each word that more text follows.
    after_word = np.empty_like(word)
    after_word[0] = False
    after_word[1:] = word[:-1]
    keep = word | after_word
    kept = np.where(word[keep], codes[keep], _SPACE).astype(np.uint64)
    # A separator is only kept after a word, so only the last one can be one too many.
    return kept[:-1] if len(kept) and kept[-1] == _SPACE else kept


def shingle_hashes(text: str, size: int = SHINGLE_WORDS) -> np.ndarray:
    """32-bit hashes of the word ``size``-shingles of lower-cased text (one for shorter texts).

    Vectorised instead of one sha1 per shingle: the words are joined by single
    spaces (as code points), a prefix sum of the polynomial hash gives every
    window's hash in a few array operations, and the splitmix64 finaliser
    mixes it. Equal shingles hash equal; distinct ones collide about as rarely
    as any 32-bit hash. (The hashes only ever meet others of the same run.)
    """
    codes = word_codes(text)
    if not len(codes):
        return np.empty(0, dtype=np.uint64)
    powers, inverse = _power_tables(len(codes) + 1)
    prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
    np.cumsum(codes * powers[: len(codes)], out=prefix[1:])
    # Words contain no spaces (\w+), so the spaces are exactly the separators.
    spaces = np.flatnonzero(codes == _SPACE)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [len(codes)]))
    words = len(starts)
    width = min(size, words)
    first, last = starts[: words - width + 1], ends[width - 1 :]
    combined = (prefix[last] - prefix[first]) * inverse[first]
    combined ^= combined >> np.uint64(30)
    combined *= _MIX_1
    combined ^= combined >> np.uint64(27)
    combined *= _MIX_2
    combined ^= combined >> np.uint64(31)
    return combined >> np.uint64(32)


def minhash(text: str) -> np.ndarray | None:
    """The MinHash (pipelines/minhash.py) of the text's shingles, None for an empty text."""
    return sketch(shingle_hashes(text), NUM_PERM)


class DedupePipeline:
    """Within-run duplicate handling; see the module docstring."""

    def __init__(self, *, threshold: float = 0.8, stats: Any = None) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold!r}")
        self.threshold = threshold
        self.stats = stats
        # The bands x rows datasketch's MinHashLSH would choose for this threshold,
        # used by our on-disk index. Weighted for recall: every candidate is
        # checked against the threshold anyway, so a false candidate costs a
        # comparison while a missed one loses the link (equal weights give
        # 5 x 11, which misses ~15% of pairs at 0.9).
        bands, rows = lsh_bands(threshold, NUM_PERM, LSH_WEIGHTS)
        self._index = RunIndex(bands=bands, rows=rows)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], stats: Any = None) -> DedupePipeline:
        return cls(threshold=float(settings["NEWSVAULT_NEAR_DUPLICATE_THRESHOLD"]), stats=stats)

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
                raise ItemDropped(f"duplicate thread in this run: {key}", log_level="DEBUG")
        return item

    def _article(self, item: Any) -> Any:
        canonical = item["canonical_url"]
        if not self._index.add_key("article", canonical):
            self._inc("duplicates")
            self._inc("duplicates/article")
            raise ItemDropped(f"duplicate canonical URL in this run: {canonical}", log_level="DEBUG")

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

        hashvalues = minhash(item.get("body") or "")
        if hashvalues is None:
            return item
        earlier = self._index.nearest(hashvalues, self.threshold)
        if earlier is not None:
            item["near_duplicate_of"] = earlier
            self._inc("near_duplicates")
        self._index.add_sketch(canonical, hashvalues)
        return item

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{key}")
