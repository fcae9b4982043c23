"""Hostile archive contents: damaged or planted objects must not stop, hang, escape or exhaust any command.

Covers the issue "Hostile archive contents" for the local store (links, devices,
FIFOs, sparse files, hostile manifests) and, where it applies, for S3 (hostile
manifests only: S3 has no links or devices).
"""

from __future__ import annotations

import base64
import errno
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

import archive.restore as restore_module
from archive.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestError,
    manifest_checksum,
)
from archive.prune import prune
from archive.restore import restore_snapshot
from archive.stores import SnapshotRef, open_store
from archive.verify import latest_snapshot, load_manifest, verify_snapshot
from archive.warc import HEADER_REFERS_FILE, HEADER_REFERS_SNAPSHOT, WARC_VERSION
from newsvault.errors import IntegrityError, NewsvaultError, ObjectTooLargeError, StoreError
from tests.plugins.cli import NewsvaultRunner, child_env

SITE = "sample"
KIND = "articles"
CMD_TIMEOUT = 30  # seconds: any command that takes longer is hanging on something it should refuse
MAX_RSS_KIB = 200 * 1024  # peak RSS bound for a child newsvault (it imports Scrapy: ~100 MiB at rest)
HUGE_PAYLOAD = 256 * 1024 * 1024
HOSTILE_NAMES = ["../../etc/x", "/etc/x", "..\\x", "x\x00y", "x\ny"]


# --- building archives on disk ----------------------------------------------------------
def ref(day: int, site: str = SITE, kind: str = KIND, suffix: str = "a0b1c2") -> SnapshotRef:
    return SnapshotRef(f"202611{day:02d}T060000Z-{suffix}", site, kind)


def manifest_bytes(
    r: SnapshotRef,
    files: dict[str, bytes] | list[dict[str, Any]],
    *,
    refers_to: list[str] | None = None,
    counts: dict[str, Any] | None = None,
) -> bytes:
    """A format 2 manifest with a valid ``manifest_sha256``: only what the test plants in it is wrong."""
    entries = files if isinstance(files, list) else [
        {"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items()
    ]
    data: dict[str, Any] = {
        "format": "newsvault-snapshot", "format_version": 2, "schema_version": 1,
        "snapshot_id": r.snapshot_id, "site": r.site, "kind": r.kind,
        "started_at": "2026-11-01T06:00:00Z", "finished_at": "2026-11-01T06:01:00Z", "status": "complete",
        "finish_reason": "finished", "counts": counts or {}, "crawl_stats": {}, "previous_snapshot_id": None,
        "refers_to": refers_to or [], "tool": {"name": "newsvault", "version": "test"}, "files": entries,
    }
    data["manifest_sha256"] = manifest_checksum(data)
    return json.dumps(data, indent=2).encode("utf-8")


def snap_dir(root: Path, r: SnapshotRef) -> Path:
    return root.joinpath(*r.prefix.split("/"))


def commit(root: Path, r: SnapshotRef, files: dict[str, bytes] | None = None, **kw: Any) -> Path:
    """A committed snapshot: data files, then a valid manifest naming them."""
    files = {"items.jsonl.gz": gzip.compress(f'{{"id": "{r.snapshot_id}"}}\n'.encode())} if files is None else files
    folder = snap_dir(root, r)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / MANIFEST_NAME).write_bytes(manifest_bytes(r, files, **kw))
    return folder


def committed_ids(root: Path) -> set[str]:
    return {r.snapshot_id for r in open_store(str(root)).list_snapshots()}


# --- running the CLI ---------------------------------------------------------------------
def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stdout, result.stdout[-3000:]


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0, result.stdout
    assert_no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newsvault: error:"), result.stderr[-3000:]


_MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
try:
    p = subprocess.run(sys.argv[2:], capture_output=True, text=True, encoding="utf-8", timeout=float(sys.argv[1]))
    out = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
except subprocess.TimeoutExpired:
    out = {"rc": None, "stdout": "", "stderr": "TIMEOUT"}
