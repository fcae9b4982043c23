"""Streaming WARC 1.1 writer for one snapshot: request/response pairs, revisits, size-based rotation."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, BinaryIO

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter
from zlib_ng import zlib_ng

from archive.background import OrderedWorker
from newsvault import __version__

log = logging.getLogger(__name__)

WARC_VERSION = "WARC/1.1"
WARC_NAME_FORMAT = "pages-{:05d}.warc.gz"
# Records and items are compressed with zlib-ng (standard gzip members, read
# by any zlib): on the sample site's pages its level 5 costs 0.44x the CPU of
# zlib's level 6 for output 1.3 % larger (zlib's 9: 1.7x the CPU, 0.6 % smaller).
GZIP_LEVEL = 5
# Extension headers that let restore find the record a revisit stands for.
HEADER_REFERS_SNAPSHOT = "WARC-Newsvault-Refers-To-Snapshot"
HEADER_REFERS_FILE = "WARC-Newsvault-Refers-To-File"
# Hop-by-hop framing Scrapy already undid: keeping it would make readers
# de-chunk a body that is no longer chunked.
_DROP_RESPONSE_HEADERS = {b"transfer-encoding"}


def payload_digest(body: bytes) -> str:
    """The WARC-Payload-Digest warcio would write: ``sha1:`` + base32."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


@dataclass(frozen=True)
class PriorCapture:
    """Where an identical payload was first archived (from the digest index)."""

    snapshot_id: str
    filename: str
    record_id: str
    uri: str
    date: str


@dataclass(frozen=True)
class WrittenResponse:
    """What the recorder wrote for one response, for the digest index and counts."""

    filename: str
    record_id: str
    uri: str
    date: str
    digest: str


