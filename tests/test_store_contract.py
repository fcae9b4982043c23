"""One contract suite over both stores (local directory and S3 on SeaweedFS), plus S3 auth/outage errors."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.stores import FileDigest, HashingWriter, SnapshotRef, SnapshotStore, open_store
from newsvault.errors import SnapshotExistsError, StoreError, StoreUnreachableError

REF = SnapshotRef(snapshot_id="20261125T063012Z-3f9a1c", site="sample", kind="articles")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def s3_env(s3_server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """boto3's own chain picks the endpoint and credentials up from these variables."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SnapshotStore]:
    if request.param == "local":
        yield open_store(str(tmp_path / "archive"))
    else:
        server = request.getfixturevalue("s3_env")
        yield open_store(server.archive_url(f"contract-{uuid.uuid4().hex[:8]}"), {"NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES": 5 * 1024 * 1024})


def test_put_get_roundtrip_with_progress(store: SnapshotStore, tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    payload = bytes(range(256)) * 4000
    src.write_bytes(payload)
    seen: list[int] = []
    store.put_file(REF.key("items.jsonl.gz"), src, seen.append, sha256=_sha256(src))
    assert sum(seen) == len(payload)
    assert store.exists(REF.key("items.jsonl.gz"))
    assert store.get_bytes(REF.key("items.jsonl.gz")) == payload
    dest = tmp_path / "back.bin"
    store.get_file_hashed(REF.key("items.jsonl.gz"), dest)
    assert dest.read_bytes() == payload
    with store.open(REF.key("items.jsonl.gz")) as stream:
        assert stream.read(10) == payload[:10]


def test_multipart_upload_above_threshold(store: SnapshotStore, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from archive.stores.s3 import MULTIPART_CHUNK_BYTES, S3Store

    src = tmp_path / "big.bin"
    # Above the 5 MiB threshold and over two 8 MiB parts: three parts, the last one short.
    payload = os.urandom(2 * MULTIPART_CHUNK_BYTES + 1024 * 1024)
    src.write_bytes(payload)
    seen: list[int] = []
    store.put_file(REF.key("pages-00000.warc.gz"), src, seen.append, sha256=_sha256(src))
    assert sum(seen) == len(payload)
    back = tmp_path / "back.bin"
    got = store.get_file_hashed(REF.key("pages-00000.warc.gz"), back)
    assert got == FileDigest(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    assert back.read_bytes() == payload
    if isinstance(store, S3Store):
        # The server's own word: a multipart object's ETag is "<md5 of the part md5s>-<part count>".
        server = request.getfixturevalue("s3_server")
        head = server.client().head_object(Bucket=store.bucket, Key=f"{store.prefix}/{REF.key('pages-00000.warc.gz')}")
        etag = head["ETag"].strip('"')
        assert "-" in etag, f"not a multipart upload: ETag {etag!r}"
        assert int(etag.rsplit("-", 1)[1]) == 3, etag
        assert head["ContentLength"] == len(payload)
        assert head["Metadata"]["sha256"] == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize("hinted", [False, True], ids=["parallel-parts", "one-stream"])
def test_get_file_hashed_returns_size_and_sha256_of_what_it_wrote(store: SnapshotStore, tmp_path: Path, hinted: bool) -> None:
    # Over two 8 MiB parts on S3: ranged GETs run in parallel and must reach the
    # hash and the file in order; random bytes make any reordering show.
    payload = os.urandom(2 * 8 * 1024 * 1024 + 123_457)
    src = tmp_path / "big.warc.gz"
    src.write_bytes(payload)
    store.put_file(REF.key("pages-00000.warc.gz"), src, sha256=_sha256(src))
    seen: list[int] = []
    dest = tmp_path / "back.warc.gz"
    # With the size known (as restore knows it), S3 reads a file this small as one stream.
    got = store.get_file_hashed(REF.key("pages-00000.warc.gz"), dest, seen.append, expected_size=len(payload) if hinted else None)
    assert got == FileDigest(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert sum(seen) == len(payload)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    store.put_file(REF.key("items.jsonl.gz"), empty, sha256=_sha256(empty))
    assert store.get_file_hashed(REF.key("items.jsonl.gz"), tmp_path / "empty.back") == FileDigest(0, hashlib.sha256(b"").hexdigest())


def test_get_file_hashed_of_missing_key_is_a_store_error(store: SnapshotStore, tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        store.get_file_hashed(REF.key("nothing-here"), tmp_path / "x")


def test_missing_weed_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.plugins import seaweedfs

    # No weed beside the interpreter, none on PATH.
    monkeypatch.setattr(seaweedfs.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="weed' not found"):
        seaweedfs._weed_binary()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="weed' not found"):
        seaweedfs._weed_binary()


def test_hashing_writer_is_not_seekable_and_hashes_in_write_order(tmp_path: Path) -> None:
    import io

    out = io.BytesIO()
    writer = HashingWriter(out)
    # s3transfer picks its in-order (non-seekable) download path from exactly this answer.
    from s3transfer.compat import seekable

    assert not seekable(writer)
    for part in (b"abc", b"", b"def"):
        writer.write(part)
    assert out.getvalue() == b"abcdef"
    assert writer.result() == FileDigest(6, hashlib.sha256(b"abcdef").hexdigest())


def test_manifest_is_committed_once_and_listed(store: SnapshotStore, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    store.put_file(REF.key("items.jsonl.gz"), src, sha256=_sha256(src))
    assert store.list_snapshots() == []  # data without a manifest is not a snapshot
    store.put_bytes_if_absent(REF.key("manifest.json"), b'{"first": true}')
    with pytest.raises(SnapshotExistsError):
        store.put_bytes_if_absent(REF.key("manifest.json"), b'{"second": true}')
    assert store.get_bytes(REF.key("manifest.json")) == b'{"first": true}'
    assert store.list_snapshots() == [REF]
    assert store.list_snapshots("sample", "articles") == [REF]
    assert store.list_snapshots("other") == []
    assert sorted(k for k, _ in store.list_keys(REF.prefix + "/")) == [REF.key("items.jsonl.gz"), REF.key("manifest.json")]


def test_delete_and_missing(store: SnapshotStore, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"abc")
    store.put_file(REF.key("items.jsonl.gz"), src, sha256=_sha256(src))
    store.delete([REF.key("items.jsonl.gz"), REF.key("nothing-here")])
    assert not store.exists(REF.key("items.jsonl.gz"))
    with pytest.raises(StoreError):
        store.get_bytes(REF.key("items.jsonl.gz"))


def test_wrong_secret_is_refused_without_leaking_it(s3_server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    wrong = "WrongSecretKey-" + uuid.uuid4().hex
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    caplog.set_level(logging.DEBUG, logger="archive")
    store = open_store(s3_server.archive_url("denied"))
    with pytest.raises(StoreUnreachableError) as excinfo:
        store.list_snapshots()
    message = str(excinfo.value)
    assert "access denied: check AWS credentials" in message
    out = capsys.readouterr()
    for text in (message, caplog.text, out.out, out.err):
        assert wrong not in text and s3_server.secret_key not in text


def test_unreachable_endpoint_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from archive.stores.s3 import S3Store

    store = S3Store(bucket="b", max_attempts=1)
    with pytest.raises(StoreUnreachableError, match="cannot connect"):
        store.list_snapshots()


def test_open_store_picks_backend_by_scheme(tmp_path: Path) -> None:
    from archive.stores.local import LocalStore

    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(tmp_path.as_uri()), LocalStore)
    with pytest.raises(ValueError):
        open_store("ftp://host/x")


def test_wrong_secret_upload_and_download_map_to_store_errors(s3_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # upload_file/download_file go through boto3's transfer manager, which wraps
    # botocore's ClientError in its own exceptions.
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    good = open_store(s3_server.archive_url(f"denied-{uuid.uuid4().hex[:8]}"))
    src = tmp_path / "x"
    src.write_bytes(b"payload")
    good.put_file(REF.key("items.jsonl.gz"), src, sha256=_sha256(src))
    wrong = "WrongSecretKey-" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    denied = open_store(good.url)
    with pytest.raises(StoreUnreachableError, match="access denied: check AWS credentials") as up:
        denied.put_file(REF.key("pages-00000.warc.gz"), src, sha256=_sha256(src))
    with pytest.raises(StoreUnreachableError, match="access denied: check AWS credentials") as down:
        denied.get_file_hashed(REF.key("items.jsonl.gz"), tmp_path / "back")
    for exc in (up.value, down.value):
        assert wrong not in str(exc) and s3_server.secret_key not in str(exc)


def test_push_with_wrong_secret_keeps_entry_spooled(s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from archive.index import DigestIndex
    from archive.spool import push_all
    from archive.staging import Staging
    from tests.plugins.cli import run_newsvault

    spool = tmp_path / "var" / "spool"  # the default spool of the CLI's state dir
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=DigestIndex(tmp_path / "i.sqlite", str(tmp_path / "archive")))
    staging.write_item({"type": "article", "url": "http://x/1", "change": "new"})
    staging.finalise(finish_reason="finished")
    wrong = "WrongSecretKey-" + uuid.uuid4().hex
    env = {**s3_server.env(), "AWS_SECRET_ACCESS_KEY": wrong}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    url = s3_server.archive_url(f"denied-{uuid.uuid4().hex[:8]}")
    results = push_all(open_store(url), spool, progress=False)
    assert [r.state for r in results] == ["failed"]
    assert "access denied: check AWS credentials" in (results[0].error or "")
    assert staging.final_dir.is_dir()

    cli = run_newsvault("push", env={**env, "NEWSVAULT_ARCHIVE": url, "NEWSVAULT_STATE_DIR": str(tmp_path / "var")}, timeout=120)
    assert cli.returncode not in (0, None)
    assert "Traceback" not in cli.stderr
    assert "access denied: check AWS credentials" in cli.stdout + cli.stderr
    for text in (cli.stdout, cli.stderr):
        assert wrong not in text and s3_server.secret_key not in text
    assert staging.final_dir.is_dir()
