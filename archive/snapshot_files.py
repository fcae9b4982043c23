"""A snapshot's data files being written: the WARC (pages) and items.jsonl.gz, in this process or a child.

Why a child process: digesting, building and compressing two WARC records per
page and compressing every item line is the largest cost newsvault adds to a
crawl after the item stages; in the crawl's process it competes with parsing
for one core (one GIL). With :class:`SnapshotFilesProcess` the crawl only
sends each exchange (headers and body, as received) and each item line over a
pipe.

Both classes write exactly the same files into the staging dir: the rotating
``pages-NNNNN.warc.gz`` (revisits for payloads the digest index already
holds), ``.digests.tsv`` and ``items.jsonl.gz`` (sync-flushed every
``ITEM_FLUSH_EVERY`` lines, so a killed crawl leaves readable items). On
close they report the counts the manifest needs. If the crawl's process
dies, the child sees the pipe close, finishes what it has, closes the files
and exits: the staging dir stays ``.partial`` for salvage. The child holds a
duplicate of the staging dir's lock, so salvage never reads files it is
still writing.

Messages are marshal-encoded tuples of bytes and strings, only ever read
from this crawl's own pipe.
"""

from __future__ import annotations

import gzip
import json
import logging
import marshal
import resource
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from archive.manifest import ITEMS_NAME
from archive.warc import GZIP_LEVEL, RotatingWarcWriter, payload_digest
from newsvault.errors import NewsvaultError
from newsvault.processes import become_worker, start_worker, stop_worker

log = logging.getLogger(__name__)

# Field order of an exchange message (after the leading "page").
EXCHANGE_FIELDS = (
    "url",
    "method",
    "request_target",
    "request_headers",
    "request_body",
    "status",
    "response_headers",
    "body",
)
CLOSE_TIMEOUT_SECONDS = 600.0
# The (digest, file, record id, uri, date) of every full response, for the index.
DIGESTS_NAME = ".digests.tsv"
# Sync-flush the items gzip stream this often so a killed crawl leaves readable items.
ITEM_FLUSH_EVERY = 50


