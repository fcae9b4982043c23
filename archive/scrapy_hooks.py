"""Scrapy components that write the snapshot: the extension owning the staging dir and the WARC recorder.

The sidecar's pipeline (``pipelines.sidecar``) and the recorder reach the staging
through the :class:`SnapshotExtension` instance found on the crawler, never
through globals.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro

from archive.ids import new_snapshot_id
from archive.index import DigestIndex
from archive.staging import Staging
from archive.warc import request_headers, response_headers
from newsvault.outcome import snapshot_status
from newsvault.run_health import HEALTH_STAT, health_figures

log = logging.getLogger(__name__)

SNAPSHOT_ID_STAT = "newsvault/snapshot_id"
SNAPSHOT_STATUS_STAT = "newsvault/snapshot_status"
# Set when the snapshot could not be started, written or finalised: the run then fails.
SNAPSHOT_ERROR_STAT = "newsvault/snapshot_error"
# Sent (snapshot_id=, manifest=) once a snapshot is finalised in the spool.
snapshot_finalised = object()
# Finish reasons of a crawl stopped by its archiving.
ARCHIVE_FAILED_REASON = "archive_failed"
WRITER_FAILED_REASON = "snapshot_writer_failed"


class SnapshotExtension:
    """Opens a staging dir when the spider opens and finalises it into a spool entry when it closes.

    A crawl never runs on with archiving off by accident: if the snapshot
    cannot be started the spider is closed at once (``archive_failed``), and
    the first failed write closes it too (``snapshot_writer_failed``); either
    way ``newsvault/snapshot_error`` says why and the run is failed. Only a
    finalised snapshot lets the run's change-tracking state count (it sends
    :data:`snapshot_finalised`, see ``pipelines.changes.ChangeStateCommitter``):
    items that were never archived are never remembered as seen.
    """

    def __init__(
        self,
        *,
        spool_dir: Path,
        state_dir: Path,
        archive_url: str,
        warc_max_bytes: int,
        stats: Any = None,
        snapshot_id: str | None = None,
        crawler: Crawler | None = None,
        state_url: str | None = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.state_dir = state_dir
        self.state_url = state_url
        # Revisits may only point at snapshots bound for this same archive.
        self.archive_url = archive_url
        self.warc_max_bytes = warc_max_bytes
        self.stats = stats
        # Known before the crawl starts, so the change tracker can file its state under it.
        self.snapshot_id = snapshot_id or new_snapshot_id()
        self.crawler = crawler
        self.staging: Staging | None = None
        self.error: str | None = None
        self._index: DigestIndex | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SnapshotExtension:
        settings = crawler.settings
        if not settings.getbool("NEWSVAULT_ARCHIVE_ENABLED"):
            raise NotConfigured("archive disabled (NEWSVAULT_ARCHIVE_ENABLED)")
        ext = cls(
            spool_dir=Path(settings["NEWSVAULT_SPOOL_DIR"]),
            state_dir=Path(settings["NEWSVAULT_STATE_DIR"]),
            archive_url=str(settings["NEWSVAULT_ARCHIVE_URL"]),
            warc_max_bytes=settings.getint("NEWSVAULT_WARC_MAX_BYTES"),
            stats=crawler.stats,
            snapshot_id=settings.get("NEWSVAULT_SNAPSHOT_ID") or None,
            crawler=crawler,
            state_url=settings.get("NEWSVAULT_STATE_URL") or None,
        )
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def open(self, site: str, kind: str, *, sidecar: bool = False) -> Staging:
        """Start a new snapshot of ``site``/``kind`` (also usable without Scrapy).

        With ``sidecar`` the caller (pipelines/sidecar.py) attaches the files;
        otherwise they are written in this process.
        """
        self._index = DigestIndex.in_state_dir(self.state_dir, self.archive_url, url=self.state_url)
        self.staging = Staging(
            self.spool_dir,
            site,
            kind,
            warc_max_bytes=self.warc_max_bytes,
            index=self._index,
            snapshot_id=self.snapshot_id,
            previous_snapshot_id=self._index.latest_snapshot(site, kind),
            local_files=not sidecar,
        )
        if self.stats is not None:
            self.stats.set_value(SNAPSHOT_ID_STAT, self.staging.snapshot_id)
        log.info("writing snapshot %s to %s", self.staging.snapshot_id, self.staging.dir)
        return self.staging

    def close(self, finish_reason: str) -> None:
        if self.staging is None:
            return
        stats = dict(self.stats.get_stats()) if self.stats is not None else {}
        # The run-health figures, so the snapshot itself says how the run looked.
        stats[HEALTH_STAT] = health_figures(stats, self.staging.kind)
        try:
            try:
                manifest = self.staging.finalise(
                    finish_reason=finish_reason, stats=stats, status=snapshot_status(finish_reason, stats)
                )
            except Exception as exc:  # noqa: BLE001 - recorded as the run's failure, never hidden
                self.fail(f"snapshot {self.staging.snapshot_id} could not be finalised: {type(exc).__name__}: {exc}")
                # Files closed, lock released: the next push salvages what is readable (a partial snapshot).
                with suppress(Exception):
                    self.staging.abandon()
                return
            if self.stats is not None:
                self.stats.set_value(SNAPSHOT_STATUS_STAT, manifest.status)
            if self.crawler is not None:
                # Handlers' failures are logged by Scrapy: the snapshot itself is safe in the spool.
                self.crawler.signals.send_catch_log(signal=snapshot_finalised, snapshot_id=manifest.snapshot_id, manifest=manifest)
        finally:
            if self._index is not None:
                self._index.close()
                self._index = None

    def fail(self, reason: str, *, close_reason: str | None = None) -> None:
        """Record why the snapshot is not what the crawl produced, once; optionally stop the crawl."""
        if self.error is None:
            self.error = reason
            log.error("%s", reason)
            if self.stats is not None:
                self.stats.set_value(SNAPSHOT_ERROR_STAT, reason)
        engine = getattr(self.crawler, "engine", None)
        if close_reason and engine is not None and getattr(engine, "spider", None) is not None:
            deferred_from_coro(engine.close_spider_async(reason=close_reason))

    def spider_opened(self, spider: Spider) -> None:
        if self.staging is not None:
            return  # opened already by the sidecar pipeline, which writes its files
        site = getattr(spider, "site", None) or spider.name
        try:
            self.open(site, spider.name)
        except Exception as exc:
            self.fail(f"the snapshot could not be started: {type(exc).__name__}: {exc}")
            raise CloseSpider(ARCHIVE_FAILED_REASON) from exc

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.close(reason)


def find_extension(crawler: Crawler) -> SnapshotExtension | None:
    """The crawler's SnapshotExtension, or None when the archive is off."""
    manager = getattr(crawler, "extensions", None)
    for ext in getattr(manager, "middlewares", ()):
        if isinstance(ext, SnapshotExtension):
            return ext
    return None


