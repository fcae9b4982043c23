"""The local spool: finished snapshots waiting for the store, pushed data first and manifest last.

A spool entry is deleted only after its manifest is committed, so a store
outage or a kill mid-upload loses nothing; pushing again completes it (data
uploads are idempotent until the manifest exists).
"""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
from archive.staging import DIGESTS_NAME, LOCK_NAME, META_NAME, PARTIAL_SUFFIX, build_manifest
from archive.stores import SnapshotRef, SnapshotStore
from newsvault.errors import NewsvaultError, SnapshotExistsError, StoreError, StoreUnreachableError

log = logging.getLogger(__name__)

# waiting: its revisits point at a snapshot not committed in the store yet.
# busy: another push (or the crawl finishing it) holds the entry's lock.
PushState = Literal["committed", "already_committed", "failed", "kept", "skipped", "waiting", "busy"]


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
    # A private temp name: even a salvage that somehow ran twice would not share a file.
    fd, tmp_name = tempfile.mkstemp(prefix=".items-salvage-", suffix=".jsonl.gz", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
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
    The caller must hold the dir's lock (:func:`try_lock`) so no one else salvages it at once.
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


def _refers_in(warc: Path, *, tolerate_truncation: bool = False) -> set[str]:
    from archive.warc import HEADER_REFERS_SNAPSHOT

    ids: set[str] = set()
    try:
        with open(warc, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "revisit":
                    ref = record.rec_headers.get_header(HEADER_REFERS_SNAPSHOT)
                    if ref and is_snapshot_id(ref):
                        ids.add(ref)
    except Exception:  # a WARC still being written ends mid-record
        if not tolerate_truncation:
            raise
    return ids


# --- locking -------------------------------------------------------------------
def try_lock(directory: Path) -> int | None:
    """Take ``directory``'s lock without waiting: the fd, or None when it is held or the dir is gone.

    The crawl writing a ``.partial`` dir holds the same lock, and so does a push
    for as long as it salvages and uploads the entry, so two pushers never work
    on one entry at once.
    """
    lock = directory / LOCK_NAME
    try:
        # No O_CREAT: creating a lock file in a dir another push is deleting would break its cleanup.
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        if not directory.is_dir():
            return None
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        except FileNotFoundError:
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The dir may have been renamed or removed between open() and flock() by the
        # holder we waited on: only the lock file still at this path counts.
        if os.fstat(fd).st_ino != os.stat(lock).st_ino:
            raise FileNotFoundError(lock)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd


# --- push ----------------------------------------------------------------------
class _Committed:
    """Which snapshot ids of a site the store holds, listed once per site per push run."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self._ids: dict[str, set[str]] = {}

    def missing(self, site: str, ids: list[str]) -> list[str]:
        if not ids:
            return []
        if site not in self._ids:
            self._ids[site] = {r.snapshot_id for r in self.store.list_snapshots(site)}
        return [i for i in ids if i not in self._ids[site]]

    def add(self, site: str, snapshot_id: str) -> None:
        self._ids.setdefault(site, set()).add(snapshot_id)


def _spool_digests(entry: Path, manifest: Manifest) -> list[tuple[int, str]]:
    """(size, sha256) of each of the manifest's files as they are in the spool now."""
    return [sha256_file(entry / item.name) for item in manifest.files]


def _push_locked(store: SnapshotStore, entry: Path, committed: _Committed, progress: bool) -> PushResult:
    manifest_bytes = (entry / MANIFEST_NAME).read_bytes()
    manifest = Manifest.from_json(manifest_bytes)
    ref = SnapshotRef(snapshot_id=manifest.snapshot_id, site=manifest.site, kind=manifest.kind)
    result = PushResult(site=ref.site, kind=ref.kind, snapshot_id=ref.snapshot_id, state="failed")
    # Revisits must never point at a record the store may never get: wait for every
    # referenced snapshot to be committed first.
    missing = committed.missing(ref.site, manifest.refers_to)
    if missing:
        result.state = "waiting"
        result.error = "waiting for " + ", ".join(missing)
        return result
    # A spool file damaged on disk must never be committed: re-hash every file in a
    # worker thread while the uploads run (sha256 and socket I/O both release the
    # GIL), and check before the manifest. Data objects without a manifest are no
    # snapshot, so a mismatch found after the upload still commits nothing.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-hash") as hasher:
        digests = hasher.submit(_spool_digests, entry, manifest)
        with transfer_bar(f"upload {ref.snapshot_id}", manifest.total_bytes, enabled=progress) as callback:
            for item in manifest.files:
                store.put_file(ref.key(item.name), entry / item.name, callback)
        for item, got in zip(manifest.files, digests.result(), strict=True):
            if got != (item.size, item.sha256):
                raise ManifestError(f"spool file {item.name} of {ref.snapshot_id} no longer matches its manifest")
    try:
        store.put_manifest_if_absent(ref.key(MANIFEST_NAME), manifest_bytes)
        result.state = "committed"
    except SnapshotExistsError:
        # A previous push may have died after committing: same manifest means done.
        if store.get_bytes(ref.key(MANIFEST_NAME)) != manifest_bytes:
            raise
        result.state = "already_committed"
    committed.add(ref.site, ref.snapshot_id)
    result.bytes = manifest.total_bytes + len(manifest_bytes)
    # Out of the listing by an atomic rename first, then deleted: a pusher that
    # listed the entry earlier finds nothing rather than a half-deleted dir.
    done = entry.with_name(f".{entry.name}.pushed-{os.getpid()}")
    os.replace(entry, done)
    shutil.rmtree(done, ignore_errors=True)
    log.info("snapshot %s committed to %s (%d bytes)", ref.snapshot_id, store.url, result.bytes)
    return result


def push_entry(store: SnapshotStore, entry: Path, *, progress: bool = True) -> PushResult:
    """Upload one finished entry (data files, then the manifest with If-None-Match), then delete it.

    Holds the entry's lock throughout; returns state ``busy`` if someone else holds
    it and ``waiting`` while a snapshot its revisits point to is not in the store.
    """
    fd = try_lock(entry)
    if fd is None:
        snapshot_id = entry.name.removesuffix(PARTIAL_SUFFIX)
        return PushResult(entry.parent.parent.name, entry.parent.name, snapshot_id, "busy", error="another push holds it")
    try:
        return _push_locked(store, entry, _Committed(store), progress)
    finally:
        os.close(fd)


def push_all(store: SnapshotStore, spool_dir: str | Path, *, progress: bool = True, salvage_partials: bool = True) -> list[PushResult]:
    """Push every finished spool entry, oldest first; salvage ``.partial`` dirs of dead crawls first.

    An entry whose revisits point at a snapshot not yet in the store stays
    spooled (``waiting``) until that snapshot is committed; entries are retried
    within the run as their references get committed (a newer crawl of one kind
    may refer to an older-started, later-finished crawl of the other).
    Never raises for a store failure: entries stay spooled and the result says why.
    """
    spool_dir = Path(spool_dir)
    results: list[PushResult] = []
    unreachable: str | None = None
    committed = _Committed(store)
    waiting: list[tuple[str, str, Path, bool]] = []
    pending: list[tuple[str, str, Path, bool]] = []
    for site, kind, entry in list(iter_entries(spool_dir)):
        pending.append((site, kind, entry, False))
    while pending:
        progressed = False
        for site, kind, entry, salvaged in pending:
            snapshot_id = entry.name.removesuffix(PARTIAL_SUFFIX)
            fd = try_lock(entry)
            if fd is None:
                if not entry.name.endswith(PARTIAL_SUFFIX) and entry.is_dir():
                    results.append(PushResult(site, kind, snapshot_id, "busy", error="another push holds it"))
                continue  # a crawl still writes it, or another push has it (or finished it)
            try:
                if entry.name.endswith(PARTIAL_SUFFIX):
                    if not salvage_partials:
                        results.append(PushResult(site, kind, snapshot_id, "kept", error="left by a killed crawl"))
                        continue
                    try:
                        # Under the lock: no other push salvages (or uploads) this dir meanwhile.
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
                    result = _push_locked(store, entry, committed, progress)
                except StoreUnreachableError as exc:
                    unreachable = str(exc)
                    result = PushResult(site, kind, snapshot_id, "failed", error=unreachable)
                except (StoreError, ManifestError, NewsvaultError, OSError) as exc:
                    result = PushResult(site, kind, snapshot_id, "failed", error=str(exc))
                result.salvaged = salvaged
                if result.state == "waiting":
                    waiting.append((site, kind, entry, salvaged))
                    continue
                progressed = progressed or result.ok
                if not result.ok:
                    log.warning("snapshot %s stays spooled: %s", snapshot_id, result.error)
                results.append(result)
            finally:
                os.close(fd)
        if not (waiting and progressed and unreachable is None):
            break
        pending, waiting = waiting, []
    # Whatever still waits after the last pass stays spooled and says for what.
    for site, kind, entry, salvaged in waiting:
        snapshot_id = entry.name
        try:
            manifest = read_manifest(entry / MANIFEST_NAME)
            missing = committed.missing(site, manifest.refers_to)
        except (StoreError, ManifestError, OSError):
            missing = []
        error = "waiting for " + (", ".join(missing) if missing else "referenced snapshots")
        log.warning("snapshot %s stays spooled: %s", snapshot_id, error)
        results.append(PushResult(site, kind, snapshot_id, "waiting", error=error, salvaged=salvaged))
    return results


def spooled_references(spool_dir: Path, site: str | None = None) -> dict[str, set[str]]:
    """Site -> snapshot ids that entries waiting in the spool refer to (from manifests, or WARCs of ``.partial`` dirs).

    Prune keeps these, so an entry pushed later never points at a pruned snapshot.
    A ``.partial`` dir is read as far as it goes (a live crawl may be mid-record).
    """
    found: dict[str, set[str]] = {}
    for entry_site, _kind, entry in iter_entries(spool_dir):
        if site is not None and entry_site != site:
            continue
        ids = found.setdefault(entry_site, set())
        if not entry.name.endswith(PARTIAL_SUFFIX):
            try:
                ids.update(read_manifest(entry / MANIFEST_NAME).refers_to)
                continue
            except (OSError, ManifestError) as exc:
                log.warning("spool entry %s: unreadable manifest (%s); reading its WARCs", entry.name, exc)
        for warc in sorted(entry.glob("pages-*.warc.gz")):
            ids.update(_refers_in(warc, tolerate_truncation=True))
    return found


def spooled_entries(spool_dir: str | Path) -> list[tuple[str, str, str, bool]]:
    """(site, kind, snapshot id, is_partial) of everything waiting in the spool."""
    return [
        (site, kind, entry.name.removesuffix(PARTIAL_SUFFIX), entry.name.endswith(PARTIAL_SUFFIX))
        for site, kind, entry in iter_entries(Path(spool_dir))
    ]


__all__ = ["PushResult", "push_all", "push_entry", "read_manifest", "salvage", "spooled_entries", "spooled_references", "try_lock"]
