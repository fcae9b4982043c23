"""When to look at a known article again: the revisit policy, its tiers and the queue it yields.

News changes mostly in the first hours after publication, so an article is
revisited often while it is young or was just seen changing, and rarely once it
has been quiet for weeks. The default tiers follow NewsDiffs: under 3 h since the
last change, every 15 min; under a day, every 30 min; under a week, every 2 h;
under 30 days, daily; older, weekly. "Since the last change" means since the
last change this archive saw, else since publication, else since first seen.

An article that answered 404/410 is removed; it is asked a few more times at a
slow rate (a site may restore it) and then leaves the queue. A connection
failure is not an answer: the article stays due, backing off, and is never
marked removed for it.

Everything here is pure: records in, a plan out. The state store supplies the
records (:func:`pipelines.state.revisit_records`), the articles spider sends
the plan's requests, and ``newsvault revisits`` prints :func:`summarise`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

RevisitMode = Literal["policy", "all", "off"]
REVISIT_MODES: tuple[str, ...] = ("policy", "all", "off")
DEFAULT_TIERS = "3h=15m, 1d=30m, 7d=2h, 30d=1d, older=7d"
DEFAULT_BUDGET = 200
DEFAULT_GONE_RECHECKS = 3
DEFAULT_GONE_INTERVAL = "1d"
DEFAULT_HOST_DOWN_FAILURES = 5
# An unreachable article waits its tier's interval doubled per failure, up to this.
MAX_UNREACHABLE_BACKOFF = timedelta(days=7)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
# A duration above ten years is a typo, and timedelta overflows not far beyond.
_MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """``"15m"``, ``"3h"``, ``"1d"``, ``"2w"``, ``"90s"`` as a timedelta; ValueError naming the text otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"bad duration {text!r} (a number and a unit: 90s, 15m, 3h, 1d, 2w)")
    value = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if value > _MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than ten years")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest unit that shows ``value`` exactly: 900 s -> ``15m``."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    # Exact, and in a form parse_duration reads back (never "1e+06s").
    return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"


