"""Restoring a snapshot into a directory: verified downloads, safe paths, optional self-contained WARCs.

Everything is downloaded into a work dir inside the target and checked there;
only then are the files renamed into place. If anything fails (a bad checksum,
a full disk, a hostile record) the target is left as it was: files already
moved are taken out again and a target dir this restore created is removed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from archive.manifest import MANIFEST_NAME, Manifest
from archive.paths import check_name, safe_join
from archive.progress import transfer_bar
from archive.stores import Progress, SnapshotRef, SnapshotStore
from archive.verify import find_snapshot, load_manifest, parse_manifest
from archive.warc import HEADER_REFERS_FILE, HEADER_REFERS_SNAPSHOT, WARC_VERSION
from newsvault.errors import (
    IntegrityError,
    NewsvaultError,
    ObjectTooLargeError,
    SnapshotNotFoundError,
    UnsafeObjectError,
    UnsafePathError,
)

log = logging.getLogger(__name__)

# Files of one snapshot downloaded at once (items + a few WARC parts); each also uses
# boto3's own parallel ranged GETs, so a few suffice.
MAX_PARALLEL_FILES = 4
_CHUNK = 1024 * 1024


@dataclass
class RestoreResult:
    snapshot_id: str
    target: Path
    files: list[str]
    resolved_revisits: int = 0


def _check_keys(store: SnapshotStore, ref: SnapshotRef) -> None:
    """Refuse a snapshot whose stored object keys would not map to plain names in the target."""
    for key, _size in store.list_keys(ref.prefix + "/"):
        check_name(key[len(ref.prefix) + 1 :])


def download_verified(
    store: SnapshotStore, ref: SnapshotRef, manifest: Manifest, name: str, dest_dir: Path, progress: Progress | None
) -> Path:
    """Download one file, hashing it on the way in; IntegrityError when it does not match the manifest."""
    entry = manifest.file(name)
    if entry is None:
        raise IntegrityError(ref.snapshot_id, name, "not listed in the manifest")
    dest = safe_join(dest_dir, name)
    try:
        got = store.get_file_hashed(ref.key(name), dest, progress, expected_size=entry.size)
    except ObjectTooLargeError as exc:
        raise IntegrityError(ref.snapshot_id, name, f"is larger than the manifest's {entry.size} bytes") from exc
    except UnsafeObjectError as exc:
        raise IntegrityError(ref.snapshot_id, name, str(exc)) from exc
    if got.size != entry.size or got.sha256 != entry.sha256:
        raise IntegrityError(ref.snapshot_id, name, "downloaded file does not match the manifest's size/sha256")
    return dest


def _download_all(store: SnapshotStore, ref: SnapshotRef, manifest: Manifest, dest_dir: Path, progress: bool) -> None:
    """Download and verify every file of the snapshot, several at once, and check its keys meanwhile.

    The key listing runs alongside the downloads: everything lands in ``dest_dir``
    (a work dir the caller deletes on failure), so a refused key still leaves
    nothing in the target.
    """
    names = [f.name for f in manifest.files]
    with (
        transfer_bar(f"download {ref.snapshot_id}", manifest.total_bytes, enabled=progress) as callback,
        ThreadPoolExecutor(max_workers=1 + min(MAX_PARALLEL_FILES, max(1, len(names))), thread_name_prefix="restore") as pool,
    ):
        keys = pool.submit(_check_keys, store, ref)
        downloads = [pool.submit(download_verified, store, ref, manifest, name, dest_dir, callback) for name in names]
        try:
            keys.result()
            for future in downloads:
                future.result()
        except BaseException:
            for future in downloads:
                future.cancel()
            raise


class PayloadReader:
    """Streams a referenced record's payload, checking its sha1 against the revisit's digest at the end.

    The payload is never held in memory (a small WARC can inflate to gigabytes),
    and a payload that is not the one the revisit names fails the restore.
    """

    def __init__(self, stream: BinaryIO, length: int, expected_digest: str, where: tuple[str, str]) -> None:
        self._stream = stream
        self._left = length
        self._sha1 = hashlib.sha1()
        self._expected = expected_digest
        self._where = where

    def read(self, size: int = -1) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._stream.read(want) if want else b""
        self._left -= len(data)
        self._sha1.update(data)
        if want and not data:
            raise IntegrityError(*self._where, "a referenced record ends before its payload does")
        if self._left == 0 and self._expected:
            digest = "sha1:" + base64.b32encode(self._sha1.digest()).decode("ascii")
            if digest != self._expected:
                raise IntegrityError(*self._where, "a referenced payload does not match the revisit's payload digest")
            self._expected = ""
        return data


class _ReferencedPayloads:
    """Downloads (verified) the earlier snapshots' WARC files revisits point to, and reads records from them."""

    def __init__(self, store: SnapshotStore, site: str, work_dir: Path, progress: bool) -> None:
        self.store = store
        self.site = site
        self.work_dir = work_dir
        self.progress = progress
        self._files: dict[tuple[str, str], Path] = {}
        self._offsets: dict[tuple[str, str], dict[str, int]] = {}

    def _file(self, snapshot_id: str, filename: str) -> Path:
        key = (snapshot_id, filename)
        if key not in self._files:
            try:
                ref = find_snapshot(self.store, snapshot_id, site=self.site)
            except SnapshotNotFoundError as exc:
                raise SnapshotNotFoundError(
                    f"revisit records point to snapshot {snapshot_id}, which is not in {self.store.url}"
                ) from exc
            manifest = load_manifest(self.store, ref)
            folder = self.work_dir / snapshot_id
            folder.mkdir(parents=True, exist_ok=True)
            with transfer_bar(f"download {filename}", getattr(manifest.file(filename), "size", 0), enabled=self.progress) as callback:
                self._files[key] = download_verified(self.store, ref, manifest, filename, folder, callback)
            offsets: dict[str, int] = {}
            with open(self._files[key], "rb") as fh:
                it = ArchiveIterator(fh)
                for record in it:
                    if record.rec_type == "response":
                        offsets[record.rec_headers.get_header("WARC-Record-ID")] = it.get_record_offset()
            self._offsets[key] = offsets
        return self._files[key]

    def open_response(self, snapshot_id: str, filename: str, record_id: str) -> tuple[Any, Any, BinaryIO]:
        """(the record, its http headers, the open file positioned in it); the caller closes the file."""
        path = self._file(snapshot_id, filename)
        offset = self._offsets[(snapshot_id, filename)].get(record_id)
        if offset is None:
            raise IntegrityError(snapshot_id, filename, f"has no response record {record_id}")
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller once the payload is written
        fh.seek(offset)
        record = next(iter(ArchiveIterator(fh)))
        return record, record.http_headers, fh


