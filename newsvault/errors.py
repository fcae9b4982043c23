"""Exceptions shared across newsvault. Each builds its own message; none carries secrets."""

from __future__ import annotations

from pathlib import Path


class NewsvaultError(Exception):
    """Base class for every error newsvault raises on purpose."""


class ConfigError(NewsvaultError, ValueError):
    """A configuration file or environment variable holds a bad value."""

    def __init__(self, source: str | Path, key: str, problem: str) -> None:
        self.source = str(source)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.source}: {key}: {problem}")


class ProfileError(ConfigError):
    """A site profile is missing a key, has a bad value, or cannot be read."""


class UnknownSiteError(NewsvaultError, KeyError):
    """No site profile has the requested name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(name)

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"unknown site {self.name!r} (known: {known})"


class StoreError(NewsvaultError, OSError):
    """The snapshot store failed an operation (message never includes credentials)."""


class StoreUnreachableError(StoreError):
    """The snapshot store could not be reached or refused our credentials."""


class SnapshotExistsError(StoreError):
    """A committed snapshot with this id already exists and must not be overwritten."""


class ObjectExistsError(StoreError):
    """An object already exists under a key with other content; a store never overwrites one."""


class SourceChangedError(NewsvaultError, OSError):
    """A local file about to be stored no longer has the sha256 its manifest records (damaged or changed)."""


class ObjectTooLargeError(StoreError):
    """An object is larger than the reader's bound (a manifest's size, the manifest size limit)."""


class UnsafeObjectError(StoreError):
    """A local archive path is a symlink or not a regular file: it is never followed or read."""


class SnapshotNotFoundError(NewsvaultError, LookupError):
    """No committed snapshot matches the requested id, site or time."""


class IntegrityError(NewsvaultError, ValueError):
    """A stored file does not match the size or sha256 its manifest records."""

    def __init__(self, snapshot_id: str, filename: str, problem: str) -> None:
        self.snapshot_id = snapshot_id
        self.filename = filename
        self.problem = problem
        super().__init__(f"snapshot {snapshot_id}: {filename}: {problem}")


class UnsafePathError(NewsvaultError, ValueError):
    """A stored name would resolve outside the restore target directory."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"refusing unsafe path {name!r}: it would escape the target directory")


class DaemonLockedError(NewsvaultError, RuntimeError):
    """Another daemon already holds the lock on this state directory."""

    def __init__(self, state_dir: str | Path, holder: str = "") -> None:
        self.state_dir = str(state_dir)
        suffix = f" (held by {holder})" if holder else ""
        super().__init__(f"another newsvault daemon is running on {self.state_dir}{suffix}")


class ArchiveLockedError(NewsvaultError, RuntimeError):
    """The archive lock could not be taken in time (a prune, or crawls, hold it)."""


class WriterConflictError(NewsvaultError, RuntimeError):
    """Another state directory or host already writes this site and kind into the archive."""
