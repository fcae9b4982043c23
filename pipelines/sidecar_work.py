"""The sidecar's work and its process: the item stages, then the snapshot's files, one message at a time.

What it does per item: the stages (clean, validate, dedupe, change tracking:
``NEWSVAULT_WORKER_PIPELINES``) and then, with an archive, the item's line in
``items.jsonl.gz`` and its catalog rows; per page, the WARC records (the
digest, the revisit decision, building and compressing them). These cost more
CPU than anything else newsvault adds to a crawl; in their own process they
run on a second core. The crawl's end (the Scrapy pipeline, the pipe) is
pipelines/sidecar.py.

Nothing here imports Scrapy or Twisted: the child process starts with only
what the stages and the files need.

One message format (marshal-encoded tuples of plain values, only ever read
from this crawl's own pipe, never from a file or the network). The crawl sends
``("item", id, item)``, ``("page", *EXCHANGE_FIELDS)``, ``("line", item)`` and
``("close",)``; every message back is a list of replies: ``(id, "done", item)``,
``(id, "drop", reason, log level)``, ``(id, "error", reason, traceback)``,
``("ready",)``, ``("fatal", reason)`` and ``("closed", error, stats, counts)``.
The stages' stats are summed here and go back once, with ``closed``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import marshal
import queue
import resource
import sys
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from archive.snapshot_files import EXCHANGE_FIELDS, RecordedCounts, SnapshotFiles
from archive.staging import Staging
from catalog.prepare import CATALOG_PREPARED_STAT, CatalogPreparer
from newsvault.errors import NewsvaultError
from newsvault.processes import InheritedFd, become_worker
from pipelines.stages import ItemDropped, Stages, StatsOp

log = logging.getLogger(__name__)

# The child's peak RSS goes into the crawl's stats (kilobytes, as the kernel counts).
MAX_RSS_STAT = "newsvault/sidecar/max_rss_kb"


class SidecarError(NewsvaultError, RuntimeError):
    """A stage failed on an item in the sidecar, or the sidecar itself failed or is gone."""


@dataclass(frozen=True)
class FilesSpec:
    """Where and how the sidecar writes a snapshot's files (plain values: it crosses to the child)."""

    directory: str
    max_bytes: int
    snapshot_id: str
    site: str
    # (index file or shared-state URL, archive URL): the child opens its own connection to the digest index.
    index_at: tuple[str, str] | None
    # (catalog file, archive URL): new article versions are indexed there as they are written.
    catalog_at: tuple[str, str] | None = None

    @classmethod
    def of(cls, staging: Staging, catalog_path: str | None = None) -> FilesSpec:
        index = staging.index
        archive_url = index.archive_url if index is not None else None
        return cls(str(staging.dir), staging.warc_max_bytes, staging.snapshot_id, staging.site,
                   (index.location, index.archive_url) if index is not None else None,
                   (catalog_path, archive_url) if catalog_path and archive_url else None)

    def catalog_preparer(self) -> CatalogPreparer | None:
        if self.catalog_at is None:
            return None
        return CatalogPreparer(self.catalog_at[0], self.catalog_at[1], self.snapshot_id)

    def open(self) -> SnapshotFiles:
        from archive.index import DigestIndex

        index = DigestIndex(self.index_at[0], self.index_at[1]) if self.index_at else None
        return SnapshotFiles(Path(self.directory), max_bytes=self.max_bytes, snapshot_id=self.snapshot_id,
                             site=self.site, index=index)


def _is_drop(exc: Exception) -> bool:
    """A stage left the item out: ItemDropped, or Scrapy's DropItem from a stage that imports Scrapy itself."""
    if isinstance(exc, ItemDropped):
        return True
    scrapy_exceptions = sys.modules.get("scrapy.exceptions")
    return scrapy_exceptions is not None and isinstance(exc, scrapy_exceptions.DropItem)


class SidecarCore:
    """The sidecar's work, wherever it runs: stages on items, then (with an archive) the snapshot's files."""

    def __init__(self, stage_paths: list[str] | tuple[str, ...], settings: dict[str, Any],
                 files: FilesSpec | None) -> None:
        self.stages = Stages(stage_paths, settings)
        self.files = files.open() if files is not None else None
        # Off the crawl's core like the files: the commit then has less to add to the catalog.
        self.catalog = files.catalog_preparer() if files is not None else None

    def item(self, item: dict[str, Any]) -> tuple[Any, ...]:
        """One item through the stages, as the reply: ("done", item) (archived), ("drop", ...) or ("error", ...)."""
        try:
            result = self.stages.process(item)
        except Exception as exc:  # noqa: BLE001 - a bug in a stage fails this item only, like in-process
            if _is_drop(exc):
                return ("drop", str(exc), getattr(exc, "log_level", "WARNING"))
            return ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if self.files is not None:
            line = self.files.append_item(result)  # a failure here is the sidecar's, not the item's: it propagates
            if self.catalog is not None:
                self.catalog.add(result, line)
        return ("done", result)

    def page(self, exchange: dict[str, Any]) -> None:
        if self.files is None:
            raise SidecarError("no snapshot is open to record pages into")
        self.files.record(**exchange)

    def line(self, item: dict[str, Any]) -> None:
        """An item written as it is, past the stages (direct use of a staging dir)."""
        if self.files is None:
            raise SidecarError("no snapshot is open to write items into")
        line = self.files.append_item(item)
        if self.catalog is not None:
            self.catalog.add(item, line)

    def close(self) -> tuple[str | None, list[StatsOp], RecordedCounts | None]:
        """Close the stages, then the files; (stage error or None, the stages' stats, the files' counts)."""
        error = None
        try:
            self.stages.close()
        except Exception as exc:  # noqa: BLE001 - reported with the stats so far; the files still close
            error = f"{type(exc).__name__}: {exc}"
        counts = None
        if self.files is not None:
            counts = self.files.close()
            if self.files.index is not None:
                self.files.index.close()
        if self.catalog is not None:
            self.catalog.close()
            self.stages.stats.set_value(CATALOG_PREPARED_STAT, self.catalog.prepared)
        return error, self.stages.stats.take(), counts

    def abandon(self) -> None:
        """Close the files as they are (the crawl is gone): what was written stays readable for salvage."""
        if self.files is not None:
            self.files.close()


