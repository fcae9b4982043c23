"""A page as it was captured: the archived HTTP response of a URL in a committed snapshot.

The web view shows what a site served from the snapshot's own WARC files.
Each file is downloaded once, hashed against the manifest on the way in (a
corrupt file is an IntegrityError, never a page), and indexed by target URL
and record id; a revisit record (the payload was unchanged since an earlier
snapshot) is answered with the earlier snapshot's payload, its digest checked.
"""

from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from archive.paths import check_name
from archive.restore import PayloadReader, download_verified
from archive.stores import SnapshotStore
from archive.verify import find_snapshot, load_manifest
from archive.warc import HEADER_REFERS_FILE, HEADER_REFERS_SNAPSHOT
from newsvault.errors import IntegrityError, NewsvaultError
from pipelines.parse.urls import canonical_form

# A capture bigger than this is cut (the web view says so); pages are far smaller.
MAX_CAPTURE_BYTES = 16 * 1024 * 1024
# Snapshots whose WARC files stay downloaded; the least recently read go first.
CACHED_SNAPSHOTS = 8


class CaptureNotFoundError(NewsvaultError, LookupError):
    """The snapshot holds no response for that URL."""


@dataclass(frozen=True)
class Capture:
    """One archived response: what the site sent for ``url`` at ``captured_at``."""

    snapshot_id: str
    url: str
    captured_at: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool
    # The snapshot whose WARC holds the payload (an earlier one for a revisit record).
    payload_snapshot_id: str

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return "application/octet-stream"


@dataclass(frozen=True)
class _Record:
    path: Path
    offset: int


@dataclass
class _SnapshotIndex:
    site: str
    by_url: dict[str, _Record]
    by_id: dict[str, _Record]
    files: dict[str, Path]


class CaptureReader:
    """Reads captures out of one store, caching a few snapshots' verified WARC files under ``cache_dir``."""

    def __init__(self, store: SnapshotStore, cache_dir: Path, *, cached_snapshots: int = CACHED_SNAPSHOTS,
                 max_bytes: int = MAX_CAPTURE_BYTES) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self.cached_snapshots = cached_snapshots
        self.max_bytes = max_bytes
        self._indexes: OrderedDict[str, _SnapshotIndex] = OrderedDict()
        # Requests come from a thread pool; one download of a snapshot serves them all.
        self._lock = threading.Lock()

    def capture(self, snapshot_id: str, url: str) -> Capture:
        """The response for ``url`` (or its canonical form) in snapshot ``snapshot_id``."""
        with self._lock:
            index = self._index(snapshot_id)
            record = index.by_url.get(url)
            if record is None:
                try:
                    record = index.by_url.get(canonical_form(url))
                except ValueError:
                    record = None
            if record is None:
                raise CaptureNotFoundError(f"snapshot {snapshot_id} holds no capture of {url!r}")
            return self._read(snapshot_id, record)

    def _index(self, snapshot_id: str) -> _SnapshotIndex:
        if snapshot_id in self._indexes:
            self._indexes.move_to_end(snapshot_id)
            return self._indexes[snapshot_id]
        ref = find_snapshot(self.store, snapshot_id)
        manifest = load_manifest(self.store, ref)
        folder = self.cache_dir / check_name(snapshot_id)
        folder.mkdir(parents=True, exist_ok=True)
        index = _SnapshotIndex(ref.site, {}, {}, {})
        for name in manifest.warc_names():
            path = download_verified(self.store, ref, manifest, name, folder, None)
            index.files[name] = path
            with open(path, "rb") as fh:
                records = ArchiveIterator(fh)
                for record in records:
                    if record.rec_type not in ("response", "revisit"):
                        continue
                    at = _Record(path, records.get_record_offset())
                    uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                    index.by_id[record.rec_headers.get_header("WARC-Record-ID") or ""] = at
                    index.by_url.setdefault(uri, at)
                    try:
                        index.by_url.setdefault(canonical_form(uri), at)
                    except ValueError:
                        pass
        self._indexes[snapshot_id] = index
        while len(self._indexes) > self.cached_snapshots:
            evicted, _ = self._indexes.popitem(last=False)
            shutil.rmtree(self.cache_dir / evicted, ignore_errors=True)
        return index

    def _read(self, snapshot_id: str, at: _Record) -> Capture:
        with open(at.path, "rb") as fh:
            fh.seek(at.offset)
            record = next(iter(ArchiveIterator(fh)))
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            date = record.rec_headers.get_header("WARC-Date") or ""
            http = record.http_headers
            if record.rec_type == "revisit":
                return self._revisit(snapshot_id, record, uri, date, http)
            body = record.content_stream().read(self.max_bytes + 1)
        return self._capture(snapshot_id, snapshot_id, uri, date, http, body)

    def _revisit(self, snapshot_id: str, record: Any, uri: str, date: str, http: Any) -> Capture:
        earlier = record.rec_headers.get_header(HEADER_REFERS_SNAPSHOT)
        digest = record.rec_headers.get_header("WARC-Payload-Digest") or ""
        if not earlier or not digest:
            raise IntegrityError(snapshot_id, "", f"the revisit record of {uri} names no earlier capture")
        target = self._index(earlier).by_id.get(record.rec_headers.get_header("WARC-Refers-To") or "")
        if target is None:
            raise IntegrityError(earlier, record.rec_headers.get_header(HEADER_REFERS_FILE) or "",
                                 f"has no record the revisit of {uri} refers to")
        with open(target.path, "rb") as fh:
            fh.seek(target.offset)
            original = next(iter(ArchiveIterator(fh)))
            length = int(original.payload_length)
            # The whole payload is read when it fits, so its digest is checked; a cut one is said to be cut.
            reader = PayloadReader(original.raw_stream, length, digest if length <= self.max_bytes else "",
                                   (earlier, target.path.name))
            body = reader.read(min(length, self.max_bytes + 1))
        headers = http if http is not None and http.headers else original.http_headers
        return self._capture(snapshot_id, earlier, uri, date, headers, body)

    def _capture(self, snapshot_id: str, payload_snapshot: str, uri: str, date: str, http: Any,
                 body: bytes) -> Capture:
        truncated = len(body) > self.max_bytes
        status = int(http.get_statuscode() or 0) if http is not None else 0
        headers = [(str(k), str(v)) for k, v in (http.headers if http is not None else [])]
        return Capture(snapshot_id, uri, date, status, headers, body[: self.max_bytes], truncated, payload_snapshot)

    def close(self) -> None:
        with self._lock:
            for snapshot_id in list(self._indexes):
                shutil.rmtree(self.cache_dir / snapshot_id, ignore_errors=True)
            self._indexes.clear()
