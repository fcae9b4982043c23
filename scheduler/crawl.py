"""Running one crawl: Scrapy settings, one CrawlerProcess, the output feed, then pushing the spool.

Twisted's reactor cannot restart, so this runs once per process; the daemon
and the tests call it through `python -m scheduler crawl` in a child process.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from newsvault.config import Config
from spiders.profile import SiteProfile, find_profile

log = logging.getLogger(__name__)

Kind = Literal["articles", "discussions"]
KINDS: tuple[Kind, ...] = ("articles", "discussions")
# Finish reasons that mean the crawl ran to its natural end.
_COMPLETE_REASONS = {"finished"}


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
    snapshot_state: Literal["committed", "spooled"] | None = None
    error: str | None = None
    output: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _json_safe(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


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


def _failure_reason(stats: dict[str, Any], pages: int) -> str | None:
    """A one-line reason when the crawl could not do its job, else None."""
    started_ok = stats.get("newsvault/start_urls/ok", 0)
    started_failed = stats.get("newsvault/start_urls/failed", 0)
    if started_failed and not started_ok:
        first = stats.get("newsvault/start_urls/first_error", "")
        return f"every start URL failed ({started_failed}); first: {first}".strip()
    if pages == 0:
        errors = sorted(k.rsplit("/", 1)[-1] for k in stats if k.startswith("downloader/exception_type_count/"))
        detail = f" ({', '.join(errors)})" if errors else ""
        return f"no page could be fetched{detail}"
    return None


def _push_spool(
    config: Config, settings: Settings, site: str, kind: str, snapshot_id: str | None
) -> Literal["committed", "spooled"] | None:
    """Upload finished snapshots; returns "committed", "spooled" or None when no snapshot was made."""
    try:
        from archive.spool import push_all
        from archive.stores import open_store
    except ImportError:
        log.warning("archive push not available in this build; snapshots stay in %s", config.spool_dir)
        return "spooled" if snapshot_id else None
    try:
        store = open_store(config.archive.url, settings)
        push_all(store, config.spool_dir)
    except Exception as exc:  # noqa: BLE001 - any store failure keeps the snapshot spooled for the next push
        log.warning("could not push snapshots to the archive (%s); they stay spooled", type(exc).__name__)
    if snapshot_id is None:
        return None
    still_spooled = (config.spool_dir / site / kind / snapshot_id).exists()
    return "spooled" if still_spooled else "committed"


def run_crawl(
    config: Config,
    site: str | SiteProfile,
    kind: str,
    *,
    start_urls: list[str] | None = None,
    output: str | Path | None = None,
    archive: bool = True,
    settings: dict[str, Any] | None = None,
) -> CrawlSummary:
    """Run one crawl of ``site`` in this process and return its summary.

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

    stats = _json_safe(crawler.stats.get_stats() if crawler.stats else {})
    finish_reason = stats.get("finish_reason")
    pages = int(stats.get("response_received_count", 0))
    items = int(stats.get("item_scraped_count", 0))
    errors = int(stats.get("log_count/ERROR", 0))
    failure = _failure_reason(stats, pages)
    if failure:
        status: Literal["ok", "failed", "partial"] = "failed"
    elif finish_reason not in _COMPLETE_REASONS:
        status = "partial"
        failure = f"crawl closed early: {finish_reason}"
    else:
        status = "ok"

    snapshot_id = stats.get("newsvault/snapshot_id")
    snapshot_state = None
    if archive:
        snapshot_state = _push_spool(config, scrapy_settings, profile.name, kind, snapshot_id)
    return CrawlSummary(
        site=profile.name,
        kind=kind,
        status=status,
        finish_reason=finish_reason,
        pages=pages,
        items=items,
        errors=errors,
        stats=stats,
        snapshot_id=snapshot_id,
        snapshot_state=snapshot_state,
        error=failure,
        output=str(output) if output else None,
    )
