"""Manifest self-checksum, revisit references across push and prune, and concurrent pushers."""

from __future__ import annotations

import json
from pathlib import Path

from archive.index import DigestIndex
from archive.manifest import MANIFEST_NAME
from archive.spool import push_all
from archive.staging import Staging
from archive.stores import SnapshotRef, open_store
from tests.plugins.cli import NewsvaultRunner


def finished_entry(spool: Path, index: DigestIndex, items: int = 3) -> Staging:
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=index)
    for n in range(items):
        staging.write_item({"type": "article", "url": f"http://sample.test/a/{n}", "change": "new", "n": n})
    staging.finalise(finish_reason="finished", stats={"item_scraped_count": items})
    return staging


def test_flipped_byte_in_manifest_value_fails_verify_and_restore(newsvault_cli: NewsvaultRunner) -> None:
    index = DigestIndex.in_state_dir(newsvault_cli.state_dir, str(newsvault_cli.archive_dir))
    staging = finished_entry(newsvault_cli.state_dir / "spool", index)
    store = open_store(str(newsvault_cli.archive_dir))
    assert [r.state for r in push_all(store, newsvault_cli.state_dir / "spool", progress=False)] == ["committed"]
    assert newsvault_cli("verify", staging.snapshot_id).returncode == 0

    ref = SnapshotRef(staging.snapshot_id, "sample", "articles")
    path = newsvault_cli.archive_dir / ref.key(MANIFEST_NAME)
    raw = bytearray(path.read_bytes())
    finished = json.loads(raw)["finished_at"]
    at = raw.index(f'"finished_at": "{finished}"'.encode()) + len('"finished_at": "')
    raw[at + 3] ^= 0x01  # the year's last digit: still valid JSON, still a plausible time
    path.write_bytes(bytes(raw))
    assert json.loads(raw)["finished_at"] != finished

    verify = newsvault_cli("verify", staging.snapshot_id)
    assert verify.returncode != 0
    assert f"FAILED {staging.snapshot_id}: manifest.json" in verify.stderr
    target = newsvault_cli.root / "restored"
    restore = newsvault_cli("restore", staging.snapshot_id, "--to", str(target))
    assert restore.returncode != 0 and "manifest.json" in restore.stderr
    assert not target.exists() or list(target.iterdir()) == []


def test_older_manifest_without_checksum_is_reported_unverifiable(newsvault_cli: NewsvaultRunner) -> None:
    index = DigestIndex.in_state_dir(newsvault_cli.state_dir, str(newsvault_cli.archive_dir))
    staging = finished_entry(newsvault_cli.state_dir / "spool", index)
    manifest = json.loads((staging.final_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    del manifest["manifest_sha256"]
    manifest["format_version"] = 1
    (staging.final_dir / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    store = open_store(str(newsvault_cli.archive_dir))
    assert [r.state for r in push_all(store, newsvault_cli.state_dir / "spool", progress=False)] == ["committed"]
    verify = newsvault_cli("verify", "--all")
    assert verify.returncode == 0, verify.stderr
    assert "unverifiable-manifest" in verify.stdout
    # A current-format manifest that lost its checksum is not "older": it fails.
    ref = SnapshotRef(staging.snapshot_id, "sample", "articles")
    manifest["format_version"] = 2
    (newsvault_cli.archive_dir / ref.key(MANIFEST_NAME)).write_text(json.dumps(manifest), encoding="utf-8")
    verify = newsvault_cli("verify", "--all")
    assert verify.returncode != 0 and "manifest.json" in verify.stderr