out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
out["seconds"] = time.monotonic() - start
print(json.dumps(out))
"""


def run_measured(cli: NewsvaultRunner, *args: str, timeout: float = CMD_TIMEOUT) -> dict[str, Any]:
    """Run the CLI as the only child of a fresh wrapper: its RUSAGE_CHILDREN peak RSS is the command's alone."""
    wrapper = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(timeout), sys.executable, "-m", "scheduler", *args],
        env=child_env(cli.base_env()), cwd=cli.root, capture_output=True, text=True, timeout=timeout + 15, check=True,
    )
    out: dict[str, Any] = json.loads(wrapper.stdout)
    assert out["rc"] is not None, f"newsvault {' '.join(args)} did not finish within {timeout}s"
    assert "Traceback" not in out["stderr"], out["stderr"][-3000:]
    return out


# --- hostile manifest names --------------------------------------------------------------
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=["dotdot", "absolute", "backslash", "nul", "newline"])
def test_hostile_file_name_in_one_manifest_does_not_stop_the_others(newsvault_cli: NewsvaultRunner, name: str) -> None:
    root = newsvault_cli.archive_dir
    bad = ref(1)
    bad_dir = commit(root, bad)
    # The hostile manifest names the planted path (and the real file, so the bad name is the only fault).
    items = (bad_dir / "items.jsonl.gz").read_bytes()
    (bad_dir / MANIFEST_NAME).write_bytes(manifest_bytes(bad, [
        {"name": "items.jsonl.gz", "size": len(items), "sha256": hashlib.sha256(items).hexdigest()},
        {"name": name, "size": 6, "sha256": hashlib.sha256(b"canary").hexdigest()},
    ]))
    canary = None
    if "\x00" not in name and not name.startswith("/"):
        escaped = Path(os.path.normpath(bad_dir / name))
        if not escaped.is_relative_to(bad_dir):
            canary = escaped
            canary.parent.mkdir(parents=True, exist_ok=True)
            canary.write_bytes(b"canary")
    good = [ref(2), ref(3), ref(4)]
    other = [ref(1, site="other", suffix="d3e4f5"), ref(2, site="other", suffix="d3e4f5")]
    for r in good + other:
        commit(root, r)
    total = 1 + len(good) + len(other)

    listing = newsvault_cli("snapshots", timeout=CMD_TIMEOUT)
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert_no_traceback(listing)
    for r in good + other:
        row = next(line for line in listing.stdout.splitlines() if line.startswith(r.snapshot_id))
        assert "complete" in row, row
    bad_row = [line for line in listing.stdout.splitlines() if line.startswith(bad.snapshot_id)]
    assert len(bad_row) == 1 and "damaged" in bad_row[0], listing.stdout

    verify = newsvault_cli("verify", "--all", timeout=CMD_TIMEOUT)
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert_no_traceback(verify)
    for r in good + other:
        assert f"ok {r.snapshot_id}" in verify.stdout
    assert f"ok {bad.snapshot_id}" not in verify.stdout
    assert f"FAILED {bad.snapshot_id}" in verify.stderr
    assert verify.stderr.strip().splitlines()[-1] == f"newsvault: error: 1 of {total} snapshots failed verification"

    pruned = newsvault_cli("prune", "--keep-last", "1", timeout=CMD_TIMEOUT)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert_no_traceback(pruned)
    # The damaged one is the oldest of its site, so it protects nothing newer: the rules apply to the rest.
    assert committed_ids(root) == {bad.snapshot_id, good[-1].snapshot_id, other[-1].snapshot_id}
    assert (bad_dir / MANIFEST_NAME).exists() and (bad_dir / "items.jsonl.gz").exists()
    assert f"kept {bad.snapshot_id}" in pruned.stderr
    if canary is not None:
        assert canary.read_bytes() == b"canary"


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=["dotdot", "absolute", "backslash", "nul", "newline"])
def test_hostile_file_name_is_a_manifest_error(tmp_path: Path, name: str) -> None:
    r = ref(1)
    raw = manifest_bytes(r, [{"name": name, "size": 1, "sha256": "0" * 64}])
    with pytest.raises(ManifestError):
        Manifest.from_json(raw)
    commit(tmp_path, r)
    (snap_dir(tmp_path, r) / MANIFEST_NAME).write_bytes(raw)
    store = open_store(str(tmp_path))
    with pytest.raises(IntegrityError) as excinfo:
        verify_snapshot(store, r)
    assert excinfo.value.filename == MANIFEST_NAME
    target = tmp_path / "target"
    with pytest.raises(IntegrityError):
        restore_snapshot(store, r, target, progress=False)
    assert not target.exists()


