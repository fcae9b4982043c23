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
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from newsvault import __version__
from newsvault.errors import ConfigError
from newsvault.names import KINDS, Kind
from newsvault.revisit import (
    DEFAULT_BUDGET,
    DEFAULT_GONE_INTERVAL,
    DEFAULT_GONE_RECHECKS,
    DEFAULT_HOST_DOWN_FAILURES,
    DEFAULT_TIERS,
    RevisitPolicy,
    parse_duration,
    parse_tiers,
)
from newsvault.run_health import HealthPolicy
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


# S3: files from this size go up in parts (S3's minimum part is 5 MiB).
DEFAULT_MULTIPART_THRESHOLD_BYTES = 8 * 1024 * 1024
DEFAULT_S3_CHECKSUMS: Literal["when_supported", "when_required"] = "when_supported"
# Ten years: no interval, timeout or delay of newsvault is longer (and timedelta overflows past ~2.7e15 s).
MAX_SECONDS = 10 * 365 * 24 * 3600
# Keys whose values are never echoed in an error (a secret put in the config by mistake).
_CREDENTIAL_KEY = re.compile(r"(?i)secret|token|password|passwd|credential|access_key|api_key|auth")
ARCHIVE_SCHEMES = ("s3", "file")
# A web token shorter than this is too easy to guess.
MIN_WEB_TOKEN_LENGTH = 16


class _Section(BaseModel):
    # allow_inf_nan=False: `download_delay_seconds = inf` would never send a request.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """`max_response_bytes = true` is a mistake, not the number 1 (pydantic's lax mode would take it)."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _is_number_field(field.annotation):
            raise ValueError(f"expected a number, not {str(value).lower()}")
        return value


def _is_number_field(annotation: Any) -> bool:
    args = get_args(annotation) or (annotation,)
    return bool(args) and all(a in (int, float, type(None)) for a in args) and any(a in (int, float) for a in args)


class ArchiveConfig(_Section):
    """Where snapshots go and how they are written."""

    url: str = Field("var/archive", description="s3://bucket/prefix or a local directory")
    spool_dir: str | None = Field(None, description="finished snapshots awaiting upload; default <state>/spool")
    warc_max_bytes: int = Field(1_000_000_000, gt=0, description="start a new WARC file past this size")
    s3_checksums: Literal["when_supported", "when_required"] = Field(
        DEFAULT_S3_CHECKSUMS, description="boto3 request_checksum_calculation"
    )
    # At most 64 MiB: a file under the threshold goes up in one PUT, read into memory whole.
    s3_multipart_threshold_bytes: int = Field(DEFAULT_MULTIPART_THRESHOLD_BYTES, gt=5 * 1024 * 1024 - 1,
                                              le=64 * 1024 * 1024)
    lock_wait_seconds: float = Field(
        600, ge=0, le=MAX_SECONDS, description="how long a crawl or push waits for the archive lock while a prune runs"
    )

    @field_validator("url")
    @classmethod
    def _archive_url(cls, value: str) -> str:
        """s3://bucket/prefix, file://..., or a path; anything else is refused here, not at the first upload."""
        parts = urlsplit(value)
        # One letter is a Windows drive, not a scheme.
        if parts.scheme and len(parts.scheme) > 1 and parts.scheme not in ARCHIVE_SCHEMES:
            raise ValueError(f"unsupported archive URL scheme {parts.scheme!r} (use s3://bucket/prefix or a directory)")
        if parts.scheme == "s3" and not parts.netloc:
            raise ValueError("an s3:// archive URL needs a bucket: s3://bucket/prefix")
        if not value.strip():
            raise ValueError("empty archive URL")
        return value


class StateConfig(_Section):
    """Where run history, dedupe state, job store and spool live."""

    dir: str = "var"
    catalog: str | None = Field(None, description="the catalog of the archive; default <state>/catalog.sqlite")


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
    download_delay_seconds: float = Field(0.25, ge=0, le=3600)
    max_response_bytes: int = Field(10 * 1024 * 1024, gt=0)
    timeout_seconds: float = Field(30, gt=0, le=MAX_SECONDS)
    retry_times: int = Field(3, ge=0, le=100)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # A live progress line on stderr (only when it is a terminal).
    progress: bool = True
    # Revisit known articles a crawl did not reach (false: never, as revisit.mode = "off").
    recheck_known: bool = True
    # Keep pending requests on disk (under <state>/frontier) so memory stays
    # flat however many URLs a sitemap lists.
    disk_queue: bool = True
    # Run the item stages (clean, validate, dedupe, change tracking) and the
    # snapshot's files (WARC and items) in one sidecar process, on the other
    # core (false: all in the crawl's process, same results, slower).
    worker_processes: bool = True


