"""Acceptance of the archive: real crawls (child processes) of the sample site into local and S3 stores."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.checker import Checker

from tests.plugins.cli import NewsvaultRunner, child_env

ARTICLES = 60


def crawl(cli: NewsvaultRunner, site_url: str, tag: str, *, env: dict[str, str] | None = None) -> dict:
    summary = cli.root / f"summary-{tag}.json"
    result = cli(
        "crawl", "sample", "--start-url", site_url, "--output", str(cli.root / f"out-{tag}.jsonl"),
        "--json-summary", str(summary), env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert data["snapshot_id"], data
    return data


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for line in fh if line.strip()]


def by_url(items: list[dict]) -> dict[str, dict]:
    return {json.dumps([i.get("type"), i.get("url") or i.get("thread_url"), i.get("position")]): i for i in items}


def warc_check(path: Path) -> int:
    cmd = SimpleNamespace(inputs=[str(path)], verbose=False)
    return int(Checker(cmd).process_all())


def warc_pages(path: Path) -> dict[str, bytes]:
    pages: dict[str, bytes] = {}
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type in ("response", "revisit"):
                pages[record.rec_headers.get_header("WARC-Target-URI")] = record.content_stream().read()
    return pages


@pytest.fixture
def s3_cli(newsvault_cli: NewsvaultRunner, s3_server) -> NewsvaultRunner:  # type: ignore[no-untyped-def]
    newsvault_cli.env.update(s3_server.env())
    newsvault_cli.env["NEWSVAULT_ARCHIVE"] = s3_server.archive_url(f"crawl-{uuid.uuid4().hex[:8]}")
    return newsvault_cli


def test_crawl_snapshot_restore_roundtrip_on_s3(s3_cli: NewsvaultRunner, sample_site_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    site = sample_site_factory(articles=ARTICLES)
    first = crawl(s3_cli, site.base_url, "1")
    second = crawl(s3_cli, site.base_url, "2")
    assert first["snapshot_state"] == second["snapshot_state"] == "committed"

    listing = s3_cli("snapshots", "sample", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["snapshot_id"]: r for r in json.loads(listing.stdout)}
    assert set(rows) == {first["snapshot_id"], second["snapshot_id"]}
    ratio = rows[second["snapshot_id"]]["bytes"] / rows[first["snapshot_id"]]["bytes"]
    with capsys.disabled():
        print(f"\n[archive] unchanged second snapshot: {rows[second['snapshot_id']]['bytes']} bytes = "
              f"{ratio:.1%} of the first ({rows[first['snapshot_id']]['bytes']} bytes)")
    assert ratio <= 0.20
    assert rows[second["snapshot_id"]]["revisits"] > 0

    verify = s3_cli("verify", "--all")
    assert verify.returncode == 0, verify.stderr

    for tag, snap in (("1", first), ("2", second)):
        target = s3_cli.root / f"restored-{tag}"
        restored = s3_cli("restore", snap["snapshot_id"], "--to", str(target), "--self-contained")
        assert restored.returncode == 0, restored.stderr
        crawled = read_jsonl(s3_cli.root / f"out-{tag}.jsonl")
        assert crawled and by_url(read_jsonl(target / "items.jsonl.gz")) == by_url(crawled)
        warcs = sorted(target.glob("pages-*.warc.gz"))
        assert warcs
        pages: dict[str, bytes] = {}
        for warc in warcs:
            assert warc_check(warc) == 0
            pages.update(warc_pages(warc))
        # Pages are archived under the URL as fetched (tracking parameters included);
        # items carry the canonical URL, so match on the path.
        by_path = {urlsplit(url)._replace(query="", fragment="").geturl(): body for url, body in pages.items()}
        for item in crawled:
            if item["type"] == "article":
                body = by_path.get(urlsplit(item["url"])._replace(query="", fragment="").geturl())
                assert body is not None and len(body) > 500, item["url"]
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["snapshot_id"] == snap["snapshot_id"]
        assert not any(p.name.startswith(".restore-") for p in target.iterdir())


def test_corrupted_object_fails_verify_and_restore(newsvault_cli: NewsvaultRunner, sample_site_factory) -> None:  # type: ignore[no-untyped-def]
    site = sample_site_factory(articles=50)
    snap = crawl(newsvault_cli, site.base_url, "1")
    snap_dir = next(newsvault_cli.archive_dir.glob(f"snapshots/sample/articles/{snap['snapshot_id']}"))
    items = snap_dir / "items.jsonl.gz"
    data = bytearray(items.read_bytes())
    data[len(data) // 2] ^= 0x01
    items.write_bytes(bytes(data))
    verify = newsvault_cli("verify", snap["snapshot_id"])
    assert verify.returncode != 0
    assert "items.jsonl.gz" in verify.stderr
    target = newsvault_cli.root / "restored"
    restore = newsvault_cli("restore", snap["snapshot_id"], "--to", str(target))
    assert restore.returncode != 0 and "items.jsonl.gz" in restore.stderr
    assert not target.exists() or [p.name for p in target.iterdir()] == []


def test_store_outage_spools_then_push_commits(newsvault_cli: NewsvaultRunner, sample_site_factory, s3_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = s3_server_factory()
    newsvault_cli.env.update(server.env())
    newsvault_cli.env["NEWSVAULT_ARCHIVE"] = server.archive_url("outage")
    site = sample_site_factory(articles=50)
    server.stop()
    snap = crawl(newsvault_cli, site.base_url, "1")
    assert snap["snapshot_state"] == "spooled"
    spooled = newsvault_cli.state_dir / "spool" / "sample" / "articles" / snap["snapshot_id"]
    assert (spooled / "manifest.json").is_file()

    server.start()
    listing = newsvault_cli("snapshots", "--json")
    states = {r["snapshot_id"]: r["state"] for r in json.loads(listing.stdout)}
    assert states == {snap["snapshot_id"]: "spooled"}

    # Kill a push mid-upload (after the first data file): nothing is listed, nothing is lost.
    script = textwrap.dedent(
        """
        import os, signal, sys
        from archive.spool import push_all
        from archive.stores import open_store
        store = open_store(sys.argv[1])
        real_put = store.put_file
        def put_then_die(key, path, progress=None, **kwargs):
            real_put(key, path, progress, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        store.put_file = put_then_die
        push_all(store, sys.argv[2], progress=False)
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, newsvault_cli.env["NEWSVAULT_ARCHIVE"], str(newsvault_cli.state_dir / "spool")],
        env=child_env(server.env()), capture_output=True, text=True, timeout=120, check=False,
    )
    assert killed.returncode == -9, killed.stderr
    listing = newsvault_cli("snapshots", "--json")
    assert [r["state"] for r in json.loads(listing.stdout)] == ["spooled"]
    assert any(k.startswith("outage/snapshots/") for k in _keys(server))

    push = newsvault_cli("push")
    assert push.returncode == 0, push.stderr + push.stdout
    assert f"committed {snap['snapshot_id']}" in push.stdout
    assert not spooled.exists()
    verify = newsvault_cli("verify", snap["snapshot_id"])
    assert verify.returncode == 0, verify.stderr


