"""Run health: the figures of one crawl, and the checks that compare them with the job's own good runs.

A crawl can "succeed" and still be wrong: the site changed its markup and the
profile's selectors stopped matching (the fallbacks find weaker bodies), the
site answers 403/429 to most pages, or the front page lists nothing. Each run
gets figures (:func:`health_figures`, from its crawl stats) and is checked
(:func:`check_run`) against the median of the job's last good runs plus a few
absolute floors. A run that fails a check is *degraded*, with one line per
reason, e.g. ``body from selectors 98% -> 0% (median of 20 runs)``.

Pure logic: the run history supplies the baseline, the job runner records
the verdict, and the alerts, ``newsvault health`` and ``/metrics`` read it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

COVERAGE_FIELDS = ("title", "lead", "body", "published_at", "authors", "tags", "section", "image_url")
EXTRACTION_PATHS = ("selectors", "jsonld", "trafilatura")
BAN_STATUSES = (403, 429, 503)
# Where a snapshot's manifest keeps the figures (among its crawl stats).
HEALTH_STAT = "newsvault/health"
# Figures that are shares (0..1) of the run's articles or responses: shown as %.
SHARE_PREFIXES = ("coverage/", "body_from/", "responses_")
# The absolute floors apply only to runs with at least this many articles / responses.
MIN_ARTICLES_FOR_FLOORS = 5
MIN_RESPONSES_FOR_FLOORS = 10


@dataclass(frozen=True)
class HealthPolicy:
    """The thresholds of the checks (config ``[health]``, a profile's ``[health]`` over it)."""

    enabled: bool = True
    # The baseline: the median of this many of the job's latest good (ok) runs ...
    baseline_runs: int = 20
    # ... and no relative check before there are this many.
    min_baseline_runs: int = 3
    # A coverage or body-from-selectors share that falls by this much (0.3 = 30 points) below the median.
    max_share_drop: float = 0.3
    # 403, 429 or 503 answers above this share of responses, and this much above the median.
    max_ban_share: float = 0.2
    # Articles (or discussion entries) below this fraction of the median.
    min_items_share: float = 0.5
    # Floors without any history: bodies and titles on at least this share of articles.
    min_body_coverage: float = 0.5

    def with_overrides(self, values: Mapping[str, Any]) -> HealthPolicy:
        known = {f.name for f in fields(self)}
        changes = {k: v for k, v in values.items() if v is not None}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown health keys: {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def _int(stats: Mapping[str, Any], key: str) -> int:
    value = stats.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def health_figures(stats: Mapping[str, Any], kind: str) -> dict[str, float]:
    """The run's figures from its crawl stats: counts, shares (0..1) and pages per second."""
    figures: dict[str, float] = {}
    responses = _int(stats, "downloader/response_count")
    figures["responses"] = responses
    for status in BAN_STATUSES:
        figures[f"responses_{status}"] = _int(stats, f"downloader/response_status_count/{status}") / responses if responses else 0.0
    # Error answers other than a removal (404/410 on known articles are news, not errors).
    errors = sum(v for k, v in stats.items() if k.startswith("downloader/response_status_count/")
                 and k.rsplit("/", 1)[1][:1] in "45" and k.rsplit("/", 1)[1] not in ("404", "410")
                 and isinstance(v, int))
    figures["responses_error"] = errors / responses if responses else 0.0
    figures["download_errors"] = _int(stats, "downloader/exception_count")
    figures["items"] = _int(stats, "item_scraped_count")
    figures["robots_refused"] = _int(stats, "newsvault/pages/disallowed")
    elapsed = stats.get("elapsed_time_seconds")
    figures["pages_per_second"] = round(responses / elapsed, 2) if isinstance(elapsed, (int, float)) and elapsed > 0 else 0.0
    if kind == "discussions":
        figures["discussion_entries"] = sum(
            _int(stats, f"newsvault/{change}/discussion") for change in ("new", "updated", "unchanged")
        )
        return figures
    articles = _int(stats, "newsvault/coverage/articles")
    figures["articles"] = articles
    figures["new_articles"] = _int(stats, "newsvault/new/article")
    for name in COVERAGE_FIELDS:
        figures[f"coverage/{name}"] = _int(stats, f"newsvault/coverage/{name}") / articles if articles else 0.0
    for path in EXTRACTION_PATHS:
        figures[f"body_from/{path}"] = _int(stats, f"newsvault/extraction/{path}") / articles if articles else 0.0
    return figures


def label(figure: str) -> str:
    """How a reason names a figure: ``coverage/authors`` -> ``authors coverage``."""
    if figure.startswith("coverage/"):
        return f"{figure.split('/', 1)[1]} coverage"
    if figure.startswith("body_from/"):
        return f"body from {figure.split('/', 1)[1]}"
    if figure == "responses_error":
        return "error responses"
    if figure.startswith("responses_"):
        return f"{figure.split('_', 1)[1]} responses"
    return figure.replace("_", " ")


def show(figure: str, value: float) -> str:
    if figure.startswith(SHARE_PREFIXES):
        return f"{value * 100:.0f}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Reason:
    """One failed check: the figure, the run's value, the baseline (None for a floor) and the line to show."""

    figure: str
    value: float
    baseline: float | None
    text: str


def baseline_medians(history: Sequence[Mapping[str, float]]) -> dict[str, float]:
    names = {name for figures in history for name in figures}
    return {name: statistics.median(f.get(name, 0.0) for f in history) for name in sorted(names)}


def check_run(
    figures: Mapping[str, float], history: Sequence[Mapping[str, float]], kind: str, policy: HealthPolicy,
) -> list[Reason]:
    """The reasons this run is degraded (empty: healthy), against ``history`` (the job's last good runs' figures)."""
    if not policy.enabled:
        return []
    reasons: list[Reason] = []
    runs = len(history)
    medians = baseline_medians(history) if runs >= policy.min_baseline_runs else {}
    of_runs = f"(median of {runs} runs)"

    def relative(figure: str, text: str) -> None:
        reasons.append(Reason(figure, figures.get(figure, 0.0), medians.get(figure), f"{text} {of_runs}"))

    shares = [f"coverage/{name}" for name in COVERAGE_FIELDS] + ["body_from/selectors"]
    if kind == "articles":
        for figure in shares:
            if figure not in medians:
                continue
            now, usual = figures.get(figure, 0.0), medians[figure]
            if usual - now >= policy.max_share_drop:
                relative(figure, f"{label(figure)} {show(figure, usual)} -> {show(figure, now)}")
    count = "articles" if kind == "articles" else "discussion_entries"
    if count in medians and medians[count] >= 1 and figures.get(count, 0) < medians[count] * policy.min_items_share:
        relative(count, f"{label(count)} {medians[count]:g} -> {figures.get(count, 0):g}")
    for status in BAN_STATUSES:
        figure = f"responses_{status}"
        now, usual = figures.get(figure, 0.0), medians.get(figure, 0.0)
        if now > policy.max_ban_share and now - usual >= policy.max_ban_share / 2 and figures.get("responses", 0) >= MIN_RESPONSES_FOR_FLOORS:
            text = f"{label(figure)} {show(figure, usual)} -> {show(figure, now)}"
            reasons.append(Reason(figure, now, medians.get(figure), text + (f" {of_runs}" if medians else "")))
    if "robots_refused" in medians and figures.get("robots_refused", 0) - medians["robots_refused"] >= max(5, medians["robots_refused"]):
        relative("robots_refused", f"robots refusals {medians['robots_refused']:g} -> {figures['robots_refused']:g}")
    # Floors: hold even for a job's first runs.
    if kind == "articles":
        already = {r.figure for r in reasons}
        if figures.get("articles", 0) >= MIN_ARTICLES_FOR_FLOORS:
            for figure in ("coverage/body", "coverage/title"):
                now = figures.get(figure, 0.0)
                if figure not in already and now < policy.min_body_coverage:
                    reasons.append(Reason(figure, now, None, f"{label(figure)} {show(figure, now)}, below the floor "
                                                             f"{show(figure, policy.min_body_coverage)}"))
        elif figures.get("articles", 0) == 0 and "articles" not in already and figures.get("responses", 0) > 0:
            reasons.append(Reason("articles", 0, None, "no articles at all"))
    return reasons