# --- deeply nested and oversized manifests ---------------------------------------------------
def test_deeply_nested_manifest_is_damaged_not_a_recursion_error(newsvault_cli: NewsvaultRunner) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(b"[" * 200000)
    root = newsvault_cli.archive_dir
    deep = ref(1)
    commit(root, deep)
    (snap_dir(root, deep) / MANIFEST_NAME).write_bytes(b"[" * 200000)
    good = [ref(2), ref(3)]
    for r in good:
        commit(root, r)

    listing = newsvault_cli("snapshots", "--json", timeout=CMD_TIMEOUT)
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert_no_traceback(listing)
    rows = {row["snapshot_id"]: row for row in json.loads(listing.stdout)}
    assert rows[deep.snapshot_id]["status"] == "damaged"
    assert all(rows[r.snapshot_id]["status"] == "complete" for r in good)

    verify = newsvault_cli("verify", "--all", timeout=CMD_TIMEOUT)
    assert verify.returncode == 1
    assert_no_traceback(verify)
    assert "RecursionError" not in verify.stderr
    assert f"FAILED {deep.snapshot_id}: {MANIFEST_NAME}" in verify.stderr
    assert all(f"ok {r.snapshot_id}" in verify.stdout for r in good)
    assert verify.stderr.strip().splitlines()[-1] == "newsvault: error: 1 of 3 snapshots failed verification"

    pruned = newsvault_cli("prune", SITE, "--keep-last", "1", timeout=CMD_TIMEOUT)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert_no_traceback(pruned)
    assert committed_ids(root) == {deep.snapshot_id, good[-1].snapshot_id}


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)


def test_oversized_manifest_is_refused_without_reading_it_all(newsvault_cli: NewsvaultRunner) -> None:
    root = newsvault_cli.archive_dir
    good = ref(1)
    commit(root, good)
    huge = ref(2)
    commit(root, huge)
    # 64 GiB (sparse): read whole it would take minutes and all the memory there is.
    _sparse(snap_dir(root, huge) / MANIFEST_NAME, 64 * 1024**3)
    store = open_store(str(root))
    with pytest.raises(ObjectTooLargeError):
        store.get_bytes(huge.key(MANIFEST_NAME))
    with pytest.raises((IntegrityError, StoreError)):
        load_manifest(store, huge)
    with pytest.raises(ManifestError):
        Manifest.from_json(b" " * (MAX_MANIFEST_BYTES + 1))

    listing = run_measured(newsvault_cli, "snapshots", "--json")
    assert listing["rc"] == 0, listing["stderr"][-3000:]
    rows = {row["snapshot_id"]: row for row in json.loads(listing["stdout"])}
    assert rows[huge.snapshot_id]["status"] == "damaged" and rows[good.snapshot_id]["status"] == "complete"
    assert listing["maxrss_kib"] < MAX_RSS_KIB, listing["maxrss_kib"]

    verify = run_measured(newsvault_cli, "verify", "--all")
    assert verify["rc"] == 1
    assert f"ok {good.snapshot_id}" in verify["stdout"] and f"FAILED {huge.snapshot_id}" in verify["stderr"]
    assert verify["stderr"].strip().splitlines()[-1] == "newsvault: error: 1 of 2 snapshots failed verification"
    assert verify["maxrss_kib"] < MAX_RSS_KIB, verify["maxrss_kib"]


def test_latest_passes_over_an_oversized_manifest(tmp_path: Path) -> None:
    """latest_snapshot's contract: snapshots whose manifest cannot be read are passed over."""
    older, newest = ref(1), ref(2)
    commit(tmp_path, older)
    commit(tmp_path, newest)
    _sparse(snap_dir(tmp_path, newest) / MANIFEST_NAME, MAX_MANIFEST_BYTES + 1)
    assert latest_snapshot(open_store(str(tmp_path)), SITE) == older


