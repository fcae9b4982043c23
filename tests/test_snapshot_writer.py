"""Staging writers, WARC records, revisits and the manifest, without a crawl."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.ids import is_snapshot_id, new_snapshot_id, snapshot_time
from archive.index import DigestIndex
from archive.manifest import MANIFEST_NAME, Manifest, ManifestError, sha256_file
from archive.staging import Staging
from archive.warc import HEADER_REFERS_FILE, HEADER_REFERS_SNAPSHOT, payload_digest
from newsvault.jsonsafe import json_safe


def fake_page(url: str, body: bytes) -> dict:
    return {
        "url": url,
        "method": "GET",
        "request_target": "/" + url.rsplit("/", 1)[-1],
        "request_headers": [("Host", "127.0.0.1"), ("User-Agent", "newsvault-test")],
        "request_body": b"",
        "status": 200,
        "response_headers": [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
        "body": body,
    }


def write_snapshot(spool: Path, index: DigestIndex, pages: dict[str, bytes], items: list[dict], *, reason: str = "finished", max_bytes: int = 10**9) -> Staging:
    staging = Staging(spool, "sample", "articles", warc_max_bytes=max_bytes, index=index,
                      previous_snapshot_id=index.latest_snapshot("sample", "articles"))
    for url, body in pages.items():
        page = fake_page(url, body)
        staging.record_exchange(**page)
    for item in items:
        staging.write_item(item)
    staging.finalise(finish_reason=reason, stats={"item_scraped_count": len(items), "start_time": snapshot_time(staging.snapshot_id), "odd": object()})
    return staging


def page_body(n: int) -> bytes:
    # Varied text (like real articles) so gzip cannot shrink the page to nothing.
    rng = random.Random(n)
    words = " ".join(rng.choice(["minsk", "visit", "talks", "energy", "press", "drone", "border"]) + str(rng.randrange(10**6)) for _ in range(3000))
    return f"<html><body><h1>Article {n}</h1><p>{words}</p></body></html>".encode()


def test_snapshot_id_format_sorts_by_time() -> None:
    first = new_snapshot_id()
    assert is_snapshot_id(first)
    assert not is_snapshot_id("20261125T063012Z-3f9a1")
    assert snapshot_time("20261125T063012Z-3f9a1c").isoformat() == "2026-11-25T06:30:12+00:00"


def test_finalise_writes_manifest_and_renames(tmp_path: Path) -> None:
    index = DigestIndex(tmp_path / "index.sqlite", str(tmp_path / "archive"))
    items = [{"type": "article", "change": "new", "url": f"http://x/{i}"} for i in range(3)] + [{"type": "discussion", "change": "new"}]
    staging = write_snapshot(tmp_path / "spool", index, {f"http://127.0.0.1/a{i}": page_body(i) for i in range(3)}, items)
    final = tmp_path / "spool" / "sample" / "articles" / staging.snapshot_id
    assert final.is_dir() and not final.with_name(staging.snapshot_id + ".partial").exists()
    manifest = Manifest.from_json((final / MANIFEST_NAME).read_bytes())
    assert manifest.status == "complete" and manifest.snapshot_id == staging.snapshot_id
    assert manifest.counts["items_by_type"] == {"article": {"new": 3}, "discussion": {"new": 1}}
    assert manifest.counts["pages"] == 3 and manifest.counts["revisits"] == 0
    assert manifest.crawl_stats["item_scraped_count"] == 4 and manifest.crawl_stats["odd"].startswith("<object")  # one converter
    assert {f.name for f in manifest.files} == {"items.jsonl.gz", "pages-00000.warc.gz"}
    for entry in manifest.files:
        assert sha256_file(final / entry.name) == (entry.size, entry.sha256)
    with gzip.open(final / "items.jsonl.gz", "rt", encoding="utf-8") as fh:
        assert [json.loads(line) for line in fh] == [dict(sorted(i.items())) for i in items]


def test_unfinished_crawl_is_partial(tmp_path: Path) -> None:
    staging = write_snapshot(tmp_path / "spool", DigestIndex(tmp_path / "i.sqlite", str(tmp_path / "archive")), {}, [], reason="shutdown")
    assert staging.manifest is not None and staging.manifest.status == "partial"


def test_second_snapshot_uses_small_revisits(tmp_path: Path) -> None:
    index = DigestIndex(tmp_path / "index.sqlite", str(tmp_path / "archive"))
    pages = {f"http://127.0.0.1/a{i}": page_body(i) for i in range(20)}
    first = write_snapshot(tmp_path / "spool", index, pages, [])
    changed = dict(pages)
    changed["http://127.0.0.1/a0"] = page_body(999)
    second = write_snapshot(tmp_path / "spool", index, changed, [])
    assert second.manifest is not None and first.manifest is not None
    assert second.manifest.previous_snapshot_id == first.snapshot_id
    assert second.manifest.counts["revisits"] == 19
    assert second.manifest.refers_to == [first.snapshot_id]
    warc = second.final_dir / "pages-00000.warc.gz"
    revisits = []
    with open(warc, "rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "revisit":
                revisits.append(record)
                assert record.rec_headers.get_header("WARC-Profile").endswith("identical-payload-digest")
                assert record.rec_headers.get_header(HEADER_REFERS_SNAPSHOT) == first.snapshot_id
                assert record.rec_headers.get_header(HEADER_REFERS_FILE) == "pages-00000.warc.gz"
                assert record.rec_headers.get_header("WARC-Refers-To-Target-URI") in pages
                assert record.rec_headers.get_header("WARC-Refers-To-Date")
                assert record.rec_headers.get_header("WARC-Refers-To")
                assert record.content_stream().read() == b""
    assert len(revisits) == 19
    first_warc = first.final_dir / "pages-00000.warc.gz"
    assert warc.stat().st_size < 0.2 * first_warc.stat().st_size


def test_crashed_staging_never_feeds_the_index(tmp_path: Path) -> None:
    index = DigestIndex(tmp_path / "index.sqlite", str(tmp_path / "archive"))
    body = page_body(1)
    staging = Staging(tmp_path / "spool", "sample", "articles", warc_max_bytes=10**9, index=index)
    staging.record_exchange(**fake_page("http://127.0.0.1/a1", body))
    staging.abandon()  # no finalise: the crawl "died"
    assert index.lookup("sample", payload_digest(body)) is None
    assert staging.dir.is_dir() and not staging.final_dir.exists()


def test_warc_rotates_at_max_bytes(tmp_path: Path) -> None:
    index = DigestIndex(tmp_path / "index.sqlite", str(tmp_path / "archive"))
    staging = write_snapshot(tmp_path / "spool", index, {f"http://127.0.0.1/a{i}": page_body(i) for i in range(6)}, [], max_bytes=1500)
    names = sorted(p.name for p in staging.final_dir.glob("pages-*.warc.gz"))
    assert len(names) >= 3 and names[0] == "pages-00000.warc.gz" and names[1] == "pages-00001.warc.gz"
    urls = []
    for name in names:
        with open(staging.final_dir / name, "rb") as fh:
            urls += [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(fh) if r.rec_type == "response"]
    assert sorted(urls) == sorted(f"http://127.0.0.1/a{i}" for i in range(6))


@pytest.mark.parametrize(
    "name", ["../evil", "/etc/passwd", "a\\b", "%2e%2e/x", "sub/../../x", ".", "C:x"]
)
def test_manifest_refuses_unsafe_names(name: str) -> None:
    data = {
        "format": "newsvault-snapshot", "format_version": 1, "schema_version": 1,
        "snapshot_id": "20261125T063012Z-3f9a1c", "site": "sample", "kind": "articles",
        "started_at": "x", "finished_at": "y", "status": "complete", "counts": {}, "crawl_stats": {},
        "previous_snapshot_id": None, "refers_to": [], "files": [{"name": name, "size": 1, "sha256": "0" * 64}],
    }
    with pytest.raises(ValueError):
        Manifest.from_json(json.dumps(data))


def test_manifest_rejects_garbage() -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(b"{not json")


def test_one_stats_conversion_keeps_lists_and_makes_everything_json() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing"

    safe = json_safe({"e": 1.5, "a": 1, "b": float("nan"), "c": Thing(), "d": "x",
                      "newsvault/removed_urls": ["u2", "u1"], "start_time": datetime(2026, 12, 1, tzinfo=UTC)})
    assert safe == {"a": 1, "b": None, "c": "thing", "d": "x", "e": 1.5, "newsvault/removed_urls": ["u2", "u1"],
                    "start_time": "2026-12-01T00:00:00+00:00"}
    assert list(safe) == sorted(safe)
    json.dumps(safe, allow_nan=False)  # what a manifest needs
