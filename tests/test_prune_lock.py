"""Prune never races a crawl or a push, never leaves a revisit pointing at nothing, and deletes what it says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archive.index import DigestIndex
from archive.locks import archive_lock
from archive.prune import plan_prune, prune
from archive.session import ArchiveSession
from archive.spool import push_all
from archive.staging import Staging
from archive.stores import SnapshotRef, open_store
from archive.stores.s3 import S3Store
from archive.verify import verify_snapshot
from newsvault.errors import ArchiveLockedError, IntegrityError, StoreError
from tests.plugins.cli import NewsvaultRunner

BODY = b"<html><body>" + b"the same page " * 200 + b"</body></html>"


def ref(ts: str, kind: str = "articles") -> SnapshotRef:
    return SnapshotRef(snapshot_id=f"{ts}-abcdef", site="sample", kind=kind)


def _snapshot(spool: Path, index: DigestIndex, snapshot_id: str, body: bytes = BODY) -> Staging:
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=index, snapshot_id=snapshot_id)
    staging.record_exchange(url="http://sample.test/a/1", method="GET", request_target="/a/1",
                            request_headers=[("Host", "sample.test")], request_body=b"", status=200,
                            response_headers=[("Content-Type", "text/html")], body=body)
    staging.write_item({"type": "article", "url": "http://sample.test/a/1", "change": "new"})
    staging.finalise(finish_reason="finished")
    return staging


def test_prune_waits_for_running_crawls_and_new_crawls_wait_for_prune(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    store = open_store(str(archive))
    index = DigestIndex(tmp_path / "index.sqlite", str(archive))
    for n in range(3):
        _snapshot(tmp_path / "spool", index, f"2026112{n}T060000Z-aaaaaa", body=BODY + bytes([n]))
    push_all(store, tmp_path / "spool", progress=False)
    lock = archive_lock(str(archive), tmp_path / "state")

    with lock.shared(1):  # a crawl is running
        with pytest.raises(ArchiveLockedError, match="still running"):
            prune(store, keep_last=1, lock=lock, lock_wait_seconds=0.3)
        assert len(store.list_snapshots()) == 3  # nothing deleted while it runs
    with lock.exclusive(1), pytest.raises(ArchiveLockedError, match="prune"), lock.shared(0.3):  # a prune runs
        pass
    plan = prune(store, keep_last=1, lock=lock, lock_wait_seconds=1)
    assert len(plan.delete) == 2 and len(store.list_snapshots()) == 1


def test_push_from_the_cli_waits_for_a_prune_and_keeps_its_entry(newsvault_cli: NewsvaultRunner) -> None:
    index = DigestIndex.in_state_dir(newsvault_cli.state_dir, str(newsvault_cli.archive_dir))
    entry = _snapshot(newsvault_cli.state_dir / "spool", index, "20261125T060000Z-aaaaaa")
    lock = archive_lock(str(newsvault_cli.archive_dir), newsvault_cli.state_dir)
    with lock.exclusive(1):
        result = newsvault_cli("push", env={"NEWSVAULT_ARCHIVE_LOCK_WAIT_SECONDS": "0.5"})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("newsvault: error: the archive lock was not free") and "prune" in last
    assert "Traceback" not in result.stderr
    assert entry.final_dir.is_dir()
    assert newsvault_cli("push").returncode == 0 and not entry.final_dir.exists()


def test_verify_names_a_revisit_target_that_is_gone(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    store = open_store(str(archive))
    index = DigestIndex(tmp_path / "index.sqlite", str(archive))
    first = _snapshot(tmp_path / "spool", index, "20261125T060000Z-aaaaaa")
    second = _snapshot(tmp_path / "spool", index, "20261125T070000Z-bbbbbb")
    assert second.manifest is not None and second.manifest.refers_to == [first.snapshot_id]
    push_all(store, tmp_path / "spool", progress=False)
    refs = store.list_snapshots()
    verify_snapshot(store, refs[1])
    # Deleted behind the archive's back (by hand, or by a prune that did not know better).
    store.delete([key for key, _ in store.list_keys(refs[0].prefix + "/")])
    with pytest.raises(IntegrityError, match=f"refer to {first.snapshot_id}"):
        verify_snapshot(store, refs[1])


def test_a_crawl_forgets_snapshots_pruned_from_another_state_dir(tmp_path: Path) -> None:
    archive = str(tmp_path / "archive")
    state = tmp_path / "state"
    index = DigestIndex.in_state_dir(state, archive)
    _snapshot(state / "spool", index, "20261125T060000Z-aaaaaa")
    _snapshot(state / "spool", index, "20261125T070000Z-bbbbbb", body=BODY + b"x")
    push_all(open_store(archive), state / "spool", progress=False)
    # Another state dir prunes the older one: this index still names it.
    prune(open_store(archive), keep_last=1)
    assert "20261125T060000Z-aaaaaa" in index.indexed_snapshots("sample")
    with ArchiveSession(archive, state_dir=state, spool_dir=state / "spool") as session:
        session.preflight("sample", "articles")
    assert index.indexed_snapshots("sample") == {"20261125T070000Z-bbbbbb"}
    # So the next snapshot of that page is a full record, not a revisit to nothing.
    third = _snapshot(state / "spool", index, "20261125T080000Z-cccccc")
    assert third.manifest is not None and third.manifest.refers_to == []


def test_prune_keeps_the_digest_index_in_step_itself(tmp_path: Path) -> None:
    archive = str(tmp_path / "archive")
    index = DigestIndex(tmp_path / "index.sqlite", archive)
    _snapshot(tmp_path / "spool", index, "20261125T060000Z-aaaaaa", body=BODY + b"1")
    _snapshot(tmp_path / "spool", index, "20261125T070000Z-bbbbbb", body=BODY + b"2")
    push_all(open_store(archive), tmp_path / "spool", progress=False)
    prune(open_store(archive), keep_last=1, index=index)
    assert index.indexed_snapshots("sample") == {"20261125T070000Z-bbbbbb"}


def test_retention_counts_complete_snapshots_only() -> None:
    good = [ref(f"2026110{i}T060000Z") for i in range(1, 5)]
    failed = [ref(f"2026110{i}T120000Z") for i in range(1, 4)]
    statuses = {**{r: "complete" for r in good}, **{r: "failed" for r in failed}}
    plan = plan_prune(good + failed, {}, keep_last=2, statuses=statuses)
    assert set(plan.keep) == {good[2], good[3], failed[2]}  # failures newer than the oldest kept good one stay
    assert set(plan.delete) == {good[0], good[1], failed[0], failed[1]}
    everything = plan_prune(good + failed, {}, keep_last=2)
    assert set(everything.keep) == {good[3], failed[2]}  # without statuses every snapshot counts


class _RefusingClient:
    """DeleteObjects answers 200 and lists per-key failures in Errors (a unit of logic: no server needed)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors

    def delete_objects(self, **kwargs: Any) -> dict[str, Any]:
        return {"Errors": self.errors}


