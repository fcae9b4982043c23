"""One snapshot being written: the staging dir in the spool, its writers, and finalisation.

Everything streams to disk (items through gzip, pages through the rotating
WARC writer), so memory stays flat however large the crawl is.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from archive.ids import new_snapshot_id, utc_iso
from archive.index import DigestIndex
from archive.manifest import MANIFEST_NAME, Manifest, snapshot_files
from archive.paths import check_kind, check_site
from archive.snapshot_files import DIGESTS_NAME, RecordedCounts, SnapshotFiles
from newsvault.jsonsafe import json_safe

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
META_NAME = ".meta.json"
LOCK_NAME = ".lock"


class SnapshotFilesSink(Protocol):
    """Where a staging dir's pages and items go: SnapshotFiles here, or the sidecar's end of them."""

    def record(self, **exchange: Any) -> None: ...

    def write_item(self, item: dict[str, Any]) -> None: ...

    def close(self) -> RecordedCounts: ...


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
        local_files: bool = True,
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
        self.warc_max_bytes = warc_max_bytes
        # Pages and items go to the snapshot's files: in a crawl the sidecar
        # writes them (pipelines/sidecar.py attaches itself with use_files);
        # for direct use they are written here.
        self.files: SnapshotFilesSink | None = None
        if local_files:
            self.files = SnapshotFiles(self.dir, max_bytes=warc_max_bytes, snapshot_id=self.snapshot_id, site=site,
                                       index=index)
        self.recorded: RecordedCounts | None = None
        self.manifest: Manifest | None = None

    @property
    def lock_fd(self) -> int | None:
        """The staging lock's descriptor while this process holds it (the sidecar inherits a duplicate)."""
        return self._lock_fd

    def use_files(self, files: SnapshotFilesSink) -> None:
        """Write pages and items through ``files`` (the sidecar) instead of in this process."""
        if self.files is not None:
            raise RuntimeError("this staging dir already has its files")
        self.files = files

    # --- items and pages -------------------------------------------------------
    def write_item(self, item: dict[str, Any]) -> None:
        assert self.files is not None, "staging has no files open (finalised already?)"
        self.files.write_item(item)

    def record_exchange(self, **exchange: Any) -> None:
        """Record one request/response pair (as a revisit if the index holds its payload already)."""
        assert self.files is not None, "staging has no files open (finalised already?)"
        self.files.record(**exchange)

    # --- close --------------------------------------------------------------
    def _close_writers(self) -> None:
        files, self.files = self.files, None
        if files is not None:
            self.recorded = files.close()

    def abandon(self) -> None:
        """Close the files and release the lock, leaving ``<id>.partial`` for salvage (no manifest, no index)."""
        try:
            self._close_writers()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def finalise(self, *, finish_reason: str, stats: dict[str, Any] | None = None, status: str | None = None) -> Manifest:
        """Close the files, write the manifest, rename ``<id>.partial`` to ``<id>``, index the digests.

        ``status`` is the run's (newsvault.outcome.snapshot_status); without it,
        ``complete`` for a crawl that finished, else ``partial``.
        """
        self._close_writers()
        status = status or ("complete" if finish_reason == "finished" else "partial")
        manifest = build_manifest(
            self.dir,
            snapshot_id=self.snapshot_id,
            site=self.site,
            kind=self.kind,
            started_at=utc_iso(self.started),
            status=status,
            finish_reason=finish_reason,
            counts=self.counts(),
            crawl_stats=json_safe(stats or {}),
            previous_snapshot_id=self.previous_snapshot_id,
            refers_to=sorted(self.recorded.refers_to if self.recorded else ()),
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
        """The manifest's counts, from the files once they are closed."""
        recorded = self.recorded or RecordedCounts()
        items: dict[str, dict[str, int]] = {}
        for key, count in sorted(recorded.items.items()):
            kind, change = key.split("/", 1)
            items.setdefault(kind, {})[change] = count
        return {
            "items": sum(recorded.items.values()),
            "items_by_type": items,
            "pages": recorded.pages,
            "revisits": recorded.revisits,
            "warc_files": recorded.warc_files,
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