# --- the child ---------------------------------------------------------------------------
def counts_message(counts: RecordedCounts | None) -> tuple[Any, ...] | None:
    if counts is None:
        return None
    return (counts.pages, counts.revisits, sorted(counts.refers_to), counts.warc_files, dict(counts.items))


def counts_from_message(message: tuple[Any, ...] | list[Any] | None) -> RecordedCounts | None:
    if message is None:
        return None
    pages, revisits, refers_to, warc_files, items = message
    return RecordedCounts(pages, revisits, frozenset(refers_to), warc_files, items=dict(items))


def serve(conn: Connection, stage_paths: list[str], settings: dict[str, Any], files: FilesSpec | None,
          lock: InheritedFd | None = None) -> None:
    """The child's loop: answer messages until ``close`` or EOF (the crawl died: close the files and go).

    Replies go out through their own thread, so this loop never blocks on the
    crawl: the crawl may be blocked sending a large page while replies pile
    up, and it only reads them once its send is through. With both sides
    sending on one pipe, a reply sent from here would deadlock the two. The
    pipe stays the backpressure for pages: it fills while this loop is behind.

    ``lock`` (the staging lock, inherited) stays open until this process exits,
    so the flock is released only once the files are closed.
    """
    become_worker("sidecar")
    replies = _Replies(conn)
    try:
        try:
            core = SidecarCore(stage_paths, settings, files)
        except Exception as exc:  # noqa: BLE001 - reported to the crawl, which stops
            replies.send(("fatal", f"cannot start the sidecar: {type(exc).__name__}: {exc}"))
            return
        replies.send(("ready",))
        _serve_loop(conn, core, replies)
    finally:
        replies.close()


def _serve_loop(conn: Connection, core: SidecarCore, replies: _Replies) -> None:
    try:
        while True:
            try:
                message = marshal.loads(conn.recv_bytes())
            except EOFError:
                core.abandon()
                return
            kind = message[0]
            if kind == "item":
                replies.send((message[1], *core.item(message[2])))
            elif kind == "page":
                core.page(dict(zip(EXCHANGE_FIELDS, message[1:], strict=True)))
            elif kind == "line":
                core.line(message[1])
            elif kind == "close":
                error, ops, counts = core.close()
                ops.append(("set", MAX_RSS_STAT, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
                replies.send(("closed", error, ops, counts_message(counts)))
                return
    except Exception as exc:  # noqa: BLE001 - the files cannot be trusted any more: say so and die
        log.error("sidecar failed: %s", exc)
        replies.send(("fatal", f"the sidecar failed: {type(exc).__name__}: {exc}"))
        with contextlib.suppress(Exception):
            core.abandon()


class _Replies:
    """Sends the sidecar's replies in order from a thread of their own (see :func:`serve`).

    Whatever has queued up since the last send goes in one message, so a
    crawl that reads late gets its replies in one read, not one each.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="sidecar-replies", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        crawl_gone = False
        while True:
            batch, last = self._take()
            # If the crawl is gone, go on: its queued messages are still read, then EOF ends the loop.
            if batch:
                try:
                    self.conn.send_bytes(encode(batch))
                except OSError as exc:
                    if not crawl_gone:
                        log.warning("the crawl no longer reads the sidecar's replies: %s", exc)
                        crawl_gone = True
            if last:
                return

    def _take(self) -> tuple[list[tuple[Any, ...]], bool]:
        """The replies queued now (waiting for one); True as well once the stop mark is among them."""
        batch: list[tuple[Any, ...]] = []
        message = self.queue.get()
        while message is not None:
            batch.append(message)
            try:
                message = self.queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def send(self, message: tuple[Any, ...]) -> None:
        self.queue.put(message)

    def close(self) -> None:
        """Send what is queued, then stop."""
        self.queue.put(None)
        self.thread.join()


def encode(message: Any) -> bytes:
    """marshal, or for a value marshal cannot carry (a date in an item, say) the message's JSON form."""
    try:
        return marshal.dumps(message)
    except ValueError:
        return marshal.dumps(json.loads(json.dumps(message, default=str)))
