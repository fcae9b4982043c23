"""The archive lock: crawls and pushes share it, prune takes it alone.

Prune decides what to delete from the references it reads (committed
manifests, spool entries), so nothing may add a reference while it runs: a
crawl picks revisit targets from the digest index for its whole life, and a
push commits snapshots whose revisits point into others. So every crawl (for
its whole run and push) and every ``newsvault push`` holds the lock shared,
and prune holds it exclusively, planning only once it has it.

Prune must not starve behind a steady stream of short crawls, so a waiting
prune first takes an "intent" lock that new shared holders must pass
through: crawls already running finish, new ones wait for the prune.

:class:`ArchiveLock` is the interface; :class:`FileArchiveLock` implements it
with ``flock`` on one host. For a local archive the lock files live inside
the archive directory (every state dir on the host that writes there shares
them); for S3 they live in the state dir. Several hosts need a shared lock
service (a PostgreSQL advisory lock) behind the same interface.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from archive.index import archive_key
from newsvault.errors import ArchiveLockedError

log = logging.getLogger(__name__)

LOCK_DIR_IN_ARCHIVE = ".newsvault-locks"
_POLL_SECONDS = 0.05


class ArchiveLock(Protocol):
    """Shared for writers of snapshots (crawls, pushes), exclusive for prune."""

    def shared(self, wait_seconds: float) -> AbstractContextManager[None]: ...

    def exclusive(self, wait_seconds: float) -> AbstractContextManager[None]: ...


class FileArchiveLock:
    """flock-based :class:`ArchiveLock` (the kernel releases it when a holder dies, even by SIGKILL)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.lock_path = directory / f"{name}.lock"
        self.intent_path = directory / f"{name}.intent"

    def _open_pair(self) -> tuple[int, int]:
        """The intent and lock files' descriptors (the first is closed again if the second cannot be opened)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        intent = os.open(self.intent_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            return intent, os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except BaseException:
            os.close(intent)
            raise

    def _flock(self, fd: int, mode: int, deadline: float, what: str) -> None:
        waited = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ArchiveLockedError(f"the archive lock was not free: {what}") from None
                if not waited:
                    log.info("waiting for the archive lock (%s)", self.lock_path)
                    waited = True
                time.sleep(_POLL_SECONDS)

    @contextmanager
    def shared(self, wait_seconds: float) -> Iterator[None]:
        deadline = time.monotonic() + wait_seconds
        intent, lock = self._open_pair()
        try:
            # Passing through the intent lock: a prune waiting for the lock holds it.
            self._flock(intent, fcntl.LOCK_SH, deadline, f"a prune of this archive runs or waits ({self.lock_path})")
            try:
                self._flock(lock, fcntl.LOCK_SH, deadline, f"a prune of this archive runs ({self.lock_path})")
            finally:
                fcntl.flock(intent, fcntl.LOCK_UN)
            yield
        finally:
            os.close(lock)
            os.close(intent)

    @contextmanager
    def exclusive(self, wait_seconds: float) -> Iterator[None]:
        deadline = time.monotonic() + wait_seconds
        intent, lock = self._open_pair()
        try:
            self._flock(intent, fcntl.LOCK_EX, deadline, f"another prune of this archive runs ({self.lock_path})")
            self._flock(lock, fcntl.LOCK_EX, deadline,
                        f"crawls or pushes into this archive are still running after {wait_seconds:g} s ({self.lock_path})")
            yield
        finally:
            os.close(lock)
            os.close(intent)


def archive_lock(archive_url: str, state_dir: str | Path) -> FileArchiveLock:
    """The lock of the archive at ``archive_url`` as seen from ``state_dir``."""
    parts = urlsplit(archive_url)
    if parts.scheme == "s3":
        name = "archive-" + hashlib.sha256(archive_key(archive_url).encode()).hexdigest()[:16]
        return FileArchiveLock(Path(state_dir) / "locks", name)
    root = Path(archive_key(archive_url).removeprefix("file://"))
    return FileArchiveLock(root / LOCK_DIR_IN_ARCHIVE, "archive")
