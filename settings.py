"""Scrapy settings for newsvault, grouped by concern.

These are the defaults; `newsvault.config.Config.scrapy_settings()` lays the
user's configuration over them and a site profile may tighten crawl limits.
Components read their values here through ``crawler.settings``, never from the
environment. Every value the config also sets is taken from the config's own
defaults (``DEFAULTS``), so `scrapy crawl` and `newsvault crawl` agree by
construction (tests/test_config.py checks it).
"""

from scrapy.settings import default_settings as scrapy_defaults

from newsvault.config import Config

# The config's defaults as Scrapy settings: the one source of these values.
DEFAULTS = Config().scrapy_settings()

# --- Project --------------------------------------------------------------
BOT_NAME = "newsvault"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"
# Asyncio reactor is Scrapy's default; named here so a change is deliberate.
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
LOG_LEVEL = DEFAULTS["LOG_LEVEL"]
FEED_EXPORT_ENCODING = "utf-8"
# No listening consoles in an unattended crawler: both would open loopback
# ports that accept commands for the running crawl.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
# ... and not even loaded: Scrapy imports every listed extension, a None
# priority included, and the remote control's module imports aiohttp's web
# server (a sixth of a second at every crawl's start).
EXTENSIONS_BASE = {
    path: priority
    for path, priority in scrapy_defaults.EXTENSIONS_BASE.items()
    if path not in ("scrapy.extensions.telnet.TelnetConsole", "scrapy.extensions.remote_control.RemoteControl")
}

# --- Politeness -----------------------------------------------------------
# An honest User-Agent naming the project and its version (config crawl.user_agent).
USER_AGENT = DEFAULTS["USER_AGENT"]
ROBOTSTXT_OBEY = DEFAULTS["ROBOTSTXT_OBEY"]
# AutoThrottle adapts the delay to the server's latency, on top of DOWNLOAD_DELAY.
AUTOTHROTTLE_ENABLED = DEFAULTS["AUTOTHROTTLE_ENABLED"]
AUTOTHROTTLE_START_DELAY = 0.25
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = DEFAULTS["CONCURRENT_REQUESTS"]
CONCURRENT_REQUESTS_PER_DOMAIN = DEFAULTS["CONCURRENT_REQUESTS_PER_DOMAIN"]
DOWNLOAD_DELAY = DEFAULTS["DOWNLOAD_DELAY"]

# --- Limits ---------------------------------------------------------------
# Responses (and decompressed bodies) above this are dropped and counted.
DOWNLOAD_MAXSIZE = DEFAULTS["DOWNLOAD_MAXSIZE"]
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
DOWNLOAD_TIMEOUT = DEFAULTS["DOWNLOAD_TIMEOUT"]
RETRY_ENABLED = True
RETRY_TIMES = DEFAULTS["RETRY_TIMES"]
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]

# --- Frontier ---------------------------------------------------------------
# Pending requests go to a per-crawl disk queue (JOBDIR, set by the crawl
# runner) so memory stays flat on big sites. Marshal, not pickle: the queue
# holds only plain request dicts, and marshal cannot run code when read back.
SCHEDULER_DISK_QUEUE = "scrapy.squeues.MarshalLifoDiskQueue"

# --- Item pipelines (order matters: clean -> validate -> dedupe -> changes -> snapshot)
ITEM_PIPELINES = {
    # Runs NEWSVAULT_WORKER_PIPELINES, in order, then writes each item into the
    # snapshot, in the sidecar process (a second core; pipelines/sidecar.py).
    "pipelines.sidecar.SidecarPipeline": 100,
}
# clean -> validate -> dedupe -> change tracking (docs/architecture.md).
NEWSVAULT_WORKER_PIPELINES = [
    "pipelines.clean.CleanPipeline",
    "pipelines.validate.ValidatePipeline",
    "pipelines.dedupe.DedupePipeline",
    "pipelines.changes.ChangeTrackingPipeline",
]
# The item stages (above) and the snapshot's files run in the sidecar, a child
# process on another core; False keeps them in the crawl's process (same
# results, slower). Config: crawl.worker_processes.
NEWSVAULT_WORKER_PROCESSES = DEFAULTS["NEWSVAULT_WORKER_PROCESSES"]

