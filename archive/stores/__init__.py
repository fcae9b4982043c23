"""Snapshot stores behind one small Protocol, chosen by URI scheme (``s3://`` or a local path)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from archive.ids import is_snapshot_id
from archive.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES
from archive.paths import KINDS, SITE_RE
from newsvault.errors import ObjectTooLargeError, SourceChangedError

SNAPSHOTS_PREFIX = "snapshots"
# Small objects read whole (manifests, writer markers): the bound keeps a hostile one from filling memory.
MAX_SMALL_OBJECT_BYTES = MAX_MANIFEST_BYTES
Progress = Callable[[int], None]


@dataclass(frozen=True, order=True)
class SnapshotRef:
    """Where a committed snapshot lives: ``snapshots/<site>/<kind>/<id>/``."""

    snapshot_id: str
    site: str
    kind: str

    @property
    def prefix(self) -> str:
        return f"{SNAPSHOTS_PREFIX}/{self.site}/{self.kind}/{self.snapshot_id}"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"


@dataclass(frozen=True)
class FileDigest:
    """Size and sha256 (hex) of the bytes a store wrote while downloading."""

    size: int
    sha256: str


class HashingWriter:
    """A write-only, non-seekable binary sink that hashes every byte on its way into ``out``.

    Non-seekable on purpose: s3transfer then hands ranged parts over in order
    (its non-seekable download path), so the digest covers the file exactly as
    written, in the same pass as the download. With ``max_bytes`` a write past
    that size raises ObjectTooLargeError: a reader never takes more than the
    manifest says a file holds.
    """

    def __init__(self, out: BinaryIO, progress: Progress | None = None, *, max_bytes: int | None = None) -> None:
        self._out = out
        self._progress = progress
        self._digest = hashlib.sha256()
        self._max_bytes = max_bytes
        self.size = 0

    def write(self, data: bytes) -> int:
        if self._max_bytes is not None and self.size + len(data) > self._max_bytes:
            raise ObjectTooLargeError(f"object is larger than the expected {self._max_bytes} bytes")
        # hashlib releases the GIL on large buffers, so this overlaps the other parts' socket reads.
        self._digest.update(data)
        self._out.write(data)
        self.size += len(data)
        if self._progress:
            self._progress(len(data))
        return len(data)

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def result(self) -> FileDigest:
        return FileDigest(size=self.size, sha256=self._digest.hexdigest())


def check_digest(key: str, got: str, expected: str) -> None:
    """Refuse to make an object visible whose bytes are not the ones the caller vouched for."""
    if got != expected:
        raise SourceChangedError(f"{key}: the file's bytes no longer match its sha256 {expected[:12]}...; nothing was stored")


def read_bounded(stream: BinaryIO, max_bytes: int, what: str) -> bytes:
    """The whole of ``stream``, refusing more than ``max_bytes`` (reads at most one byte past it)."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ObjectTooLargeError(f"{what} is larger than {max_bytes} bytes")
    return bytes(data)


def parse_manifest_key(key: str) -> SnapshotRef | None:
    """The snapshot a ``.../manifest.json`` key belongs to, or None for anything else."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != SNAPSHOTS_PREFIX or parts[4] != MANIFEST_NAME:
        return None
    _, site, kind, snapshot_id, _ = parts
    if not SITE_RE.match(site) or kind not in KINDS or not is_snapshot_id(snapshot_id):
        return None
    return SnapshotRef(snapshot_id=snapshot_id, site=site, kind=kind)


@runtime_checkable
class SnapshotStore(Protocol):
    """What the archive needs from a place to keep snapshots; keys are relative POSIX paths.

    Write-once: no method overwrites an object, except ``replace_bytes`` for the
    writer markers outside ``snapshots/``.
    """

    url: str

    def put_file(self, key: str, path: Path, progress: Progress | None = None, *, sha256: str) -> None:
        """Create ``key`` from ``path`` unless it exists, if the bytes sent have ``sha256``.

        The bytes are hashed as they are sent; if they do not match (the file
        was damaged or changed) nothing becomes visible and SourceChangedError
        is raised. An existing object of the same size and ``sha256`` counts as
        written: a push that died mid-upload is retried. Any other existing
        object raises ObjectExistsError and is left as it is.
        """

    def put_bytes_if_absent(self, key: str, data: bytes) -> None:
        """Create ``key`` only if it does not exist; raise SnapshotExistsError otherwise."""

    def replace_bytes(self, key: str, data: bytes) -> None:
        """Write ``key`` whether or not it exists (writer markers only, never a snapshot's object)."""

    def get_bytes(self, key: str, *, max_bytes: int = MAX_SMALL_OBJECT_BYTES) -> bytes:
        """The whole object (small ones: manifests, markers); ObjectTooLargeError past ``max_bytes``."""

    def get_file_hashed(
        self, key: str, dest: Path, progress: Progress | None = None, *, expected_size: int | None = None
    ) -> FileDigest:
        """Download ``key`` into the file ``dest`` and return the size and sha256 of the bytes written.

        One pass: the digest is computed as the bytes are written, never by reading ``dest`` back.
        With ``expected_size`` (the manifest's) nothing past that size is read:
        a larger object raises ObjectTooLargeError.
        """

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A readable binary stream of ``key``."""

    def exists(self, key: str) -> bool: ...

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix``."""

    def delete(self, keys: list[str]) -> None:
        """Delete objects; missing ones are ignored, any other failure raises StoreError."""

    def list_snapshots(self, site: str | None = None, kind: str | None = None) -> list[SnapshotRef]:
        """Committed snapshots (those with a manifest), oldest first."""


def _setting(settings: Mapping[str, Any] | Any | None, name: str, default: Any) -> Any:
    if settings is None:
        return default
    value = settings.get(name)
    return default if value is None else value


def open_store(url: str, settings: Mapping[str, Any] | Any | None = None) -> SnapshotStore:
    """The store for ``url``: ``s3://bucket/prefix`` or a local directory (path or ``file://``).

    ``settings`` is anything with ``.get`` (Scrapy Settings, the dict from
    ``Config.scrapy_settings()``); S3 reads ``NEWSVAULT_S3_CHECKSUMS`` and
    ``NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES`` from it.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        from archive.stores.s3 import S3Store
        from newsvault.config import DEFAULT_MULTIPART_THRESHOLD_BYTES, DEFAULT_S3_CHECKSUMS

        return S3Store(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            checksums=str(_setting(settings, "NEWSVAULT_S3_CHECKSUMS", DEFAULT_S3_CHECKSUMS)),
            multipart_threshold=int(_setting(settings, "NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES",
                                             DEFAULT_MULTIPART_THRESHOLD_BYTES)),
        )
    from archive.stores.local import LocalStore

    if parts.scheme == "file":
        return LocalStore(Path(unquote(parts.path)))
    if parts.scheme and len(parts.scheme) > 1:
        raise ValueError(f"unsupported archive URL scheme {parts.scheme!r} (use s3:// or a directory)")
    return LocalStore(Path(url))