class RevisitConfig(_Section):
    """When known articles the crawl did not reach are fetched again (newsvault/revisit.py)."""

    mode: Literal["policy", "all", "off"] = Field(
        "policy", description="policy: by tiers within the budget; all: every known article every run; off"
    )
    tiers: str = Field(DEFAULT_TIERS, description="quiet time since the last change = interval, rising, ending older=...")
    budget: int = Field(DEFAULT_BUDGET, ge=0, le=10_000_000, description="revisit requests per run at most")
    gone_rechecks: int = Field(DEFAULT_GONE_RECHECKS, ge=0, le=1000, description="404/410 rechecks before an article leaves the queue")
    gone_interval: str = Field(DEFAULT_GONE_INTERVAL, description="time between those rechecks")
    host_down_failures: int = Field(
        DEFAULT_HOST_DOWN_FAILURES, gt=0, le=10_000, description="consecutive connection failures that stop a host's revisits"
    )

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: str) -> str:
        parse_tiers(value)
        return value

    @field_validator("gone_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        parse_duration(value)
        return value

    def policy(self, *, enabled: bool = True) -> RevisitPolicy:
        values = self.model_dump()
        if not enabled:
            values["mode"] = "off"
        return RevisitPolicy.from_mapping(values)


_HEALTH = HealthPolicy()


class HealthConfig(_Section):
    """Run-health checks: each run against the median of the job's last good runs (newsvault/run_health.py)."""

    enabled: bool = Field(_HEALTH.enabled, description="false: no run is ever degraded")
    baseline_runs: int = Field(_HEALTH.baseline_runs, ge=1, le=1000, description="good runs the median is taken over")
    min_baseline_runs: int = Field(_HEALTH.min_baseline_runs, ge=1, le=1000,
                                   description="good runs needed before the relative checks apply")
    max_share_drop: float = Field(_HEALTH.max_share_drop, gt=0, le=1,
                                  description="a coverage or body-from-selectors share falling this much below the median")
    max_ban_share: float = Field(_HEALTH.max_ban_share, gt=0, le=1, description="share of 403/429/503 responses")
    min_items_share: float = Field(_HEALTH.min_items_share, ge=0, le=1,
                                   description="articles (entries) below this fraction of the median")
    min_body_coverage: float = Field(_HEALTH.min_body_coverage, ge=0, le=1,
                                     description="bodies and titles on at least this share of articles, always")

    @model_validator(mode="after")
    def _baseline(self) -> HealthConfig:
        if self.min_baseline_runs > self.baseline_runs:
            raise ValueError("min_baseline_runs must not exceed baseline_runs")
        return self

    def policy(self) -> HealthPolicy:
        return HealthPolicy(**self.model_dump())


class AlertsConfig(_Section):
    """Where a job's first degraded run and its recovery are announced; secrets only from the environment."""

    webhook_url: str | None = Field(None, description="JSON POST here (token: $NEWSVAULT_ALERT_WEBHOOK_TOKEN)")
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300)
    webhook_retries: int = Field(3, ge=0, le=20, description="more attempts after a failed one")
    smtp_host: str | None = Field(None, description="mail through this server (password: $NEWSVAULT_ALERT_SMTP_PASSWORD)")
    smtp_port: int = Field(25, gt=0, le=65535)
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=300)
    mail_from: str = "newsvault@localhost"
    mail_to: list[str] = []

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _mail(self) -> AlertsConfig:
        if self.smtp_host and not self.mail_to:
            raise ValueError("smtp_host is set but mail_to names no recipient")
        if self.smtp_user and not self.smtp_starttls:
            raise ValueError("smtp_user needs smtp_starttls = true: the password must not cross in clear")
        return self


class DaemonConfig(_Section):
    """The scheduler daemon."""

    jobstore_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite under the state dir")
    misfire_grace_seconds: int = Field(600, gt=0, le=MAX_SECONDS)
    crawl_timeout_seconds: int = Field(3600, gt=0, le=MAX_SECONDS)
    shutdown_grace_seconds: int = Field(60, ge=0, le=MAX_SECONDS)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    @field_validator("jobstore_url")
    @classmethod
    def _jobstore(cls, value: str | None) -> str | None:
        """A job store whose database driver is missing is refused at load, not when the daemon starts."""
        if value is None:
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            # The dialect class is found without its driver; import_dbapi() is what needs it.
            make_url(value).get_dialect().import_dbapi()
        except (ArgumentError, ValueError) as exc:
            raise ValueError("not an SQLAlchemy database URL") from exc
        except (NoSuchModuleError, ImportError) as exc:
            raise ValueError(f"its database driver is not installed ({type(exc).__name__}: {exc})") from exc
        return value


class WebConfig(_Section):
    """The web view: ``newsvault web`` and ``newsvault daemon --web-port``."""

    host: str = Field("127.0.0.1", description="binding anywhere but loopback needs a token")
    port: int = Field(8765, ge=0, le=65535)
    # Writes (trigger a run, verify a snapshot) are off without it.
    token: SecretStr | None = Field(None, description="enables writes; better set as $NEWSVAULT_WEB_TOKEN")

    @property
    def token_value(self) -> str | None:
        """The token itself, for the code that checks it (it is never printed)."""
        return self.token.get_secret_value() if self.token is not None else None

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_WEB_TOKEN_LENGTH:
            raise ValueError(f"a web token needs at least {MIN_WEB_TOKEN_LENGTH} characters")
        return value


