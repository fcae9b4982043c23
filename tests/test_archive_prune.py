"""Prune rules (keep-last/daily/weekly) and revisit protection, plan and CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from archive.prune import plan_prune, prune, select_kept
from archive.stores import SnapshotRef, open_store
from tests.plugins.cli import NewsvaultRunner


def ref(ts: str, kind: str = "articles") -> SnapshotRef:
    return SnapshotRef(snapshot_id=f"{ts}-abcdef", site="sample", kind=kind)


def test_keep_last_daily_weekly() -> None:
    refs = [ref(t) for t in (
        "20261101T060000Z", "20261101T120000Z", "20261102T060000Z", "20261109T060000Z",
        "20261110T060000Z", "20261110T180000Z", "20261111T060000Z",
    )]
    assert select_kept(refs, keep_last=2) == {refs[-1], refs[-2]}
    assert select_kept(refs, keep_daily=3) == {refs[6], refs[5], refs[3]}
    weekly = select_kept(refs, keep_weekly=2)
    assert weekly == {refs[6], refs[2]}  # newest of ISO week 46 and of week 44
    assert select_kept(refs) == set()


def test_referenced_snapshots_are_protected_transitively() -> None:
    a, b, c, d = (ref(f"2026110{i}T060000Z") for i in range(1, 5))
    disc = ref("20261101T070000Z", kind="discussions")
    refers = {d: [b.snapshot_id], b: [a.snapshot_id, disc.snapshot_id], c: [], a: [], disc: []}
    plan = plan_prune([a, b, c, d, disc], refers, keep_last=1)
    assert set(plan.delete) == {c}
    assert set(plan.protected) == {a, b}
    assert d in plan.keep and disc in plan.keep


def _commit(root: Path, r: SnapshotRef, refers_to: list[str]) -> None:
    data = b"items"
    folder = root / r.prefix
    folder.mkdir(parents=True)
    (folder / "items.jsonl.gz").write_bytes(data)
    (folder / "manifest.json").write_text(json.dumps({
        "format": "newsvault-snapshot", "format_version": 1, "schema_version": 1,
        "snapshot_id": r.snapshot_id, "site": r.site, "kind": r.kind, "started_at": "x", "finished_at": "y",
        "status": "complete", "counts": {}, "crawl_stats": {}, "previous_snapshot_id": None, "refers_to": refers_to,
        "files": [{"name": "items.jsonl.gz", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
    }))


def test_prune_deletes_only_unneeded(tmp_path: Path) -> None:
    a, b, c = ref("20261101T060000Z"), ref("20261102T060000Z"), ref("20261103T060000Z")
    _commit(tmp_path, a, [])
    _commit(tmp_path, b, [])
    _commit(tmp_path, c, [a.snapshot_id])
    store = open_store(str(tmp_path))
    dry = prune(store, keep_last=1, dry_run=True)
    assert dry.delete == [b] and store.list_snapshots() == [a, b, c]
    prune(store, keep_last=1)
    assert store.list_snapshots() == [a, c]
    assert not (tmp_path / b.prefix).exists()


def test_prune_cli_dry_run(newsvault_cli: NewsvaultRunner) -> None:
    a, b = ref("20261101T060000Z"), ref("20261102T060000Z")
    _commit(newsvault_cli.archive_dir, a, [])
    _commit(newsvault_cli.archive_dir, b, [])
    result = newsvault_cli("prune", "sample", "--keep-last", "1", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"would delete {a.snapshot_id}" in result.stdout
    assert (newsvault_cli.archive_dir / a.prefix / "manifest.json").exists()
    assert newsvault_cli("prune", "sample").returncode == 2