def _header_pairs(headers: Iterable[tuple[bytes | str, Iterable[bytes | str]]], drop: set[bytes]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, values in headers:
        raw_name = name if isinstance(name, bytes) else name.encode("latin-1")
        if raw_name.lower() in drop:
            continue
        for value in values:
            raw_value = value if isinstance(value, bytes) else value.encode("latin-1")
            pairs.append((raw_name.decode("latin-1"), raw_value.decode("latin-1")))
    return pairs


class _LeanWARCWriter(WARCWriter):
    """Skips digests nobody checks on request and revisit records; compresses on the worker thread.

    A request's payload digest is meaningless and a revisit has no payload;
    dropping them (and their block digests) keeps an unchanged crawl's WARC small.
    """

    def __init__(self, filebuf: BinaryIO, worker: OrderedWorker, written: _ByteCount, **kwargs: Any) -> None:
        super().__init__(filebuf, gzip=False, **kwargs)
        self.worker = worker
        self.written = written

    def ensure_digest(self, record, block=True, payload=True):  # type: ignore[no-untyped-def]
        if record.rec_type in ("request", "revisit"):
            block = False
            payload = payload and record.rec_type != "request"
        return super().ensure_digest(record, block=block, payload=payload)

    def _write_warc_record(self, out, record):  # type: ignore[no-untyped-def]
        # warcio builds the record into memory here; the worker makes it one
        # gzip member (as warcio does with gzip=True) and appends it to the file.
        return super()._write_warc_record(_GzipMemberOnWorker(out, self.worker, self.written), record)


class _ByteCount:
    """Bytes of the current file: written (compressed, by the worker) and queued since the last drain."""

    # gzip's header and trailer per member, plus deflate's worst-case growth slack.
    MEMBER_OVERHEAD = 64

    def __init__(self) -> None:
        self.value = 0
        self.queued_bound = 0


class _GzipMemberOnWorker:
    """Collects one record's bytes; ``flush`` hands them to the worker to compress and write.

    zlib-ng at GZIP_LEVEL: compressing is the largest CPU cost of archiving a page.
    """

    def __init__(self, out: BinaryIO, worker: OrderedWorker, written: _ByteCount) -> None:
        self.out = out
        self.worker = worker
        self.written = written
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    def flush(self) -> None:
        parts, self.parts = self.parts, []
        out, written = self.out, self.written
        # Compressed output is at most the input plus a little: an upper bound for rotation.
        written.queued_bound += sum(len(part) for part in parts) + _ByteCount.MEMBER_OVERHEAD

        def compress_and_write() -> None:
            # One zlib call per record: each call hands the GIL over and back,
            # and every handover can stall the crawl thread a little.
            member = zlib_ng.compress(b"".join(parts), GZIP_LEVEL, wbits=zlib_ng.MAX_WBITS + 16)
            out.write(member)
            written.value += len(member)

        self.worker.submit(compress_and_write)


class RotatingWarcWriter:
    """Writes gzip WARC records into ``pages-NNNNN.warc.gz`` files, starting a new one past ``max_bytes``.

    Records are built on the calling thread and compressed and written, in
    order, on a worker thread (archive/background.py); ``close`` waits for
    them and raises any write failure.
    """

    def __init__(self, directory: Path, *, max_bytes: int, snapshot_id: str) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.snapshot_id = snapshot_id
        self.index = -1
        self.filename = ""
        self._fh: BinaryIO | None = None
        self._writer: WARCWriter | None = None
        self._written = _ByteCount()
        self._worker: OrderedWorker | None = None

    def _open_next(self) -> None:
        self._close_file()
        if self._worker is None:
            self._worker = OrderedWorker(f"warc-{self.snapshot_id}")
        self.index += 1
        self.filename = WARC_NAME_FORMAT.format(self.index)
        self._fh = open(self.directory / self.filename, "xb")  # noqa: SIM115 - closed on the worker
        self._written = _ByteCount()
        self._writer = _LeanWARCWriter(self._fh, self._worker, self._written, warc_version=WARC_VERSION)
        info = self._writer.create_warcinfo_record(
            self.filename,
            {"software": f"newsvault/{__version__}", "format": "WARC File Format 1.1", "isPartOf": self.snapshot_id},
        )
        self._writer.write_record(info)

    def _ensure_room(self) -> WARCWriter:
        if self._writer is None or self._fh is None or self._file_is_full():
            self._open_next()
        assert self._writer is not None
        return self._writer

    def _file_is_full(self) -> bool:
        """True once the current file has reached ``max_bytes`` (as exactly as a synchronous writer)."""
        count = self._written
        if count.value + count.queued_bound < self.max_bytes:
            return False  # even if every queued record compressed to nothing more
        # Close to the limit: wait for the queued records to know the real size.
        assert self._worker is not None
        self._worker.drain()
        count.queued_bound = 0
        return count.value >= self.max_bytes

    def write_exchange(
        self,
        *,
        url: str,
        method: str,
        request_target: str,
        request_headers: list[tuple[str, str]],
        request_body: bytes,
        status: int,
        response_headers: list[tuple[str, str]],
        body: bytes,
        prior: PriorCapture | None,
        digest: str | None = None,
    ) -> WrittenResponse:
        """Write one request/response pair (the response as a revisit when ``prior`` is given).

        ``digest`` is ``payload_digest(body)`` when the caller has it already.
        """
        writer = self._ensure_room()
        digest = digest or payload_digest(body)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        if prior is None:
            http = StatusAndHeaders(f"{status} {reason}", response_headers, protocol="HTTP/1.1")
            resp = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(body),
                length=len(body),
                http_headers=http,
                warc_headers_dict={"WARC-Payload-Digest": digest},
            )
        else:
            # No payload, but the status line and every header of this response
            # (WARC 1.1 revisit profile): two responses can share a payload and
            # differ in what matters (an empty 301 and an empty 302 with their
            # own Locations); only the payload lives in the referenced record.
            http = StatusAndHeaders(f"{status} {reason}", response_headers, protocol="HTTP/1.1")
            resp = writer.create_revisit_record(
                url,
                digest,
                prior.uri,
                prior.date,
                http_headers=http,
                warc_headers_dict={
                    "WARC-Refers-To": prior.record_id,
                    HEADER_REFERS_SNAPSHOT: prior.snapshot_id,
                    HEADER_REFERS_FILE: prior.filename,
                },
            )
        req_http = StatusAndHeaders(f"{method} {request_target} HTTP/1.1", request_headers, is_http_request=True)
        req = writer.create_warc_record(
            url, "request", payload=io.BytesIO(request_body), length=len(request_body), http_headers=req_http
        )
        writer.write_request_response_pair(req, resp)
        return WrittenResponse(
            filename=self.filename,
            record_id=resp.rec_headers.get_header("WARC-Record-ID"),
            uri=url,
            date=resp.rec_headers.get_header("WARC-Date"),
            digest=digest,
        )

    def _close_file(self) -> None:
        """Close the current file after the records queued for it (on the worker, in order)."""
        if self._fh is not None and self._worker is not None:
            self._worker.submit(self._fh.close)
        self._fh = None
        self._writer = None

    def close(self) -> None:
        """Write out every queued record, close the files, stop the worker; raise a failed write."""
        try:
            self._close_file()
        finally:
            worker, self._worker = self._worker, None
            if worker is not None:
                worker.close()


def response_headers(headers: Iterable[tuple[bytes | str, Iterable[bytes | str]]]) -> list[tuple[str, str]]:
    """Response headers as recorded: all of them except chunked framing Scrapy removed."""
    return _header_pairs(headers, _DROP_RESPONSE_HEADERS)


def request_headers(headers: Iterable[tuple[bytes | str, Iterable[bytes | str]]]) -> list[tuple[str, str]]:
    return _header_pairs(headers, set())
