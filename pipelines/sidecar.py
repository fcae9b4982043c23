"""The crawl's end of the sidecar: the Scrapy pipeline, and the child process it talks to over a pipe.

The sidecar (pipelines/sidecar_work.py) runs the item stages and writes the
snapshot's files in one child process, on another core. An item crosses the
pipe twice (there, and back processed for the crawl's feeds), a page once.
The stages' stats come back summed when the sidecar closes and are replayed
into the crawl's stats then, before the snapshot is finalised.

One way to die: if the sidecar exits, its pending items fail and the spider is
closed with ``sidecar_failed``, so the run is failed and its snapshot (never
finalised) is salvaged as partial by the next push. The child holds a
duplicate of the staging dir's lock, so salvage never reads files it is still
writing; when the crawl's process dies the child reads EOF, closes its files
and exits.

``NEWSVAULT_WORKER_PROCESSES = False`` runs the same :class:`SidecarCore` in
the crawl's process: same stages, same settings, same files, minus the pipe.
Stages are built from plain settings (``from_settings``); what they need of the
site profile the spider gives as settings too (``stage_settings``), so the
pipelines never import the spiders.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exceptions import CloseSpider, DropItem, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from archive.scrapy_hooks import ARCHIVE_FAILED_REASON, find_extension
from archive.snapshot_files import EXCHANGE_FIELDS, RecordedCounts
from newsvault.processes import InheritedFd, start_worker, stop_worker
from pipelines.sidecar_work import (
    FilesSpec,
    SidecarCore,
    SidecarError,
    counts_from_message,
    encode,
    serve,
)
from pipelines.stages import DEFAULT_STAGES, StatsOp, replay_stats

log = logging.getLogger(__name__)

FAILED_REASON = "sidecar_failed"
# How long close waits for the child (it finishes what is queued first).
REPLY_TIMEOUT_SECONDS = 600.0


def plain_item(item: Any) -> dict[str, Any]:
    """A dict of plain values, whatever item type a spider or stage produced."""
    return item if type(item) is dict else ItemAdapter(item).asdict()


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
                for reply in marshal.loads(self.conn.recv_bytes()):
                    self._dispatch(reply)
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
            self._send(encode(("item", self.next_id, item)))
        except SidecarError as exc:
            future.set_exception(exc)
            return future
        self.pending[self.next_id] = future
        return future

    def record(self, **exchange: Any) -> None:
        """Queue one request/response pair for the WARC (blocks only while the pipe is full)."""
        self._send(marshal.dumps(("page", *(exchange[name] for name in EXCHANGE_FIELDS))))

    def write_item(self, item: dict[str, Any]) -> None:
        self._send(encode(("line", item)))

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
        self.counts = counts_from_message(counts)
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
