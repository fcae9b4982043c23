"""Site profiles: one TOML file per site, validated at load into a :class:`SiteProfile`.

A profile says where a crawl starts, which URLs are articles, where each field
sits on the page (ordered fallback selectors), what furniture to strip, the
crawl limits and the schedule. Everything but ``name``, the start URLs and the
article URL pattern is optional: missing selectors fall back to embedded
metadata and generic extraction. A bad profile raises :class:`ProfileError`
whose one-line message names the file, the dotted key and the problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from newsvault.config import ScheduleConfig
from newsvault.errors import ProfileError, UnknownSiteError
from newsvault.names import SITE_NAME_PATTERN, Kind
from newsvault.regex import check_safe, compile_safe
from newsvault.revisit import RevisitPolicy, parse_duration, parse_tiers
from newsvault.run_health import HealthPolicy
from newsvault.tomlfile import read_toml

ARTICLE_FIELDS = (
    "title",
    "lead",
    "body",
    "authors",
    "published_at",
    "published_raw",
    "modified_at",
    "section",
    "tags",
    "image_url",
    "image_credit",
    "source_name",
    "source_url",
    "views",
    "comment_count",
    "language",
    "canonical_url",
)
DISCUSSION_FIELDS = ("title", "thread_url", "last_activity_raw", "comment_count")
SELECTOR_KINDS = ("css", "xpath")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SelectorSpec(_Model):
    """One selector: exactly one of ``css``/``xpath``, plus an optional attribute to read."""

    css: str | None = None
    xpath: str | None = None
    attr: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, str):
            # A bare string is the common case; CSS is what people write.
            return {"css": data}
        if not isinstance(data, dict):
            raise ValueError(f"a selector is a table like {{css = \"...\"}}, got {data!r}")  # noqa: TRY004 - pydantic reports ValueError only
        unknown = [k for k in data if k not in (*SELECTOR_KINDS, "attr")]
        if unknown:
            raise ValueError(f"unknown selector kind {unknown[0]!r} (use css or xpath)")
        kinds = [k for k in SELECTOR_KINDS if data.get(k)]
        if len(kinds) != 1:
            raise ValueError("a selector needs exactly one of css or xpath")
        return data

    @model_validator(mode="after")
    def _compiles(self) -> SelectorSpec:
        from parsel import Selector
        from parsel.csstranslator import HTMLTranslator

        try:
            if self.css:
                HTMLTranslator().css_to_xpath(self.css)
            else:
                Selector(text="<html></html>").xpath(self.xpath or "")
        except Exception as exc:  # cssselect and lxml raise assorted types for bad syntax
            raise ValueError(f"bad selector {self.css or self.xpath!r}: {exc}") from exc
        return self


def _as_selector_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _compile_patterns(value: list[str]) -> list[str]:
    """Every pattern must compile on RE2 (newsvault/regex.py): matching can never stall a crawl."""
    for pattern in value:
        check_safe(pattern)
    return value


class StartUrls(_Model):
    """Where crawls begin; ``discussions`` holds the discussion-list entry pages."""

    front: list[str] = []
    sections: list[str] = []
    rss: list[str] = []
    sitemaps: list[str] = []
    discussions: list[str] = []

    @field_validator("front", "sections", "rss", "sitemaps", "discussions")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an absolute http(s) URL: {url!r}")
        return value

    def for_articles(self) -> list[str]:
        return [*self.front, *self.sections, *self.rss, *self.sitemaps]

    def all(self) -> list[str]:
        return [*self.for_articles(), *self.discussions]


def _field_selectors(value: Any, known: tuple[str, ...]) -> Any:
    """Per-field selector lists, refusing field names the extractor does not know."""
    if not isinstance(value, dict):
        return value
    for name in value:
        if name not in known:
            raise ValueError(f"unknown field {name!r} (known: {', '.join(known)})")
    return {name: _as_selector_list(specs) for name, specs in value.items()}


class ArticlesConfig(_Model):
    """Which URLs are articles, how listings link to them, and where fields sit."""

    url_patterns: list[str]
    listing: list[SelectorSpec] = []
    pagination: list[SelectorSpec] = []
    max_pages: int = Field(100, gt=0, description="listing pages followed per start URL")
    fields: dict[str, list[SelectorSpec]] = {}

    _to_list = field_validator("listing", "pagination", mode="before")(_as_selector_list)

    @field_validator("url_patterns", mode="before")
    @classmethod
    def _pattern_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("url_patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one article URL pattern is needed")
        return _compile_patterns(value)

    @field_validator("fields", mode="before")
    @classmethod
    def _known_fields(cls, value: Any) -> Any:
        return _field_selectors(value, ARTICLE_FIELDS)


class DiscussionsConfig(_Model):
    """The discussion list: which pages belong to it, its entries and their fields."""

    url_patterns: list[str] = []
    entry: list[SelectorSpec]
    fields: dict[str, list[SelectorSpec]] = {}
    pagination: list[SelectorSpec] = []
    max_pages: int = Field(50, gt=0)

    _to_list = field_validator("entry", "pagination", mode="before")(_as_selector_list)

    @field_validator("url_patterns", mode="before")
    @classmethod
    def _pattern_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    _patterns = field_validator("url_patterns")(_compile_patterns)

    @field_validator("fields", mode="before")
    @classmethod
    def _known_fields(cls, value: Any) -> Any:
        return _field_selectors(value, DISCUSSION_FIELDS)


class FurnitureConfig(_Model):
    """Site furniture: DOM elements dropped before extraction, text patterns for the cleaner."""

    strip_selectors: list[str] = []
    strip_patterns: list[str] = []

    @field_validator("strip_selectors")
    @classmethod
    def _selectors(cls, value: list[str]) -> list[str]:
        for css in value:
            SelectorSpec(css=css)
        return value

    _patterns = field_validator("strip_patterns")(_compile_patterns)


class LimitsConfig(_Model):
    """Per-site crawl limits; they can only tighten the global crawl settings."""

    max_pages: int | None = Field(None, gt=0, description="responses per crawl before it closes")
    max_articles: int | None = Field(None, gt=0, description="article requests per crawl")
    concurrency: int | None = Field(None, gt=0, description="concurrent requests to the site")
    download_delay: float | None = Field(None, ge=0, description="seconds between requests")


class RevisitProfileConfig(_Model):
    """A site's own revisit policy, laid over the config's [revisit] (each key optional)."""

    mode: Literal["policy", "all", "off"] | None = None
    tiers: str | None = None
    budget: int | None = Field(None, ge=0)
    gone_rechecks: int | None = Field(None, ge=0)
    gone_interval: str | None = None
    host_down_failures: int | None = Field(None, gt=0)

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: str | None) -> str | None:
        if value is not None:
            parse_tiers(value)
        return value

    @field_validator("gone_interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    def over(self, policy: RevisitPolicy) -> RevisitPolicy:
        """This site's keys over ``policy``; revisits turned off in the config stay off for every site."""
        if policy.mode == "off":
            return policy
        return policy.with_overrides(self.model_dump())