# --- devices, links and FIFOs in place of files ------------------------------------------------
@pytest.mark.parametrize("how", ["symlink-dev-zero", "sparse-64GiB"])
def test_endless_data_file_fails_verify_and_restore_fast(newsvault_cli: NewsvaultRunner, how: str) -> None:
    root = newsvault_cli.archive_dir
    r = ref(1)
    folder = commit(root, r, {"items.jsonl.gz": b"x" * 1000})
    (folder / "items.jsonl.gz").unlink()
    if how == "symlink-dev-zero":
        (folder / "items.jsonl.gz").symlink_to("/dev/zero")
    else:
        _sparse(folder / "items.jsonl.gz", 64 * 1024**3)
    store = open_store(str(root))
    with pytest.raises((IntegrityError, StoreError)):
        verify_snapshot(store, r)
    with pytest.raises((IntegrityError, StoreError)):
        restore_snapshot(store, r, newsvault_cli.root / "lib-target", progress=False)
    assert not (newsvault_cli.root / "lib-target").exists()

    verify = newsvault_cli("verify", r.snapshot_id, timeout=CMD_TIMEOUT)
    assert verify.returncode == 1
    assert_no_traceback(verify)
    assert f"FAILED {r.snapshot_id}" in verify.stderr and "items.jsonl.gz" in verify.stderr

    target = newsvault_cli.root / "target"
    restored = newsvault_cli("restore", r.snapshot_id, "--to", str(target), timeout=CMD_TIMEOUT)
    assert_one_error_line(restored)
    assert not target.exists()
    assert not any(p.name.startswith(".restore-") for p in newsvault_cli.root.rglob("*"))


def test_manifest_symlinked_to_dev_zero_does_not_hang_or_bloat(newsvault_cli: NewsvaultRunner) -> None:
    root = newsvault_cli.archive_dir
    good, bad = ref(1), ref(2)
    commit(root, good)
    folder = commit(root, bad)
    (folder / MANIFEST_NAME).unlink()
    (folder / MANIFEST_NAME).symlink_to("/dev/zero")
    for args in (("snapshots", "--json"), ("verify", "--all")):
        out = run_measured(newsvault_cli, *args)
        assert out["maxrss_kib"] < MAX_RSS_KIB, (args, out["maxrss_kib"])
        assert out["seconds"] < CMD_TIMEOUT
        if args[0] == "snapshots":
            assert out["rc"] == 0
            rows = {row["snapshot_id"]: row for row in json.loads(out["stdout"])}
            assert rows[good.snapshot_id]["status"] == "complete"
            # A link is no object: either not listed, or listed as damaged, never as a good snapshot.
            assert rows.get(bad.snapshot_id, {"status": "damaged"})["status"] == "damaged"
        else:
            assert f"ok {good.snapshot_id}" in out["stdout"]
            assert f"ok {bad.snapshot_id}" not in out["stdout"]


@pytest.mark.parametrize("where", ["data", "manifest"])
def test_fifo_in_the_archive_hangs_no_command(newsvault_cli: NewsvaultRunner, where: str) -> None:
    root = newsvault_cli.archive_dir
    fifo_ref = ref(1)
    folder = commit(root, fifo_ref)
    planted = folder / ("items.jsonl.gz" if where == "data" else MANIFEST_NAME)
    planted.unlink()
    os.mkfifo(planted)
    good = [ref(2), ref(3)]
    for r in good:
        commit(root, r)

    listing = newsvault_cli("snapshots", "--json", timeout=CMD_TIMEOUT)
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert_no_traceback(listing)
    rows = {row["snapshot_id"]: row for row in json.loads(listing.stdout)}
    assert all(rows[r.snapshot_id]["status"] == "complete" for r in good)
    if where == "manifest":
        assert rows.get(fifo_ref.snapshot_id, {"status": "damaged"})["status"] == "damaged"

    verify = newsvault_cli("verify", "--all", timeout=CMD_TIMEOUT)
    assert_no_traceback(verify)
    assert all(f"ok {r.snapshot_id}" in verify.stdout for r in good)
    assert f"ok {fifo_ref.snapshot_id}" not in verify.stdout
    if where == "data":
        assert verify.returncode == 1 and f"FAILED {fifo_ref.snapshot_id}" in verify.stderr
        assert verify.stderr.strip().splitlines()[-1] == "newsvault: error: 1 of 3 snapshots failed verification"

    target = newsvault_cli.root / "target"
    restored = newsvault_cli("restore", fifo_ref.snapshot_id, "--to", str(target), timeout=CMD_TIMEOUT)
    assert_one_error_line(restored)
    assert not target.exists()

    pruned = newsvault_cli("prune", "--keep-last", "1", timeout=CMD_TIMEOUT)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert_no_traceback(pruned)
    assert good[-1].snapshot_id in committed_ids(root) and good[0].snapshot_id not in committed_ids(root)
    # prune unlinks what the manifest names (a FIFO included) and never opens it.
    assert planted.exists() == (where == "manifest")