class ClusterConfig(_Section):
    """Several hosts sharing one schedule, one queue of runs and one state, in PostgreSQL (off by default)."""

    # The change-tracking state of every crawl lives here once it is set.
    url: SecretStr | None = Field(None, description="libpq URL of the shared PostgreSQL database;"
                                  " better set as $NEWSVAULT_CLUSTER_URL (it may hold a password)")
    workers: int = Field(2, ge=1, le=64, description="runs from the queue this host crawls at once")

    @property
    def url_value(self) -> str | None:
        """The URL itself, for the code that connects (it is never printed)."""
        return self.url.get_secret_value() if self.url is not None else None

    @field_validator("url")
    @classmethod
    def _postgres(cls, value: SecretStr | None) -> SecretStr | None:
        """Refused at load: another engine, or PostgreSQL's driver missing."""
        if value is None:
            return value
        from newsvault.sqldb import is_postgres_url

        if not is_postgres_url(value.get_secret_value()):
            raise ValueError("a cluster needs a PostgreSQL URL (postgresql://...)")
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise ValueError(f"PostgreSQL's driver is not installed (pip install 'newsvault[cluster]'): {exc}") from exc
        return value


class ScheduleConfig(_Section):
    """When one (site, kind) job runs: a cron expression or an interval."""

    cron: str | None = None
    interval_seconds: int | None = Field(None, gt=0, le=MAX_SECONDS)
    timezone: str = "UTC"
    jitter_seconds: int = Field(0, ge=0, le=MAX_SECONDS)
    enabled: bool = True


class Config(_Section):
    """The whole configuration, as loaded by :func:`load_config`."""

    archive: ArchiveConfig = ArchiveConfig()
    state: StateConfig = StateConfig()
    sites: SitesConfig = SitesConfig()
    crawl: CrawlConfig = CrawlConfig()
    revisit: RevisitConfig = RevisitConfig()
    health: HealthConfig = HealthConfig()
    alerts: AlertsConfig = AlertsConfig()
    daemon: DaemonConfig = DaemonConfig()
    web: WebConfig = WebConfig()
    cluster: ClusterConfig = ClusterConfig()
    # schedules[site][kind]; merged over the schedule a site profile declares.
    schedules: dict[str, dict[Kind, ScheduleConfig]] = {}
    source: str = Field("<defaults>", description="the file this came from, for messages")

    @property
    def state_dir(self) -> Path:
        return Path(self.state.dir)

    @property
    def spool_dir(self) -> Path:
        return Path(self.archive.spool_dir) if self.archive.spool_dir else self.state_dir / "spool"

    @property
    def catalog_path(self) -> Path:
        return Path(self.state.catalog) if self.state.catalog else self.state_dir / "catalog.sqlite"

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
            "NEWSVAULT_REVISIT": self.revisit.policy(enabled=crawl.recheck_known).as_settings(),
            "NEWSVAULT_WORKER_PROCESSES": crawl.worker_processes,
            "NEWSVAULT_STATE_DIR": str(self.state_dir),
            # The shared state of a cluster (None: SQLite under the state dir).
            "NEWSVAULT_STATE_URL": self.cluster.url_value,
            "NEWSVAULT_ARCHIVE_URL": self.archive.url,
            "NEWSVAULT_SPOOL_DIR": str(self.spool_dir),
            "NEWSVAULT_CATALOG_PATH": str(self.catalog_path),
            "NEWSVAULT_WARC_MAX_BYTES": self.archive.warc_max_bytes,
            "NEWSVAULT_S3_CHECKSUMS": self.archive.s3_checksums,
            "NEWSVAULT_S3_MULTIPART_THRESHOLD_BYTES": self.archive.s3_multipart_threshold_bytes,
        }


def _without_password(value: Any) -> Any:
    """A URL's password masked (``postgresql://user:pw@host`` is echoed as ``user:***@host``)."""
    if isinstance(value, str) and "://" in value and "@" in value:
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@", 1)
    return value


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
        for kind in KINDS:
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
        problem = str(err["msg"]).removeprefix("Value error, ").replace("Extra inputs are not permitted", "unknown key")
        key = ".".join(loc)
        origin = sources.get(loc, source)
        value = err.get("input")
        # Never echo a value of an unknown key or of a credential-like one: it may be a secret.
        secret = err["type"] == "extra_forbidden" or bool(_CREDENTIAL_KEY.search(loc[-1] if loc else ""))
        shown = "" if secret or isinstance(value, Mapping) else f" (got {_without_password(value)!r})"
        raise ConfigError(origin, key, f"{problem}{shown}") from None
