"""Pruning old snapshots by keep-last / keep-daily / keep-weekly rules, never breaking revisit references.

The rules count complete snapshots only: a site that was down for a day of
hourly runs must not push every good snapshot out of ``--keep-last``. A
partial or failed snapshot newer than the oldest complete one kept stays (the
record of what went wrong); older ones go. Snapshots whose manifest cannot be
read are never deleted, and since their references are unknown, neither is
any older snapshot of the same site.

Deletion happens under the archive lock (archive/locks.py) taken
exclusively, and the plan is made only once the lock is held, so no crawl or
push adds a reference meanwhile. Each snapshot loses its manifest first
(confirmed gone before anything else is touched: it stops being committed),
then exactly the files its manifest names, and its digests leave the index.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from archive.ids import snapshot_time
from archive.index import DigestIndex
from archive.locks import ArchiveLock
from archive.manifest import MANIFEST_NAME, Manifest
from archive.spool import spooled_references
from archive.stores import SnapshotRef, SnapshotStore
from archive.verify import load_manifest
from newsvault.errors import IntegrityError, StoreError

log = logging.getLogger(__name__)

# How long prune waits for running crawls and pushes to release the archive lock.
DEFAULT_LOCK_WAIT_SECONDS = 120.0


@dataclass
class PrunePlan:
    keep: list[SnapshotRef] = field(default_factory=list)
    delete: list[SnapshotRef] = field(default_factory=list)
    # Kept only because a kept snapshot's revisits point into them.
    protected: list[SnapshotRef] = field(default_factory=list)
    # Kept because their manifest cannot be read (reason per snapshot).
    damaged: dict[SnapshotRef, str] = field(default_factory=dict)


def select_kept(refs: list[SnapshotRef], *, keep_last: int = 0, keep_daily: int = 0, keep_weekly: int = 0) -> set[SnapshotRef]:
    """Snapshots of one (site, kind) the rules keep: the newest N, the newest per day and per ISO week."""
    newest_first = sorted(refs, reverse=True)
    kept = set(newest_first[: max(keep_last, 0)])
    for count, period in ((keep_daily, "day"), (keep_weekly, "week")):
        seen: set[tuple[int, ...]] = set()
        for ref in newest_first:
            if len(seen) >= count:
                break
            moment = snapshot_time(ref.snapshot_id)
            bucket = (moment.year, moment.month, moment.day) if period == "day" else tuple(moment.isocalendar()[:2])
            if bucket not in seen:
                seen.add(bucket)
                kept.add(ref)
    return kept


def plan_prune(
    refs: list[SnapshotRef],
    refers_to: dict[SnapshotRef, list[str]],
    *,
    keep_last: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    pinned: Mapping[str, Iterable[str]] | None = None,
    statuses: Mapping[SnapshotRef, str] | None = None,
    damaged: Iterable[SnapshotRef] = (),
) -> PrunePlan:
    """Apply the rules per (site, kind) to complete snapshots, then keep what the kept ones need (transitively).

    ``statuses`` maps a snapshot to its manifest status (missing: complete).
    ``pinned`` maps a site to snapshot ids that something outside the store
    (spooled entries not yet pushed) refers to; they and what they need are kept too.
    ``damaged`` snapshots (unreadable manifests) are kept with everything older of their site.
    """
    statuses = statuses or {}
    groups: dict[tuple[str, str], list[SnapshotRef]] = defaultdict(list)
    for ref in refs:
        groups[(ref.site, ref.kind)].append(ref)
    rules = {"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly}
    kept: set[SnapshotRef] = set()
    for group in groups.values():
        complete = [r for r in group if statuses.get(r, "complete") == "complete"]
        incomplete = [r for r in group if r not in complete]
        kept_complete = select_kept(complete, **rules)
        kept |= kept_complete
        if kept_complete:
            oldest_kept = min(kept_complete)
            kept |= {r for r in incomplete if r > oldest_kept}
        else:
            # Nothing complete is kept (a site that never succeeded): the rules apply to what there is.
            kept |= select_kept(incomplete, **rules)
    by_id = {(r.site, r.snapshot_id): r for r in refs}
    protected: set[SnapshotRef] = set()
    damaged = set(damaged)
    for bad in damaged:
        protected |= {r for r in refs if r.site == bad.site and r <= bad and r not in kept}
    for site, ids in (pinned or {}).items():
        for snapshot_id in ids:
            target = by_id.get((site, snapshot_id))
            if target is not None and target not in kept:
                protected.add(target)
    todo = list(kept | protected)
    while todo:
        ref = todo.pop()
        for target_id in refers_to.get(ref, []):
            target = by_id.get((ref.site, target_id))
            if target is not None and target not in kept and target not in protected:
                protected.add(target)
                todo.append(target)
    keep = kept | protected
    return PrunePlan(
        keep=sorted(keep),
        delete=sorted(r for r in refs if r not in keep),
        protected=sorted(protected - damaged),
    )


def _delete_snapshot(store: SnapshotStore, ref: SnapshotRef, manifest: Manifest) -> None:
    """Manifest first, confirmed gone, then only the files the manifest names."""
    manifest_key = ref.key(MANIFEST_NAME)
    store.delete([manifest_key])
    if store.exists(manifest_key):
        raise StoreError(f"{store.url}: the manifest of {ref.snapshot_id} is still there after its delete; nothing else deleted")
    store.delete([ref.key(entry.name) for entry in manifest.files])


def prune(
    store: SnapshotStore,
    *,
    site: str | None = None,
    keep_last: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    dry_run: bool = False,
    spool_dir: str | Path | None = None,
    index: DigestIndex | None = None,
    lock: ArchiveLock | None = None,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    any_status: bool = False,
) -> PrunePlan:
    """Plan and (unless ``dry_run``) delete. References are read from every kind of the site.

    With ``spool_dir``, the snapshots that spooled entries (finished or left by a
    killed crawl) refer to are kept as well: those entries will be pushed later.
    With ``lock``, deletion waits for running crawls and pushes (ArchiveLockedError
    after ``lock_wait_seconds``). With ``index``, the pruned snapshots leave the
    digest index, so no later crawl points a revisit at them. ``any_status``
    makes the rules count partial and failed snapshots too.
    """
    with lock.exclusive(lock_wait_seconds) if lock is not None and not dry_run else nullcontext():
        refs = store.list_snapshots(site)
        manifests: dict[SnapshotRef, Manifest] = {}
        damaged: dict[SnapshotRef, str] = {}
        for ref in refs:
            try:
                manifests[ref] = load_manifest(store, ref)
            except (IntegrityError, StoreError) as exc:
                damaged[ref] = str(exc)
                log.warning("snapshot %s: unreadable manifest (%s); kept, with every older snapshot of %s", ref.snapshot_id, exc, ref.site)
        pinned = spooled_references(Path(spool_dir), site) if spool_dir is not None else {}
        plan = plan_prune(
            refs,
            {ref: m.refers_to for ref, m in manifests.items()},
            keep_last=keep_last,
            keep_daily=keep_daily,
            keep_weekly=keep_weekly,
            pinned=pinned,
            statuses={} if any_status else {ref: m.status for ref, m in manifests.items()},
            damaged=damaged,
        )
        plan.damaged = damaged
        if not dry_run:
            for ref in plan.delete:
                _delete_snapshot(store, ref, manifests[ref])
                if index is not None:
                    index.forget_snapshots([ref.snapshot_id])
                log.info("pruned snapshot %s", ref.snapshot_id)
    return plan
