"""The crawl's sidecar: the item stages and the snapshot's files, in one child process with one protocol.

What it does per item: the stages (clean, validate, dedupe, change tracking:
``NEWSVAULT_WORKER_PIPELINES``) and then, with an archive, the item's line in
``items.jsonl.gz``; per page, the WARC records (the digest, the revisit
decision, building and compressing them). These cost about as much CPU as the
crawl itself; in a second process they run on a second core. An item crosses
the pipe twice (there, and back processed for the crawl's feeds and stats), a
page once.

One message format (marshal-encoded tuples of plain values, only ever read
from this crawl's own pipe, never from a file or the network), one way to die:
if the sidecar exits, its pending items fail and the spider is closed with
``sidecar_failed``, so the run is failed and its snapshot (never finalised) is
salvaged as partial by the next push. The child holds a duplicate of the
staging dir's lock, so salvage never reads files it is still writing; when the
crawl's process dies the child reads EOF, closes its files and exits.

``NEWSVAULT_WORKER_PROCESSES = False`` runs the same :class:`SidecarCore` in
the crawl's process: same stages, same settings, same files, minus the pipe.
Stages are built from plain settings (``from_settings``); what they need of the
site profile the spider gives as settings too (``stage_settings``), so the
pipelines never import the spiders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import marshal
import queue
import resource
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exceptions import CloseSpider, DropItem, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.misc import load_object
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from archive.scrapy_hooks import ARCHIVE_FAILED_REASON, find_extension
from archive.snapshot_files import EXCHANGE_FIELDS, RecordedCounts, SnapshotFiles
from archive.staging import Staging
from catalog.prepare import CATALOG_PREPARED_STAT, CatalogPreparer
from newsvault.errors import NewsvaultError
from newsvault.processes import InheritedFd, become_worker, start_worker, stop_worker

log = logging.getLogger(__name__)

DEFAULT_STAGES = (
    "pipelines.clean.CleanPipeline",
    "pipelines.validate.ValidatePipeline",
    "pipelines.dedupe.DedupePipeline",
    "pipelines.changes.ChangeTrackingPipeline",
)
FAILED_REASON = "sidecar_failed"
# The child's peak RSS goes into the crawl's stats (kilobytes, as the kernel counts).
MAX_RSS_STAT = "newsvault/sidecar/max_rss_kb"
# How long close waits for the child (it finishes what is queued first).
REPLY_TIMEOUT_SECONDS = 600.0

StatsOp = tuple[str, str, Any]


class SidecarError(NewsvaultError, RuntimeError):
    """A stage failed on an item in the sidecar, or the sidecar itself failed or is gone."""


# --- stats ---------------------------------------------------------------------------
class RecordingStats:
    """Stats collector stand-in: records the calls so the crawl's collector can replay them."""

    def __init__(self) -> None:
        self.ops: list[StatsOp] = []

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self.ops.append(("inc", key, (count, start)))

    def set_value(self, key: str, value: Any) -> None:
        self.ops.append(("set", key, value))

    def max_value(self, key: str, value: Any) -> None:
        self.ops.append(("max", key, value))

    def min_value(self, key: str, value: Any) -> None:
        self.ops.append(("min", key, value))

    def take(self) -> list[StatsOp]:
        ops, self.ops = self.ops, []
        return ops


def replay_stats(ops: Iterable[StatsOp], stats: Any) -> None:
    """Apply recorded calls to a real stats collector."""
    if stats is None:
        return
    for op, key, value in ops:
        if op == "inc":
            count, start = value
            stats.inc_value(key, count, start)
        elif op == "set":
            stats.set_value(key, value)
        elif op == "max":
            stats.max_value(key, value)
        elif op == "min":
            stats.min_value(key, value)


# --- the work ---------------------------------------------------------------------------
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


class Stages:
    """The configured stage pipelines, built from plain settings, run in order on one item."""

    def __init__(self, paths: Iterable[str], settings: dict[str, Any]) -> None:
        self.stats = RecordingStats()
        self.pipelines = [_build(load_object(path), settings, self.stats) for path in paths]
        for pipeline in self.pipelines:
            if hasattr(pipeline, "open_spider"):
                pipeline.open_spider()

    def process(self, item: dict[str, Any]) -> dict[str, Any]:
        for pipeline in self.pipelines:
            item = pipeline.process_item(item)
        return item

    def close(self) -> None:
        errors = []
        for pipeline in self.pipelines:
            if hasattr(pipeline, "close_spider"):
                try:
                    pipeline.close_spider()
                except Exception as exc:  # noqa: BLE001 - every stage gets closed; the first failure is raised
                    errors.append(exc)
        for later in errors[1:]:
            log.error("closing an item stage failed as well: %s", later)
        if errors:
            raise errors[0]


