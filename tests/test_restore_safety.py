"""Restore writes only inside the target: hostile manifests and object keys are refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from archive.manifest import MANIFEST_NAME
from archive.paths import safe_join
from archive.restore import restore_snapshot
from archive.stores import SnapshotRef, open_store
from newsvault.errors import IntegrityError, UnsafePathError

REF = SnapshotRef(snapshot_id="20261125T063012Z-3f9a1c", site="sample", kind="articles")
UNSAFE = ["../evil.txt", "/tmp/evil.txt", "..\\evil.txt", "%2e%2e/evil.txt", "sub/%2E%2E/%2e%2e/evil.txt", "a/../../evil.txt"]


def manifest_for(files: dict[str, bytes]) -> bytes:
    return json.dumps({
        "format": "newsvault-snapshot", "format_version": 1, "schema_version": 1,
        "snapshot_id": REF.snapshot_id, "site": REF.site, "kind": REF.kind,
        "started_at": "2026-11-25T06:30:12Z", "finished_at": "2026-11-25T06:31:00Z", "status": "complete",
        "finish_reason": "finished", "counts": {}, "crawl_stats": {}, "previous_snapshot_id": None, "refers_to": [],
        "files": [{"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in files.items()],
    }).encode()


def plant(root: Path, key: str, data: bytes) -> None:
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.mark.parametrize("name", UNSAFE)
def test_manifest_entry_escaping_target_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "archive"
    plant(archive, REF.key(MANIFEST_NAME), manifest_for({name: b"owned"}))
    target = tmp_path / "work" / "target"
    with pytest.raises((UnsafePathError, ValueError)):
        restore_snapshot(open_store(str(archive)), REF, target, progress=False)
    assert not (tmp_path / "work" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not target.exists() or not any(p.name.endswith("evil.txt") for p in target.rglob("*"))


def test_object_key_with_encoded_dots_is_refused_on_s3(tmp_path: Path, s3_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    client = s3_server.client()
    prefix = "hostile"
    client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{REF.key('items.jsonl.gz')}", Body=b"x")
    client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{REF.key('%2e%2e/evil.txt')}", Body=b"owned")
    client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{REF.key(MANIFEST_NAME)}", Body=manifest_for({"items.jsonl.gz": b"x"}))
    target = tmp_path / "target"
    with pytest.raises(UnsafePathError):
        restore_snapshot(open_store(s3_server.archive_url(prefix)), REF, target, progress=False)
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))


def test_safe_join_refuses_symlink_inside_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        safe_join(target, "link/evil.txt")
    assert safe_join(target, "items.jsonl.gz") == (target / "items.jsonl.gz").resolve()


def test_restore_refuses_existing_files(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    plant(archive, REF.key("items.jsonl.gz"), b"data")
    plant(archive, REF.key(MANIFEST_NAME), manifest_for({"items.jsonl.gz": b"data"}))
    target = tmp_path / "target"
    target.mkdir()
    (target / "items.jsonl.gz").write_bytes(b"precious")
    with pytest.raises(Exception, match="already exists"):
        restore_snapshot(open_store(str(archive)), REF, target, progress=False)
    assert (target / "items.jsonl.gz").read_bytes() == b"precious"
    fresh = tmp_path / "fresh"
    restore_snapshot(open_store(str(archive)), REF, fresh, progress=False)
    assert (fresh / "items.jsonl.gz").read_bytes() == b"data"


# --- stored data altered after the commit ------------------------------------------
def _committed_snapshot(tmp_path: Path, url: str) -> SnapshotRef:
    """A real snapshot (items + one WARC) staged and pushed to ``url``."""
    from archive.spool import push_all
    from archive.staging import Staging

    spool = tmp_path / "spool"
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=None)
    for n in range(200):
        body = f"<html><body><p>article {n}</p>{'text ' * 200}</body></html>".encode()
        staging.record_exchange(
            url=f"http://sample.test/a/{n}", method="GET", request_target=f"/a/{n}", request_headers=[("Host", "sample.test")],
            request_body=b"", status=200, response_headers=[("Content-Type", "text/html")], body=body,
        )
        staging.write_item({"type": "article", "url": f"http://sample.test/a/{n}", "change": "new"})
    staging.finalise(finish_reason="finished")
    assert [r.state for r in push_all(open_store(url), spool, progress=False)] == ["committed"]
    return SnapshotRef(staging.snapshot_id, "sample", "articles")


@pytest.fixture(params=["local", "s3"])
def archive_with_overwrite(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """(archive URL, overwrite(key, data)) where overwrite changes a stored object behind newsvault's back."""
    if request.param == "local":
        root = tmp_path / "archive"
        return str(root), lambda key, data: plant(root, key, data)
    server = request.getfixturevalue("s3_server")
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    prefix = f"tampered-{uuid.uuid4().hex[:8]}"
    client = server.client()
    return server.archive_url(prefix), lambda key, data: client.put_object(Bucket=server.bucket, Key=f"{prefix}/{key}", Body=data)


@pytest.mark.parametrize("name", ["items.jsonl.gz", "pages-00000.warc.gz"])
def test_object_altered_in_store_fails_restore_and_leaves_nothing(tmp_path: Path, archive_with_overwrite, name: str) -> None:  # type: ignore[no-untyped-def]
    url, overwrite = archive_with_overwrite
    ref = _committed_snapshot(tmp_path, url)
    store = open_store(url)
    good = restore_snapshot(store, ref, tmp_path / "before", progress=False)
    assert name in good.files
    original = (tmp_path / "before" / name).read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01  # same size: only the sha256 can tell
    overwrite(ref.key(name), bytes(damaged))

    target = tmp_path / "after"
    with pytest.raises(IntegrityError) as excinfo:
        restore_snapshot(store, ref, target, progress=False)
    assert excinfo.value.filename == name
    assert not target.exists() or list(target.iterdir()) == []
    # Nor does a shorter object slip through.
    overwrite(ref.key(name), original[:-1])
    with pytest.raises(IntegrityError):
        restore_snapshot(store, ref, target, progress=False)
    assert not target.exists() or list(target.iterdir()) == []
