"""The ordered background worker the WARC writer compresses and writes on."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.background import BackgroundWriteError, OrderedWorker
from archive.warc import RotatingWarcWriter


def test_jobs_run_in_submission_order_off_the_calling_thread() -> None:
    worker = OrderedWorker("test", max_pending=4)
    seen: list[tuple[int, str]] = []
    for i in range(200):
        worker.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
    worker.drain()
    assert [i for i, _ in seen] == list(range(200))
    assert {name for _, name in seen} == {"test"}
    worker.close()


def test_a_failed_job_is_raised_on_the_next_submit_and_on_close() -> None:
    worker = OrderedWorker("test")
    ran: list[int] = []

    def fail() -> None:
        raise OSError(28, "No space left on device")

    worker.submit(fail)
    worker.submit(lambda: ran.append(1))  # may be queued before the failure is seen
    with pytest.raises(BackgroundWriteError, match="No space left"):
        worker.drain()
    with pytest.raises(BackgroundWriteError):
        worker.submit(lambda: ran.append(2))
    with pytest.raises(BackgroundWriteError):
        worker.close()
    assert ran == []  # nothing runs after a failure: the file would have a hole


def exchange(writer: RotatingWarcWriter, i: int) -> None:
    writer.write_exchange(
        url=f"http://127.0.0.1/a{i}",
        method="GET",
        request_target=f"/a{i}",
        request_headers=[("Host", "127.0.0.1")],
        request_body=b"",
        status=200,
        response_headers=[("Content-Type", "text/html")],
        body=f"<p>page {i}</p>".encode() * 50,
        prior=None,
    )


def test_warc_written_on_the_worker_is_complete_after_close(tmp_path: Path) -> None:
    writer = RotatingWarcWriter(tmp_path, max_bytes=10**9, snapshot_id="s")
    for i in range(300):
        exchange(writer, i)
    writer.close()
    with open(tmp_path / "pages-00000.warc.gz", "rb") as fh:
        records = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in ArchiveIterator(fh)]
    assert records[0][0] == "warcinfo"
    responses = [uri for kind, uri in records if kind == "response"]
    assert responses == [f"http://127.0.0.1/a{i}" for i in range(300)]
    assert len(records) == 1 + 2 * 300


def test_warc_write_failure_reaches_the_crawl_thread(tmp_path: Path) -> None:
    writer = RotatingWarcWriter(tmp_path, max_bytes=10**9, snapshot_id="s")
    exchange(writer, 0)
    assert writer._fh is not None
    writer._fh.close()  # the next write on the worker fails like a lost disk would
    with pytest.raises(BackgroundWriteError):
        for i in range(1, 100):
            exchange(writer, i)
        writer.close()