def require_extension(crawler: Crawler, consequence: str) -> SnapshotExtension:
    """The crawl's SnapshotExtension, or NotConfigured when archiving is off."""
    if not crawler.settings.getbool("NEWSVAULT_ARCHIVE_ENABLED"):
        raise NotConfigured("archive disabled (NEWSVAULT_ARCHIVE_ENABLED)")
    ext = find_extension(crawler)
    if ext is None:
        raise NotConfigured(f"SnapshotExtension is not enabled; {consequence}")
    return ext


class WarcRecorderMiddleware:
    """Downloader middleware (priority 950): records every request/response pair as received."""

    def __init__(self, extension: SnapshotExtension) -> None:
        self.extension = extension

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcRecorderMiddleware:
        return cls(require_extension(crawler, "nothing to record into"))

    def process_response(self, request: Request, response: Response, spider: Spider | None = None) -> Response:
        staging = self.extension.staging
        if staging is None or self.extension.error is not None:
            # Nothing is recorded, so nothing may be used: a page that is not archived yields no items.
            raise IgnoreRequest("not archived: " + (self.extension.error or "no snapshot is open"))
        parts = urlsplit(request.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            self._record(staging, request, response, parts.netloc, target)
        except OSError as exc:
            self.extension.fail(f"the snapshot writer failed: {exc}", close_reason=WRITER_FAILED_REASON)
            raise IgnoreRequest(f"not archived: {exc}") from exc
        return response

    @staticmethod
    def _record(staging: Staging, request: Request, response: Response, netloc: str, target: str) -> None:
        staging.record_exchange(
            url=response.url,
            method=request.method,
            request_target=target,
            request_headers=[("Host", netloc)] + request_headers(request.headers.items()),
            request_body=request.body or b"",
            status=response.status,
            response_headers=response_headers(response.headers.items()),
            body=response.body,
        )
