"""File locks: one daemon per state directory, one run at a time per job.

Both are ``fcntl.flock`` locks, so the kernel releases them when the holder dies,
even by SIGKILL: a crashed daemon never leaves a stale lock behind. A job lock's
file descriptor is handed to the crawl child, so the job stays locked while an
orphaned crawl is still closing its snapshot.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path
from typing import Self

from newsvault.errors import DaemonLockedError

DAEMON_LOCK = "daemon.lock"
# How long a starting daemon retries its lock. A probe (`jobs`, `trigger`) holds a
# shared lock for microseconds; a real daemon holds the lock for its whole life.
ACQUIRE_RETRY_SECONDS = 1.0


class FileLock:
    """A non-blocking exclusive flock on one file; the file keeps the holder's pid."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> str:
        """The pid written by the current holder, or ''."""
        try:
            return self.path.read_text(encoding="ascii").strip()
        except OSError:
            return ""

    def is_held_elsewhere(self) -> bool:
        """True if another process (or open file) holds the lock right now.

        A probe must never look like a holder: it takes a *shared* lock on its own
        read-only descriptor and drops it at once, and never creates the file or
        writes a pid, so the holder's pid and the holder's lock are left alone.
        """
        if self.fd is not None:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False  # no daemon ever ran here
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)


class DaemonLock(FileLock):
    """The lock on ``<state>/daemon.lock`` that makes one daemon per state directory."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        super().__init__(self.state_dir / DAEMON_LOCK)

    def acquire(self, retry_seconds: float = ACQUIRE_RETRY_SECONDS) -> None:
        """Take the lock or raise DaemonLockedError naming the state dir and the holder.

        Retries for ``retry_seconds`` so that a CLI probe holding its shared lock at
        this very moment never makes a daemon refuse to start.
        """
        deadline = time.monotonic() + retry_seconds
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                holder = self.holder()
                raise DaemonLockedError(self.state_dir, f"pid {holder}" if holder else "")
            time.sleep(0.02)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def daemon_running(state_dir: str | Path) -> bool:
    """True if a daemon holds the lock of this state directory."""
    return DaemonLock(state_dir).is_held_elsewhere()


def job_lock(state_dir: str | Path, job_id: str) -> FileLock:
    """The lock that keeps two runs of one job from overlapping (across processes)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", job_id)
    return FileLock(Path(state_dir) / "locks" / f"{safe}.lock")
