"""Manifest self-checksum, revisit references across push and prune, and concurrent pushers."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from archive.index import DigestIndex
from archive.manifest import MANIFEST_NAME
from archive.prune import prune
from archive.spool import push_all
from archive.staging import Staging
from archive.stores import SnapshotRef, open_store
from archive.verify import verify_snapshot
from tests.plugins.cli import NewsvaultRunner, child_env


def finished_entry(spool: Path, index: DigestIndex | None, items: int = 3) -> Staging:
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


# --- revisit references: push order and prune ---------------------------------
def page(url: str, body: bytes) -> dict:
    return {
        "url": url, "method": "GET", "request_target": "/" + url.rsplit("/", 1)[-1],
        "request_headers": [("Host", "sample.test")], "request_body": b"", "status": 200,
        "response_headers": [("Content-Type", "text/html; charset=utf-8")], "body": body,
    }


def snapshot_with_page(spool: Path, index: DigestIndex, body: bytes, snapshot_id: str | None = None) -> Staging:
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=index, snapshot_id=snapshot_id)
    staging.record_exchange(**page("http://sample.test/a/1", body))
    staging.write_item({"type": "article", "url": "http://sample.test/a/1", "change": "new"})
    staging.finalise(finish_reason="finished")
    return staging


def test_revisiting_entry_waits_until_its_reference_is_committed(tmp_path: Path) -> None:
    spool, archive = tmp_path / "spool", tmp_path / "archive"
    index = DigestIndex(tmp_path / "index.sqlite", str(archive))
    body = b"<html><body>same page</body></html>" * 50
    # Explicit ids: two snapshots made within one second would otherwise sort at random.
    a = snapshot_with_page(spool, index, body, snapshot_id="20261125T060000Z-aaaaaa")
    b = snapshot_with_page(spool, index, body, snapshot_id="20261125T070000Z-bbbbbb")
    assert b.manifest is not None and b.manifest.refers_to == [a.snapshot_id]
    store = open_store(str(archive))

    # A fails for a reason of its own (damaged in the spool): B must not go without it.
    items = a.final_dir / "items.jsonl.gz"
    good = items.read_bytes()
    items.write_bytes(good + b"x")
    results = {r.snapshot_id: r for r in push_all(store, spool, progress=False)}
    assert results[a.snapshot_id].state == "failed"
    assert results[b.snapshot_id].state == "waiting"
    assert results[b.snapshot_id].error == f"waiting for {a.snapshot_id}"
    assert store.list_snapshots() == [] and b.final_dir.is_dir()

    items.write_bytes(good)
    results = {r.snapshot_id: r for r in push_all(store, spool, progress=False)}
    assert results[a.snapshot_id].state == results[b.snapshot_id].state == "committed"
    assert [r.snapshot_id for r in store.list_snapshots()] == [a.snapshot_id, b.snapshot_id]


def test_older_entry_referring_to_newer_one_is_pushed_in_the_same_run(tmp_path: Path) -> None:
    # Two kinds crawled at once: the one that started first may refer to the one that finished first.
    spool, archive = tmp_path / "spool", tmp_path / "archive"
    index = DigestIndex(tmp_path / "index.sqlite", str(archive))
    body = b"<html><body>shared page</body></html>" * 50
    newer = snapshot_with_page(spool, index, body, snapshot_id="20261125T070000Z-aaaaaa")
    older = snapshot_with_page(spool, index, body, snapshot_id="20261125T060000Z-bbbbbb")
    assert older.manifest is not None and older.manifest.refers_to == [newer.snapshot_id]
    store = open_store(str(archive))
    results = push_all(store, spool, progress=False)
    assert [(r.snapshot_id, r.state) for r in results] == [(newer.snapshot_id, "committed"), (older.snapshot_id, "committed")]


def test_prune_keeps_what_spooled_entries_refer_to(newsvault_cli: NewsvaultRunner) -> None:
    spool = newsvault_cli.state_dir / "spool"
    archive = newsvault_cli.archive_dir
    index = DigestIndex.in_state_dir(newsvault_cli.state_dir, str(archive))
    store = open_store(str(archive))
    body = b"<html><body>kept page</body></html>" * 50
    a = snapshot_with_page(spool, index, body, snapshot_id="20261101T060000Z-aaaaaa")
    assert [r.state for r in push_all(store, spool, progress=False)] == ["committed"]
    c = snapshot_with_page(spool, index, b"<html>other</html>" * 50, snapshot_id="20261102T060000Z-cccccc")
    assert [r.state for r in push_all(store, spool, progress=False)] == ["committed"]
    # B revisits A's page but is still in the spool (say the store was down).
    b = snapshot_with_page(spool, index, body, snapshot_id="20261103T060000Z-bbbbbb")
    assert b.manifest is not None and b.manifest.refers_to == [a.snapshot_id]

    dry = newsvault_cli("prune", "sample", "--keep-last", "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would delete {a.snapshot_id}" not in dry.stdout
    assert f"kept {a.snapshot_id}" in dry.stdout
    pruned = newsvault_cli("prune", "sample", "--keep-last", "1")
    assert pruned.returncode == 0, pruned.stderr
    assert [r.snapshot_id for r in store.list_snapshots()] == [a.snapshot_id, c.snapshot_id]
    # A crawl killed mid-run holds references in its WARC only: those count too.
    (b.final_dir / "manifest.json").unlink()
    b.final_dir.rename(b.final_dir.with_name(b.snapshot_id + ".partial"))
    assert [r.snapshot_id for r in prune(store, site="sample", keep_last=1, spool_dir=spool).protected] == [a.snapshot_id]
    assert [r.state for r in push_all(store, spool, progress=False)] == ["committed"]
    assert newsvault_cli("verify", "--all").returncode == 0


# --- concurrent pushers ----------------------------------------------------------
# Each pusher reports to files in its own dir (argv[4]): "ready" once imported,
# "in-salvage" when it is inside salvage (holding the entry's lock), "result"
# (JSON) when push_all returned. Inside salvage it waits for the test's
# "release" file, so the test decides how long the lock is held.
PUSHER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import archive.spool
    from archive.spool import push_all
    from archive.stores import open_store
    go, release, out = Path(sys.argv[3]), Path(sys.argv[5]), Path(sys.argv[4])
    real_salvage = archive.spool.salvage

    def held_salvage(entry):
        (out / "in-salvage").write_text(str(time.time()))
        deadline = time.monotonic() + 120
        while not release.exists():
            if time.monotonic() > deadline:
                sys.exit("never released")
            time.sleep(0.01)
        return real_salvage(entry)

    archive.spool.salvage = held_salvage
    (out / "ready").write_text("")
    while not go.exists():
        time.sleep(0.001)
    started = time.time()
    results = push_all(open_store(sys.argv[1]), sys.argv[2], progress=False)
    (out / "result").write_text(json.dumps({
        "started": started, "finished": time.time(),
        "results": [[r.snapshot_id, r.state, r.error, r.salvaged] for r in results],
    }))
    """
)