class _StreamingWARCWriter(WARCWriter):
    """Writes rebuilt responses without reading their payload twice (no block digest: optional in WARC)."""

    def ensure_digest(self, record, block=True, payload=True):  # type: ignore[no-untyped-def]
        if record.rec_type == "response" and record.rec_headers.get_header("WARC-Payload-Digest"):
            block = payload = False
        return super().ensure_digest(record, block=block, payload=payload)


def _revisit_headers(revisit: Any, original: Any) -> Any:
    """The HTTP status and headers of the response a revisit stands for.

    A revisit keeps the headers of its own response (WARC 1.1 revisit profile:
    a 302 sharing an empty payload with a 301 is still a 302 with its own
    Location). Revisits written before they kept every header carry only
    Content-Type: for those the original's headers stand in when the status
    is the same, else only what the revisit has.
    """
    own = revisit.http_headers
    names = {name.lower() for name, _value in own.headers}
    if names <= {"content-type"} and original is not None and own.get_statuscode() == original.get_statuscode():
        return original
    return own


def _make_self_contained(warc: Path, refs: _ReferencedPayloads, snapshot: str) -> int:
    """Rewrite ``warc`` replacing each revisit by a full response: its own headers, the referenced payload."""
    resolved = 0
    out_path = warc.with_name(warc.name + ".tmp")
    with open(warc, "rb") as inp, open(out_path, "wb") as out:
        writer = _StreamingWARCWriter(out, gzip=True, warc_version=WARC_VERSION)
        for record in ArchiveIterator(inp):
            snapshot_id = record.rec_headers.get_header(HEADER_REFERS_SNAPSHOT)
            if record.rec_type != "revisit" or not snapshot_id:
                writer.write_record(record)
                continue
            filename = record.rec_headers.get_header(HEADER_REFERS_FILE) or ""
            check_name(filename)
            original, original_headers, fh = refs.open_response(
                snapshot_id, filename, record.rec_headers.get_header("WARC-Refers-To")
            )
            with fh:
                digest = record.rec_headers.get_header("WARC-Payload-Digest") or ""
                if not digest:
                    raise IntegrityError(snapshot, warc.name, "a revisit record has no WARC-Payload-Digest to check")
                length = int(original.payload_length)
                rebuilt = writer.create_warc_record(
                    record.rec_headers.get_header("WARC-Target-URI"),
                    "response",
                    payload=PayloadReader(original.raw_stream, length, digest, (snapshot_id, filename)),
                    length=length,
                    http_headers=_revisit_headers(record, original_headers),
                    warc_headers_dict={
                        # Same id and date as the revisit, so the request's WARC-Concurrent-To still holds.
                        "WARC-Record-ID": record.rec_headers.get_header("WARC-Record-ID"),
                        "WARC-Date": record.rec_headers.get_header("WARC-Date"),
                        "WARC-Payload-Digest": digest,
                    },
                )
                writer.write_record(rebuilt)
            resolved += 1
    os.replace(out_path, warc)
    return resolved


