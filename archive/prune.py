"""Pruning old snapshots by keep-last / keep-daily / keep-weekly rules, never breaking revisit references."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from archive.ids import snapshot_time
from archive.manifest import MANIFEST_NAME
from archive.spool import spooled_references
from archive.stores import SnapshotRef, SnapshotStore
from archive.verify import load_manifest

log = logging.getLogger(__name__)


@dataclass
class PrunePlan:
    keep: list[SnapshotRef] = field(default_factory=list)
    delete: list[SnapshotRef] = field(default_factory=list)
    # Kept only because a kept snapshot's revisits point into them.
    protected: list[SnapshotRef] = field(default_factory=list)


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
) -> PrunePlan:
    """Apply the rules per (site, kind), then keep everything a kept snapshot's revisits need (transitively).

    ``pinned`` maps a site to snapshot ids that something outside the store
    (spooled entries not yet pushed) refers to; they and what they need are kept too.
    """
    groups: dict[tuple[str, str], list[SnapshotRef]] = defaultdict(list)
    for ref in refs:
        groups[(ref.site, ref.kind)].append(ref)
    kept: set[SnapshotRef] = set()
    for group in groups.values():
        kept |= select_kept(group, keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly)
    by_id = {(r.site, r.snapshot_id): r for r in refs}
    protected: set[SnapshotRef] = set()
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
        protected=sorted(protected),
    )


def prune(
    store: SnapshotStore,
    *,
    site: str | None = None,
    keep_last: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    dry_run: bool = False,
    spool_dir: str | Path | None = None,
) -> PrunePlan:
    """Plan and (unless ``dry_run``) delete. References are read from every kind of the site.

    With ``spool_dir``, the snapshots that spooled entries (finished or left by a
    killed crawl) refer to are kept as well: those entries will be pushed later.
    """
    refs = store.list_snapshots(site)
    refers_to = {ref: load_manifest(store, ref).refers_to for ref in refs}
    pinned = spooled_references(Path(spool_dir), site) if spool_dir is not None else {}
    plan = plan_prune(refs, refers_to, keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly, pinned=pinned)
    if not dry_run:
        for ref in plan.delete:
            # Manifest first: the snapshot stops being "committed" before its data goes.
            store.delete([ref.key(MANIFEST_NAME)])
            store.delete([key for key, _ in store.list_keys(ref.prefix + "/")])
            log.info("pruned snapshot %s", ref.snapshot_id)
    return plan
