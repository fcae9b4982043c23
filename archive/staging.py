"""One snapshot being written: the staging dir in the spool, its writers, and finalisation.

Everything streams to disk (items through gzip, pages through the rotating
WARC writer), so memory stays flat however large the crawl is.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from archive.ids import new_snapshot_id, utc_iso
from archive.index import DigestIndex
from archive.manifest import ITEMS_NAME, MANIFEST_NAME, Manifest, json_safe_stats, snapshot_files
from archive.paths import check_kind, check_site
from archive.warc import GZIP_LEVEL, PriorCapture, RotatingWarcWriter

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
DIGESTS_NAME = ".digests.tsv"
META_NAME = ".meta.json"
LOCK_NAME = ".lock"
# Sync-flush the gzip stream this often so a killed crawl leaves readable items.
_ITEM_FLUSH_EVERY = 50


def hold_lock(directory: Path) -> int:
    """Take the staging dir's lock for the life of this process (released by the OS if it dies)."""
    fd = os.open(directory / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def is_live(directory: Path) -> bool:
    """True while a running crawl still holds ``directory``'s lock."""
    lock = directory / LOCK_NAME
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def entry_dir(spool_dir: Path, site: str, kind: str, snapshot_id: str) -> Path:
    return spool_dir / site / kind / snapshot_id


class Staging:
    """The files of one snapshot while its crawl runs."""

    def __init__(
        self,
        spool_dir: Path,
        site: str,
        kind: str,
        *,
        warc_max_bytes: int,
        index: DigestIndex | None,
        snapshot_id: str | None = None,
        previous_snapshot_id: str | None = None,
        started: datetime | None = None,
    ) -> None:
        self.site = check_site(site)
        self.kind = check_kind(kind)
        self.started = started or datetime.now(UTC)
        self.snapshot_id = snapshot_id or new_snapshot_id(self.started)
        self.previous_snapshot_id = previous_snapshot_id
        self.final_dir = entry_dir(spool_dir, site, kind, self.snapshot_id)
        self.dir = self.final_dir.with_name(self.snapshot_id + PARTIAL_SUFFIX)
        self.dir.mkdir(parents=True, exist_ok=False)
        self._lock_fd: int | None = hold_lock(self.dir)
        self.index = index
        # What salvage needs to build a manifest if this process dies.
        (self.dir / META_NAME).write_text(
            json.dumps(
                {
                    "snapshot_id": self.snapshot_id,
                    "site": site,
                    "kind": kind,
                    "started_at": utc_iso(self.started),
                    "previous_snapshot_id": previous_snapshot_id,
                }
            ),
            encoding="utf-8",
        )
        self._items: TextIO | None = gzip.open(self.dir / ITEMS_NAME, "wt", encoding="utf-8", compresslevel=GZIP_LEVEL)  # noqa: SIM115
        self._items_since_flush = 0
        self.warc = RotatingWarcWriter(self.dir, max_bytes=warc_max_bytes, snapshot_id=self.snapshot_id)
        self._digests: TextIO | None = open(self.dir / DIGESTS_NAME, "w", encoding="utf-8")  # noqa: SIM115
        self.item_counts: Counter[str] = Counter()
        self.pages = 0
        self.revisits = 0
        self.refers_to: set[str] = set()
        self.manifest: Manifest | None = None

    # --- items --------------------------------------------------------------
    def write_item(self, item: dict[str, Any]) -> None:
        assert self._items is not None, "staging already finalised"
        self._items.write(json.dumps(item, ensure_ascii=False, sort_keys=True, default=str) + "\n")
        self.item_counts[f"{item.get('type', 'unknown')}/{item.get('change', 'none')}"] += 1
        self._items_since_flush += 1
        if self._items_since_flush >= _ITEM_FLUSH_EVERY:
            self._items.flush()
            self._items_since_flush = 0

    # --- pages --------------------------------------------------------------
    def lookup_prior(self, digest: str) -> PriorCapture | None:
        return self.index.lookup(self.site, digest) if self.index is not None else None

    def write_exchange(self, **kwargs: Any) -> None:
        written = self.warc.write_exchange(**kwargs)
        self.pages += 1
        prior: PriorCapture | None = kwargs.get("prior")
        if prior is not None:
            self.revisits += 1
            self.refers_to.add(prior.snapshot_id)
        elif self._digests is not None:
            self._digests.write(
                f"{written.digest}\t{written.filename}\t{written.record_id}\t{written.uri}\t{written.date}\n"
            )

    # --- close --------------------------------------------------------------
    def _close_writers(self) -> None:
        # Every file gets closed even when one of them fails (the WARC worker
        # raises a write that failed earlier); the first failure propagates.
        try:
            if self._items is not None:
                items, self._items = self._items, None
                items.close()
        finally:
            try:
                self.warc.close()
            finally:
                if self._digests is not None:
                    digests, self._digests = self._digests, None
                    digests.close()

    def abandon(self) -> None:
        """Close the files and release the lock, leaving ``<id>.partial`` for salvage (no manifest, no index)."""
        self._close_writers()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def finalise(self, *, finish_reason: str, stats: dict[str, Any] | None = None) -> Manifest:
        """Close the files, write the manifest, rename ``<id>.partial`` to ``<id>``, index the digests."""
        self._close_writers()
        status = "complete" if finish_reason == "finished" else "partial"
        manifest = build_manifest(
            self.dir,
            snapshot_id=self.snapshot_id,
            site=self.site,
            kind=self.kind,
            started_at=utc_iso(self.started),
            status=status,
            finish_reason=finish_reason,
            counts=self.counts(),
            crawl_stats=json_safe_stats(stats or {}),
            previous_snapshot_id=self.previous_snapshot_id,
            refers_to=sorted(self.refers_to),
        )
        os.replace(self.dir, self.final_dir)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self.index is not None:
            self.index.add(self.site, self.snapshot_id, read_digests(self.final_dir / DIGESTS_NAME))
            self.index.record_snapshot(self.site, self.kind, self.snapshot_id)
        self.manifest = manifest
        log.info("snapshot %s finalised (%s, %d files)", self.snapshot_id, status, len(manifest.files))
        return manifest

    def counts(self) -> dict[str, Any]:
        items: dict[str, dict[str, int]] = {}
        for key, count in sorted(self.item_counts.items()):
            kind, change = key.split("/", 1)
            items.setdefault(kind, {})[change] = count
        return {
            "items": sum(self.item_counts.values()),
            "items_by_type": items,
            "pages": self.pages,
            "revisits": self.revisits,
            "warc_files": self.warc.index + 1,
        }


def read_digests(path: Path) -> Iterator[tuple[str, str, str, str, str]]:
    """Stream the (digest, file, record id, uri, date) rows a staging dir recorded."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 5:
                yield (parts[0], parts[1], parts[2], parts[3], parts[4])


def build_manifest(directory: Path, **fields: Any) -> Manifest:
    """Hash the data files of ``directory`` and write its ``manifest.json`` (exclusive create)."""
    manifest = Manifest(finished_at=utc_iso(datetime.now(UTC)), files=snapshot_files(directory), **fields)
    manifest.validate()
    with open(directory / MANIFEST_NAME, "xb") as fh:
        fh.write(manifest.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    return manifest