def test_data_file_linked_to_etc_passwd_is_not_restored(newsvault_cli: NewsvaultRunner) -> None:
    secret = Path("/etc/passwd").read_bytes()
    root = newsvault_cli.archive_dir
    r = ref(1)
    folder = commit(root, r, {"items.jsonl.gz": secret})  # size and sha256 match /etc/passwd
    (folder / "items.jsonl.gz").unlink()
    (folder / "items.jsonl.gz").symlink_to("/etc/passwd")
    store = open_store(str(root))
    target = newsvault_cli.root / "lib-target"
    with pytest.raises((IntegrityError, StoreError)):
        restore_snapshot(store, r, target, progress=False)
    assert not target.exists()
    with pytest.raises((IntegrityError, StoreError)):
        verify_snapshot(store, r)

    cli_target = newsvault_cli.root / "target"
    restored = newsvault_cli("restore", r.snapshot_id, "--to", str(cli_target), timeout=CMD_TIMEOUT)
    assert_one_error_line(restored)
    assert not cli_target.exists()
    leaked = [p for p in newsvault_cli.root.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() == secret]
    assert leaked == []


@pytest.mark.parametrize("level", ["snapshot-dir", "kind-dir", "site-dir", "data-file"])
def test_prune_never_deletes_through_a_symlink(newsvault_cli: NewsvaultRunner, level: str) -> None:
    root = newsvault_cli.archive_dir
    outside = newsvault_cli.root / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"precious")
    good = [ref(2), ref(3), ref(4)]
    for r in good:
        commit(root, r)
    linked = ref(1)
    if level == "data-file":
        # A listed snapshot whose data file is a link out of the archive: its manifest names it, prune unlinks it.
        folder = commit(root, linked, {"items.jsonl.gz": b"precious"})
        (folder / "items.jsonl.gz").unlink()
        (folder / "items.jsonl.gz").symlink_to(outside / "precious.txt")
        planted: list[Path] = []
    else:
        # Outside: a look-alike snapshot (valid manifest, its file) next to files no manifest lists.
        # kind-dir and site-dir links sit where no real dir is (discussions, site "evil").
        look = SnapshotRef(linked.snapshot_id, "evil" if level == "site-dir" else SITE,
                           "discussions" if level == "kind-dir" else KIND)
        fake_root = outside / "fake"
        commit(fake_root, look)
        (snap_dir(fake_root, look) / "precious.txt").write_bytes(b"precious")
        if level == "snapshot-dir":
            link, dest = snap_dir(root, look), snap_dir(fake_root, look)
        elif level == "kind-dir":
            link, dest = snap_dir(root, look).parent, snap_dir(fake_root, look).parent
        else:
            link, dest = snap_dir(root, look).parent.parent, snap_dir(fake_root, look).parent.parent
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(dest, target_is_directory=True)
        planted = [p for p in fake_root.rglob("*") if p.is_file()]
        assert len(planted) == 3

    pruned = newsvault_cli("prune", "--keep-last", "1", timeout=CMD_TIMEOUT)
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert_no_traceback(pruned)
    assert (outside / "precious.txt").read_bytes() == b"precious"
    for path in planted:
        assert path.exists(), f"prune deleted {path}, outside the archive"
    ids = committed_ids(root)
    assert good[-1].snapshot_id in ids and good[0].snapshot_id not in ids and good[1].snapshot_id not in ids


