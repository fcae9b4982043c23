"""The archive around one crawl or push: the shared archive lock, the checks before, the push and its truth after.

A crawl asks three things of the archive. Before it starts: may this state
dir write this (site, kind) here (archive/writers.py), and does the digest
index still name only snapshots that exist (so no revisit points at a pruned
one). After it ends: push the spool, and say what the *store* holds of its
snapshot, never what the crawl hoped. All of it happens while the archive
lock is held shared, so a prune never runs in between (archive/locks.py).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from archive.index import DigestIndex
from archive.locks import archive_lock
from archive.manifest import MANIFEST_NAME
from archive.push_log import PushLog
from archive.spool import CommittedHook, PushResult, push_all, spooled_entries
from archive.staging import PARTIAL_SUFFIX, entry_dir
from archive.stores import SnapshotRef, SnapshotStore, open_store
from archive.writers import WriterCheck, WriterIdentity
from newsvault.errors import StoreError, StoreUnreachableError

log = logging.getLogger(__name__)

SnapshotState = Literal["committed", "spooled", "unfinished"]


@dataclass
class SnapshotOutcome:
    """Where a run's snapshot is, as the store and the spool say."""

    state: SnapshotState | None
    # Why it is not committed (the push's error), or None.
    note: str | None = None
    # The store holds this id or this (site, kind) from another writer: it will not commit without an operator.
    conflict: bool = False
    # Bytes committed (data files and manifest), when this push committed it.
    bytes: int | None = None


class ArchiveSession:
    """Holds the archive lock (shared) for a crawl or a push; see the module doc."""

    def __init__(
        self,
        archive_url: str,
        *,
        state_dir: Path,
        spool_dir: Path,
        settings: Any = None,
        lock_wait_seconds: float = 600.0,
        progress: bool = False,
        on_committed: CommittedHook | None = None,
        state_url: str | None = None,
        writer: WriterIdentity | None = None,
    ) -> None:
        self.archive_url = archive_url
        self.state_dir = state_dir
        # A cluster's shared state (its digest index); None: the state dir's own.
        self.state_url = state_url
        self.spool_dir = spool_dir
        self.settings = settings
        self.lock_wait_seconds = lock_wait_seconds
        self.progress = progress
        self.on_committed = on_committed
        # Who writes (site, kind) chains: this state dir, or the cluster it belongs to.
        self.identity = writer or WriterIdentity.of(state_dir)
        self._lock = archive_lock(archive_url, state_dir)
        self._held: Any = None
        self.store: SnapshotStore = open_store(archive_url, settings)

    def __enter__(self) -> Self:
        self._held = self._lock.shared(self.lock_wait_seconds)
        self._held.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(exc_type, exc, tb)

    # --- before the crawl -------------------------------------------------------------
    def preflight(self, site: str, kind: str) -> None:
        """Refuse (WriterConflictError) a (site, kind) another writer owns; drop vanished snapshots from the index.

        An unreachable store is no reason not to crawl (the snapshot is spooled);
        the push checks the writer again before anything is uploaded.
        """
        try:
            WriterCheck(self.store, self.identity).check(site, kind)
            committed = {ref.snapshot_id for ref in self.store.list_snapshots(site)}
        except StoreUnreachableError as exc:
            log.warning("archive not reachable before the crawl (%s); its checks wait for the push", exc)
            return
        spooled = {sid for s, _k, sid, _partial in spooled_entries(self.spool_dir) if s == site}
        index = DigestIndex.in_state_dir(self.state_dir, self.archive_url, url=self.state_url)
        try:
            gone = index.keep_only(site, committed | spooled)
        finally:
            index.close()
        if gone:
            log.warning("%d snapshot(s) of %s are no longer in %s (pruned elsewhere?); revisits will not point at them",
                        len(gone), site, self.store.url)

    # --- after the crawl ----------------------------------------------------------------
    def push(self) -> list[PushResult]:
        """Push the spool (nothing is ever overwritten) and log the outcome for /metrics and /healthz."""
        try:
            results = push_all(self.store, self.spool_dir, progress=self.progress, writer=self.identity,
                               on_committed=self.on_committed)
        except (StoreError, OSError) as exc:  # push_all keeps entries and reports; this is a last resort
            log.warning("could not push snapshots to the archive (%s); they stay spooled", exc)
            results = []
            error: str | None = str(exc)
        else:
            failed = [r for r in results if not r.ok and r.state not in ("busy", "kept")]
            error = failed[0].error if failed else None
        try:
            PushLog.in_state_dir(self.state_dir).record(self.archive_url, attempted=bool(results) or error is not None,
                                                        error=error)
        except (sqlite3.Error, OSError) as exc:  # bookkeeping only: the push itself is done
            log.warning("could not record the push outcome in %s: %s", self.state_dir, exc)
        return results

    def outcome(self, site: str, kind: str, snapshot_id: str, results: list[PushResult]) -> SnapshotOutcome:
        """What the store and the spool hold of ``snapshot_id`` after :meth:`push`."""
        ours = [r for r in results if r.snapshot_id == snapshot_id]
        result = ours[-1] if ours else None
        if result is not None and result.ok:
            # The store accepted its conditional manifest put (or holds the same bytes already).
            return SnapshotOutcome("committed", bytes=result.bytes)
        ref = SnapshotRef(snapshot_id=snapshot_id, site=site, kind=kind)
        entry = entry_dir(self.spool_dir, site, kind, snapshot_id)
        note = result.error if result is not None else None
        conflict = result is not None and result.state == "conflict"
        if entry.is_dir():
            return SnapshotOutcome("spooled", note or "not pushed yet", conflict)
        if entry.with_name(snapshot_id + PARTIAL_SUFFIX).is_dir():
            return SnapshotOutcome("unfinished", note or "the snapshot was never finalised; the next push salvages it", conflict)
        try:
            if self.store.exists(ref.key(MANIFEST_NAME)):
                return SnapshotOutcome("committed")  # pushed by another pusher meanwhile
        except StoreError as exc:
            note = note or str(exc)
        return SnapshotOutcome(None, note or "no snapshot was written")
