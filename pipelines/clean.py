"""CleanPipeline: turn raw spider items into clean items (docs/architecture.md contract).

Normalises text, strips furniture, parses counters, dates, URLs, credits and
attribution, computes the content hash and removes the ``_`` hint keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from newsvault import SCHEMA_VERSION
from pipelines.coverage import count_article
from pipelines.parse.attribution import (
    compile_reply_patterns,
    find_source_name,
    parse_image_credit,
    parse_reply,
    parse_source_name,
)
from pipelines.parse.counters import parse_counter
from pipelines.parse.dates import (
    DEFAULT_LANGUAGES,
    parse_human_date,
    parse_iso,
    parse_reference,
    to_utc_iso,
    zone,
)
from pipelines.parse.text import (
    GENERIC_FURNITURE,
    clean_list,
    compile_patterns,
    content_hash,
    guess_language,
    normalise_paragraphs,
    normalise_text,
)
from pipelines.parse.urls import absolute_url, canonical_form, choose_canonical

logger = logging.getLogger(__name__)

STATS_PREFIX = "newsvault/clean"


class CleanPipeline:
    """Normalise raw items; site specifics (timezone, language, furniture, replies) come from settings.

    The spider gives them (``spiders.base.stage_settings``) from its profile:
    ``NEWSVAULT_SITE_TIMEZONE``, ``NEWSVAULT_SITE_LANGUAGE``,
    ``NEWSVAULT_STRIP_PATTERNS``, ``NEWSVAULT_REPLY_PATTERN``.
    """

    def __init__(
        self,
        *,
        timezone: str | None = "UTC",
        strip_patterns: Iterable[str] = (),
        reply_pattern: str | Sequence[str] | None = None,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        default_language: str | None = None,
        stats: Any = None,
    ) -> None:
        self.tz = zone(timezone)
        self.furniture = compile_patterns([*GENERIC_FURNITURE, *strip_patterns])
        self.reply_patterns = compile_reply_patterns(reply_pattern)
        self.languages = tuple(dict.fromkeys(languages))
        self.default_language = default_language
        self.stats = stats

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], stats: Any = None) -> CleanPipeline:
        language = settings.get("NEWSVAULT_SITE_LANGUAGE") or None
        languages = list(DEFAULT_LANGUAGES)
        if isinstance(language, str) and language not in languages:
            languages.insert(0, language)
        return cls(
            timezone=settings.get("NEWSVAULT_SITE_TIMEZONE") or "UTC",
            strip_patterns=list(settings.get("NEWSVAULT_STRIP_PATTERNS") or ()),
            reply_pattern=settings.get("NEWSVAULT_REPLY_PATTERN") or None,
            languages=languages,
            default_language=language if isinstance(language, str) else None,
            stats=stats,
        )

    def process_item(self, item: Any) -> Any:
        raw = dict(item)
        kind = raw.get("type")
        if kind == "article":
            return self.clean_article(raw)
        if kind == "discussion":
            return self.clean_discussion(raw)
        if kind in ("gone", "unreachable"):
            return self.clean_revisit_outcome(raw)
        return _without_hints(raw)

    # --- articles ----------------------------------------------------------
    def clean_article(self, raw: dict[str, Any]) -> dict[str, Any]:
        reference = parse_reference(raw.get("_server_date"), raw.get("fetched_at"))
        url = raw.get("url") or raw.get("_request_url") or ""
        # Furniture text is also evidence: the syndication note and credit
        # line name the source and photographer when the spider found neither.
        raw_body = "" if raw.get("body") is None else str(raw.get("body"))
        title = normalise_text(raw.get("title"))
        lead = normalise_paragraphs(raw.get("lead"), self.furniture)
        body = normalise_paragraphs(raw_body, self.furniture)

        source_raw = raw.get("source_name")
        source_name = parse_source_name(normalise_text(source_raw)) if source_raw else None
        if source_name is None:
            source_name = find_source_name(normalise_text(raw_body))
        credit_raw = raw.get("image_credit")
        image_credit = parse_image_credit(normalise_text(credit_raw)) if credit_raw else None

        published_raw = _text_or_none(raw.get("published_raw"))
        published = parse_iso(raw.get("published_at"), self.tz)
        if published is None and raw.get("published_at"):
            published = parse_human_date(
                raw.get("published_at"), reference, self.tz, self.languages
            )
        if published is None and published_raw:
            published = parse_human_date(published_raw, reference, self.tz, self.languages)
        if published is None and (published_raw or raw.get("published_at")):
            self._inc("unparsed_date")
        modified = parse_iso(raw.get("modified_at"), self.tz)

        language = (
            _language(raw.get("language"))
            or self.default_language
            or guess_language(title + " " + body[:2000])
        )
        clean: dict[str, Any] = {
            "type": "article",
            "site": raw.get("site"),
            "url": canonical_form(url),
            "canonical_url": choose_canonical(url, raw.get("canonical_url")),
            "title": title,
            "lead": lead,
            "body": body,
            "authors": clean_list(raw.get("authors")),
            "published_at": to_utc_iso(published) if published else None,
            "published_raw": published_raw or _text_or_none(raw.get("published_at")),
            "modified_at": to_utc_iso(modified) if modified else None,
            "section": _text_or_none(raw.get("section")),
            "tags": clean_list(raw.get("tags")),
            "image_url": absolute_url(raw.get("image_url"), url),
            "image_credit": image_credit,
            "source_name": source_name,
            "source_url": absolute_url(raw.get("source_url"), url),
            "views": self._counter(raw.get("views")),
            "comment_count": self._counter(raw.get("comment_count")),
            "language": language,
            "fetched_at": _fetched_at(raw.get("fetched_at")),
            "content_hash": content_hash(title, lead, body),
            "schema_version": SCHEMA_VERSION,
        }
        for key in ("duplicate_of", "near_duplicate_of"):
            if raw.get(key):
                clean[key] = raw[key]
        count_article(self.stats, clean, raw.get("_extraction"))
        return clean

    # --- discussion entries --------------------------------------------------
    def clean_discussion(self, raw: dict[str, Any]) -> dict[str, Any]:
        reference = parse_reference(raw.get("_server_date"), raw.get("fetched_at"))
        list_url = raw.get("list_url") or ""
        title = normalise_text(raw.get("title"))
        activity_raw = _text_or_none(raw.get("last_activity_raw"))
        activity = (
            parse_human_date(activity_raw, reference, self.tz, self.languages)
            if activity_raw
            else None
        )
        if activity is None and raw.get("last_activity_at"):
            activity = parse_iso(raw.get("last_activity_at"), self.tz)
        if activity is None and activity_raw:
            self._inc("unparsed_date")
        is_reply, reply_to = parse_reply(title, self.reply_patterns)
        thread_url = raw.get("thread_url")
        return {
            "type": "discussion",
            "site": raw.get("site"),
            "list_url": canonical_form(list_url) if list_url else None,
            "position": _int_or_none(raw.get("position")),
            "thread_url": canonical_form(thread_url, base=list_url or None) if thread_url else None,
            "title": title,
            "last_activity_at": to_utc_iso(activity) if activity else None,
            "last_activity_raw": activity_raw,
            "comment_count": self._counter(raw.get("comment_count")),
            "is_reply": is_reply,
            "reply_to_title": reply_to,
            "fetched_at": _fetched_at(raw.get("fetched_at")),
            "schema_version": SCHEMA_VERSION,
        }

    def clean_revisit_outcome(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A known URL that answered 404/410 (``gone``) or not at all (``unreachable``): URL and time normalised."""
        clean = _without_hints(raw)
        if clean.get("url"):
            clean["url"] = canonical_form(str(clean["url"]))
        clean["fetched_at"] = _fetched_at(clean.get("fetched_at"))
        return clean

    def _counter(self, raw: object) -> int | None:
        value = parse_counter(raw)
        if value is None and raw not in (None, ""):
            self._inc("unparsed_counter")
        return value

    def _inc(self, reason: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{reason}")


def _without_hints(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if not str(k).startswith("_")}


def _text_or_none(value: object) -> str | None:
    text = normalise_text(value)
    return text or None


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _language(value: object) -> str | None:
    """'en-US' -> 'en'; the primary subtag is what the snapshots compare on."""
    text = normalise_text(value).lower().replace("_", "-")
    return text.split("-")[0] or None if text else None


def _fetched_at(value: object) -> str | None:
    moment = parse_iso(value)
    if moment is None:
        return _text_or_none(value)
    # Keep sub-second precision: two fetches in one second stay ordered.
    return moment.replace(tzinfo=None).isoformat() + "Z"