# --- self-contained restore: huge referenced payloads, wrong payloads ---------------------------------
def _build_huge_revisit_pair(tmp_path: Path, archive_dir: Path) -> tuple[SnapshotRef, SnapshotRef]:
    """Two snapshots made by the real code: a 256 MiB (zeros) response, then a revisit of it."""
    from archive.index import DigestIndex
    from archive.spool import push_all
    from archive.staging import Staging

    spool = tmp_path / "spool"
    index = DigestIndex.in_state_dir(tmp_path / "build-state", str(archive_dir))
    store = open_store(str(archive_dir))
    body = bytes(HUGE_PAYLOAD)
    refs = []
    try:
        for day in (1, 2):
            staging = Staging(
                spool, SITE, KIND, warc_max_bytes=10**9, index=index, started=datetime(2026, 11, day, 6, tzinfo=UTC),
                previous_snapshot_id=index.latest_snapshot(SITE, KIND),
            )
            staging.record_exchange(
                url="http://sample.test/big", method="GET", request_target="/big", request_headers=[("Host", "sample.test")],
                request_body=b"", status=200, response_headers=[("Content-Type", "application/octet-stream")], body=body,
            )
            staging.write_item({"type": "article", "url": "http://sample.test/big", "change": "new"})
            staging.finalise(finish_reason="finished")
            assert [res.state for res in push_all(store, spool, progress=False)] == ["committed"]
            refs.append(SnapshotRef(staging.snapshot_id, SITE, KIND))
    finally:
        index.close()
    del body
    first, second = refs
    m1, m2 = load_manifest(store, first), load_manifest(store, second)
    assert m1.counts["revisits"] == 0 and m2.counts["revisits"] == 1 and m2.refers_to == [first.snapshot_id]
    assert all(f.size < 1024 * 1024 for f in m1.files + m2.files), "the payload must compress to well under 1 MB"
    return first, second


def test_self_contained_restore_streams_a_hugely_inflating_payload(tmp_path: Path, newsvault_cli: NewsvaultRunner) -> None:
    _first, second = _build_huge_revisit_pair(tmp_path, newsvault_cli.archive_dir)
    target = newsvault_cli.root / "restored"
    out = run_measured(newsvault_cli, "restore", second.snapshot_id, "--to", str(target), "--self-contained", timeout=60)
    assert out["rc"] == 0, out["stderr"][-3000:]
    assert "1 revisits resolved" in out["stdout"]
    assert out["maxrss_kib"] < MAX_RSS_KIB, f"peak RSS {out['maxrss_kib']} KiB for a {HUGE_PAYLOAD >> 20} MiB payload"

    expected = "sha1:" + base64.b32encode(hashlib.sha1(bytes(HUGE_PAYLOAD)).digest()).decode()
    responses = 0
    with open(target / "pages-00000.warc.gz", "rb") as fh:
        for record in ArchiveIterator(fh):
            assert record.rec_type != "revisit"
            if record.rec_type == "response":
                responses += 1
                assert record.rec_headers.get_header("WARC-Payload-Digest") == expected
                digest, size = hashlib.sha1(), 0
                stream = record.content_stream()
                while chunk := stream.read(1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
                assert size == HUGE_PAYLOAD
                assert "sha1:" + base64.b32encode(digest.digest()).decode() == expected
    assert responses == 1


def _warc(records: list[tuple[str, Any]]) -> tuple[bytes, list[Any]]:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True, warc_version=WARC_VERSION)
    written = []
    for kind, spec in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/plain")], protocol="HTTP/1.1")
        if kind == "response":
            rec = writer.create_warc_record("http://sample.test/p", "response", payload=io.BytesIO(spec),
                                            length=len(spec), http_headers=http)
        else:
            rec = writer.create_revisit_record("http://sample.test/p", spec["digest"], "http://sample.test/p", spec["date"],
                                               http_headers=http, warc_headers_dict=spec["headers"])
        writer.write_record(rec)
        written.append(rec)
    return buf.getvalue(), written


