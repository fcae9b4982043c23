"""A snapshot's data files being written: the WARC (pages), ``.digests.tsv`` and ``items.jsonl.gz``.

:class:`SnapshotFiles` writes into the staging dir: the rotating
``pages-NNNNN.warc.gz`` (revisits for payloads the digest index already
holds), ``.digests.tsv`` and ``items.jsonl.gz`` (sync-flushed every
``ITEM_FLUSH_EVERY`` lines, so a killed crawl leaves readable items). On close
it reports the counts the manifest needs. During a crawl it runs in the
sidecar process (pipelines/sidecar.py), which feeds it each exchange as
received and each item as the stages leave it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zlib_ng import gzip_ng

from archive.manifest import ITEMS_NAME
from archive.warc import GZIP_LEVEL, RotatingWarcWriter, payload_digest

log = logging.getLogger(__name__)

# Field order of an exchange message (after the leading "page").
EXCHANGE_FIELDS = (
    "url",
    "method",
    "request_target",
    "request_headers",
    "request_body",
    "status",
    "response_headers",
    "body",
)
# The (digest, file, record id, uri, date) of every full response, for the index.
DIGESTS_NAME = ".digests.tsv"
# Sync-flush the items gzip stream this often so a killed crawl leaves readable items.
ITEM_FLUSH_EVERY = 50


def item_line(item: dict[str, Any]) -> bytes:
    """One line of items.jsonl.gz: keys sorted, UTF-8, anything unusual as its str()."""
    return (json.dumps(item, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode()


@dataclass
class RecordedCounts:
    """What the manifest needs from the snapshot's files."""

    pages: int = 0
    revisits: int = 0
    refers_to: frozenset[str] = frozenset()
    warc_files: int = 0
    # Items written, by "<type>/<change>".
    items: dict[str, int] = field(default_factory=dict)


class SnapshotFiles:
    """Writes a snapshot's data files into its staging dir: WARC records (revisits looked up), digest list, items."""

    def __init__(self, directory: Path, *, max_bytes: int, snapshot_id: str, site: str, index: Any) -> None:
        self.site = site
        self.index = index
        self._items = gzip_ng.open(directory / ITEMS_NAME, "wb", compresslevel=GZIP_LEVEL)
        self._items_since_flush = 0
        self.warc = RotatingWarcWriter(directory, max_bytes=max_bytes, snapshot_id=snapshot_id)
        self._digests = open(directory / DIGESTS_NAME, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.pages = 0
        self.revisits = 0
        self.refers_to: set[str] = set()
        self.item_counts: Counter[str] = Counter()
        self._closed = False

    def write_item(self, item: dict[str, Any]) -> None:
        """Append one item to items.jsonl.gz (and count it by type and change)."""
        self.append_item(item)

    def append_item(self, item: dict[str, Any]) -> bytes:
        """:meth:`write_item`, giving back the line written (the catalog's preparation reuses it)."""
        self.item_counts[f"{item.get('type', 'unknown')}/{item.get('change', 'none')}"] += 1
        line = item_line(item)
        self._items.write(line)
        self._items_since_flush += 1
        if self._items_since_flush >= ITEM_FLUSH_EVERY:
            self._items.flush()
            self._items_since_flush = 0
        return line

    def record(self, **exchange: Any) -> None:
        """Write one exchange: a revisit if the index holds an earlier capture of its payload."""
        digest = payload_digest(exchange["body"])
        prior = self.index.lookup(self.site, digest) if self.index is not None else None
        written = self.warc.write_exchange(**exchange, prior=prior, digest=digest)
        self.pages += 1
        if prior is not None:
            self.revisits += 1
            self.refers_to.add(prior.snapshot_id)
        else:
            self._digests.write(
                f"{written.digest}\t{written.filename}\t{written.record_id}\t{written.uri}\t{written.date}\n"
            )

    def counts(self) -> RecordedCounts:
        return RecordedCounts(self.pages, self.revisits, frozenset(self.refers_to), self.warc.index + 1,
                              dict(self.item_counts))

    def close(self) -> RecordedCounts:
        """Close every file even if one fails (the first failure propagates); the counts. Closing twice is a no-op."""
        if not self._closed:
            self._closed = True
            try:
                self._items.close()
            finally:
                try:
                    self.warc.close()
                finally:
                    self._digests.close()
        return self.counts()
