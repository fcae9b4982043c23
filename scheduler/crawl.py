"""Running one crawl: Scrapy settings, one CrawlerProcess, the output feed, then pushing the spool.

Twisted's reactor cannot restart, so this runs once per process; the daemon
and the tests call it through `python -m scheduler crawl` in a child process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from archive.ids import new_snapshot_id
from archive.scrapy_hooks import SNAPSHOT_ERROR_STAT, find_extension
from archive.session import ArchiveSession, SnapshotOutcome, SnapshotState
from archive.writers import WriterIdentity
from catalog.ingest import committed_hook
from newsvault.config import Config
from newsvault.errors import ArchiveLockedError, WriterConflictError
from newsvault.jsonsafe import json_safe
from newsvault.outcome import COMPLETE_REASONS, failure_reason
from scheduler.history import mark_snapshots_committed
from spiders.profile import SiteProfile, find_profile

log = logging.getLogger(__name__)



@dataclass
class CrawlSummary:
    """What one crawl did; the CLI prints it and --json-summary writes it."""

    site: str
    kind: str
    status: Literal["ok", "failed", "partial"]
    finish_reason: str | None
    pages: int = 0
    items: int = 0
    errors: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    snapshot_id: str | None = None
    # What the store and the spool say (archive.session): committed, spooled
    # (waiting for the store), unfinished (never finalised; the next push salvages it).
    snapshot_state: SnapshotState | None = None
    # Bytes of the snapshot as committed (data files and manifest); None until the store holds it.
    archived_bytes: int | None = None
    error: str | None = None
    output: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def profile_settings(profile: SiteProfile, base: Settings) -> dict[str, Any]:
    """The profile's limits as Scrapy settings; they only ever tighten the global ones."""
    limits = profile.limits
    out: dict[str, Any] = {}
    if limits.concurrency is not None:
        out["CONCURRENT_REQUESTS_PER_DOMAIN"] = min(limits.concurrency, base.getint("CONCURRENT_REQUESTS_PER_DOMAIN"))
    if limits.download_delay is not None:
        out["DOWNLOAD_DELAY"] = max(limits.download_delay, base.getfloat("DOWNLOAD_DELAY"))
    if limits.max_pages is not None:
        current = base.getint("CLOSESPIDER_PAGECOUNT")
        out["CLOSESPIDER_PAGECOUNT"] = min(limits.max_pages, current) if current else limits.max_pages
    return out


def build_settings(
    config: Config,
    profile: SiteProfile,
    *,
    output: str | Path | None = None,
    archive: bool = True,
    settings: dict[str, Any] | None = None,
) -> Settings:
    """settings.py, then the config, then the profile's limits, then explicit ``settings``."""
    result = Settings()
    result.setmodule("settings", priority="project")
    result.setdict(config.scrapy_settings(), priority="cmdline")
    result.setdict(profile_settings(profile, result), priority="cmdline")
    result.set("NEWSVAULT_ARCHIVE_ENABLED", archive, priority="cmdline")
    result.set("NEWSVAULT_SITES_DIR", str(config.sites_dir), priority="cmdline")
    if output is not None:
        result.set(
            "FEEDS",
            {Path(output).resolve().as_uri(): {"format": "jsonlines", "encoding": "utf-8", "overwrite": True}},
            priority="cmdline",
        )
    if settings:
        result.setdict(settings, priority="cmdline")
    return result


# Loggers that list versions, enabled components and per-minute rates at
# INFO: the progress display and the summary say what matters.
_STARTUP_LOGGERS = ("scrapy.utils.log", "scrapy.middleware", "scrapy.addons", "scrapy.crawler",
                    "scrapy.extensions.logstats", "scrapy.statscollectors")