def _build(cls: Any, settings: dict[str, Any], stats: RecordingStats) -> Any:
    if hasattr(cls, "from_settings"):
        return cls.from_settings(settings, stats)
    return cls()


def plain_item(item: Any) -> dict[str, Any]:
    """A dict of plain values, whatever item type a spider or stage produced."""
    return item if type(item) is dict else ItemAdapter(item).asdict()


class SidecarCore:
    """The sidecar's work, wherever it runs: stages on items, then (with an archive) the snapshot's files."""

    def __init__(self, stage_paths: Iterable[str], settings: dict[str, Any], files: FilesSpec | None) -> None:
        self.stages = Stages(stage_paths, settings)
        self.files = files.open() if files is not None else None
        # Off the crawl's core like the files: the commit then has less to add to the catalog.
        self.catalog = files.catalog_preparer() if files is not None else None

    def item(self, item: dict[str, Any]) -> tuple[Any, ...]:
        """One item through the stages, as the reply: done (and archived), drop or error, with stats ops."""
        try:
            result = plain_item(self.stages.process(item))
        except DropItem as exc:
            return ("drop", str(exc), exc.log_level, self.stages.stats.take())
        except Exception as exc:  # noqa: BLE001 - a bug in a stage fails this item only, like in-process
            return ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(), self.stages.stats.take())
        if self.files is not None:
            line = self.files.append_item(result)  # a failure here is the sidecar's, not the item's: it propagates
            if self.catalog is not None:
                self.catalog.add(result, line)
        return ("done", result, self.stages.stats.take())

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
        """Close the stages, then the files; (stage error or None, stats ops, the files' counts)."""
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
def _counts_message(counts: RecordedCounts | None) -> tuple[Any, ...] | None:
    if counts is None:
        return None
    return (counts.pages, counts.revisits, sorted(counts.refers_to), counts.warc_files, dict(counts.items))


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
                replies.send(("closed", error, ops, _counts_message(counts)))
                return
    except Exception as exc:  # noqa: BLE001 - the files cannot be trusted any more: say so and die
        log.error("sidecar failed: %s", exc)
        replies.send(("fatal", f"the sidecar failed: {type(exc).__name__}: {exc}"))
        with contextlib.suppress(Exception):
            core.abandon()


