"""Schedules: merging profile and config schedules, building and validating triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsvault.config import ScheduleConfig, load_config
from newsvault.errors import ConfigError
from scheduler.schedules import build_trigger, collect_jobs, describe

PROFILE = """\
name = "{name}"
allowed_domains = ["127.0.0.1"]
[start_urls]
front = ["http://127.0.0.1:8000/"]
[articles]
url_patterns = ['/news/\\d+\\.html']
[schedule.articles]
cron = "0 */2 * * *"
timezone = "Europe/Moscow"
[schedule.discussions]
interval_seconds = 600
"""


@pytest.fixture
def sites_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "sites"
    directory.mkdir()
    (directory / "alpha.toml").write_text(PROFILE.format(name="alpha"), encoding="utf-8")
    return directory


def _config(tmp_path: Path, sites_dir: Path, body: str = ""):
    path = tmp_path / "newsvault.toml"
    path.write_text(f'[sites]\ndir = "{sites_dir}"\n{body}', encoding="utf-8")
    return load_config(path, env={})


def test_cron_trigger_fires_on_schedule_in_its_timezone() -> None:
    trigger = build_trigger(ScheduleConfig(cron="30 6 * * *", timezone="Europe/Moscow"))
    assert isinstance(trigger, CronTrigger)
    now = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, now)
    assert fire is not None
    assert fire.astimezone(UTC) == datetime(2026, 11, 25, 3, 30, tzinfo=UTC)


def test_interval_trigger_with_jitter_stays_within_jitter() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = build_trigger(ScheduleConfig(interval_seconds=60, jitter_seconds=5), start_date=start)
    assert isinstance(trigger, IntervalTrigger)
    fires = [trigger.get_next_fire_time(start + timedelta(seconds=60 * i), start + timedelta(seconds=60 * i))
             for i in range(20)]
    for i, fire in enumerate(fires):
        assert fire is not None
        expected = start + timedelta(seconds=60 * (i + 1))
        assert abs((fire - expected).total_seconds()) <= 5


@pytest.mark.parametrize(
    ("schedule", "key", "fragment"),
    [
        (ScheduleConfig(cron="*/5 * * *"), "schedule.cron", "not a valid cron expression"),
        (ScheduleConfig(cron="61 * * * *"), "schedule.cron", "not a valid cron expression"),
        (ScheduleConfig(cron="* * * * *", interval_seconds=5), "schedule", "not both"),
        (ScheduleConfig(), "schedule", "needs cron or interval_seconds"),
        (ScheduleConfig(interval_seconds=5, timezone="Mars/Olympus"), "schedule.timezone", "unknown time zone"),
    ],
)
def test_bad_schedules_are_refused_naming_the_key(schedule: ScheduleConfig, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_trigger(schedule, source="f.toml", key="schedule")
    assert info.value.source == "f.toml"
    assert info.value.key == key
    assert fragment in str(info.value)


def test_profile_schedules_become_jobs(tmp_path: Path, sites_dir: Path) -> None:
    jobs = {spec.job_id: spec for spec in collect_jobs(_config(tmp_path, sites_dir))}
    assert set(jobs) == {"alpha:articles", "alpha:discussions"}
    assert jobs["alpha:articles"].schedule.cron == "0 */2 * * *"
    assert jobs["alpha:articles"].schedule.timezone == "Europe/Moscow"
    assert jobs["alpha:discussions"].schedule.interval_seconds == 600
    assert jobs["alpha:articles"].source.endswith("alpha.toml")


def test_config_overrides_profile_timing_and_can_disable(tmp_path: Path, sites_dir: Path) -> None:
    config = _config(tmp_path, sites_dir, """
[schedules.alpha.articles]
interval_seconds = 45
[schedules.alpha.discussions]
enabled = false
""")
    jobs = {spec.job_id: spec for spec in collect_jobs(config)}
    assert set(jobs) == {"alpha:articles"}
    articles = jobs["alpha:articles"]
    # The config's interval replaces the profile's cron; the profile's timezone stays.
    assert articles.schedule.interval_seconds == 45 and articles.schedule.cron is None
    assert articles.schedule.timezone == "Europe/Moscow"
    assert articles.source == config.source
    assert describe(articles.schedule) == "every 45s"


def test_bad_config_schedule_names_file_and_key(tmp_path: Path, sites_dir: Path) -> None:
    config = _config(tmp_path, sites_dir, '[schedules.alpha.articles]\ncron = "every day"\n')
    with pytest.raises(ConfigError) as info:
        collect_jobs(config)
    assert info.value.source == config.source
    assert info.value.key == "schedules.alpha.articles.cron"


def test_schedule_for_unknown_site_is_refused(tmp_path: Path, sites_dir: Path) -> None:
    config = _config(tmp_path, sites_dir, "[schedules.nosuch.articles]\ninterval_seconds = 60\n")
    with pytest.raises(ConfigError, match="no site profile named 'nosuch'"):
        collect_jobs(config)


def test_fingerprint_changes_with_the_schedule(tmp_path: Path, sites_dir: Path) -> None:
    before = {s.job_id: s.fingerprint() for s in collect_jobs(_config(tmp_path, sites_dir))}
    config = _config(tmp_path, sites_dir, "[schedules.alpha.discussions]\ninterval_seconds = 30\n")
    after = {s.job_id: s.fingerprint() for s in collect_jobs(config)}
    assert before["alpha:articles"] == after["alpha:articles"]
    assert before["alpha:discussions"] != after["alpha:discussions"]
