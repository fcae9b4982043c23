"""The newsvault configuration: one TOML file, every key overridable from the environment.

Precedence, highest first: explicit overrides (command-line flags), environment
variables, the config file, built-in defaults. With no file and no variables the
defaults crawl the bundled sample site profile into a local archive under ./var.

Environment variables are named after the key path: ``archive.url`` is
``NEWSVAULT_ARCHIVE_URL``, ``daemon.misfire_grace_seconds`` is
``NEWSVAULT_DAEMON_MISFIRE_GRACE_SECONDS``, ``schedules.sample.articles.cron`` is
``NEWSVAULT_SCHEDULES_SAMPLE_ARTICLES_CRON``. Three short aliases exist because
they are the ones people set most: ``NEWSVAULT_ARCHIVE``, ``NEWSVAULT_STATE_DIR``
and ``NEWSVAULT_SITES_DIR``. The file itself comes from ``--config``, else
``NEWSVAULT_CONFIG``, else ``./newsvault.toml`` when it exists.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from newsvault import __version__
from newsvault.errors import ConfigError
from newsvault.tomlfile import read_toml

DEFAULT_CONFIG_FILE = "newsvault.toml"
ENV_PREFIX = "NEWSVAULT_"
# Short variables documented in the issues and README, mapped to their key paths.
ENV_ALIASES = {
    "NEWSVAULT_ARCHIVE": ("archive", "url"),
    "NEWSVAULT_STATE_DIR": ("state", "dir"),
    "NEWSVAULT_SITES_DIR": ("sites", "dir"),
    "NEWSVAULT_PROGRESS": ("crawl", "progress"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ArchiveConfig(_Section):
    """Where snapshots go and how they are written."""

    url: str = Field("var/archive", description="s3://bucket/prefix or a local directory")
    spool_dir: str | None = Field(None, description="finished snapshots awaiting upload; default <state>/spool")
    warc_max_bytes: int = Field(1_000_000_000, gt=0, description="start a new WARC file past this size")
    s3_checksums: Literal["when_supported", "when_required"] = Field(
        "when_supported", description="boto3 request_checksum_calculation"
    )
    s3_multipart_threshold_bytes: int = Field(8 * 1024 * 1024, gt=5 * 1024 * 1024 - 1)
    lock_wait_seconds: float = Field(
        600, ge=0, description="how long a crawl or push waits for the archive lock while a prune runs"
    )


class StateConfig(_Section):
    """Where run history, dedupe state, job store and spool live."""

    dir: str = "var"


class SitesConfig(_Section):
    """Where site profiles are read from; default: the profiles bundled with newsvault."""

    dir: str | None = None


class CrawlConfig(_Section):
    """Politeness and limits applied to every crawl (a profile may tighten them)."""

    user_agent: str = f"newsvault/{__version__} (news archiving crawler)"
    obey_robots: bool = True
    autothrottle: bool = True
    concurrent_requests: int = Field(16, gt=0)
    concurrency_per_domain: int = Field(4, gt=0)
    download_delay_seconds: float = Field(0.25, ge=0)
    max_response_bytes: int = Field(10 * 1024 * 1024, gt=0)
    timeout_seconds: float = Field(30, gt=0)
    retry_times: int = Field(3, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # A live progress line on stderr (only when it is a terminal).
    progress: bool = True
    # Re-request known article URLs a crawl did not reach, so removals are seen.
    recheck_known: bool = True
    # Keep pending requests on disk (under <state>/frontier) so memory stays
    # flat however many URLs a sitemap lists.
    disk_queue: bool = True
    # Run the item stages (clean, validate, dedupe, change tracking) and the
    # snapshot writer (WARC and items files) in child processes, on other cores (false: all in the crawl's
    # process, same results at about half the speed).
    worker_processes: bool = True


class DaemonConfig(_Section):
    """The scheduler daemon."""

    jobstore_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite under the state dir")
    misfire_grace_seconds: int = Field(600, gt=0)
    crawl_timeout_seconds: int = Field(3600, gt=0)
    shutdown_grace_seconds: int = Field(60, ge=0)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"


class ScheduleConfig(_Section):
    """When one (site, kind) job runs: a cron expression or an interval."""

    cron: str | None = None
    interval_seconds: int | None = Field(None, gt=0)
    timezone: str = "UTC"
    jitter_seconds: int = Field(0, ge=0)
    enabled: bool = True


class Config(_Section):
    """The whole configuration, as loaded by :func:`load_config`."""

    archive: ArchiveConfig = ArchiveConfig()
    state: StateConfig = StateConfig()
    sites: SitesConfig = SitesConfig()
    crawl: CrawlConfig = CrawlConfig()
    daemon: DaemonConfig = DaemonConfig()
    # schedules[site][kind]; merged over the schedule a site profile declares.
    schedules: dict[str, dict[Literal["articles", "discussions"], ScheduleConfig]] = {}
    source: str = Field("<defaults>", description="the file this came from, for messages")

    @property
    def state_dir(self) -> Path:
        return Path(self.state.dir)

    @property
    def spool_dir(self) -> Path:
        return Path(self.archive.spool_dir) if self.archive.spool_dir else self.state_dir / "spool"

    @property
    def sites_dir(self) -> Path:
        if self.sites.dir:
            return Path(self.sites.dir)
        import sites  # the bundled profiles package

        return Path(sites.__file__).parent

    @property
    def jobstore_url(self) -> str:
        return self.daemon.jobstore_url or f"sqlite:///{(self.state_dir / 'jobs.sqlite').resolve()}"

    def scrapy_settings(self) -> dict[str, Any]:
        """Scrapy settings derived from this config, to lay over settings.py."""
        crawl = self.crawl
        return {
            "USER_AGENT": crawl.user_agent,
            "ROBOTSTXT_OBEY": crawl.obey_robots,
            "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
            "CONCURRENT_REQUESTS": crawl.concurrent_requests,
            "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency_per_domain,
            "DOWNLOAD_DELAY": crawl.download_delay_seconds,
            "DOWNLOAD_MAXSIZE": crawl.max_response_bytes,
            "DOWNLOAD_TIMEOUT": crawl.timeout_seconds,
            "RETRY_TIMES": crawl.retry_times,
            "LOG_LEVEL": crawl.log_level,
            "NEWSVAULT_PROGRESS": crawl.progress,
            "NEWSVAULT_RECHECK_KNOWN": crawl.recheck_known,
            "NEWSVAULT_WORKER_PROCESSES": crawl.worker_processes,
            "NEWSVAULT_STATE_DIR": str(self.state_dir),
            "NEWSVAULT_ARCHIVE_URL": self.archive.url,
            "NEWSVAULT_SPOOL_DIR": str(self.spool_dir),
            "NEWSVAULT_WARC_MAX_BYTES": self.archive.warc_max_bytes,
            "NEWSVAULT_S3_CHECKSUMS": self.archive.s3_checksums,
            "NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES": self.archive.s3_multipart_threshold_bytes,
        }


def _env_name(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "_".join(re.sub(r"[^0-9A-Za-z]", "_", p).upper() for p in path)


def _leaf_paths(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            paths.extend(_leaf_paths(value, prefix + (key,)))
        else:
            paths.append(prefix + (key,))
    return paths


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


def _schedule_leaf_paths(data: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every schedule key an environment variable may set, for sites already named."""
    paths: list[tuple[str, ...]] = []
    for site in data.get("schedules", {}):
        for kind in ("articles", "discussions"):
            for key in ScheduleConfig.model_fields:
                paths.append(("schedules", site, kind, key))
    return paths


