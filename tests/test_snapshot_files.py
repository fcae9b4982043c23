"""The snapshot's data files written by the sidecar process equal those written in-process."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.index import DigestIndex
from archive.staging import Staging, is_live
from pipelines.sidecar import SidecarFiles, SidecarProcess
from pipelines.sidecar_work import FilesSpec, SidecarError
from tests.test_snapshot_writer import fake_page, page_body

PAGES = {f"http://127.0.0.1/a{i}": page_body(i) for i in range(40)}
ITEMS = [{"type": "article", "url": f"http://127.0.0.1/a{i}", "title": f"Ёлка {i}", "change": "new"} for i in range(40)]


def snapshot(root: Path, *, in_child: bool, pages: dict[str, bytes]) -> Staging:
    """One snapshot with the given pages (recorded, revisit decided by the writer) and ITEMS."""
    index = DigestIndex(root / "index.sqlite", str(root / "archive"))
    staging = Staging(root / "spool", "sample", "articles", warc_max_bytes=200_000, index=index,
                      previous_snapshot_id=index.latest_snapshot("sample", "articles"), local_files=not in_child)
    if in_child:
        in_sidecar(staging)
    for url, body in pages.items():
        staging.record_exchange(**fake_page(url, body))
    for item in ITEMS:
        staging.write_item(item)
    staging.finalise(finish_reason="finished")
    index.close()
    return staging


def in_sidecar(staging: Staging) -> SidecarProcess:
    """A sidecar without stages writes the staging dir's files."""
    died: list[str] = []
    sidecar = SidecarProcess([], {}, FilesSpec.of(staging), staging.lock_fd, died.append)
    staging.use_files(SidecarFiles(sidecar))
    return sidecar


def records(directory: Path) -> list[tuple[str, str | None, bytes]]:
    """(type, target URI, payload) of every record, across the rotated files in order."""
    out = []
    for path in sorted(directory.glob("pages-*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                out.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read()))
    return out


def items(directory: Path) -> list[dict[str, Any]]:
    with gzip.open(directory / "items.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("second_pages", [PAGES, {**PAGES, "http://127.0.0.1/new": page_body(999)}])
def test_sidecar_files_match_in_process_files(tmp_path: Path, second_pages: dict[str, bytes]) -> None:
    results = {}
    for in_child in (False, True):
        root = tmp_path / ("child" if in_child else "local")
        first = snapshot(root, in_child=in_child, pages=PAGES)
        second = snapshot(root, in_child=in_child, pages=second_pages)  # unchanged pages become revisits
        results[in_child] = (first, second)
    for local, child in zip(results[False], results[True], strict=True):
        assert local.manifest is not None and child.manifest is not None
        assert child.manifest.counts == local.manifest.counts
        assert (child.manifest.refers_to == [results[True][0].snapshot_id]) == (local.manifest.refers_to == [results[False][0].snapshot_id])
        assert records(child.final_dir) != [] and [r[:2] for r in records(child.final_dir)][1:] == [r[:2] for r in records(local.final_dir)][1:]
        assert items(child.final_dir) == items(local.final_dir) == ITEMS
    second = results[True][1].manifest
    assert second is not None and second.counts["revisits"] == len(PAGES) and second.counts["warc_files"] >= 1
    assert results[True][0].manifest is not None and results[True][0].manifest.counts["warc_files"] > 1  # rotated


def test_a_dead_sidecar_is_an_error_not_a_silent_gap(tmp_path: Path) -> None:
    index = DigestIndex(tmp_path / "index.sqlite", str(tmp_path / "archive"))
    staging = Staging(tmp_path / "spool", "sample", "articles", warc_max_bytes=10**9, index=index, local_files=False)
    sidecar = in_sidecar(staging)
    staging.record_exchange(**fake_page("http://127.0.0.1/a0", page_body(0)))
    sidecar.process.kill()
    sidecar.process.join()
    # The staging's callers (the WARC middleware) handle a failed write as OSError.
    with pytest.raises(OSError, match="sidecar"):
        for i in range(1, 200):
            staging.record_exchange(**fake_page(f"http://127.0.0.1/a{i}", page_body(i)))
    with pytest.raises(SidecarError):
        staging.finalise(finish_reason="finished")
    assert staging.dir.exists() and not staging.final_dir.exists()  # left .partial, never "complete"
    index.close()


def test_the_sidecar_closes_its_files_when_the_crawl_goes_away(tmp_path: Path) -> None:
    index = DigestIndex(tmp_path / "index.sqlite", str(tmp_path / "archive"))
    staging = Staging(tmp_path / "spool", "sample", "articles", warc_max_bytes=10**9, index=index, local_files=False)
    sidecar = in_sidecar(staging)
    for i in range(30):
        staging.record_exchange(**fake_page(f"http://127.0.0.1/a{i}", page_body(i)))
        staging.write_item(ITEMS[i])
    assert staging._lock_fd is not None
    os.close(staging._lock_fd)  # the crawl's own hold on the lock goes, as if it had been killed...
    staging._lock_fd = None
    assert is_live(staging.dir)  # ...but the sidecar still holds it: salvage must wait
    sidecar.conn.close()  # the pipe closes too: the sidecar reads EOF
    sidecar.process.join(timeout=30)
    assert not is_live(staging.dir)
    got = [r for r in records(staging.dir) if r[0] == "response"]
    assert [uri for _, uri, _ in got] == [f"http://127.0.0.1/a{i}" for i in range(30)]
    assert items(staging.dir) == ITEMS[:30]
    index.close()
