"""The revisit policy as pure logic: tiers, due times, gone and unreachable, the budget, the queue summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsvault.config import load_config
from newsvault.errors import ConfigError, ProfileError
from newsvault.revisit import (
    MAX_UNREACHABLE_BACKOFF,
    HostWatch,
    RevisitPolicy,
    RevisitRecord,
    format_duration,
    parse_duration,
    parse_tiers,
    plan_revisits,
    summarise,
)
from spiders.profile import RevisitProfileConfig, load_profile

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def record(url: str = "http://s/a", *, seen_ago: timedelta = H, quiet: timedelta = timedelta(0), **fields) -> RevisitRecord:
    """An article last seen ``seen_ago`` before NOW, unchanged for ``quiet`` before that sighting."""
    last_seen = NOW - seen_ago
    return RevisitRecord(url=url, first_seen=last_seen - quiet, last_seen=last_seen, **fields)


def test_durations_and_tiers_parse_and_refuse() -> None:
    assert parse_duration("15m") == timedelta(minutes=15) and parse_duration("2w") == timedelta(days=14)
    assert format_duration(timedelta(hours=3)) == "3h" and format_duration(timedelta(seconds=90)) == "90s"
    for odd in (1_000_001, 0.5, 86_399):  # written as settings and read back by the crawl: exactly
        assert parse_duration(format_duration(timedelta(seconds=odd))) == timedelta(seconds=odd)
    tiers = parse_tiers("3h=15m, 1d=30m, 7d=2h, 30d=1d, older=7d")
    assert [t.every for t in tiers] == [timedelta(minutes=15), timedelta(minutes=30), 2 * H, 24 * H, 7 * 24 * H]
    for bad, why in [("3h=15m", "last tier"), ("1d=1h, 3h=15m, older=1d", "rise"), ("older=1d, 3h=1h", "last"),
                     ("3h=0m, older=1d", "above zero"), ("3h, older=1d", "QUIET=EVERY"), ("x=1h, older=1d", "bad duration"),
                     ("", "no tiers"), ("99999d=1h, older=1d", "ten years")]:
        with pytest.raises(ValueError, match=why):
            parse_tiers(bad)


def test_newsdiffs_tiers_by_time_since_the_last_change() -> None:
    policy = RevisitPolicy()
    cases = [  # quiet when last seen -> interval after that sighting
        (timedelta(minutes=20), timedelta(minutes=15)),
        (5 * H, timedelta(minutes=30)),
        (3 * 24 * H, 2 * H),
        (10 * 24 * H, 24 * H),
        (60 * 24 * H, 7 * 24 * H),
    ]
    for quiet, every in cases:
        r = record(quiet=quiet)
        assert policy.due_at(r) == r.last_seen + every, quiet
    # A change seen resets the clock: quiet for 40 days, then changed an hour before the last sighting.
    changed = record(quiet=40 * 24 * H, changed_at=NOW - 2 * H)
    assert changed.quiet_at_check == H and policy.due_at(changed) == changed.last_seen + timedelta(minutes=15)


def test_publication_counts_only_when_it_is_not_after_the_first_sighting() -> None:
    policy = RevisitPolicy()
    # Found an hour after it was published two weeks ago: quiet for two weeks, daily.
    old = record(quiet=timedelta(0), published_at=NOW - H - 14 * 24 * H)
    assert policy.due_at(old) == old.last_seen + 24 * H
    # A published date in the future (a wrong page) is not believed: first seen counts.
    future = record(quiet=timedelta(0), published_at=NOW + 24 * H)
    assert policy.due_at(future) == future.last_seen + timedelta(minutes=15)


def test_gone_is_rechecked_slowly_then_dropped() -> None:
    policy = RevisitPolicy(gone_rechecks=2, gone_interval=24 * H)
    removed = record(removed_at=NOW - 2 * H, gone_checks=1)
    assert policy.due_at(removed) == NOW + 22 * H
    rechecked = record(removed_at=NOW - 50 * H, gone_checks=2, gone_checked_at=NOW - 25 * H)
    assert policy.due_at(rechecked) == NOW - H
    assert policy.due_at(record(removed_at=NOW - 90 * H, gone_checks=3)) is None  # first answer + 2 rechecks
    # Mode "all" (every live article each run) leaves removed ones out, as before the tiers.
    plan = plan_revisits([removed, rechecked, record("http://s/b", seen_ago=H)], NOW, RevisitPolicy(mode="all"))
    assert [d.record.url for d in plan.selected] == ["http://s/b"]


def test_unreachable_backs_off_doubling_and_capped() -> None:
    policy = RevisitPolicy()
    one = record(quiet=timedelta(0), seen_ago=10 * H, failures=1, failed_at=NOW - H)
    assert policy.due_at(one) == NOW - H + timedelta(minutes=30)
    three = record(quiet=timedelta(0), seen_ago=10 * H, failures=3, failed_at=NOW - H)
    assert policy.due_at(three) == NOW - H + timedelta(minutes=120)
    many = record(quiet=timedelta(0), seen_ago=10 * H, failures=40, failed_at=NOW - H)
    assert policy.due_at(many) == NOW - H + MAX_UNREACHABLE_BACKOFF
    assert many.removed_at is None


def test_plan_takes_the_most_overdue_within_the_budget_and_skips_reached() -> None:
    records = [record(f"http://s/{i}", seen_ago=timedelta(minutes=16 + i)) for i in range(10)]
    records.append(record("http://s/fresh", seen_ago=timedelta(minutes=5)))
    plan = plan_revisits(records, NOW, RevisitPolicy(budget=3), reached=lambda url: url == "http://s/9")
    assert [d.record.url for d in plan.selected] == ["http://s/8", "http://s/7", "http://s/6"]
    assert plan.due == 9 and plan.deferred == 6
    assert plan_revisits(records, NOW, RevisitPolicy(mode="off")).selected == []
    everything = plan_revisits(records, NOW, RevisitPolicy(mode="all", budget=3))
    assert len(everything.selected) == 11 and everything.deferred == 0  # no budget in mode "all"


def test_host_watch_counts_consecutive_failures_per_host() -> None:
    watch = HostWatch(3)
    assert not watch.failed("http://a/1") and not watch.failed("http://a/2")
    watch.answered("http://a/3")  # an answer resets the run of failures
    assert not watch.failed("http://a/4") and not watch.failed("http://a/5")
    assert not watch.failed("http://b/1")
    assert watch.failed("http://a/6") is True  # the third in a row: down, said once
    assert watch.failed("http://a/7") is False and watch.is_down("http://a/8") and not watch.is_down("http://b/2")


def test_summary_counts_per_tier_and_lists_the_next_due() -> None:
    policy = RevisitPolicy()
    records = [
        record("http://s/young-due", seen_ago=H),
        record("http://s/young-later", seen_ago=timedelta(minutes=5)),
        record("http://s/week", seen_ago=H, quiet=3 * 24 * H),
        record("http://s/gone", removed_at=NOW - H, gone_checks=1),
        record("http://s/dropped", removed_at=NOW - 99 * 24 * H, gone_checks=9),
        record("http://s/unreachable", seen_ago=H, failures=1, failed_at=NOW - timedelta(minutes=1)),
    ]
    summary = summarise(records, NOW, policy)
    assert summary.articles == 6 and summary.dropped == 1 and summary.unreachable == 1
    assert summary.due_now == 1
    first = summary.tiers[0]
    assert first.articles == 3 and first.due_now == 1 and first.next_due == NOW - timedelta(minutes=45)
    assert summary.tiers[2].articles == 1 and summary.tiers[2].next_due == NOW + H
    assert summary.gone.articles == 1 and summary.gone.due_now == 0
    assert [url for _, url in summary.next_due][:2] == ["http://s/young-later", "http://s/unreachable"]
    as_json = summary.as_dict()
    assert as_json["tiers"][0]["tier"] == "<3h (every 15m)" and as_json["next_due"][0]["due"] == "2026-12-02T12:10:00Z"


def test_bad_revisit_settings_are_refused_at_load_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "newsvault.toml"
    config.write_text('[revisit]\ntiers = "3h=15m, 1d=30m"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"newsvault\.toml.*revisit\.tiers"):
        load_config(config, env={})
    config.write_text('[revisit]\nbudget = -1\n', "utf-8")
    with pytest.raises(ConfigError, match=r"revisit\.budget"):
        load_config(config, env={})
    assert load_config(None, env={"NEWSVAULT_REVISIT_BUDGET": "5"}).revisit.budget == 5
    sites = tmp_path / "sites"
    sites.mkdir()
    profile = (Path(__file__).resolve().parents[1] / "sites" / "sample.toml").read_text("utf-8")
    (sites / "sample.toml").write_text(profile + '\n[revisit]\ngone_interval = "soon"\n', "utf-8")
    with pytest.raises(ProfileError, match=r"sample\.toml.*revisit\.gone_interval"):
        load_profile(sites / "sample.toml")


def test_a_failed_recheck_of_a_removed_article_backs_off_too() -> None:
    policy = RevisitPolicy(gone_interval=24 * H)
    gone = record(removed_at=NOW - 30 * H, gone_checks=1, failures=2, failed_at=NOW - H)
    assert policy.due_at(gone) == NOW - H + 4 * 24 * H


def test_profile_revisit_table_overrides_the_config() -> None:
    configured = RevisitPolicy(budget=50)
    site = RevisitProfileConfig(budget=10, tiers="1h=5m, older=1d")
    policy = site.over(configured)
    assert policy.budget == 10 and len(policy.tiers) == 2 and policy.gone_rechecks == configured.gone_rechecks
    assert RevisitProfileConfig(mode="off").over(configured).mode == "off"
    # Off in the config (or crawl.recheck_known = false) is off for every site.
    assert RevisitProfileConfig(mode="policy", budget=5).over(RevisitPolicy(mode="off")).mode == "off"