def _find_config_file(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get("NEWSVAULT_CONFIG"):
        return Path(env["NEWSVAULT_CONFIG"])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Load the config file (if any), apply environment variables, then ``overrides``.

    ``overrides`` maps dotted key paths (``"archive.url"``) to values; ``None``
    values are ignored so command-line flags can be passed straight through.
    Raises :class:`ConfigError` naming the file or variable and the key.
    """
    env = os.environ if env is None else env
    config_file = _find_config_file(path, env)
    data: dict[str, Any] = Config().model_dump(exclude={"source"})
    sources: dict[tuple[str, ...], str] = {}

    if config_file is not None:
        file_data = read_toml(config_file)
        _merge(data, file_data)
        for leaf in _leaf_paths(file_data):
            sources[leaf] = str(config_file)

    candidates = set(_leaf_paths(data)) | set(_schedule_leaf_paths(data))
    for leaf in sorted(candidates):
        name = _env_name(leaf)
        if name in env:
            _set_path(data, leaf, env[name])
            sources[leaf] = f"${name}"
    for name, leaf in ENV_ALIASES.items():
        if env.get(name):
            _set_path(data, leaf, env[name])
            sources[leaf] = f"${name}"

    for dotted, value in (overrides or {}).items():
        if value is not None:
            leaf = tuple(dotted.split("."))
            _set_path(data, leaf, value)
            sources[leaf] = "command line"

    source = str(config_file) if config_file else "<defaults>"
    data["source"] = source
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(part) for part in err["loc"])
        key = ".".join(loc)
        origin = sources.get(loc, source)
        value = err.get("input")
        shown = "" if isinstance(value, Mapping) else f" (got {value!r})"
        problem = err["msg"].replace("Extra inputs are not permitted", "unknown key")
        raise ConfigError(origin, key, f"{problem}{shown}") from exc