@pytest.mark.parametrize("digest_matches", [True, False], ids=["matching-payload", "wrong-payload"])
def test_self_contained_restore_checks_the_referenced_payload_sha1(tmp_path: Path, digest_matches: bool) -> None:
    root = tmp_path / "archive"
    original, revisiting = ref(1), ref(2)
    payload = b"the original payload " * 50
    warc_a, (response,) = _warc([("response", payload)])
    commit(root, original, {"pages-00000.warc.gz": warc_a}, counts={"revisits": 0})
    claimed = payload if digest_matches else b"some other payload"
    warc_b, _ = _warc([("revisit", {
        "digest": "sha1:" + base64.b32encode(hashlib.sha1(claimed).digest()).decode(),
        "date": response.rec_headers.get_header("WARC-Date"),
        "headers": {
            "WARC-Refers-To": response.rec_headers.get_header("WARC-Record-ID"),
            "WARC-Refers-To-Target-URI": "http://sample.test/p",
            "WARC-Refers-To-Date": response.rec_headers.get_header("WARC-Date"),
            HEADER_REFERS_SNAPSHOT: original.snapshot_id,
            HEADER_REFERS_FILE: "pages-00000.warc.gz",
        },
    })])
    commit(root, revisiting, {"pages-00000.warc.gz": warc_b}, refers_to=[original.snapshot_id], counts={"revisits": 1})
    store = open_store(str(root))
    verify_snapshot(store, revisiting)  # the stored files are intact: only the payload the revisit names differs

    fresh = tmp_path / "fresh"
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_bytes(b"keep")
    if digest_matches:
        result = restore_snapshot(store, revisiting, fresh, self_contained=True, progress=False)
        assert result.resolved_revisits == 1
        with open(fresh / "pages-00000.warc.gz", "rb") as fh:
            bodies = [r.content_stream().read() for r in ArchiveIterator(fh) if r.rec_type == "response"]
        assert bodies == [payload]
        return
    for target in (fresh, existing):
        with pytest.raises(IntegrityError, match="payload digest"):
            restore_snapshot(store, revisiting, target, self_contained=True, progress=False)
    assert not fresh.exists()
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]


# --- restore arguments that are too long or impossible ------------------------------------------------
@pytest.mark.parametrize("case", ["long-id", "impossible-id", "long-to", "long-latest-site", "to-is-a-file"])
def test_bad_restore_arguments_print_one_error_line(newsvault_cli: NewsvaultRunner, case: str) -> None:
    good = ref(1)
    commit(newsvault_cli.archive_dir, good)
    base = newsvault_cli.root / "restores"
    base.mkdir()
    to = str(base / "target")
    which: list[str] = [good.snapshot_id]
    if case == "long-id":
        which = ["2" * 300]
    elif case == "impossible-id":
        which = ["20261399T999999Z-abcdef"]
    elif case == "long-to":
        to = str(base / ("t" * 300))
    elif case == "long-latest-site":
        which = ["--latest", "s" * 300]
    else:
        (base / "target").write_bytes(b"not a dir")
    result = newsvault_cli("restore", *which, "--to", to, timeout=CMD_TIMEOUT)
    assert_one_error_line(result)
    if case == "to-is-a-file":
        assert sorted(p.name for p in base.iterdir()) == ["target"] and (base / "target").read_bytes() == b"not a dir"
    else:
        assert list(base.iterdir()) == []


# --- a failed restore leaves the target as it was ----------------------------------------------------
def _two_file_snapshot(root: Path) -> SnapshotRef:
    r = ref(1)
    folder = commit(root, r, {"items.jsonl.gz": b"items" * 100, "pages-00000.warc.gz": b"warc" * 100})
    (folder / "pages-00000.warc.gz").write_bytes(b"WARC" * 100)  # same size, other sha256
    return r


def test_failed_restore_into_existing_dir_leaves_it_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    r = _two_file_snapshot(root)
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_bytes(b"keep")
    with pytest.raises(IntegrityError):
        restore_snapshot(open_store(str(root)), r, target, progress=False)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]


