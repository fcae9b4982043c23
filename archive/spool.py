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
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from warcio.archiveiterator import ArchiveIterator

from archive.ids import is_snapshot_id
from archive.manifest import (
    ITEMS_NAME,
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    read_manifest,
)
from archive.paths import KINDS, SITE_RE
from archive.progress import transfer_bar
from archive.staging import (
    DIGESTS_NAME,
    LOCK_NAME,
    META_NAME,
    PARTIAL_SUFFIX,
    build_manifest,
    is_live,
)
from archive.stores import SnapshotRef, SnapshotStore
from archive.writers import WriterCheck, WriterIdentity
from newsvault.errors import (
    NewsvaultError,
    ObjectExistsError,
    SnapshotExistsError,
    SourceChangedError,
    StoreError,
    StoreUnreachableError,
    WriterConflictError,
)

log = logging.getLogger(__name__)

# waiting: its revisits point at a snapshot not committed in the store yet.
# busy: another push (or the crawl finishing it) holds the entry's lock.
# conflict: the store holds this snapshot id (or this site and kind) from another writer;
# the entry is never uploaded over it and stays where it is.
PushState = Literal["committed", "already_committed", "failed", "kept", "skipped", "waiting", "busy", "conflict"]


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
    try:
        # Only reading may fail quietly (that is where the crawl died); a failed
        # write of the copy (a full disk) propagates and the original stays.
        with gzip.open(tmp, "wt", encoding="utf-8") as out:
            for line, item in _complete_lines(path):
                out.write(line)
                counts[f"{item.get('type', 'unknown')}/{item.get('change', 'none')}"] += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return counts


def _complete_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(line, parsed) for each complete JSON line of a gzip, stopping where it is truncated or damaged."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as inp:
            for line in inp:
                if not line.endswith("\n"):
                    return
                try:
                    item = json.loads(line)
                except ValueError:
                    return
                yield line, item if isinstance(item, dict) else {}
    except (EOFError, OSError, zlib.error, UnicodeDecodeError):
        return  # the crawl died mid-write: everything before this point is kept


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


def _committed_manifest(store: SnapshotStore, ref: SnapshotRef) -> bytes | None:
    """The stored manifest of ``ref`` if it is committed, else None."""
    key = ref.key(MANIFEST_NAME)
    return store.get_bytes(key) if store.exists(key) else None


def _conflict(result: PushResult, entry: Path, why: str) -> PushResult:
    result.state = "conflict"
    result.error = f"{why}; nothing was overwritten and the entry stays in {entry}"
    log.error("snapshot %s is not pushed: %s", result.snapshot_id, result.error)
    return result


# Called with (entry dir, manifest) once a snapshot is committed, before its entry goes
# (the catalog ingests it from the local files). Its failures never fail the push.
CommittedHook = Callable[[Path, Manifest], None]


def _push_locked(
    store: SnapshotStore, entry: Path, committed: _Committed, writers: WriterCheck | None, progress: bool,
    on_committed: CommittedHook | None = None,
) -> PushResult:
    manifest_bytes = (entry / MANIFEST_NAME).read_bytes()
    manifest = Manifest.from_json(manifest_bytes)
    ref = SnapshotRef(snapshot_id=manifest.snapshot_id, site=manifest.site, kind=manifest.kind)
    result = PushResult(site=ref.site, kind=ref.kind, snapshot_id=ref.snapshot_id, state="failed")
    # Nothing of a committed snapshot is ever written again: look before the first upload.
    stored = _committed_manifest(store, ref)
    if stored is not None:
        if stored != manifest_bytes:
            return _conflict(result, entry, f"snapshot {ref.snapshot_id} is already committed in {store.url} with "
                             "other content (a copied state dir or a second host?)")
        result.state = "already_committed"  # a previous push died after its commit
    else:
        if writers is not None:
            try:
                writers.check(ref.site, ref.kind)
            except WriterConflictError as exc:
                return _conflict(result, entry, str(exc))
        # Revisits must never point at a record the store may never get: wait for every
        # referenced snapshot to be committed first.
        missing = committed.missing(ref.site, manifest.refers_to)
        if missing:
            result.state = "waiting"
            result.error = "waiting for " + ", ".join(missing)
            return result
        try:
            _upload(store, entry, ref, manifest, progress)
        except ObjectExistsError as exc:
            return _conflict(result, entry, f"{exc} (another writer uses snapshot id {ref.snapshot_id})")
        try:
            store.put_bytes_if_absent(ref.key(MANIFEST_NAME), manifest_bytes)
            result.state = "committed"
        except SnapshotExistsError:
            # Committed meanwhile: by a push of this same entry that died after its commit, or by another writer.
            if store.get_bytes(ref.key(MANIFEST_NAME)) != manifest_bytes:
                return _conflict(result, entry, f"snapshot {ref.snapshot_id} was committed by another writer meanwhile")
            result.state = "already_committed"
    committed.add(ref.site, ref.snapshot_id)
    result.bytes = manifest.total_bytes + len(manifest_bytes)
    if on_committed is not None:
        try:
            on_committed(entry, manifest)
        except Exception as exc:  # noqa: BLE001 - the snapshot is committed; a cache lagging behind is not a failure
            log.warning("snapshot %s committed, but its after-commit step failed: %s", ref.snapshot_id, exc)
    # Out of the listing by an atomic rename first, then deleted: a pusher that
    # listed the entry earlier finds nothing rather than a half-deleted dir.
    done = entry.with_name(f".{entry.name}.pushed-{os.getpid()}")
    os.replace(entry, done)
    shutil.rmtree(done, ignore_errors=True)
    log.info("snapshot %s committed to %s (%d bytes)", ref.snapshot_id, store.url, result.bytes)
    return result