@pytest.mark.parametrize("code", ["AccessDenied", "InternalError"])
def test_s3_delete_raises_on_any_per_key_error(code: str) -> None:
    store = S3Store(bucket="b", prefix="p")
    store._client = _RefusingClient([{"Key": "p/snapshots/x/manifest.json", "Code": code}])  # type: ignore[assignment]
    with pytest.raises(StoreError, match=code):
        store.delete(["snapshots/x/manifest.json"])
    store._client = _RefusingClient([{"Key": "p/gone", "Code": "NoSuchKey"}])  # type: ignore[assignment]
    store.delete(["gone"])  # already missing is what delete wants


def test_prune_deletes_only_what_the_manifest_names(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    index = DigestIndex(tmp_path / "index.sqlite", str(archive))
    old = _snapshot(tmp_path / "spool", index, "20261125T060000Z-aaaaaa", body=BODY + b"1")
    _snapshot(tmp_path / "spool", index, "20261125T070000Z-bbbbbb", body=BODY + b"2")
    store = open_store(str(archive))
    push_all(store, tmp_path / "spool", progress=False)
    stray = archive / "snapshots" / "sample" / "articles" / old.snapshot_id / "notes.txt"
    stray.write_text("not part of the snapshot")
    prune(store, keep_last=1)
    assert stray.exists() and not (stray.parent / "manifest.json").exists()
    assert json.loads(stray.parent.parent.joinpath("20261125T070000Z-bbbbbb", "manifest.json").read_text())["status"] == "complete"


def test_a_lock_that_cannot_be_opened_leaves_no_descriptor_open(tmp_path: Path) -> None:
    lock = archive_lock(str(tmp_path / "archive"), tmp_path / "state")
    lock.lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock.lock_path.mkdir()  # the lock file's place is taken: opening it fails after the intent file opened
    fds = Path("/proc/self/fd")
    before = len(list(fds.iterdir()))
    for _ in range(20):
        with pytest.raises(OSError), lock.shared(wait_seconds=1):
            pass
    assert len(list(fds.iterdir())) == before
