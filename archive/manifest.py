"""The snapshot manifest: what a snapshot holds, its checksums and counts; written last to commit."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archive.ids import is_snapshot_id
from archive.paths import check_kind, check_name, check_site
from newsvault import SCHEMA_VERSION, __version__
from newsvault.errors import NewsvaultError, UnsafePathError

MANIFEST_NAME = "manifest.json"
FORMAT = "newsvault-snapshot"
# 2: the manifest carries ``manifest_sha256``, a checksum of itself. 1 (older
# snapshots) has none; such manifests are still read but reported as unverifiable.
FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1
CHECKSUM_FIELD = "manifest_sha256"
ITEMS_NAME = "items.jsonl.gz"
# What a run's snapshot says it is: ``complete`` (the crawl ran to its end),
# ``partial`` (stopped early, killed, salvaged), ``failed`` (the crawl could not
# do its job: every start URL failed, no page fetched). Only complete snapshots
# count for --latest, --at and the retention rules unless asked otherwise.
STATUSES = ("complete", "partial", "failed")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Far above any real manifest (a 100,000-page crawl's is well under 1 MiB).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


class ManifestError(NewsvaultError, ValueError):
    """A manifest is malformed (bad JSON, too large or deep, missing key, unsafe file name)."""


class ManifestChecksumError(ManifestError):
    """A manifest's own ``manifest_sha256`` does not match its content (it was altered or damaged)."""


def manifest_checksum(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, compact, UTF-8) of ``data`` without its checksum field."""
    body = {k: v for k, v in data.items() if k != CHECKSUM_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class FileEntry:
    name: str
    size: int
    sha256: str


@dataclass
class Manifest:
    snapshot_id: str
    site: str
    kind: str
    started_at: str
    finished_at: str
    status: str  # one of STATUSES
    finish_reason: str
    counts: dict[str, Any]
    crawl_stats: dict[str, Any]
    previous_snapshot_id: str | None
    refers_to: list[str]
    files: list[FileEntry]
    tool: dict[str, str] = field(default_factory=lambda: {"name": "newsvault", "version": __version__})
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    # Set when read from JSON: whether the manifest carried (and passed) its own checksum.
    checksummed: bool = field(default=True, compare=False)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, name: str) -> FileEntry | None:
        return next((f for f in self.files if f.name == name), None)

    def warc_names(self) -> list[str]:
        return [f.name for f in self.files if f.name.endswith(".warc.gz")]

    def to_json(self) -> bytes:
        data = asdict(self)
        del data["checksummed"]
        ordered = {k: data[k] for k in ("format", "format_version", "schema_version", "snapshot_id", "site", "kind")}
        ordered.update(data)
        if self.format_version >= FORMAT_VERSION:
            # Last, over everything else: any later change to a value shows up in verify.
            ordered[CHECKSUM_FIELD] = manifest_checksum(ordered)
        return (json.dumps(ordered, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str) -> Manifest:
        """Parse and validate; every name is checked so a hostile manifest cannot steer a restore."""
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            data = json.loads(raw)
        except RecursionError as exc:
            raise ManifestError("manifest is nested too deeply") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ManifestError("not a newsvault snapshot manifest")
        claimed = data.get(CHECKSUM_FIELD)
        version = data.get("format_version")
        if version == LEGACY_FORMAT_VERSION and claimed is None:
            checksummed = False
        elif version == FORMAT_VERSION:
            if not isinstance(claimed, str) or not _SHA256_RE.match(claimed):
                raise ManifestChecksumError(f"manifest has no valid {CHECKSUM_FIELD}")
            try:
                actual = manifest_checksum(data)
            except (ValueError, RecursionError) as exc:  # NaN/Infinity cannot be in a manifest we wrote
                raise ManifestChecksumError(f"manifest content cannot be checksummed: {exc}") from exc
            if actual != claimed:
                raise ManifestChecksumError(f"{CHECKSUM_FIELD} does not match the manifest's content")
            checksummed = True
        else:
            raise ManifestError(f"unsupported manifest format_version {version!r}")
        try:
            files = [FileEntry(name=str(f["name"]), size=int(f["size"]), sha256=str(f["sha256"])) for f in data["files"]]
            manifest = cls(
                snapshot_id=str(data["snapshot_id"]),
                site=str(data["site"]),
                kind=str(data["kind"]),
                started_at=str(data["started_at"]),
                finished_at=str(data["finished_at"]),
                status=str(data["status"]),
                finish_reason=str(data.get("finish_reason", "")),
                counts=dict(data.get("counts", {})),
                crawl_stats=dict(data.get("crawl_stats", {})),
                previous_snapshot_id=data.get("previous_snapshot_id"),
                refers_to=[str(s) for s in data.get("refers_to", [])],
                files=files,
                tool=dict(data.get("tool", {})),
                schema_version=int(data.get("schema_version", 0)),
                format_version=int(data["format_version"]),
                checksummed=checksummed,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"manifest is missing or has a bad field: {exc}") from exc
        except RecursionError as exc:
            raise ManifestError("manifest is nested too deeply") from exc
        manifest.validate()
        return manifest

    def validate(self) -> None:
        try:
            check_site(self.site)
            check_kind(self.kind)
        except ValueError as exc:
            raise ManifestError(str(exc)) from exc
        if not is_snapshot_id(self.snapshot_id):
            raise ManifestError(f"bad snapshot id {self.snapshot_id!r}")
        for ref in self.refers_to + ([self.previous_snapshot_id] if self.previous_snapshot_id else []):
            if not is_snapshot_id(ref):
                raise ManifestError(f"bad referenced snapshot id {ref!r}")
        if self.status not in STATUSES:
            raise ManifestError(f"bad status {self.status!r}")
        seen: set[str] = set()
        for entry in self.files:
            try:
                check_name(entry.name)
            except UnsafePathError as exc:
                raise ManifestError(f"unsafe file name {entry.name!r}") from exc
            if "/" in entry.name or entry.name == MANIFEST_NAME or entry.name in seen:
                raise ManifestError(f"bad file entry {entry.name!r}")
            if entry.size < 0 or not _SHA256_RE.match(entry.sha256):
                raise ManifestError(f"bad size or sha256 for {entry.name!r}")
            seen.add(entry.name)


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def snapshot_files(directory: Path) -> list[FileEntry]:
    """Entries for the data files of a staging dir (hidden bookkeeping files and the manifest excluded)."""
    entries = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name == MANIFEST_NAME or not path.is_file():
            continue
        size, sha = sha256_file(path)
        entries.append(FileEntry(name=path.name, size=size, sha256=sha))
    return entries


def read_manifest(path: Path) -> Manifest:
    return Manifest.from_json(path.read_bytes())
