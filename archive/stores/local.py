"""A snapshot store in a local directory (the default archive).

Write-once and link-proof. Every object is created through a temp file and
``link()``, which refuses an existing name, so nothing committed is ever
replaced. Every path below the archive root is walked one directory at a time
with ``O_NOFOLLOW`` (``openat``), so a symlink planted in the archive (a
snapshot dir pointing at ``/etc``, a data file pointing at ``/dev/zero``) is
refused, never followed; only regular files are read; a FIFO is opened
non-blocking and refused instead of hanging the reader. The root itself may be
a symlink: it is the operator's choice of where the archive lives.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, suppress
from pathlib import Path
from typing import BinaryIO

from archive.paths import check_name
from archive.stores import (
    MAX_SMALL_OBJECT_BYTES,
    SNAPSHOTS_PREFIX,
    FileDigest,
    HashingWriter,
    Progress,
    SnapshotRef,
    check_digest,
    parse_manifest_key,
    read_bounded,
)
from newsvault.errors import (
    NewsvaultError,
    ObjectExistsError,
    SnapshotExistsError,
    StoreError,
    UnsafeObjectError,
)

_CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class _NotFound(Exception):
    """A directory on the way to a key does not exist (not an error for readers that probe)."""


class LocalStore:
    """Objects are regular files under ``root``, reached without following any link below it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    # --- walking ------------------------------------------------------------------
    def _parts(self, key: str) -> list[str]:
        check_name(key)
        return key.split("/")

    def _open_root(self, create: bool) -> int:
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise _NotFound(str(self.root)) from exc

    def _parent(self, key: str, stack: ExitStack, *, create: bool = False) -> tuple[int, str]:
        """(fd of the key's directory, the key's last name); every fd is closed by ``stack``."""
        parts = self._parts(key)
        fd = self._open_root(create)
        stack.callback(os.close, fd)
        for part in parts[:-1]:
            try:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError as exc:
                raise _NotFound(key) from exc
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeObjectError(f"{key}: {part} is a symlink or not a directory; not followed") from exc
                raise StoreError(f"cannot open {key} in {self.url}: {exc.strerror or exc}") from exc
            stack.callback(os.close, fd)
        return fd, parts[-1]

    def _open_regular(self, key: str) -> BinaryIO:
        """``key`` opened for reading: a regular file, reached without following links."""
        with ExitStack() as stack:
            try:
                parent, name = self._parent(key, stack)
                fd = os.open(name, _READ_FLAGS, dir_fd=parent)
            except (_NotFound, FileNotFoundError) as exc:
                raise StoreError(f"{key} not found in {self.url}") from exc
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafeObjectError(f"{key} is a symlink; not followed") from exc
                raise StoreError(f"cannot read {key} in {self.url}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafeObjectError(f"{key} is not a regular file; not read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def _create(
        self, key: str, write: Callable[[BinaryIO], object], *, on_exists: Callable[[], None]
    ) -> None:
        """Write a temp file next to ``key`` with ``write(fh)``, then link it in unless the name is taken.

        ``on_exists()`` decides what an existing name means (raise, or return: already written).
        """
        with ExitStack() as stack:
            try:
                parent, name = self._parent(key, stack, create=True)
            except _NotFound as exc:
                raise StoreError(f"cannot create {key} in {self.url}") from exc
            tmp = f".upload-{secrets.token_hex(8)}"
            try:
                fd = os.open(tmp, _TEMP_FLAGS, 0o644, dir_fd=parent)
                try:
                    with os.fdopen(fd, "wb") as out:
                        write(out)
                        out.flush()
                        os.fsync(out.fileno())
                    try:
                        # link() refuses an existing name: an atomic create-if-absent of a complete file.
                        os.link(tmp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
                    except FileExistsError:
                        on_exists()
                        return
                    os.fsync(parent)
                finally:
                    os.unlink(tmp, dir_fd=parent)
            except OSError as exc:
                if isinstance(exc, NewsvaultError):
                    raise
                raise StoreError(f"cannot write {key} to {self.url}: {exc.strerror or exc}") from exc

    # --- protocol -------------------------------------------------------------------
    def put_file(self, key: str, path: Path, progress: Progress | None = None, *, sha256: str) -> None:
        def write(out: BinaryIO) -> None:
            # Hashed as copied: only bytes that have ``sha256`` are ever linked in.
            digest = hashlib.sha256()
            with open(path, "rb") as inp:
                while chunk := inp.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
            check_digest(key, digest.hexdigest(), sha256)

        def on_exists() -> None:
            # A retried push finds its own earlier upload: the same bytes count as written.
            size = path.stat().st_size
            with self._open_regular(key) as existing:
                digest = hashlib.sha256()
                got = 0
                while chunk := existing.read(_CHUNK):
                    digest.update(chunk)
                    got += len(chunk)
                    if got > size:
                        break
            if got != size or digest.hexdigest() != sha256:
                raise ObjectExistsError(f"{key} already exists in {self.url} with other content; it is never overwritten")

        self._create(key, write, on_exists=on_exists)

    def put_bytes_if_absent(self, key: str, data: bytes) -> None:
        def on_exists() -> None:
            raise SnapshotExistsError(f"{key} already exists; a committed snapshot is never overwritten")

        self._create(key, lambda out: out.write(data), on_exists=on_exists)

    def replace_bytes(self, key: str, data: bytes) -> None:
        if key.split("/", 1)[0] == SNAPSHOTS_PREFIX:
            raise ValueError("snapshot objects are never replaced")
        with ExitStack() as stack:
            parent, name = self._parent(key, stack, create=True)
            tmp = f".upload-{secrets.token_hex(8)}"
            try:
                fd = os.open(tmp, _TEMP_FLAGS, 0o644, dir_fd=parent)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                with suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=parent)
                raise StoreError(f"cannot write {key} to {self.url}: {exc.strerror or exc}") from exc

    def get_bytes(self, key: str, *, max_bytes: int = MAX_SMALL_OBJECT_BYTES) -> bytes:
        with self._open_regular(key) as fh:
            return read_bounded(fh, max_bytes, key)

    def get_file_hashed(
        self, key: str, dest: Path, progress: Progress | None = None, *, expected_size: int | None = None
    ) -> FileDigest:
        with self._open_regular(key) as inp, open(dest, "wb") as out:
            writer = HashingWriter(out, progress, max_bytes=expected_size)
            while chunk := inp.read(_CHUNK):
                writer.write(chunk)
        return writer.result()

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._open_regular(key)

    def exists(self, key: str) -> bool:
        """True only for a regular file reached without links (a symlink is no object)."""
        with ExitStack() as stack:
            try:
                parent, name = self._parent(key, stack)
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except (_NotFound, FileNotFoundError, UnsafeObjectError):
                return False
        return stat.S_ISREG(info.st_mode)

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Regular files under ``prefix`` (hidden names skipped); links and their targets are never listed."""
        prefix = prefix.strip("/")
        try:
            root = self._open_root(create=False)
        except _NotFound:
            return
        with ExitStack() as stack:
            stack.callback(os.close, root)
            fd = root
            for part in prefix.split("/") if prefix else []:
                check_name(part)
                try:
                    fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    return  # missing, a link, or not a directory: nothing listed under it
                stack.callback(os.close, fd)
            yield from self._walk(fd, prefix)

    def _walk(self, fd: int, at: str) -> Iterator[tuple[str, int]]:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            key = f"{at}/{entry.name}" if at else entry.name
            if entry.is_dir(follow_symlinks=False):
                try:
                    child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                try:
                    yield from self._walk(child, key)
                finally:
                    os.close(child)
            elif entry.is_file(follow_symlinks=False):
                yield key, entry.stat(follow_symlinks=False).st_size

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            with ExitStack() as stack:
                try:
                    parent, name = self._parent(key, stack)
                except _NotFound:
                    continue
                try:
                    # unlink() removes a link itself, never what it points to.
                    os.unlink(name, dir_fd=parent)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise StoreError(f"cannot delete {key} in {self.url}: {exc.strerror or exc}") from exc
            self._tidy(key)

    def _tidy(self, key: str) -> None:
        """Remove the key's directories left empty, deepest first, so listings stay clean."""
        parts = key.split("/")[:-1]
        while parts:
            with ExitStack() as stack:
                try:
                    parent, name = self._parent("/".join(parts), stack)
                    os.rmdir(name, dir_fd=parent)
                except (OSError, _NotFound):
                    return  # not empty (or gone): stop here
            parts.pop()

    def list_snapshots(self, site: str | None = None, kind: str | None = None) -> list[SnapshotRef]:
        prefix = SNAPSHOTS_PREFIX + (f"/{site}" if site else "") + (f"/{kind}" if site and kind else "")
        refs = []
        for key, _size in self.list_keys(prefix):
            ref = parse_manifest_key(key)
            if ref and (site is None or ref.site == site) and (kind is None or ref.kind == kind):
                refs.append(ref)
        return sorted(refs)

