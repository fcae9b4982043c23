"""A snapshot store in a local directory (the default archive)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from archive.paths import check_name
from archive.stores import (
    SNAPSHOTS_PREFIX,
    FileDigest,
    HashingWriter,
    Progress,
    SnapshotRef,
    parse_manifest_key,
)
from newsvault.errors import SnapshotExistsError, StoreError

_CHUNK = 1024 * 1024


class LocalStore:
    """Objects are files under ``root``; writes go through a temp file and an atomic rename or link."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, key: str) -> Path:
        check_name(key)
        return self.root.joinpath(*key.split("/"))

    def _copy(self, src: Path, dest: Path, progress: Progress | None) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                while chunk := inp.read(_CHUNK):
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp)

    def put_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        dest = self._path(key)
        try:
            os.replace(self._copy(path, dest, progress), dest)
        except OSError as exc:
            raise StoreError(f"cannot write {key} to {self.url}: {exc.strerror or exc}") from exc

    def put_manifest_if_absent(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            # link() refuses an existing name: an atomic create-if-absent of a complete file.
            os.link(tmp, dest)
        except FileExistsError as exc:
            raise SnapshotExistsError(f"{key} already exists; a committed snapshot is never overwritten") from exc
        finally:
            os.unlink(tmp)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"{key} not found in {self.url}") from exc

    def get_file_hashed(
        self, key: str, dest: Path, progress: Progress | None = None, size_hint: int | None = None
    ) -> FileDigest:
        src = self._path(key)
        try:
            with open(src, "rb") as inp, open(dest, "wb") as out:
                writer = HashingWriter(out, progress)
                while chunk := inp.read(_CHUNK):
                    writer.write(chunk)
        except FileNotFoundError as exc:
            raise StoreError(f"{key} not found in {self.url}") from exc
        return writer.result()

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise StoreError(f"{key} not found in {self.url}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix(), path.stat().st_size

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            # Tidy empty snapshot dirs so listings stay clean.
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def list_snapshots(self, site: str | None = None, kind: str | None = None) -> list[SnapshotRef]:
        base = self.root / SNAPSHOTS_PREFIX
        if not base.is_dir():
            return []
        refs = []
        for manifest in base.glob("*/*/*/manifest.json"):
            ref = parse_manifest_key(manifest.relative_to(self.root).as_posix())
            if ref and (site is None or ref.site == site) and (kind is None or ref.kind == kind):
                refs.append(ref)
        return sorted(refs)