def _wait_until(condition: Callable[[], bool], what: str, procs: list[subprocess.Popen[str]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            if proc.poll() is not None and proc.returncode != 0:
                pytest.fail(f"a pusher died while waiting for {what}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_two_pushers_salvage_a_dead_partial_once(tmp_path: Path) -> None:
    spool, archive = tmp_path / "spool", tmp_path / "archive"
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=None)
    filler = "lorem ipsum dolor " * 8
    for n in range(20_000):
        staging.write_item({"type": "article", "url": f"http://sample.test/a/{n}", "change": "new", "body": filler + str(n)})
    staging.abandon()  # the crawl died: a .partial dir nobody holds
    items = staging.dir / "items.jsonl.gz"
    with items.open("r+b") as fh:  # ... and its last gzip block was cut short
        fh.truncate(items.stat().st_size - 100)
    kept = 0
    with gzip.open(items, "rt", encoding="utf-8") as fh:
        try:
            for line in fh:
                kept += line.endswith("\n")
        except EOFError:
            pass
    assert 0 < kept < 20_000

    go, release = tmp_path / "go", tmp_path / "release"
    outs = [tmp_path / f"pusher-{n}" for n in range(2)]
    for out in outs:
        out.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-c", PUSHER, str(archive), str(spool), str(go), str(out), str(release)],
                         env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for out in outs
    ]
    try:
        # A barrier: both are imported and poll for the go file, then start together.
        _wait_until(lambda: all((out / "ready").exists() for out in outs), "both pushers to be ready", procs)
        go.touch()
        # One of them takes the lock and is held inside salvage ...
        _wait_until(lambda: any((out / "in-salvage").exists() for out in outs), "a pusher to enter salvage", procs)
        [holder] = [out for out in outs if (out / "in-salvage").exists()]
        [other] = [out for out in outs if out is not holder]
        # ... while the other runs its whole push against the held entry (it must not salvage too).
        _wait_until(lambda: (other / "result").exists() or (other / "in-salvage").exists(),
                    "the second pusher to finish", procs)
        assert not (other / "in-salvage").exists(), "both pushers were inside salvage at once"
        assert not (holder / "result").exists()
        release.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        release.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    first = json.loads((holder / "result").read_text())
    second = json.loads((other / "result").read_text())
    # They overlapped: the second started and finished while the first was inside salvage.
    in_salvage_at = float((holder / "in-salvage").read_text())
    assert first["started"] <= in_salvage_at and second["started"] < first["finished"]
    assert in_salvage_at < second["finished"] < first["finished"]
    assert second["results"] == [], second  # the held .partial dir is left to its holder
    assert [[state, salvaged] for _id, state, _err, salvaged in first["results"]] == [["committed", True]], first
    assert not (other / "in-salvage").exists()

    store = open_store(str(archive))
    refs = store.list_snapshots()
    assert [r.snapshot_id for r in refs] == [staging.snapshot_id]
    manifest = verify_snapshot(store, refs[0])
    assert manifest.status == "partial" and manifest.counts["items"] == kept
    with store.open(refs[0].key("items.jsonl.gz")) as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert len(lines) == kept
    assert [json.loads(line)["url"] for line in lines] == [f"http://sample.test/a/{n}" for n in range(kept)]
    assert not any(spool.rglob("*.jsonl.gz"))


# --- a spool file damaged after its manifest was written ------------------------------
# archive_url (local and S3): tests/plugins/seaweedfs.py


def test_spool_file_damaged_after_manifest_is_never_committed(tmp_path: Path, archive_url: str) -> None:
    spool = tmp_path / "spool"
    staging = finished_entry(spool, None, items=2_000)
    items = staging.final_dir / "items.jsonl.gz"
    good = items.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0x01  # same size: only the sha256 can tell
    items.write_bytes(bytes(damaged))
    store = open_store(archive_url)
    ref = SnapshotRef(staging.snapshot_id, "sample", "articles")

    results = push_all(store, spool, progress=False)
    assert [r.state for r in results] == ["failed"]
    assert "items.jsonl.gz" in (results[0].error or "") and "no longer matches its manifest" in (results[0].error or "")
    # The data may have gone up, but without a manifest it is no snapshot.
    assert not store.exists(ref.key(MANIFEST_NAME))
    assert store.list_snapshots() == []
    assert staging.final_dir.is_dir() and items.read_bytes() == bytes(damaged)

    items.write_bytes(good)  # repaired: the next push completes it
    assert [r.state for r in push_all(store, spool, progress=False)] == ["committed"]
    assert verify_snapshot(store, ref).snapshot_id == staging.snapshot_id