def restore_snapshot(
    store: SnapshotStore,
    ref: SnapshotRef,
    target: str | Path,
    *,
    self_contained: bool = False,
    progress: bool = True,
) -> RestoreResult:
    """Download ``ref`` into ``target`` (files written only inside it), verifying every checksum."""
    target = Path(target)
    if target.is_symlink():
        raise UnsafePathError(str(target))
    if target.exists() and not target.is_dir():
        raise NewsvaultError(f"{target} exists and is not a directory")
    # The topmost directory this restore creates: removed again if the restore fails.
    created = next((p for p in reversed([target, *target.parents]) if not p.exists()), None)
    target.mkdir(parents=True, exist_ok=True)
    moved: list[Path] = []
    try:
        # The stored bytes, parsed (self-checksum included) once: what is checked is what gets written.
        manifest_bytes = store.get_bytes(ref.key(MANIFEST_NAME))
        manifest = parse_manifest(ref, manifest_bytes)
        if not manifest.checksummed:
            log.warning("snapshot %s has an older manifest without its own checksum; its values cannot be verified", ref.snapshot_id)
        names = [f.name for f in manifest.files] + [MANIFEST_NAME]
        for name in names:
            existing = safe_join(target, name)
            if existing.exists() or existing.is_symlink():
                raise NewsvaultError(f"{existing} already exists; restore into an empty directory")
        work = Path(tempfile.mkdtemp(prefix=".restore-", dir=target))
        try:
            _download_all(store, ref, manifest, work, progress)
            safe_join(work, MANIFEST_NAME).write_bytes(manifest_bytes)
            resolved = 0
            if self_contained and manifest.counts.get("revisits", 0):
                refs = _ReferencedPayloads(store, ref.site, work / ".refs", progress)
                for name in manifest.warc_names():
                    resolved += _make_self_contained(safe_join(work, name), refs, ref.snapshot_id)
            for name in names:
                dest = safe_join(target, name)
                os.replace(safe_join(work, name), dest)
                moved.append(dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        # Nothing half-written stays behind: what was moved in is taken out again.
        for path in moved:
            path.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    log.info("restored %s into %s (%d revisits resolved)", ref.snapshot_id, target, resolved)
    return RestoreResult(ref.snapshot_id, target, names, resolved)
