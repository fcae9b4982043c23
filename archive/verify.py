"""Finding committed snapshots and re-hashing their files against the manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from archive.ids import snapshot_time
from archive.manifest import MANIFEST_NAME, Manifest, ManifestError
from archive.stores import SnapshotRef, SnapshotStore
from newsvault.errors import IntegrityError, SnapshotNotFoundError, StoreError

_CHUNK = 1024 * 1024


def find_snapshot(store: SnapshotStore, snapshot_id: str, *, site: str | None = None) -> SnapshotRef:
    """The committed snapshot with this id (or unique id prefix)."""
    matches = [r for r in store.list_snapshots(site) if r.snapshot_id == snapshot_id]
    if not matches:
        matches = [r for r in store.list_snapshots(site) if r.snapshot_id.startswith(snapshot_id)]
    if len(matches) != 1:
        detail = "no committed snapshot" if not matches else f"{len(matches)} snapshots"
        raise SnapshotNotFoundError(f"{detail} matches {snapshot_id!r} in {store.url}")
    return matches[0]


def latest_snapshot(
    store: SnapshotStore, site: str, kind: str | None = None, *, at: datetime | None = None, any_status: bool = False
) -> SnapshotRef:
    """The newest complete snapshot of ``site`` (started at or before ``at`` when given).

    Snapshots of failed or partial runs (a site down for a day of hourly runs
    leaves a row of them) are passed over unless ``any_status``; so are
    snapshots whose manifest cannot be read.
    """
    refs = store.list_snapshots(site, kind)
    if at is not None:
        refs = [r for r in refs if snapshot_time(r.snapshot_id) <= at]
    for ref in sorted(refs, reverse=True):
        if any_status:
            return ref
        try:
            if load_manifest(store, ref).status == "complete":
                return ref
        except (IntegrityError, StoreError):  # unreadable manifests are passed over, like incomplete runs
            continue
    when = f" at or before {at.isoformat()}" if at else ""
    what = "committed" if any_status else "complete"
    raise SnapshotNotFoundError(f"no {what} snapshot of {site}{'/' + kind if kind else ''}{when} in {store.url}")


def load_manifest(store: SnapshotStore, ref: SnapshotRef) -> Manifest:
    """The snapshot's manifest, checked against its own checksum; IntegrityError names manifest.json."""
    return parse_manifest(ref, store.get_bytes(ref.key(MANIFEST_NAME)))


def parse_manifest(ref: SnapshotRef, raw: bytes) -> Manifest:
    try:
        manifest = Manifest.from_json(raw)
    except ManifestError as exc:
        raise IntegrityError(ref.snapshot_id, MANIFEST_NAME, str(exc)) from exc
    if (manifest.snapshot_id, manifest.site, manifest.kind) != (ref.snapshot_id, ref.site, ref.kind):
        raise IntegrityError(ref.snapshot_id, MANIFEST_NAME, "manifest names a different snapshot than its location")
    return manifest


def verify_snapshot(store: SnapshotStore, ref: SnapshotRef, *, committed_ids: set[str] | None = None,
                    keep: Mapping[str, Path] | None = None) -> Manifest:
    """Stream and re-hash every file; check every revisit target exists; raise IntegrityError naming the first problem.

    Reads stop one byte past each file's manifest size, so a file that grew
    (or a link to an endless device) is reported, never read to its end.
    ``committed_ids`` (the site's committed snapshot ids) saves a listing per snapshot.
    ``keep`` (file name -> local path) also writes those files' bytes there as
    they are hashed: a caller that needs them reads exactly what was verified,
    without a second download.
    """
    manifest = load_manifest(store, ref)
    keep = keep or {}
    for entry in manifest.files:
        digest = hashlib.sha256()
        size = 0
        try:
            with store.open(ref.key(entry.name)) as stream, _copy_to(keep.get(entry.name)) as copy:
                while size <= entry.size and (chunk := stream.read(min(_CHUNK, entry.size + 1 - size))):
                    digest.update(chunk)
                    size += len(chunk)
                    if copy is not None:
                        copy.write(chunk)
        except OSError as exc:
            raise IntegrityError(ref.snapshot_id, entry.name, f"cannot be read: {exc}") from exc
        if size > entry.size:
            raise IntegrityError(ref.snapshot_id, entry.name, f"is larger than the manifest's {entry.size} bytes")
        if size != entry.size:
            raise IntegrityError(ref.snapshot_id, entry.name, f"size {size} does not match the manifest's {entry.size}")
        if digest.hexdigest() != entry.sha256:
            raise IntegrityError(ref.snapshot_id, entry.name, "sha256 does not match the manifest")
    if manifest.refers_to:
        if committed_ids is None:
            committed_ids = {r.snapshot_id for r in store.list_snapshots(ref.site)}
        dangling = [target for target in manifest.refers_to if target not in committed_ids]
        if dangling:
            raise IntegrityError(
                ref.snapshot_id, MANIFEST_NAME,
                f"its revisit records refer to {', '.join(dangling)}, which is not in the archive "
                "(a self-contained restore cannot resolve them)",
            )
    return manifest


def _copy_to(path: Path | None) -> AbstractContextManager[BinaryIO | None]:
    """A file to write a verified copy into, or nothing."""
    return open(path, "wb") if path is not None else nullcontext(None)


def committed_by_site(refs: Iterable[SnapshotRef]) -> dict[str, set[str]]:
    """Site -> its committed snapshot ids, from one listing (for ``verify_snapshot(committed_ids=...)``)."""
    committed: dict[str, set[str]] = {}
    for ref in refs:
        committed.setdefault(ref.site, set()).add(ref.snapshot_id)
    return committed
