"""Schedules: which (site, kind) jobs exist and when they run, as APScheduler 3.x triggers.

A site profile may declare ``[schedule.articles]`` / ``[schedule.discussions]``; the
config file's ``[schedules.<site>.<kind>]`` is laid over it key by key. A schedule
is a cron expression (``cron``) or an interval (``interval_seconds``), with a
timezone and a jitter. Every problem is raised as :class:`ConfigError` naming the
file and the key, so the daemon refuses to start rather than run a wrong plan.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import ValidationError

from newsvault.config import Config, ScheduleConfig
from newsvault.errors import ConfigError
from newsvault.names import KINDS

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: a (site, kind) pair, its merged schedule and where it came from."""

    site: str
    kind: str
    schedule: ScheduleConfig
    source: str  # file (or variable) the timing keys came from, for messages
    key: str  # key path inside that source, e.g. "schedules.sample.articles"

    @property
    def job_id(self) -> str:
        return job_id(self.site, self.kind)

    def describe(self) -> str:
        return describe(self.schedule)

    def fingerprint(self) -> str:
        """A stable string that changes whenever the schedule changes."""
        return json.dumps(self.schedule.model_dump(exclude={"enabled"}), sort_keys=True)


def job_id(site: str, kind: str) -> str:
    return f"{site}:{kind}"


def describe(schedule: ScheduleConfig) -> str:
    """A short human text for a schedule, e.g. ``cron '*/5 * * * *' UTC``."""
    if schedule.cron:
        text = f"cron '{schedule.cron}' {schedule.timezone}"
    elif schedule.interval_seconds:
        text = f"every {schedule.interval_seconds}s"
    else:
        text = "unscheduled"
    if schedule.jitter_seconds:
        text += f" (jitter {schedule.jitter_seconds}s)"
    return text


def build_trigger(
    schedule: ScheduleConfig,
    *,
    source: str = "<schedule>",
    key: str = "schedule",
    start_date: datetime | None = None,
) -> BaseTrigger:
    """The APScheduler trigger for one schedule; ConfigError names ``source`` and ``key``."""
    if schedule.cron and schedule.interval_seconds:
        raise ConfigError(source, key, "set either cron or interval_seconds, not both")
    if not schedule.cron and not schedule.interval_seconds:
        raise ConfigError(source, key, "needs cron or interval_seconds")
    try:
        tz = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(source, f"{key}.timezone", f"unknown time zone {schedule.timezone!r}") from exc
    jitter = schedule.jitter_seconds or None
    if schedule.cron:
        try:
            trigger = CronTrigger.from_crontab(schedule.cron, timezone=tz)
        except ValueError as exc:
            raise ConfigError(
                source, f"{key}.cron", f"not a valid cron expression {schedule.cron!r}: {exc}"
            ) from exc
        # from_crontab takes no jitter; the attribute is what the trigger reads.
        trigger.jitter = jitter
        return trigger
    assert schedule.interval_seconds is not None
    return IntervalTrigger(
        seconds=schedule.interval_seconds, timezone=tz, jitter=jitter, start_date=start_date
    )


def _profile_schedules(config: Config) -> tuple[dict[tuple[str, str], tuple[dict[str, Any], str]], list[str]]:
    """Schedules declared by site profiles: {(site, kind): (set fields, profile file)}, and site names."""
    from spiders.profile import list_profiles

    found: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    names = []
    for profile in list_profiles(config.sites_dir):
        names.append(profile.name)
        for kind in KINDS:
            schedule = getattr(profile.schedule, kind, None)
            if schedule is not None:
                source = str(profile.path or config.sites_dir)
                found[(profile.name, kind)] = (schedule.model_dump(exclude_unset=True), source)
    return found, names


def collect_jobs(config: Config) -> list[JobSpec]:
    """Every enabled (site, kind) job, validated; raises ConfigError on the first bad schedule."""
    profile_schedules, known_sites = _profile_schedules(config)
    merged: dict[tuple[str, str], tuple[dict[str, Any], str, str]] = {
        (site, kind): (fields, source, f"schedule.{kind}")
        for (site, kind), (fields, source) in profile_schedules.items()
    }
    for site, overrides in config.schedules.items():
        if site not in known_sites:
            raise ConfigError(
                config.source,
                f"schedules.{site}",
                f"no site profile named {site!r} (known: {', '.join(sorted(known_sites)) or 'none'})",
            )
        for kind, override in overrides.items():
            fields, source, key = merged.get((site, kind), ({}, config.source, f"schedules.{site}.{kind}"))
            fields = dict(fields)
            set_keys = override.model_dump(exclude_unset=True)
            # A timing key in the config replaces the profile's timing entirely,
            # so a profile cron and a config interval never collide.
            if "cron" in set_keys or "interval_seconds" in set_keys:
                fields.pop("cron", None)
                fields.pop("interval_seconds", None)
                source, key = config.source, f"schedules.{site}.{kind}"
            fields.update(set_keys)
            merged[(site, kind)] = (fields, source, key)

    specs = []
    for (site, job_kind), (fields, source, key) in sorted(merged.items()):
        try:
            schedule = ScheduleConfig.model_validate(fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            sub = ".".join(str(p) for p in err["loc"])
            raise ConfigError(source, f"{key}.{sub}" if sub else key, err["msg"]) from exc
        if not schedule.enabled:
            log.info("job %s:%s is disabled in %s", site, job_kind, source)
            continue
        build_trigger(schedule, source=source, key=key)  # validate now, refuse at start
        specs.append(JobSpec(site=site, kind=job_kind, schedule=schedule, source=source, key=key))
    return specs