def item_line(item: dict[str, Any]) -> bytes:
    """One line of items.jsonl.gz: keys sorted, UTF-8, anything unusual as its str()."""
    return (json.dumps(item, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode()


class SnapshotFilesError(NewsvaultError, OSError):
    """The snapshot writer process failed or is gone; the snapshot's files are incomplete."""


@dataclass
class RecordedCounts:
    """What the manifest needs from the snapshot's writer."""

    pages: int = 0
    revisits: int = 0
    refers_to: frozenset[str] = frozenset()
    warc_files: int = 0
    # Peak RSS of the writer's child process in kilobytes (None in-process).
    max_rss_kb: int | None = None


class SnapshotFiles:
    """Writes a snapshot's data files into its staging dir: WARC records (revisits looked up), digest list, items."""

    def __init__(self, directory: Path, *, max_bytes: int, snapshot_id: str, site: str, index: Any) -> None:
        self.site = site
        self.index = index
        self._items = gzip.open(directory / ITEMS_NAME, "wb", compresslevel=GZIP_LEVEL)  # noqa: SIM115 - closed in close()
        self._items_since_flush = 0
        self.warc = RotatingWarcWriter(directory, max_bytes=max_bytes, snapshot_id=snapshot_id)
        self._digests = open(directory / DIGESTS_NAME, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.pages = 0
        self.revisits = 0
        self.refers_to: set[str] = set()
        self._closed = False

    def write_item_line(self, line: bytes) -> None:
        """Append one JSON line (with its newline) to items.jsonl.gz."""
        self._items.write(line)
        self._items_since_flush += 1
        if self._items_since_flush >= ITEM_FLUSH_EVERY:
            self._items.flush()
            self._items_since_flush = 0

    def record(self, **exchange: Any) -> None:
        """Write one exchange: a revisit if the index holds an earlier capture of its payload."""
        digest = payload_digest(exchange["body"])
        prior = self.index.lookup(self.site, digest) if self.index is not None else None
        written = self.warc.write_exchange(**exchange, prior=prior, digest=digest)
        self.pages += 1
        if prior is not None:
            self.revisits += 1
            self.refers_to.add(prior.snapshot_id)
        else:
            self._digests.write(
                f"{written.digest}\t{written.filename}\t{written.record_id}\t{written.uri}\t{written.date}\n"
            )

    def counts(self) -> RecordedCounts:
        return RecordedCounts(self.pages, self.revisits, frozenset(self.refers_to), self.warc.index + 1)

    def close(self) -> None:
        """Close every file even if one fails; the first failure propagates. Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        try:
            self._items.close()
        finally:
            try:
                self.warc.close()
            finally:
                self._digests.close()



# --- the child process ------------------------------------------------------------
class InheritedFd:
    """A file descriptor handed to a spawned child, the way multiprocessing hands over pipe ends."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return (_inherited_fd, (reduction.DupFd(self.fd),))


def _inherited_fd(dup: Any) -> int:
    return int(dup.detach())


def serve(
    conn: Connection,
    directory: str,
    max_bytes: int,
    snapshot_id: str,
    site: str,
    index_at: tuple[str, str] | None,
    lock_fd: int | None = None,
) -> None:
    """The child's loop: record each exchange until ``close`` (reply with counts) or EOF (just finish).

    ``lock_fd`` (the staging lock, inherited) stays open until this process
    exits: the flock is released only once the files are closed.
    """
    from archive.index import DigestIndex

    become_worker("snapshot writer")
    index = DigestIndex(Path(index_at[0]), index_at[1]) if index_at else None
    files = SnapshotFiles(Path(directory), max_bytes=max_bytes, snapshot_id=snapshot_id, site=site, index=index)
    try:
        while True:
            try:
                message = marshal.loads(conn.recv_bytes())
            except EOFError:
                return  # the crawl died: close the files (finally) for salvage
            if message[0] == "page":
                files.record(**dict(zip(EXCHANGE_FIELDS, message[1:], strict=True)))
            elif message[0] == "item":
                files.write_item_line(item_line(message[1]))
            elif message[0] == "line":
                files.write_item_line(message[1])
            elif message[0] == "close":
                files.close()
                counts = files.counts()
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                conn.send_bytes(
                    marshal.dumps(
                        ("closed", counts.pages, counts.revisits, sorted(counts.refers_to), counts.warc_files, peak)
                    )
                )
                return
    except Exception as exc:  # noqa: BLE001 - reported to the crawl, which raises it
        log.error("snapshot writer failed: %s", exc)
        try:
            conn.send_bytes(marshal.dumps(("failed", f"{type(exc).__name__}: {exc}")))
        except OSError:
            pass
    finally:
        files.close()  # no-op after "close"; after EOF or a failure, what was written stays readable
        if index is not None:
            index.close()


class SnapshotFilesProcess:
    """The crawl's end: sends exchanges to the child, collects its counts at close."""

    def __init__(
        self, directory: Path, *, max_bytes: int, snapshot_id: str, site: str, index: Any, lock_fd: int | None = None
    ) -> None:
        # The child opens its own connection to the same index file.
        index_at = (str(index.path), index.archive_url) if index is not None else None
        lock = InheritedFd(lock_fd) if lock_fd is not None else None
        self.conn, self.process = start_worker(
            serve, (str(directory), max_bytes, snapshot_id, site, index_at, lock), "newsvault-snapshot-writer"
        )
        self._closed = False

    def record(self, **exchange: Any) -> None:
        """Queue one exchange (blocks only while the pipe is full)."""
        self._send(("page", *(exchange[name] for name in EXCHANGE_FIELDS)))

    def write_item(self, item: dict[str, Any]) -> None:
        """Queue one item for items.jsonl.gz (encoded as JSON by the child)."""
        try:
            message = marshal.dumps(("item", item))
        except ValueError:  # a value marshal cannot carry: encode it here
            message = marshal.dumps(("line", item_line(item)))
        self._send_bytes(message)

    def _send(self, message: tuple[Any, ...]) -> None:
        self._send_bytes(marshal.dumps(message))

    def _send_bytes(self, message: bytes) -> None:
        try:
            self.conn.send_bytes(message)
        except (OSError, ValueError) as exc:
            raise SnapshotFilesError(f"the snapshot writer process is gone: {self._failure() or exc}") from exc

    def _failure(self) -> str | None:
        """The child's last words, if it reported a failure before exiting."""
        try:
            while self.conn.poll(0.5):
                message = marshal.loads(self.conn.recv_bytes())
                if message[0] == "failed":
                    return str(message[1])
        except (EOFError, OSError):
            pass
        return None

    def close(self) -> RecordedCounts:
        """Wait until every record is written and the files are closed; the counts for the manifest."""
        if self._closed:
            raise SnapshotFilesError("the snapshot writer is already closed")
        self._closed = True
        try:
            self.conn.send_bytes(marshal.dumps(("close",)))
            if not self.conn.poll(CLOSE_TIMEOUT_SECONDS):
                raise SnapshotFilesError("the snapshot writer did not finish in time")
            message = marshal.loads(self.conn.recv_bytes())
        except (EOFError, OSError, ValueError) as exc:
            raise SnapshotFilesError(f"the snapshot writer process failed: {exc}") from exc
        finally:
            stop_worker(self.conn, self.process)
        if message[0] != "closed":
            raise SnapshotFilesError(f"the snapshot writer failed: {message[1]}")
        _, pages, revisits, refers_to, warc_files, peak = message
        return RecordedCounts(pages, revisits, frozenset(refers_to), warc_files, peak)