class HealthProfileConfig(_Model):
    """A site's own run-health thresholds, laid over the config's [health] (each key optional)."""

    enabled: bool | None = None
    baseline_runs: int | None = Field(None, ge=1, le=1000)
    min_baseline_runs: int | None = Field(None, ge=1, le=1000)
    max_share_drop: float | None = Field(None, gt=0, le=1)
    max_ban_share: float | None = Field(None, gt=0, le=1)
    min_items_share: float | None = Field(None, ge=0, le=1)
    min_body_coverage: float | None = Field(None, ge=0, le=1)

    def over(self, policy: HealthPolicy) -> HealthPolicy:
        return policy.with_overrides(self.model_dump())


class SchedulesConfig(_Model):
    articles: ScheduleConfig | None = None
    discussions: ScheduleConfig | None = None


class SiteProfile(_Model):
    """A validated site profile."""

    # The archive's rule (one path segment): a name it could not store is refused here, at load.
    name: str = Field(pattern=SITE_NAME_PATTERN)
    title: str | None = None
    path: Path | None = None
    allowed_domains: list[str] = []
    timezone: str = "UTC"
    language: str | None = None
    start_urls: StartUrls
    articles: ArticlesConfig
    discussions: DiscussionsConfig | None = None
    furniture: FurnitureConfig = FurnitureConfig()
    reply_pattern: str | None = None
    limits: LimitsConfig = LimitsConfig()
    revisit: RevisitProfileConfig = RevisitProfileConfig()
    health: HealthProfileConfig = HealthProfileConfig()
    schedule: SchedulesConfig = SchedulesConfig()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("reply_pattern")
    @classmethod
    def _reply(cls, value: str | None) -> str | None:
        if value is not None:
            _compile_patterns([value])
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for domain in value:
            if not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
                raise ValueError(f"{domain!r} is not a bare host name (no scheme, port or path)")
        return value

    @model_validator(mode="after")
    def _has_start(self) -> SiteProfile:
        if not self.start_urls.all():
            raise ValueError("start_urls: no start URL given")
        return self

    @property
    def kinds(self) -> list[Kind]:
        """The crawl kinds this profile supports."""
        kinds: list[Kind] = ["articles"]
        if self.discussions is not None and self.start_urls.discussions:
            kinds.append("discussions")
        return kinds

    def domains(self, extra_urls: list[str] | None = None) -> list[str]:
        """Allowed host names: the profile's, else the hosts of the start URLs."""
        if self.allowed_domains:
            return list(self.allowed_domains)
        hosts = {urlsplit(u).hostname for u in [*self.start_urls.all(), *(extra_urls or [])]}
        return sorted(h for h in hosts if h)

    def is_article_url(self, url: str) -> bool:
        return any(compile_safe(p).search(url) for p in self.articles.url_patterns)

    def source(self) -> str:
        return str(self.path) if self.path else f"<profile {self.name}>"


