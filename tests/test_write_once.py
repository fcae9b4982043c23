"""No write ever touches a committed snapshot, and one (site, kind) has one writer.

Local archive and S3 (SeaweedFS). The copied-state-dir case is the one a
careless operator makes: a state dir copied (or restored from a backup) while
a crawl's ``.partial`` was in it, then pushed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from archive.index import DigestIndex
from archive.spool import push_all
from archive.staging import Staging
from archive.stores import SnapshotRef, open_store
from newsvault.errors import ObjectExistsError, SourceChangedError
from tests.plugins.cli import NewsvaultRunner, child_env, wait_for_responses

REF = SnapshotRef(snapshot_id="20261125T063012Z-3f9a1c", site="sample", kind="articles")


# archive_url (local and S3): tests/plugins/seaweedfs.py


def _file(path: Path, data: bytes) -> tuple[Path, str]:
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [1000, 9 * 1024 * 1024], ids=["one-put", "multipart"])
def test_put_file_never_replaces_an_object_and_never_stores_bytes_it_was_not_vouched(
    archive_url: str, tmp_path: Path, size: int
) -> None:
    store = open_store(archive_url, {"NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES": 8 * 1024 * 1024})
    key = REF.key("pages-00000.warc.gz")
    first, first_sha = _file(tmp_path / "a", b"a" * size)
    store.put_file(key, first, sha256=first_sha)
    store.put_file(key, first, sha256=first_sha)  # a retried upload of the same bytes is fine
    other, other_sha = _file(tmp_path / "b", b"b" * size)
    with pytest.raises(ObjectExistsError):
        store.put_file(key, other, sha256=other_sha)
    assert store.get_bytes(key, max_bytes=2 * size) == b"a" * size

    # A file that no longer has the sha256 its manifest says: nothing becomes visible.
    damaged_key = REF.key("items.jsonl.gz")
    damaged, _ = _file(tmp_path / "c", b"c" * size)
    with pytest.raises(SourceChangedError):
        store.put_file(damaged_key, damaged, sha256=first_sha)
    assert not store.exists(damaged_key)
    assert [k for k, _ in store.list_keys(REF.prefix + "/")] == [key]


def _entry(spool: Path, index: DigestIndex, body: bytes, snapshot_id: str) -> Staging:
    staging = Staging(spool, "sample", "articles", warc_max_bytes=10**9, index=index, snapshot_id=snapshot_id)
    staging.record_exchange(url="http://sample.test/a/1", method="GET", request_target="/a/1",
                            request_headers=[("Host", "sample.test")], request_body=b"", status=200,
                            response_headers=[("Content-Type", "text/html")], body=body)
    staging.write_item({"type": "article", "url": "http://sample.test/a/1", "change": "new", "body": body.decode()})
    staging.finalise(finish_reason="finished")
    return staging


def test_an_entry_whose_id_is_committed_with_other_content_is_refused_before_any_upload(
    archive_url: str, tmp_path: Path
) -> None:
    store = open_store(archive_url)
    snapshot_id = "20261125T060000Z-aaaaaa"
    _entry(tmp_path / "spool-a", DigestIndex(tmp_path / "a.sqlite", archive_url), b"<p>original</p>", snapshot_id)
    assert [r.state for r in push_all(store, tmp_path / "spool-a", progress=False)] == ["committed"]
    stored = {key: store.get_bytes(key) for key, _ in store.list_keys("snapshots/")}

    copy = _entry(tmp_path / "spool-b", DigestIndex(tmp_path / "b.sqlite", archive_url), b"<p>other</p>", snapshot_id)
    results = push_all(store, tmp_path / "spool-b", progress=False)
    assert [r.state for r in results] == ["conflict"]
    assert "already committed" in (results[0].error or "") and str(copy.final_dir) in (results[0].error or "")
    assert {key: store.get_bytes(key) for key, _ in store.list_keys("snapshots/")} == stored
    assert copy.final_dir.is_dir()  # kept for the operator, never deleted


def _crawl_args(site_url: str) -> list[str]:
    return ["crawl", "sample", "--start-url", site_url + "/sitemap.xml"]


@pytest.fixture(params=["local", "s3"])
def runner(request: pytest.FixtureRequest, tmp_path: Path) -> NewsvaultRunner:
    cli = NewsvaultRunner(tmp_path / "a")
    cli.root.mkdir()
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        cli.env.update({**server.env(), "NEWSVAULT_ARCHIVE": server.archive_url(f"copied-{uuid.uuid4().hex[:8]}")})
    return cli


def test_pushing_a_state_dir_copied_mid_crawl_never_touches_the_committed_snapshot(
    runner: NewsvaultRunner, sample_site_factory: Any, tmp_path: Path
) -> None:
    site = sample_site_factory(articles=400)
    env = child_env({**runner.base_env(), "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "4",
                     "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "4"})
    proc = subprocess.Popen([sys.executable, "-m", "scheduler", *_crawl_args(site.base_url)], env=env, cwd=runner.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Well into the crawl: its staging dir holds pages (and soon items) when the copy is taken.
    wait_for_responses(runner.state_dir / "spool", 40, proc)
    copy = tmp_path / "copy"
    shutil.copytree(runner.state_dir, copy, symlinks=True, ignore_dangling_symlinks=True)
    assert proc.wait(240) == 0
    listing = json.loads(runner("snapshots", "--json").stdout)
    (committed,) = [row["snapshot_id"] for row in listing if row["state"] == "committed"]
    before = json.loads(runner("show", committed).stdout)

    pushed = runner("push", "--state-dir", str(copy))
    assert pushed.returncode == 1, pushed.stdout + pushed.stderr
    assert f"conflict {committed}" in pushed.stdout
    verify = runner("verify", "--all")
    assert verify.returncode == 0, verify.stdout + verify.stderr  # was: items.jsonl.gz size 55 != 199555
    assert json.loads(runner("show", committed).stdout) == before
    assert any((copy / "spool" / "sample" / "articles").iterdir())  # the copy's entry is kept, not lost


def test_a_copy_of_a_state_dir_is_a_second_writer_and_is_refused_until_it_claims(
    newsvault_cli: NewsvaultRunner, sample_site_factory: Any, tmp_path: Path
) -> None:
    site = sample_site_factory(articles=60)
    first = newsvault_cli.crawl_summary(*_crawl_args(site.base_url)[1:])
    assert first["snapshot_state"] == "committed"
    copy = tmp_path / "copy-of-var"
    shutil.copytree(newsvault_cli.state_dir, copy)

    summary = tmp_path / "copy.json"
    refused = newsvault_cli(*_crawl_args(site.base_url), "--state-dir", str(copy), "--json-summary", str(summary))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    error = json.loads(summary.read_text())["error"]
    assert str(newsvault_cli.state_dir.resolve()) in error and "newsvault claim sample" in error
    assert "Traceback" not in refused.stderr
    assert len(json.loads(newsvault_cli("snapshots", "--json").stdout)) == 1  # nothing interleaved

    claimed = newsvault_cli("claim", "sample", "--kind", "articles", "--state-dir", str(copy))
    assert claimed.returncode == 0, claimed.stderr
    assert newsvault_cli(*_crawl_args(site.base_url), "--state-dir", str(copy)).returncode == 0
    # Now the original is the other writer.
    again = newsvault_cli(*_crawl_args(site.base_url))
    assert again.returncode == 1 and "is written by" in again.stderr + again.stdout