class _Replies:
    """Sends the sidecar's replies in order from a thread of their own (see :func:`serve`).

    Replies are small and few at a time (one per item in flight, and the crawl
    awaits each item's), so the queue stays short.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="sidecar-replies", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        crawl_gone = False
        while (message := self.queue.get()) is not None:
            # If the crawl is gone, go on: its queued messages are still read, then EOF ends the loop.
            try:
                self.conn.send_bytes(_encode(message))
            except OSError as exc:
                if not crawl_gone:
                    log.warning("the crawl no longer reads the sidecar's replies: %s", exc)
                    crawl_gone = True

    def send(self, message: tuple[Any, ...]) -> None:
        self.queue.put(message)

    def close(self) -> None:
        """Send what is queued, then stop."""
        self.queue.put(None)
        self.thread.join()


def _encode(message: tuple[Any, ...]) -> bytes:
    try:
        return marshal.dumps(message)
    except ValueError:  # a value marshal cannot carry: its JSON form
        return marshal.dumps(json.loads(json.dumps(message, default=str)))


# --- the crawl's end ---------------------------------------------------------------------
class SidecarProcess:
    """The crawl's end of the sidecar: sends items and pages; replies are read in the crawl's event loop.

    No reader thread: a second Python thread in the crawl's process would take
    the GIL from the crawl on every reply.
    """

    def __init__(self, stage_paths: list[str], settings: dict[str, Any], files: FilesSpec | None,
                 lock_fd: int | None, on_death: Any) -> None:
        lock = InheritedFd(lock_fd) if lock_fd is not None else None
        self.conn, self.process = start_worker(serve, (stage_paths, settings, files, lock), "newsvault-sidecar")
        self.on_death = on_death
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.replies: list[tuple[Any, ...]] = []
        self.dead: str | None = None
        self.closing = False
        self.next_id = 0
        self.counts: RecordedCounts | None = None
        self._reactor: Any = None
        self._reader: _ReplyReader | None = None

    def watch(self) -> None:
        """Read replies in the reactor from now on (the crawl's event loop is running)."""
        from twisted.internet import reactor  # imported late: the crawl installs its reactor first

        self._reactor = reactor
        self._reader = _ReplyReader(self)
        reactor.addReader(self._reader)  # type: ignore[attr-defined,call-arg,misc]  # zope stubs confuse mypy here

    def read_ready(self) -> None:
        try:
            while self.dead is None and self.conn.poll():
                self._dispatch(marshal.loads(self.conn.recv_bytes()))
        except (EOFError, OSError):
            self._died("the sidecar process exited")

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        if isinstance(message[0], int):
            future = self.pending.pop(message[0], None)
            if future is not None and not future.done():
                future.set_result(message[1:])
        elif message[0] == "fatal":
            self._died(message[1])
        elif message[0] != "ready":
            self.replies.append(message)

    def _died(self, reason: str) -> None:
        if self.dead is not None:
            return
        self.dead = reason
        if self._reader is not None and self._reactor is not None:
            self._reactor.removeReader(self._reader)
        pending, self.pending = self.pending, {}
        if pending or not self.closing:
            self.on_death(reason)
        for future in pending.values():
            if not future.done():
                future.set_exception(SidecarError(reason))

    def _send(self, message: bytes) -> None:
        if self.dead is not None:
            raise SidecarError(self.dead)
        try:
            self.conn.send_bytes(message)
        except OSError as exc:
            self._died(f"the sidecar process is gone ({exc})")
            raise SidecarError(self.dead or str(exc)) from exc

    def submit(self, item: dict[str, Any]) -> asyncio.Future[Any]:
        """Send one item; the future gets the sidecar's reply (called from the crawl's event loop)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.next_id += 1
        try:
            self._send(_encode(("item", self.next_id, item)))
        except SidecarError as exc:
            future.set_exception(exc)
            return future
        self.pending[self.next_id] = future
        return future

    def record(self, **exchange: Any) -> None:
        """Queue one request/response pair for the WARC (blocks only while the pipe is full)."""
        self._send(marshal.dumps(("page", *(exchange[name] for name in EXCHANGE_FIELDS))))

    def write_item(self, item: dict[str, Any]) -> None:
        self._send(_encode(("line", item)))

    def request(self, message: tuple[Any, ...], expect: str) -> tuple[Any, ...]:
        """Send a control message and wait (blocking the event loop) for its reply."""
        self._send(marshal.dumps(message))
        while not self.replies and self.dead is None:
            if not self.conn.poll(REPLY_TIMEOUT_SECONDS):
                raise SidecarError(f"no reply from the sidecar to {message[0]!r}")
            self.read_ready()
        if not self.replies:
            raise SidecarError(self.dead or "the sidecar failed")
        reply = self.replies.pop(0)
        if reply[0] != expect:
            raise SidecarError(f"unexpected reply from the sidecar: {reply[0]!r}")
        return reply

    def close(self) -> tuple[str | None, list[StatsOp], RecordedCounts | None]:
        """Let the sidecar finish what is queued and close its stages and files."""
        self.closing = True
        try:
            _, error, ops, counts = self.request(("close",), "closed")
        finally:
            if self.dead is None:
                if self._reader is not None and self._reactor is not None:
                    self._reactor.removeReader(self._reader)
                self.dead = "closed"
            stop_worker(self.conn, self.process)
        if counts is not None:
            pages, revisits, refers_to, warc_files, items = counts
            self.counts = RecordedCounts(pages, revisits, frozenset(refers_to), warc_files, items=dict(items))
        return error, ops, self.counts


@implementer(IReadDescriptor)
class _ReplyReader:
    """The sidecar's pipe as a Twisted read descriptor."""

    def __init__(self, sidecar: SidecarProcess) -> None:
        self.sidecar = sidecar
        self.fd = sidecar.conn.fileno()

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        self.sidecar.read_ready()

    def connectionLost(self, reason: Any) -> None:
        self.sidecar.read_ready()

    def logPrefix(self) -> str:
        return "sidecar"


class SidecarFiles:
    """A staging dir's files as the sidecar writes them (the Staging's ``files``)."""

    def __init__(self, sidecar: SidecarProcess | SidecarCore) -> None:
        self.sidecar = sidecar
        self._counts: RecordedCounts | None = None

    # The staging dir's callers (the WARC middleware, the snapshot extension)
    # handle a failed write as OSError, whichever process did the writing.
    def record(self, **exchange: Any) -> None:
        try:
            if isinstance(self.sidecar, SidecarCore):
                self.sidecar.page(exchange)
            else:
                self.sidecar.record(**exchange)
        except SidecarError as exc:
            raise OSError(f"the sidecar cannot write the page: {exc}") from exc

    def write_item(self, item: dict[str, Any]) -> None:
        try:
            if isinstance(self.sidecar, SidecarCore):
                self.sidecar.line(item)
            else:
                self.sidecar.write_item(item)
        except SidecarError as exc:
            raise OSError(f"the sidecar cannot write the item: {exc}") from exc

    def closed(self, counts: RecordedCounts | None) -> None:
        """The sidecar was closed (by the pipeline, before the snapshot is finalised) with these counts."""
        self._counts = counts

    def close(self) -> RecordedCounts:
        if self._counts is None:
            _error, _ops, counts = self.sidecar.close()
            if counts is None:
                raise SidecarError("the sidecar reported no counts for the snapshot's files")
            self._counts = counts
        return self._counts


# --- the Scrapy pipeline ------------------------------------------------------------------
def _marshalable(settings: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for key, value in settings.items():
        try:
            marshal.dumps(value)
        except ValueError:
            continue
        values[key] = value
    return values


class SidecarPipeline:
    """Runs the item stages and writes the snapshot's files, in the sidecar process or (if disabled) in this one."""

    def __init__(self, crawler: Any, *, paths: list[str], in_child: bool) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.paths = paths
        self.in_child = in_child
        self.extension = find_extension(crawler)
        self._process: SidecarProcess | None = None
        self._core: SidecarCore | None = None
        self._files: SidecarFiles | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> SidecarPipeline:
        paths = crawler.settings.getlist("NEWSVAULT_WORKER_PIPELINES", list(DEFAULT_STAGES))
        if not paths:
            raise NotConfigured("NEWSVAULT_WORKER_PIPELINES is empty")
        return cls(crawler, paths=paths, in_child=crawler.settings.getbool("NEWSVAULT_WORKER_PROCESSES"))

    def stage_settings(self) -> dict[str, Any]:
        """What the stages are built from: the crawl's settings, the site's (from the spider), the snapshot id.

        The same dict in the child and in-process.
        """
        settings = self.crawler.settings.copy_to_dict()
        spider = self.crawler.spider
        settings.update(getattr(spider, "stage_settings", dict)())
        if self.extension is not None and not settings.get("NEWSVAULT_SNAPSHOT_ID"):
            settings["NEWSVAULT_SNAPSHOT_ID"] = self.extension.snapshot_id
        return _marshalable(settings)

    def open_spider(self) -> None:
        spider = self.crawler.spider
        staging = None
        if self.extension is not None:
            try:
                staging = self.extension.open(getattr(spider, "site", None) or spider.name, spider.name, sidecar=True)
            except Exception as exc:
                self.extension.fail(f"the snapshot could not be started: {type(exc).__name__}: {exc}")
                raise CloseSpider(ARCHIVE_FAILED_REASON) from exc
        catalog_path = self.crawler.settings.get("NEWSVAULT_CATALOG_PATH")
        files = FilesSpec.of(staging, catalog_path) if staging is not None else None
        settings = self.stage_settings()
        if self.in_child:
            self._process = SidecarProcess(self.paths, settings, files, staging.lock_fd if staging else None,
                                           self._died)
            self._process.watch()
            sidecar: SidecarProcess | SidecarCore = self._process
        else:
            self._core = SidecarCore(self.paths, settings, files)
            sidecar = self._core
        if staging is not None:
            self._files = SidecarFiles(sidecar)
            staging.use_files(self._files)

    def _died(self, reason: str) -> None:
        if self.extension is not None:
            self.extension.fail(f"{reason}; the crawl stops and its snapshot is not finalised", close_reason=FAILED_REASON)
            return
        log.error("%s; the crawl stops", reason)
        engine = getattr(self.crawler, "engine", None)
        if engine is not None and getattr(engine, "spider", None) is not None:
            deferred_from_coro(engine.close_spider_async(reason=FAILED_REASON))

    async def process_item(self, item: Any) -> Any:
        if self._core is not None:
            try:
                reply = self._core.item(plain_item(item))
            except OSError as exc:
                # In a child this failure ends the sidecar and the crawl; in-process it must too.
                self._died(f"the sidecar failed: {type(exc).__name__}: {exc}")
                raise SidecarError(f"the items file cannot be written: {exc}") from exc
        elif self._process is not None:
            reply = await self._process.submit(plain_item(item))
        else:
            raise SidecarError("the sidecar is not running")
        kind, *rest = reply
        replay_stats(rest[-1], self.stats)
        if kind == "done":
            return rest[0]
        if kind == "drop":
            raise DropItem(rest[0], log_level=rest[1])
        log.debug("sidecar traceback:\n%s", rest[1])
        raise SidecarError(rest[0])

    def close_spider(self) -> None:
        core, process, self._core, self._process = self._core, self._process, None, None
        if core is not None:
            error, ops, counts = core.close()
        elif process is not None:
            if process.dead is not None:
                raise SidecarError(process.dead)
            error, ops, counts = process.close()
        else:
            return
        replay_stats(ops, self.stats)
        if self._files is not None:
            self._files.closed(counts)
        if error:
            raise SidecarError(f"closing the stages failed: {error}")