def _keys(server) -> list[str]:  # type: ignore[no-untyped-def]
    response = server.client().list_objects_v2(Bucket=server.bucket, Prefix="outage/")
    return [o["Key"] for o in response.get("Contents", [])]


def test_killed_crawl_is_salvaged_by_push(newsvault_cli: NewsvaultRunner, sample_site_factory) -> None:  # type: ignore[no-untyped-def]
    import signal
    import time

    site = sample_site_factory(articles=300)
    env = {**newsvault_cli.base_env(), "NEWSVAULT_CRAWL_CONCURRENCY_PER_DOMAIN": "1", "NEWSVAULT_CRAWL_CONCURRENT_REQUESTS": "1",
           "NEWSVAULT_CRAWL_DOWNLOAD_DELAY_SECONDS": "0.02"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "crawl", "sample", "--start-url", site.base_url],
        env=child_env(env), cwd=newsvault_cli.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    spool = newsvault_cli.state_dir / "spool" / "sample" / "articles"
    deadline = time.monotonic() + 60
    partial: list[Path] = []
    while time.monotonic() < deadline:
        partial = list(spool.glob("*.partial")) if spool.is_dir() else []
        if partial and (partial[0] / "items.jsonl.gz").exists() and (partial[0] / "items.jsonl.gz").stat().st_size > 2000:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert partial, "the crawl never started writing"
    # The sidecar outlives the crawl by a moment, still holding the snapshot dir's
    # lock, and a push leaves a locked (live) dir alone: wait for the lock to go.
    from archive.spool import try_lock

    while (fd := try_lock(partial[0])) is None and time.monotonic() < deadline + 30:
        time.sleep(0.05)
    assert fd is not None, "the snapshot dir stayed locked after the crawl was killed"
    os.close(fd)
    assert json.loads(newsvault_cli("snapshots", "--json").stdout)[0]["state"] == "partial-in-spool"
    push = newsvault_cli("push")
    assert push.returncode == 0, push.stderr + push.stdout
    assert "salvaged" in push.stdout
    show = newsvault_cli("show", partial[0].name.removesuffix(".partial"))
    manifest = json.loads(show.stdout)
    assert manifest["status"] == "partial" and manifest["counts"]["items"] > 0
    assert newsvault_cli("verify", "--all").returncode == 0