@dataclass(frozen=True)
class Tier:
    """Articles quiet for less than ``below`` (None: any longer) are revisited ``every``."""

    below: timedelta | None
    every: timedelta

    @property
    def label(self) -> str:
        quiet = f"<{format_duration(self.below)}" if self.below is not None else "older"
        return f"{quiet} (every {format_duration(self.every)})"


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """``"3h=15m, 1d=30m, older=7d"``: quiet-time thresholds rising, each with its interval, ending in ``older``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no tiers (expected e.g. '3h=15m, 1d=30m, 7d=2h, 30d=1d, older=7d')")
    tiers: list[Tier] = []
    for part in text.split(","):
        below_text, sep, every_text = part.partition("=")
        if not sep:
            raise ValueError(f"bad tier {part.strip()!r} (expected QUIET=EVERY, e.g. 3h=15m)")
        if tiers and tiers[-1].below is None:
            raise ValueError("'older' must be the last tier")
        below = None if below_text.strip() == "older" else parse_duration(below_text)
        every = parse_duration(every_text)
        if every <= timedelta(0):
            raise ValueError(f"tier {part.strip()!r}: the interval must be above zero")
        if below is not None and tiers and tiers[-1].below is not None and below <= tiers[-1].below:
            raise ValueError(f"tier {part.strip()!r}: thresholds must rise")
        tiers.append(Tier(below, every))
    if tiers[-1].below is not None:
        raise ValueError("the last tier must be 'older=...' (how often articles older than every threshold are revisited)")
    return tuple(tiers)


@dataclass(frozen=True)
class RevisitPolicy:
    """How known articles the crawl did not reach are revisited (see the module doc).

    ``mode``: ``policy`` (tiers and budget), ``all`` (every known live article
    on every run, no budget: the behaviour before tiers) or ``off``.
    """

    mode: RevisitMode = "policy"
    tiers: tuple[Tier, ...] = field(default_factory=lambda: parse_tiers(DEFAULT_TIERS))
    budget: int = DEFAULT_BUDGET
    gone_rechecks: int = DEFAULT_GONE_RECHECKS
    gone_interval: timedelta = field(default_factory=lambda: parse_duration(DEFAULT_GONE_INTERVAL))
    host_down_failures: int = DEFAULT_HOST_DOWN_FAILURES

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RevisitPolicy:
        """From config-style values (``tiers`` and ``gone_interval`` as text); missing keys keep the defaults."""
        return cls().with_overrides(values)

    def with_overrides(self, values: Mapping[str, Any]) -> RevisitPolicy:
        """This policy with the keys in ``values`` that are not None replaced (a profile's [revisit] table)."""
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            if key == "tiers":
                value = parse_tiers(value)
            elif key == "gone_interval":
                value = parse_duration(value)
            elif key not in {"mode", "budget", "gone_rechecks", "host_down_failures"}:
                raise ValueError(f"unknown revisit key {key!r}")
            changes[key] = value
        return replace(self, **changes)

    def as_settings(self) -> dict[str, Any]:
        """The JSON-safe form carried in the Scrapy setting NEWSVAULT_REVISIT."""
        return {
            "mode": self.mode,
            "tiers": ", ".join(
                f"{'older' if t.below is None else format_duration(t.below)}={format_duration(t.every)}"
                for t in self.tiers
            ),
            "budget": self.budget,
            "gone_rechecks": self.gone_rechecks,
            "gone_interval": format_duration(self.gone_interval),
            "host_down_failures": self.host_down_failures,
        }

    # --- one article ---------------------------------------------------------
    def tier_index(self, quiet: timedelta) -> int:
        for index, tier in enumerate(self.tiers):
            if tier.below is None or quiet < tier.below:
                return index
        return len(self.tiers) - 1

    def due_at(self, record: RevisitRecord) -> datetime | None:
        """When the article should next be fetched; None once it has left the queue (gone long enough)."""
        schedule = self.schedule(record)
        return schedule[0] if schedule else None

    def schedule(self, record: RevisitRecord) -> tuple[datetime, timedelta] | None:
        """When the article is next due and the interval that set it (tier, gone recheck or back-off)."""
        if record.removed_at is not None:
            if record.gone_checks > self.gone_rechecks:
                return None
            due, interval = (record.gone_checked_at or record.removed_at) + self.gone_interval, self.gone_interval
        else:
            tier = self.tiers[self.tier_index(record.quiet_at_check)]
            due, interval = record.last_seen + tier.every, tier.every
        # A failed attempt (no answer, an error, not the article) backs off from the interval.
        if record.failures and record.failed_at is not None:
            backoff = min(interval * (2 ** min(record.failures, 16)), MAX_UNREACHABLE_BACKOFF)
            if record.failed_at + backoff > due:
                due, interval = record.failed_at + backoff, backoff
        return due, interval


@dataclass(frozen=True)
class RevisitRecord:
    """What the state store knows about one article, for scheduling its next visit (UTC datetimes)."""

    url: str
    first_seen: datetime
    last_seen: datetime
    published_at: datetime | None = None
    changed_at: datetime | None = None
    removed_at: datetime | None = None
    gone_checks: int = 0
    gone_checked_at: datetime | None = None
    failures: int = 0
    failed_at: datetime | None = None

    @property
    def last_change(self) -> datetime:
        """The last change seen, else publication (when it is not after the first sighting), else the first sighting."""
        if self.changed_at is not None:
            return self.changed_at
        if self.published_at is not None and self.published_at <= self.first_seen:
            return self.published_at
        return self.first_seen

    @property
    def quiet_at_check(self) -> timedelta:
        """How long the article had been unchanged when it was last seen (never negative)."""
        return max(self.last_seen - self.last_change, timedelta(0))


def parse_time(value: str | None) -> datetime | None:
    """A stored ISO 8601 time (``...Z`` or with an offset) as an aware UTC datetime; None stays None."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)  # "...Z" too, since Python 3.11
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class DueArticle:
    record: RevisitRecord
    due: datetime
    # How late at planning time, in the article's own interval: 1.0 is one whole interval late.
    lateness: float = 0.0


@dataclass
class RevisitPlan:
    """The articles one run revisits, most overdue first, and how many that were due did not fit."""

    selected: list[DueArticle]
    due: int
    deferred: int


def plan_revisits(
    records: Iterable[RevisitRecord],
    now: datetime,
    policy: RevisitPolicy,
    reached: Callable[[str], bool] = lambda url: False,
) -> RevisitPlan:
    """Pick this run's revisits: due (mode ``all``: every live one), not reached by the crawl, at most the budget.

    Most overdue first, lateness counted in each article's own interval: an
    article revisited every 15 minutes and 30 minutes late goes before a daily
    one two hours late, so a backlog of quiet articles (after a first crawl,
    or an outage) never holds back the young ones that change most.
    """
    if policy.mode == "off":
        return RevisitPlan([], 0, 0)
    due: list[DueArticle] = []
    for record in records:
        if reached(record.url):
            continue
        if policy.mode == "all":
            if record.removed_at is None:
                due.append(DueArticle(record, record.last_seen))
            continue
        schedule = policy.schedule(record)
        if schedule is not None and schedule[0] <= now:
            when, interval = schedule
            due.append(DueArticle(record, when, (now - when) / interval))
    due.sort(key=lambda d: (-d.lateness, d.due, d.record.url))
    selected = due if policy.mode == "all" else due[: policy.budget]
    return RevisitPlan(selected, len(due), len(due) - len(selected))


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


class HostWatch:
    """Counts consecutive connection failures per host; past the limit the host is down for this run."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._failures: dict[str, int] = {}
        self.down: set[str] = set()

    def answered(self, url: str) -> None:
        self._failures[host_of(url)] = 0

    def failed(self, url: str) -> bool:
        """Record a failure; True exactly when this one puts the host down."""
        host = host_of(url)
        if host in self.down:
            return False
        self._failures[host] = self._failures.get(host, 0) + 1
        if self._failures[host] >= self.limit:
            self.down.add(host)
            return True
        return False

    def is_down(self, url: str) -> bool:
        return host_of(url) in self.down


@dataclass(frozen=True)
class TierSummary:
    label: str
    articles: int
    due_now: int
    next_due: datetime | None


@dataclass(frozen=True)
class QueueSummary:
    """What ``newsvault revisits SITE`` shows."""

    now: datetime
    policy: RevisitPolicy
    articles: int
    due_now: int
    tiers: list[TierSummary]
    gone: TierSummary
    dropped: int
    unreachable: int
    next_due: list[tuple[datetime, str]]

    def as_dict(self) -> dict[str, Any]:
        def tier(t: TierSummary) -> dict[str, Any]:
            return {"tier": t.label, "articles": t.articles, "due_now": t.due_now,
                    "next_due": _iso(t.next_due)}

        return {
            "now": _iso(self.now),
            "mode": self.policy.mode,
            "budget": self.policy.budget,
            "articles": self.articles,
            "due_now": self.due_now,
            "tiers": [tier(t) for t in self.tiers],
            "gone": tier(self.gone),
            "dropped": self.dropped,
            "unreachable": self.unreachable,
            "next_due": [{"due": _iso(when), "url": url} for when, url in self.next_due],
        }


@dataclass
class _Slot:
    articles: int = 0
    due_now: int = 0
    next_due: datetime | None = None

    def add(self, when: datetime, now: datetime) -> None:
        self.articles += 1
        self.due_now += when <= now
        if self.next_due is None or when < self.next_due:
            self.next_due = when

    def summary(self, label: str) -> TierSummary:
        return TierSummary(label, self.articles, self.due_now, self.next_due)


def summarise(records: Iterable[RevisitRecord], now: datetime, policy: RevisitPolicy, *, upcoming: int = 10) -> QueueSummary:
    """The queue as the policy sees it at ``now``: per tier, how many are due and when the next one is."""
    tiers = [_Slot() for _ in policy.tiers]
    gone = _Slot()
    dropped = unreachable = articles = 0
    schedule: list[tuple[datetime, str]] = []
    for record in records:
        articles += 1
        when = policy.due_at(record)
        if when is None:
            dropped += 1
            continue
        unreachable += record.failures > 0
        slot = gone if record.removed_at is not None else tiers[policy.tier_index(record.quiet_at_check)]
        slot.add(when, now)
        schedule.append((when, record.url))
    schedule.sort()
    gone_label = f"gone ({policy.gone_rechecks} rechecks, every {format_duration(policy.gone_interval)})"
    return QueueSummary(
        now=now,
        policy=policy,
        articles=articles,
        due_now=sum(slot.due_now for slot in (*tiers, gone)),
        tiers=[slot.summary(t.label) for t, slot in zip(policy.tiers, tiers, strict=True)],
        gone=gone.summary(gone_label),
        dropped=dropped,
        unreachable=unreachable,
        next_due=[item for item in schedule if item[0] > now][:upcoming],
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