def test_failed_restore_removes_every_dir_it_created(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    r = _two_file_snapshot(root)
    base = tmp_path / "base"
    base.mkdir()
    with pytest.raises(IntegrityError):
        restore_snapshot(open_store(str(root)), r, base / "new" / "nested" / "target", progress=False)
    assert list(base.iterdir()) == [], "a failed restore left directories it created"


@pytest.mark.parametrize("existing", [True, False], ids=["existing-target", "new-target"])
def test_restore_failing_while_moving_files_in_takes_them_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    root = tmp_path / "archive"
    r = ref(1)
    commit(root, r, {"items.jsonl.gz": b"items", "pages-00000.warc.gz": b"warc"})
    target = tmp_path / "target"
    if existing:
        target.mkdir()
        (target / "keep.txt").write_bytes(b"keep")
    real_replace = os.replace
    moves: list[str] = []

    def failing_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        dst_path = Path(dst)
        if dst_path.parent == target.resolve():
            moves.append(dst_path.name)
            if dst_path.name == MANIFEST_NAME:  # the last one: the data files are in place by now
                raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(restore_module.os, "replace", failing_replace)
    with pytest.raises(OSError):
        restore_snapshot(open_store(str(root)), r, target, progress=False)
    monkeypatch.undo()
    assert moves[-1] == MANIFEST_NAME and len(moves) == 3
    if existing:
        assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    else:
        assert not target.exists()


# --- S3: hostile manifests (no links or devices there) --------------------------------------------------
def test_hostile_manifests_on_s3(tmp_path: Path, s3_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    prefix = f"hostile-{uuid.uuid4().hex[:8]}"
    url = s3_server.archive_url(prefix)
    client = s3_server.client()

    def put(r: SnapshotRef, name: str, body: bytes) -> None:
        client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{r.key(name)}", Body=body)

    items = b"items"
    dotdot, deep, huge = ref(1, suffix="00000a"), ref(1, suffix="00000b"), ref(1, suffix="00000c")
    good = [ref(2), ref(3), ref(4)]
    for r in [dotdot, deep, huge, *good]:
        put(r, "items.jsonl.gz", items)
    put(dotdot, MANIFEST_NAME, manifest_bytes(dotdot, [{"name": "../../etc/x", "size": 1, "sha256": "0" * 64}]))
    put(deep, MANIFEST_NAME, b"[" * 200000)
    put(huge, MANIFEST_NAME, b" " * (MAX_MANIFEST_BYTES + 1024))
    for r in good:
        put(r, MANIFEST_NAME, manifest_bytes(r, {"items.jsonl.gz": items}))

    store = open_store(url)
    assert len(store.list_snapshots()) == 6
    for bad in (dotdot, deep):
        with pytest.raises(IntegrityError):
            load_manifest(store, bad)
    with pytest.raises(ObjectTooLargeError):
        store.get_bytes(huge.key(MANIFEST_NAME))
    for bad in (dotdot, deep, huge):
        with pytest.raises((IntegrityError, StoreError)):
            verify_snapshot(store, bad)
        with pytest.raises(NewsvaultError):
            restore_snapshot(store, bad, tmp_path / f"t-{bad.snapshot_id}", progress=False)
        assert not (tmp_path / f"t-{bad.snapshot_id}").exists()
    assert latest_snapshot(store, SITE) == good[-1]

    cli = NewsvaultRunner(tmp_path / "cli", env={**s3_server.env(), "NEWSVAULT_ARCHIVE": url})
    cli.root.mkdir()
    listing = cli("snapshots", "--json", timeout=CMD_TIMEOUT)
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert_no_traceback(listing)
    statuses = {row["snapshot_id"]: row["status"] for row in json.loads(listing.stdout)}
    assert [statuses[r.snapshot_id] for r in (dotdot, deep, huge)] == ["damaged"] * 3
    assert [statuses[r.snapshot_id] for r in good] == ["complete"] * 3
    verify = cli("verify", "--all", timeout=CMD_TIMEOUT)
    assert verify.returncode == 1
    assert_no_traceback(verify)
    assert all(f"ok {r.snapshot_id}" in verify.stdout for r in good)
    assert verify.stderr.strip().splitlines()[-1] == "newsvault: error: 3 of 6 snapshots failed verification"

    plan = prune(store, keep_last=1)
    assert set(plan.damaged) == {dotdot, deep, huge}
    assert {r.snapshot_id for r in store.list_snapshots()} == {dotdot.snapshot_id, deep.snapshot_id,
                                                               huge.snapshot_id, good[-1].snapshot_id}
