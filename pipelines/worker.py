"""ItemWorkerPipeline: the cleaning, validation, dedupe and change-tracking stages, run in a child process.

Why a process: these stages cost about as much CPU per page as fetching and
parsing it. In the crawl's own process they share its single core (one GIL)
and halve its speed; in a child process they run on another core while the
crawl goes on.

The stages are the usual pipeline classes (``NEWSVAULT_WORKER_PIPELINES``, in
order), built in the child with their ``from_crawler`` from the crawl's
``NEWSVAULT_*`` settings, a stats recorder and the spider's profile. Items
are processed one at a time, in the order the crawl yields them, exactly as
the stages would in-process. What the stages record in stats is sent back
with each item and applied to the crawl's stats collector; a ``DropItem`` in
the child is raised here with its message and log level, any other error as
:class:`ItemWorkerError`. A child that dies fails its pending items and
closes the spider with ``item_worker_failed``, so the snapshot is marked
partial rather than complete.

``NEWSVAULT_WORKER_PROCESSES = False`` runs the same stages in the crawl's
process, through the same code path minus the pipe.

Messages are marshal-encoded tuples of plain values: the fastest encoding of
dicts, lists and strings in the standard library, and only ever read from
bytes this crawl's own process pair wrote (never from a file or the network).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import marshal
import resource
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.settings import Settings
from scrapy.signalmanager import SignalManager
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.misc import load_object
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from archive.scrapy_hooks import find_extension
from newsvault.errors import NewsvaultError
from newsvault.processes import become_worker, start_worker, stop_worker

log = logging.getLogger(__name__)

DEFAULT_STAGES = (
    "pipelines.clean.CleanPipeline",
    "pipelines.validate.ValidatePipeline",
    "pipelines.dedupe.DedupePipeline",
    "pipelines.changes.ChangeTrackingPipeline",
)
FAILED_REASON = "item_worker_failed"
# The child's peak RSS goes into the crawl's stats (kilobytes, as the kernel counts).
MAX_RSS_STAT = "newsvault/item_worker/max_rss_kb"
# flush/close wait at most this long for the child (it finishes queued items first).
REPLY_TIMEOUT_SECONDS = 300.0

StatsOp = tuple[str, str, Any]


class ItemWorkerError(NewsvaultError, RuntimeError):
    """A stage failed on an item in the worker, or the worker itself failed."""


# --- the stages, wherever they run --------------------------------------------
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


class Stages:
    """The configured pipelines, built around a crawler stand-in, run in order on one item."""

    def __init__(self, paths: Iterable[str], settings: dict[str, Any], profile: Any, site: str, kind: str) -> None:
        self.stats = RecordingStats()
        self.signals = SignalManager()
        spider = SimpleNamespace(name=kind, site=site, profile=profile)
        crawler = SimpleNamespace(
            settings=Settings(settings), stats=self.stats, signals=self.signals, spider=spider
        )
        self.pipelines = []
        for path in paths:
            cls = load_object(path)
            self.pipelines.append(cls.from_crawler(crawler) if hasattr(cls, "from_crawler") else cls())
        for pipeline in self.pipelines:
            if hasattr(pipeline, "open_spider"):
                pipeline.open_spider()

    def process(self, item: dict[str, Any]) -> dict[str, Any]:
        for pipeline in self.pipelines:
            item = pipeline.process_item(item)
        return item

    def idle(self) -> None:
        """What the stages do when the crawl goes idle (the change store commits)."""
        self.signals.send_catch_log(signals.spider_idle)

    def close(self) -> None:
        errors = []
        for pipeline in self.pipelines:
            if hasattr(pipeline, "close_spider"):
                try:
                    pipeline.close_spider()
                except Exception as exc:  # noqa: BLE001 - every stage gets closed; the first failure is raised
                    errors.append(exc)
        if errors:
            raise errors[0]


def run_on_item(stages: Stages, item: dict[str, Any]) -> tuple[Any, ...]:
    """One item through the stages, as the reply message: done, drop or error (with stats ops)."""
    try:
        result = stages.process(item)
    except DropItem as exc:
        return ("drop", str(exc), exc.log_level, stages.stats.take())
    except Exception as exc:  # noqa: BLE001 - a bug in a stage fails this item only, like in-process
        return ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(), stages.stats.take())
    return ("done", plain_item(result), stages.stats.take())


def plain_item(item: Any) -> dict[str, Any]:
    """A dict of plain values, whatever item type a spider or stage produced."""
    return item if type(item) is dict else ItemAdapter(item).asdict()


# --- the child process ----------------------------------------------------------
def serve(conn: Connection, paths: list[str], settings: dict[str, Any], profile: dict[str, Any], site: str, kind: str) -> None:
    """The child's main loop: build the stages, then answer messages until ``close`` or EOF."""
    from spiders.profile import profile_from_dict

    become_worker("item worker")
    try:
        stages = Stages(paths, settings, profile_from_dict(profile["data"], profile["path"]), site, kind)
    except Exception as exc:  # noqa: BLE001 - reported to the crawl, which stops
        conn.send_bytes(marshal.dumps(("fatal", f"cannot start the item worker: {type(exc).__name__}: {exc}")))
        return
    conn.send_bytes(marshal.dumps(("ready",)))
    while True:
        try:
            message = marshal.loads(conn.recv_bytes())
        except EOFError:
            # The crawl died (killed, crashed): leave like it would have, nothing committed.
            return
        if message[0] == "item":
            conn.send_bytes(marshal.dumps((message[1], *run_on_item(stages, message[2]))))
        elif message[0] == "idle":
            stages.idle()
            conn.send_bytes(marshal.dumps(("idle_done", stages.stats.take())))
        elif message[0] == "close":
            try:
                stages.close()
                stages.stats.set_value(MAX_RSS_STAT, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
                reply: tuple[Any, ...] = ("closed", None, stages.stats.take())
            except Exception as exc:  # noqa: BLE001 - reported to the crawl with the stats so far
                reply = ("closed", f"{type(exc).__name__}: {exc}", stages.stats.take())
            conn.send_bytes(marshal.dumps(reply))
            return


class _Child:
    """The crawl's end of the worker: sends items; replies are read in the crawl's event loop.

    No reader thread: a second Python thread in the crawl's process would
    take the GIL from the crawl on every reply.
    """

    def __init__(self, args: tuple[Any, ...], on_death: Callable[[str], None]) -> None:
        # Imported here, not at module level: the crawl installs its reactor first.
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.conn, self.process = start_worker(serve, args, "newsvault-item-worker")
        self.on_death = on_death
        # One asyncio future per item in flight (the crawl runs on the asyncio
        # reactor, settings.TWISTED_REACTOR): cheaper to await than a Deferred.
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.replies: list[tuple[Any, ...]] = []
        self.dead: str | None = None
        self.closing = False
        self.next_id = 0
        self._reader = _ReplyReader(self)
        self.reactor.addReader(self._reader)  # type: ignore[call-arg,misc]  # zope stubs confuse mypy here

    def read_ready(self) -> None:
        """Handle every reply waiting on the pipe (the reactor calls this when it is readable)."""
        try:
            while self.dead is None and self.conn.poll():
                self._dispatch(marshal.loads(self.conn.recv_bytes()))
        except (EOFError, OSError):
            self._died("the item worker process exited")

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        if isinstance(message[0], int):
            future = self.pending.pop(message[0], None)
            if future is not None and not future.done():
                future.set_result(message[1:])
        elif message[0] == "fatal":
            self._died(message[1])
        elif message[0] == "ready":
            log.debug("item worker ready (pid %s)", self.process.pid)
        else:
            self.replies.append(message)

    def _died(self, reason: str) -> None:
        if self.dead is not None:
            return
        self.dead = reason
        self.reactor.removeReader(self._reader)
        pending, self.pending = self.pending, {}
        if pending or not self.closing:
            self.on_death(reason)
        for future in pending.values():
            if not future.done():
                future.set_exception(ItemWorkerError(reason))

    def submit(self, item: dict[str, Any]) -> asyncio.Future[Any]:
        """Send one item; the future gets the worker's reply (called from the crawl's event loop)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.dead is not None:
            future.set_exception(ItemWorkerError(self.dead))
            return future
        try:
            message = marshal.dumps(("item", self.next_id + 1, item))
        except ValueError:  # a value marshal cannot carry: send its JSON form
            message = marshal.dumps(("item", self.next_id + 1, json.loads(json.dumps(item, default=str))))
        self.next_id += 1
        try:
            self.conn.send_bytes(message)
        except OSError as exc:
            future.set_exception(ItemWorkerError(f"cannot send an item to the item worker: {exc}"))
            return future
        self.pending[self.next_id] = future
        return future

    def request(self, message: tuple[Any, ...], expect: str) -> tuple[Any, ...]:
        """Send a control message and wait (blocking the event loop) for its reply."""
        if self.dead is not None:
            raise ItemWorkerError(self.dead)
        self.conn.send_bytes(marshal.dumps(message))
        while not self.replies and self.dead is None:
            if not self.conn.poll(REPLY_TIMEOUT_SECONDS):
                raise ItemWorkerError(f"no reply from the item worker to {message[0]!r}")
            self.read_ready()
        if not self.replies:
            raise ItemWorkerError(self.dead or "the item worker failed")
        reply = self.replies.pop(0)
        if reply[0] != expect:
            raise ItemWorkerError(f"unexpected reply from the item worker: {reply[0]!r}")
        return reply

    def close(self) -> tuple[Any, ...]:
        self.closing = True
        try:
            return self.request(("close",), "closed")
        finally:
            if self.dead is None:
                self.reactor.removeReader(self._reader)
                self.dead = "closed"
            stop_worker(self.conn, self.process)


@implementer(IReadDescriptor)
class _ReplyReader:
    """The worker's pipe as a Twisted read descriptor."""

    def __init__(self, child: _Child) -> None:
        self.child = child
        self.fd = child.conn.fileno()

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        self.child.read_ready()

    def connectionLost(self, reason: Any) -> None:
        self.child.read_ready()

    def logPrefix(self) -> str:
        return "item-worker"


class ItemWorkerPipeline:
    """Runs the configured stages on each item, in a child process or (if disabled) in this one."""

    def __init__(self, crawler: Any, *, paths: list[str], in_child: bool) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.paths = paths
        self.in_child = in_child
        self._child: _Child | None = None
        self._stages: Stages | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> ItemWorkerPipeline:
        paths = crawler.settings.getlist("NEWSVAULT_WORKER_PIPELINES", list(DEFAULT_STAGES))
        if not paths:
            raise NotConfigured("NEWSVAULT_WORKER_PIPELINES is empty")
        pipeline = cls(crawler, paths=paths, in_child=crawler.settings.getbool("NEWSVAULT_WORKER_PROCESSES"))
        crawler.signals.connect(pipeline.spider_idle, signal=signals.spider_idle)
        return pipeline

    def _stage_settings(self) -> dict[str, Any]:
        """The crawl's settings, plus the snapshot id the change tracker files its writes under."""
        settings = self.crawler.settings.copy_to_dict()
        extension = find_extension(self.crawler)
        if extension is not None and not settings.get("NEWSVAULT_SNAPSHOT_ID"):
            settings["NEWSVAULT_SNAPSHOT_ID"] = extension.snapshot_id
        return settings

    def _child_settings(self) -> dict[str, Any]:
        """The NEWSVAULT_* settings the stages read, if marshal can carry them."""
        values = {}
        for key, value in self._stage_settings().items():
            if not key.startswith("NEWSVAULT_"):
                continue
            with contextlib.suppress(ValueError):
                marshal.dumps(value)
                values[key] = value
        return values

    def open_spider(self) -> None:
        spider = self.crawler.spider
        profile = spider.profile
        site, kind = spider.site, spider.name
        if not self.in_child:
            self._stages = Stages(self.paths, self._stage_settings(), profile, site, kind)
            return
        data = {
            "data": profile.model_dump(mode="json", exclude={"path"}),
            "path": str(profile.path) if profile.path else None,
        }
        self._child = _Child((self.paths, self._child_settings(), data, site, kind), self._worker_died)

    def _worker_died(self, reason: str) -> None:
        log.error("%s; the crawl stops and its snapshot will be partial", reason)
        engine = getattr(self.crawler, "engine", None)
        if engine is not None and getattr(engine, "spider", None) is not None:
            deferred_from_coro(engine.close_spider_async(reason=FAILED_REASON))

    async def process_item(self, item: Any) -> Any:
        if self._stages is not None:
            return self._finish(run_on_item(self._stages, plain_item(item)))
        if self._child is None:
            raise ItemWorkerError("the item worker is not running")
        reply = await self._child.submit(plain_item(item))
        return self._finish(reply)

    def _finish(self, reply: tuple[Any, ...]) -> Any:
        kind, *rest = reply
        replay_stats(rest[-1], self.stats)
        if kind == "done":
            return rest[0]
        if kind == "drop":
            raise DropItem(rest[0], log_level=rest[1])
        log.debug("item worker traceback:\n%s", rest[1])
        raise ItemWorkerError(rest[0])

    def spider_idle(self) -> None:
        # Before the spider's own idle handler re-reads the state store.
        if self._stages is not None:
            self._stages.idle()
            replay_stats(self._stages.stats.take(), self.stats)
        elif self._child is not None and self._child.dead is None:
            try:
                replay_stats(self._child.request(("idle",), "idle_done")[1], self.stats)
            except ItemWorkerError as exc:
                log.error("item worker: %s", exc)

    def close_spider(self) -> None:
        if self._stages is not None:
            stages, self._stages = self._stages, None
            try:
                stages.close()
            finally:
                replay_stats(stages.stats.take(), self.stats)
            return
        child, self._child = self._child, None
        if child is None:
            return
        if child.dead is not None:
            raise ItemWorkerError(child.dead)
        _, error, ops = child.close()
        replay_stats(ops, self.stats)
        if error:
            raise ItemWorkerError(f"closing the stages failed: {error}")

