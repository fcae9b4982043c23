"""The local spool: finished snapshots waiting for the store, pushed data first and manifest last.

A spool entry is deleted only after its manifest is committed, so a store
outage or a kill mid-upload loses nothing; pushing again completes it (data
uploads are idempotent until the manifest exists).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from warcio.archiveiterator import ArchiveIterator

from archive.ids import is_snapshot_id
from archive.manifest import (
    ITEMS_NAME,
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    read_manifest,
    sha256_file,
)
from archive.paths import KINDS, SITE_RE
from archive.progress import transfer_bar
from archive.staging import DIGESTS_NAME, META_NAME, PARTIAL_SUFFIX, build_manifest, is_live
from archive.stores import SnapshotRef, SnapshotStore
from newsvault.errors import NewsvaultError, SnapshotExistsError, StoreError, StoreUnreachableError

log = logging.getLogger(__name__)

PushState = Literal["committed", "already_committed", "failed", "kept", "skipped"]


@dataclass
class PushResult:
    """What happened to one spool entry."""

    site: str
    kind: str
    snapshot_id: str
    state: PushState
    bytes: int = 0
    error: str | None = None
    salvaged: bool = False

    @property
    def ok(self) -> bool:
        return self.state in ("committed", "already_committed")


# --- listing -----------------------------------------------------------------
def iter_entries(spool_dir: Path) -> Iterator[tuple[str, str, Path]]:
    """(site, kind, dir) of every entry (finished or ``.partial``), oldest id first."""
    if not spool_dir.is_dir():
        return
    found = []
    for site_dir in spool_dir.iterdir():
        if not site_dir.is_dir() or not SITE_RE.match(site_dir.name):
            continue
        for kind in KINDS:
            kind_dir = site_dir / kind
            if kind_dir.is_dir():
                for entry in kind_dir.iterdir():
                    name = entry.name.removesuffix(PARTIAL_SUFFIX)
                    if entry.is_dir() and is_snapshot_id(name):
                        found.append((name, site_dir.name, kind, entry))
    for _name, site, kind, entry in sorted(found):
        yield site, kind, entry


# --- salvage -----------------------------------------------------------------
def _salvage_items(path: Path) -> Counter[str]:
    """Keep every complete JSON line of a possibly truncated gzip; returns counts by type/change."""
    counts: Counter[str] = Counter()
    tmp = path.with_name(".items-salvage.jsonl.gz")
    with gzip.open(tmp, "wt", encoding="utf-8") as out:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as inp:
                for line in inp:
                    if not line.endswith("\n"):
                        break
                    try:
                        item = json.loads(line)
                    except ValueError:
                        break
                    out.write(line)
                    counts[f"{item.get('type', 'unknown')}/{item.get('change', 'none')}"] += 1
        except (EOFError, OSError, zlib.error, UnicodeDecodeError):
            pass  # the crawl died mid-write: everything before this point is kept
    os.replace(tmp, path)
    return counts


def _salvage_warc(path: Path) -> tuple[int, int]:
    """Truncate a WARC after its last complete record; returns (responses, revisits) kept."""
    good_end = 0
    responses = revisits = 0
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        try:
            for record in it:
                record.content_stream().read()
                it.read_to_end(record)
                good_end = it.get_record_offset() + it.get_record_length()
                rtype = record.rec_type
                responses += rtype == "response"
                revisits += rtype == "revisit"
        except Exception:  # noqa: BLE001 - any parse failure marks the truncation point
            log.info("WARC %s is truncated after byte %d", path.name, good_end)
    if good_end < path.stat().st_size:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return responses, revisits


def salvage(partial_dir: Path) -> Path:
    """Turn a ``.partial`` dir from a killed crawl into a finished ``partial`` snapshot entry.

    Raises ValueError (leaving the dir as it is) when it cannot be read back.
    """
    meta_path = partial_dir / META_NAME
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        snapshot_id = str(meta["snapshot_id"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{partial_dir.name}: no readable {META_NAME}") from exc
    if not (partial_dir / ITEMS_NAME).exists():
        raise ValueError(f"{partial_dir.name}: no {ITEMS_NAME}")
    (partial_dir / MANIFEST_NAME).unlink(missing_ok=True)  # half-written by a crash during finalise
    item_counts = _salvage_items(partial_dir / ITEMS_NAME)
    pages = revisits = 0
    refers: set[str] = set()
    for warc in sorted(partial_dir.glob("pages-*.warc.gz")):
        r, v = _salvage_warc(warc)
        pages += r + v
        revisits += v
        if v:
            refers.update(_refers_in(warc))
    # A crashed crawl never feeds the digest index.
    (partial_dir / DIGESTS_NAME).unlink(missing_ok=True)
    by_type: dict[str, dict[str, int]] = {}
    for key, count in sorted(item_counts.items()):
        typ, change = key.split("/", 1)
        by_type.setdefault(typ, {})[change] = count
    build_manifest(
        partial_dir,
        snapshot_id=snapshot_id,
        site=str(meta["site"]),
        kind=str(meta["kind"]),
        started_at=str(meta["started_at"]),
        status="partial",
        finish_reason="salvaged",
        counts={"items": sum(item_counts.values()), "items_by_type": by_type, "pages": pages, "revisits": revisits},
        crawl_stats={},
        previous_snapshot_id=meta.get("previous_snapshot_id"),
        refers_to=sorted(refers),
    )
    final = partial_dir.with_name(snapshot_id)
    os.replace(partial_dir, final)
    log.warning("salvaged killed crawl into partial snapshot %s", snapshot_id)
    return final


def _refers_in(warc: Path) -> set[str]:
    from archive.warc import HEADER_REFERS_SNAPSHOT

    ids: set[str] = set()
    with open(warc, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "revisit":
                ref = record.rec_headers.get_header(HEADER_REFERS_SNAPSHOT)
                if ref and is_snapshot_id(ref):
                    ids.add(ref)
    return ids


# --- push ----------------------------------------------------------------------
def push_entry(store: SnapshotStore, entry: Path, *, progress: bool = True) -> PushResult:
    """Upload one finished entry (data files, then the manifest with If-None-Match), then delete it."""
    manifest_bytes = (entry / MANIFEST_NAME).read_bytes()
    manifest = Manifest.from_json(manifest_bytes)
    ref = SnapshotRef(snapshot_id=manifest.snapshot_id, site=manifest.site, kind=manifest.kind)
    result = PushResult(site=ref.site, kind=ref.kind, snapshot_id=ref.snapshot_id, state="failed")
    for item in manifest.files:
        # Re-check before upload: a spool file damaged on disk must not be committed.
        size, sha = sha256_file(entry / item.name)
        if (size, sha) != (item.size, item.sha256):
            raise ManifestError(f"spool file {item.name} of {ref.snapshot_id} no longer matches its manifest")
    with transfer_bar(f"upload {ref.snapshot_id}", manifest.total_bytes, enabled=progress) as callback:
        for item in manifest.files:
            store.put_file(ref.key(item.name), entry / item.name, callback)
    try:
        store.put_manifest_if_absent(ref.key(MANIFEST_NAME), manifest_bytes)
        result.state = "committed"
    except SnapshotExistsError:
        # A previous push may have died after committing: same manifest means done.
        if store.get_bytes(ref.key(MANIFEST_NAME)) != manifest_bytes:
            raise
        result.state = "already_committed"
    result.bytes = manifest.total_bytes + len(manifest_bytes)
    shutil.rmtree(entry)
    log.info("snapshot %s committed to %s (%d bytes)", ref.snapshot_id, store.url, result.bytes)
    return result


def push_all(store: SnapshotStore, spool_dir: str | Path, *, progress: bool = True, salvage_partials: bool = True) -> list[PushResult]:
    """Push every finished spool entry; salvage ``.partial`` dirs of dead crawls first.

    Never raises for a store failure: entries stay spooled and the result says why.
    """
    spool_dir = Path(spool_dir)
    results: list[PushResult] = []
    unreachable: str | None = None
    for site, kind, entry in list(iter_entries(spool_dir)):
        snapshot_id = entry.name.removesuffix(PARTIAL_SUFFIX)
        salvaged = False
        if entry.name.endswith(PARTIAL_SUFFIX):
            if is_live(entry):
                continue  # a crawl is still writing it
            if not salvage_partials:
                results.append(PushResult(site, kind, snapshot_id, "kept", error="left by a killed crawl"))
                continue
            try:
                entry = salvage(entry)
                salvaged = True
            except (ValueError, OSError) as exc:
                log.warning("cannot salvage %s: %s; left untouched", entry, exc)
                results.append(PushResult(site, kind, snapshot_id, "kept", error=f"cannot salvage: {exc}"))
                continue
        if unreachable is not None:
            results.append(PushResult(site, kind, snapshot_id, "skipped", error=unreachable, salvaged=salvaged))
            continue
        try:
            result = push_entry(store, entry, progress=progress)
        except StoreUnreachableError as exc:
            unreachable = str(exc)
            result = PushResult(site, kind, snapshot_id, "failed", error=unreachable)
        except (StoreError, ManifestError, NewsvaultError, OSError) as exc:
            result = PushResult(site, kind, snapshot_id, "failed", error=str(exc))
        result.salvaged = salvaged
        if not result.ok:
            log.warning("snapshot %s stays spooled: %s", snapshot_id, result.error)
        results.append(result)
    return results


def spooled_entries(spool_dir: str | Path) -> list[tuple[str, str, str, bool]]:
    """(site, kind, snapshot id, is_partial) of everything waiting in the spool."""
    return [
        (site, kind, entry.name.removesuffix(PARTIAL_SUFFIX), entry.name.endswith(PARTIAL_SUFFIX))
        for site, kind, entry in iter_entries(Path(spool_dir))
    ]


__all__ = ["PushResult", "push_all", "push_entry", "read_manifest", "salvage", "spooled_entries"]