def test_one_state_dir_two_archives_revisits_stay_in_their_archive(newsvault_cli: NewsvaultRunner, sample_site_factory) -> None:  # type: ignore[no-untyped-def]
    site = sample_site_factory(articles=50)
    archive_a, archive_b = newsvault_cli.root / "archive-a", newsvault_cli.root / "archive-b"
    first = crawl(newsvault_cli, site.base_url, "a1", env={"NEWSVAULT_ARCHIVE": str(archive_a)})
    other = crawl(newsvault_cli, site.base_url, "b1", env={"NEWSVAULT_ARCHIVE": str(archive_b)})
    again = crawl(newsvault_cli, site.base_url, "a2", env={"NEWSVAULT_ARCHIVE": str(archive_a)})
    assert first["snapshot_state"] == other["snapshot_state"] == again["snapshot_state"] == "committed"

    def manifest(archive: Path, snap: dict) -> dict:
        path = archive / "snapshots" / "sample" / "articles" / snap["snapshot_id"] / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8"))

    # Archive B has never held a snapshot of this site: nothing there to refer to.
    b = manifest(archive_b, other)
    assert b["refers_to"] == [] and b["counts"]["revisits"] == 0 and b["previous_snapshot_id"] is None
    # Archive A still deduplicates against its own earlier snapshot.
    a2 = manifest(archive_a, again)
    assert a2["refers_to"] == [first["snapshot_id"]] and a2["counts"]["revisits"] > 0
    assert a2["previous_snapshot_id"] == first["snapshot_id"]

    for archive, snap, tag in ((archive_b, other, "b"), (archive_a, again, "a")):
        target = newsvault_cli.root / f"restored-{tag}"
        restored = newsvault_cli("restore", snap["snapshot_id"], "--to", str(target), "--self-contained",
                                 env={"NEWSVAULT_ARCHIVE": str(archive)})
        assert restored.returncode == 0, restored.stderr[-2000:]
        for warc in target.glob("pages-*.warc.gz"):
            assert warc_check(warc) == 0


def test_crawl_killed_during_upload_is_completed_by_push(tmp_path: Path, sample_site_factory, s3_server) -> None:  # type: ignore[no-untyped-def]
    import signal
    import time

    site = sample_site_factory(articles=150)
    client = s3_server.client()
    for attempt in range(4):
        # A fresh state dir and prefix per attempt, in case an upload was too quick to catch.
        cli = NewsvaultRunner(tmp_path / f"try-{attempt}")
        cli.root.mkdir()
        prefix = f"killed-upload-{uuid.uuid4().hex[:8]}"
        # Small WARC files: the upload is many objects, so it lasts long enough to interrupt.
        cli.env.update({**s3_server.env(), "NEWSVAULT_ARCHIVE": s3_server.archive_url(prefix),
                        "NEWSVAULT_ARCHIVE_WARC_MAX_BYTES": "20000"})
        output = cli.root / "out.jsonl"
        proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "crawl", "sample", "--start-url", site.base_url, "--output", str(output)],
            env=child_env(cli.base_env()), cwd=cli.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        killed = False
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{prefix}/snapshots/").get("Contents", [])]
                if keys and not any(k.endswith("/manifest.json") for k in keys):
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
                if keys:
                    break  # committed before we saw it: try again
                time.sleep(0.005)
        finally:
            if proc.poll() is None and not killed:
                proc.kill()
            proc.wait(30)
        if killed and proc.returncode == -signal.SIGKILL:
            break
    else:
        pytest.fail("could not catch the crawl during its upload")

    spool = cli.state_dir / "spool" / "sample" / "articles"
    (entry,) = [p for p in spool.iterdir() if not p.name.startswith(".")]
    snapshot_id = entry.name
    assert not snapshot_id.endswith(".partial")  # finalised before the upload began
    listing = cli("snapshots", "--json")
    assert listing.returncode == 0, listing.stderr
    assert [(r["snapshot_id"], r["state"]) for r in json.loads(listing.stdout)] == [(snapshot_id, "spooled")]

    push = cli("push")
    assert push.returncode == 0, push.stderr + push.stdout
    assert f"committed {snapshot_id}" in push.stdout
    assert not entry.exists()
    verify = cli("verify", snapshot_id)
    assert verify.returncode == 0, verify.stderr
    manifest = json.loads(cli("show", snapshot_id).stdout)
    assert manifest["status"] == "complete" and manifest["counts"]["warc_files"] > 1
    crawled = read_jsonl(output)
    assert crawled and manifest["counts"]["items"] == len(crawled)
    target = cli.root / "restored"
    assert cli("restore", snapshot_id, "--to", str(target)).returncode == 0
    assert by_url(read_jsonl(target / "items.jsonl.gz")) == by_url(crawled)