def _format_loc(loc: tuple[Any, ...]) -> str:
    # List indices make keys harder to find in the file; the field name is enough.
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ".".join(parts) or "-"


def _problem(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    if err["type"] == "missing":
        return "missing key"
    if err["type"] == "extra_forbidden":
        return "unknown key"
    return " ".join(msg.split())


def profile_from_dict(data: dict[str, Any], path: str | Path | None = None) -> SiteProfile:
    """Validate a profile already parsed from TOML."""
    source = str(path) if path else "<profile>"
    if "path" in data:
        raise ProfileError(source, "path", "unknown key")
    try:
        profile = SiteProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _format_loc(tuple(err["loc"]))
        problem = _problem(dict(err))
        if problem.startswith("start_urls: "):
            key, problem = "start_urls", problem.removeprefix("start_urls: ")
        raise ProfileError(source, key, problem) from exc
    return profile.model_copy(update={"path": Path(path) if path else None})


def load_profile(path: str | Path) -> SiteProfile:
    """Read and validate one profile file."""
    path = Path(path)
    return profile_from_dict(read_toml(path, ProfileError), path)


def list_profiles(sites_dir: str | Path) -> list[SiteProfile]:
    """Every profile in ``sites_dir``, sorted by name; the first bad one raises."""
    return sorted((load_profile(p) for p in sorted(Path(sites_dir).glob("*.toml"))), key=lambda p: p.name)


def find_profile(name: str, sites_dir: str | Path) -> SiteProfile:
    """The profile named ``name``: ``<name>.toml`` first, else any file declaring that name."""
    sites_dir = Path(sites_dir)
    direct = sites_dir / f"{name}.toml"
    if direct.is_file():
        return load_profile(direct)
    known: list[str] = []
    for candidate in sorted(sites_dir.glob("*.toml")):
        try:
            profile = load_profile(candidate)
        except ProfileError:
            # Another site's broken profile must not hide the one asked for.
            known.append(candidate.stem)
            continue
        if profile.name == name:
            return profile
        known.append(profile.name)
    raise UnknownSiteError(name, known)