# --- Downloader hooks -----------------------------------------------------
# Near the downloader, so the WARC records what came over the wire (every
# attempt, before retries and decompression rewrite it).
DOWNLOADER_MIDDLEWARES = {
    "archive.scrapy_hooks.WarcRecorderMiddleware": 950,
}

# --- Extensions -----------------------------------------------------------
EXTENSIONS = {
    "archive.scrapy_hooks.SnapshotExtension": 500,
    # Makes the run's change-tracking writes count once its snapshot is finalised.
    "pipelines.changes.ChangeStateCommitter": 510,
    "scheduler.progress.CrawlProgress": 600,
}

# --- newsvault: state -----------------------------------------------------
# Dedupe and change-tracking state, run history, job store and spool live here.
NEWSVAULT_STATE_DIR = DEFAULTS["NEWSVAULT_STATE_DIR"]
# A cluster's shared change-tracking state (PostgreSQL, [cluster] url); None: SQLite in the state dir.
NEWSVAULT_STATE_URL = DEFAULTS["NEWSVAULT_STATE_URL"]
# How known articles this crawl did not reach are revisited (newsvault/revisit.py);
# a site profile's [revisit] table is laid over it.
NEWSVAULT_REVISIT = DEFAULTS["NEWSVAULT_REVISIT"]

# --- newsvault: the site of the crawl ----------------------------------------
# What the item stages need of the site profile; the spider sets them per crawl
# (spiders.base.stage_settings), so the stages never read a profile themselves.
NEWSVAULT_SITE = None
NEWSVAULT_SITE_TIMEZONE = "UTC"
NEWSVAULT_SITE_LANGUAGE = None
NEWSVAULT_STRIP_PATTERNS: list[str] = []
NEWSVAULT_REPLY_PATTERN = None
# Where the articles spider reads what earlier runs saw of each article (to plan
# revisits): a function (state_dir, site) -> [newsvault.revisit.RevisitRecord].
NEWSVAULT_REVISIT_RECORDS = "pipelines.state.revisit_records"

# --- newsvault: dedupe ------------------------------------------------------
# Estimated Jaccard similarity of 5-word shingles above which two bodies at
# different URLs are linked as near-duplicates (syndicated copies).
NEWSVAULT_NEAR_DUPLICATE_THRESHOLD = 0.8

# --- newsvault: archive ---------------------------------------------------
NEWSVAULT_ARCHIVE_ENABLED = True
# s3://bucket/prefix or a local directory.
NEWSVAULT_ARCHIVE_URL = DEFAULTS["NEWSVAULT_ARCHIVE_URL"]
# Finished snapshots wait here until the store has them (<state>/spool).
NEWSVAULT_SPOOL_DIR = DEFAULTS["NEWSVAULT_SPOOL_DIR"]
NEWSVAULT_WARC_MAX_BYTES = DEFAULTS["NEWSVAULT_WARC_MAX_BYTES"]
# The catalog the crawl's new article versions are indexed into as they are
# written, so the update after the commit is short (<state>/catalog.sqlite).
NEWSVAULT_CATALOG_PATH = DEFAULTS["NEWSVAULT_CATALOG_PATH"]
# The snapshot id of this crawl, chosen by the crawl runner before it starts so
# the change tracker can file its writes under it; None: the extension picks one.
NEWSVAULT_SNAPSHOT_ID = None
# boto3 request_checksum_calculation: "when_required" for servers that
# mishandle the CRC32 checksums boto3 >= 1.36 sends by default.
NEWSVAULT_S3_CHECKSUMS = DEFAULTS["NEWSVAULT_S3_CHECKSUMS"]
NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES = DEFAULTS["NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES"]

# --- newsvault: display ---------------------------------------------------
# Live progress line (pages, items, errors) on stderr when it is a terminal.
NEWSVAULT_PROGRESS = DEFAULTS["NEWSVAULT_PROGRESS"]