class _StartupNoise(logging.Filter):
    """Drops INFO-and-below records of the startup loggers; warnings still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(_STARTUP_LOGGERS)


def _configure_crawl_logging(level: str) -> None:
    # Scrapy sets its own loggers to DEBUG (and resets them when the crawler
    # starts), so both the level and the filter sit on our handlers.
    logging.root.setLevel(level)
    for handler in logging.root.handlers:
        handler.setLevel(level)
        if logging.getLevelName(level) >= logging.INFO and not any(
            isinstance(f, _StartupNoise) for f in handler.filters
        ):
            handler.addFilter(_StartupNoise())


def _disk_frontier(config: Config, site: str, kind: str) -> Path:
    """A fresh directory for this crawl's request queue.

    Pending requests (a sitemap can list 100,000 at once) wait on disk instead
    of in memory. Each crawl gets its own directory and removes it at the end:
    a crawl is never resumed from an old frontier, since a snapshot must be
    one run's record.
    """
    root = config.state_dir / "frontier"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{site}-{kind}-", dir=root))


def _spider_class(kind: str) -> type:
    if kind == "articles":
        from spiders.articles import ArticlesSpider

        return ArticlesSpider
    if kind == "discussions":
        from spiders.discussions import DiscussionsSpider

        return DiscussionsSpider
    raise ValueError(f"unknown crawl kind {kind!r} (use articles or discussions)")


def cluster_writer(config: Config) -> WriterIdentity | None:
    """The writer identity of a cluster host (the cluster's), or None: this state dir writes as itself."""
    url = config.cluster.url_value
    if not url:
        return None
    from scheduler.cluster import cluster_id

    return WriterIdentity.of_cluster(cluster_id(url))


def run_crawl(
    config: Config,
    site: str | SiteProfile,
    kind: str,
    *,
    start_urls: list[str] | None = None,
    output: str | Path | None = None,
    archive: bool = True,
    settings: dict[str, Any] | None = None,
    snapshot_id: str | None = None,
) -> CrawlSummary:
    """Run one crawl of ``site`` in this process and return its summary.

    ``snapshot_id``: the id to commit under (a cluster's retried run reuses
    its first attempt's, so the archive commits only one); default a new one.

    With ``archive``, the whole crawl and its push hold the archive lock
    shared (a prune waits), the writer of (site, kind) is checked first, and
    the summary's snapshot state is what the store confirms. A run whose
    snapshot could not be written is failed, never ok.
    Raises ProfileError/UnknownSiteError before anything runs when the profile is bad.
    """
    profile = site if isinstance(site, SiteProfile) else find_profile(site, config.sites_dir)
    spider_cls = _spider_class(kind)
    if kind == "discussions" and profile.discussions is None:
        from newsvault.errors import ProfileError

        raise ProfileError(profile.source(), "discussions", "missing: this profile has no discussion list")
    scrapy_settings = build_settings(config, profile, output=output, archive=archive, settings=settings)
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    if not archive:
        return _summarise(profile.name, kind, _run_scrapy(config, profile, kind, spider_cls, scrapy_settings, start_urls), output)

    snapshot_id = snapshot_id or new_snapshot_id()
    scrapy_settings.set("NEWSVAULT_SNAPSHOT_ID", snapshot_id, priority="cmdline")
    try:
        session = ArchiveSession(
            config.archive.url, state_dir=config.state_dir, spool_dir=config.spool_dir, settings=scrapy_settings,
            lock_wait_seconds=config.archive.lock_wait_seconds,
            on_committed=committed_hook(config.catalog_path, config.archive.url),
            state_url=config.cluster.url_value,
            writer=cluster_writer(config),
        )
        with session:
            session.preflight(profile.name, kind)
            crawler = _run_scrapy(config, profile, kind, spider_cls, scrapy_settings, start_urls)
            _abandon_unfinished(crawler)
            results = session.push()
            outcome = session.outcome(profile.name, kind, snapshot_id, results)
    except (ArchiveLockedError, WriterConflictError) as exc:
        # Refused before anything was fetched: nothing to archive, nothing lost.
        return CrawlSummary(site=profile.name, kind=kind, status="failed", finish_reason=None, error=str(exc),
                            output=str(output) if output else None)
    mark_snapshots_committed(config.state_dir, [r.snapshot_id for r in results if r.ok], url=config.cluster.url_value)
    summary = _summarise(profile.name, kind, crawler, output)
    summary.snapshot_id = snapshot_id
    summary.snapshot_state = outcome.state
    summary.archived_bytes = outcome.bytes
    _judge_archive(summary, outcome)
    return summary


def _run_scrapy(
    config: Config, profile: SiteProfile, kind: str, spider_cls: type, scrapy_settings: Settings,
    start_urls: list[str] | None,
) -> Any:
    """One CrawlerProcess run to its end; returns the crawler (its stats and extensions)."""
    # The CLI installed the root handler; Scrapy adding its own would print
    # every line twice and reset the root logger to DEBUG.
    scrapy_settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    frontier = _disk_frontier(config, profile.name, kind) if config.crawl.disk_queue else None
    if frontier is not None:
        scrapy_settings.set("JOBDIR", str(frontier), priority="cmdline")
    _configure_crawl_logging(scrapy_settings.get("LOG_LEVEL", "INFO"))
    process = CrawlerProcess(scrapy_settings)
    crawler = process.create_crawler(spider_cls)
    process.crawl(crawler, profile=profile, start_urls=start_urls or None)
    try:
        process.start()
    finally:
        if frontier is not None:
            shutil.rmtree(frontier, ignore_errors=True)
    return crawler


def _abandon_unfinished(crawler: Any) -> None:
    """A crawl stopped hard (Ctrl-C twice) never finalised its snapshot: close its files so the push salvages it."""
    extension = find_extension(crawler)
    staging = extension.staging if extension is not None else None
    if staging is None or staging.manifest is not None:
        return
    if extension is not None and extension.error is None:
        log.warning("the crawl stopped before snapshot %s was finalised; the push salvages it as partial",
                    staging.snapshot_id)
    with contextlib.suppress(Exception):
        staging.abandon()


def _summarise(site: str, kind: str, crawler: Any, output: str | Path | None) -> CrawlSummary:
    stats = json_safe(crawler.stats.get_stats() if crawler.stats else {})
    finish_reason = stats.get("finish_reason")
    failure = failure_reason(stats)
    if failure:
        status: Literal["ok", "failed", "partial"] = "failed"
    elif finish_reason not in COMPLETE_REASONS:
        status = "partial"
        failure = f"crawl closed early: {finish_reason}"
    else:
        status = "ok"
    return CrawlSummary(
        site=site,
        kind=kind,
        status=status,
        finish_reason=finish_reason,
        pages=int(stats.get("response_received_count", 0)),
        items=int(stats.get("item_scraped_count", 0)),
        errors=int(stats.get("log_count/ERROR", 0)),
        stats=stats,
        error=failure,
        output=str(output) if output else None,
    )


def _judge_archive(summary: CrawlSummary, outcome: SnapshotOutcome) -> None:
    """The run is only as good as what the archive holds of it."""
    archive_error = summary.stats.get(SNAPSHOT_ERROR_STAT)
    if archive_error:
        summary.status = "failed"
        summary.error = f"{archive_error} (snapshot {outcome.state or 'not written'})"
    elif outcome.state in (None, "unfinished"):
        # Interrupted before it was finalised: what was written is salvaged as partial by the next push.
        summary.status = "failed" if outcome.state is None else "partial"
        summary.error = f"snapshot {summary.snapshot_id} {outcome.note or 'was not finalised'}"
    elif outcome.conflict:
        summary.status = "failed"
        summary.error = outcome.note
    elif outcome.state == "spooled" and summary.status != "failed":
        # The crawl did its job and its snapshot is safe in the spool, but the archive does not hold it yet.
        summary.error = summary.error or f"snapshot spooled, not in the archive yet: {outcome.note}"
