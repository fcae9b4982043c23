"""Names that may appear in a snapshot (manifest entries, object keys) and safe joins under a target."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from newsvault.errors import UnsafePathError
from newsvault.names import KINDS, SITE_RE, check_kind, check_site

__all__ = ["KINDS", "SITE_RE", "check_kind", "check_name", "check_site", "safe_join"]

# Segments a snapshot's own files use: pages-00000.warc.gz, items.jsonl.gz, manifest.json.
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a plain relative POSIX path that stays inside its parent.

    Refuses ``..``, absolute paths, backslashes, drive letters, percent-encoded
    characters (``%2e%2e``) and control characters, whatever the platform.
    """
    if not name or "\\" in name or "%" in name or "\x00" in name or name.startswith("/"):
        raise UnsafePathError(name)
    if any(ord(ch) < 32 for ch in name) or ":" in name:
        raise UnsafePathError(name)
    decoded = unquote(name)
    parts = PurePosixPath(decoded).parts
    if not parts or any(p in ("", ".", "..") or not _SAFE_SEGMENT.match(p) for p in parts):
        raise UnsafePathError(name)
    return name


def safe_join(root: Path, name: str) -> Path:
    """``root / name``, refusing any name that could land outside ``root`` (symlinks included)."""
    check_name(name)
    root_resolved = root.resolve()
    target = root_resolved.joinpath(*PurePosixPath(name).parts)
    # A symlink planted inside the target could still redirect the write.
    probe = root_resolved
    for part in PurePosixPath(name).parts:
        probe = probe / part
        if probe.is_symlink():
            raise UnsafePathError(name)
    if not target.resolve().is_relative_to(root_resolved):
        raise UnsafePathError(name)
    return target