def _upload(store: SnapshotStore, entry: Path, ref: SnapshotRef, manifest: Manifest, progress: bool) -> None:
    """Put every data file create-if-absent; the store hashes the bytes it sends against the manifest.

    A spool file damaged on disk is never committed: its upload fails before
    the object becomes visible (SourceChangedError), and without every data
    file there is no manifest, so no snapshot.
    """
    with transfer_bar(f"upload {ref.snapshot_id}", manifest.total_bytes, enabled=progress) as callback:
        for item in manifest.files:
            try:
                store.put_file(ref.key(item.name), entry / item.name, callback, sha256=item.sha256)
            except SourceChangedError as exc:
                raise ManifestError(f"spool file {item.name} of {ref.snapshot_id} no longer matches its manifest") from exc


def push_all(
    store: SnapshotStore,
    spool_dir: str | Path,
    *,
    progress: bool = True,
    salvage_partials: bool = True,
    writer: WriterIdentity | None = None,
    on_committed: CommittedHook | None = None,
) -> list[PushResult]:
    """Push every finished spool entry, oldest first; salvage ``.partial`` dirs of dead crawls first.

    With ``writer`` (this state dir), an entry of a (site, kind) that another
    writer registered in the archive is refused (``conflict``), as is one whose
    snapshot id is already committed with other content: nothing is ever overwritten.

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
    writers = WriterCheck(store, writer) if writer is not None else None
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
                    result = _push_locked(store, entry, committed, writers, progress, on_committed)
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
    spooled_ids = {entry.name.removesuffix(PARTIAL_SUFFIX) for _s, _k, entry in iter_entries(spool_dir)}
    for site, kind, entry, salvaged in waiting:
        snapshot_id = entry.name
        try:
            manifest = read_manifest(entry / MANIFEST_NAME)
            missing = committed.missing(site, manifest.refers_to)
        except (StoreError, ManifestError, OSError):
            missing = []
        gone = [m for m in missing if m not in spooled_ids]
        if gone:
            # Nothing will ever commit these: say so instead of waiting in silence.
            error = (f"its revisits refer to {', '.join(gone)}, which is neither in {store.url} nor waiting "
                     "in this spool (pruned, or written by another state dir)")
        else:
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


@dataclass(frozen=True)
class Backlog:
    """What waits in the spool: finished entries and dirs of dead crawls, their bytes, the oldest's age."""

    entries: int = 0
    partial: int = 0
    bytes: int = 0
    oldest_age_seconds: float | None = None


def spool_backlog(spool_dir: str | Path, *, now: float | None = None) -> Backlog:
    """The spool's backlog; ages come from the snapshot ids (their start times)."""
    from archive.ids import snapshot_time

    entries = partial = size = 0
    oldest: float | None = None
    for _site, _kind, entry in iter_entries(Path(spool_dir)):
        is_partial = entry.name.endswith(PARTIAL_SUFFIX)
        try:
            if is_partial and is_live(entry):
                continue  # a crawl still writing it (or a push salvaging it): not backlog
            entry_size = sum(path.stat().st_size for path in entry.iterdir())
        except OSError:
            continue  # pushed and removed while we looked
        partial += is_partial
        entries += not is_partial
        size += entry_size
        started = snapshot_time(entry.name.removesuffix(PARTIAL_SUFFIX)).timestamp()
        oldest = started if oldest is None else min(oldest, started)
    age = None if oldest is None else max(0.0, (now if now is not None else time.time()) - oldest)
    return Backlog(entries, partial, size, age)


def spooled_entries(spool_dir: str | Path) -> list[tuple[str, str, str, bool]]:
    """(site, kind, snapshot id, is_partial) of everything waiting in the spool."""
    return [
        (site, kind, entry.name.removesuffix(PARTIAL_SUFFIX), entry.name.endswith(PARTIAL_SUFFIX))
        for site, kind, entry in iter_entries(Path(spool_dir))
    ]


__all__ = ["Backlog", "PushResult", "push_all", "read_manifest", "salvage", "spool_backlog", "spooled_entries", "spooled_references", "try_lock"]
