"""Run-health figures and checks as pure logic: coverage, extraction path, bans, counts, floors."""

from __future__ import annotations

import pytest

from newsvault.run_health import HealthPolicy, check_run, health_figures

POLICY = HealthPolicy()


def stats(articles: int = 100, *, selectors: int | None = None, authors: int | None = None, responses: int = 120,
          status_403: int = 0, status_429: int = 0, disallowed: int = 0) -> dict[str, int | float]:
    """Crawl stats as the clean stage and Scrapy leave them."""
    out: dict[str, int | float] = {
        "downloader/response_count": responses,
        "elapsed_time_seconds": 10.0,
        "newsvault/coverage/articles": articles,
        "newsvault/new/article": 3,
    }
    for name in ("title", "lead", "body", "published_at", "tags", "section", "image_url"):
        out[f"newsvault/coverage/{name}"] = articles
    out["newsvault/coverage/authors"] = articles if authors is None else authors
    chosen = articles if selectors is None else selectors
    out["newsvault/extraction/selectors"] = chosen
    out["newsvault/extraction/trafilatura"] = articles - chosen
    if status_403:
        out["downloader/response_status_count/403"] = status_403
    if status_429:
        out["downloader/response_status_count/429"] = status_429
    if disallowed:
        out["newsvault/pages/disallowed"] = disallowed
    return out


def good_history(runs: int = 5) -> list[dict[str, float]]:
    return [health_figures(stats(100 + i), "articles") for i in range(runs)]


def test_figures_are_shares_of_articles_and_responses() -> None:
    figures = health_figures(stats(80, selectors=60, authors=40, status_403=30), "articles")
    assert figures["articles"] == 80 and figures["new_articles"] == 3
    assert figures["coverage/authors"] == 0.5 and figures["coverage/body"] == 1.0
    assert figures["body_from/selectors"] == 0.75 and figures["body_from/trafilatura"] == 0.25
    assert figures["responses_403"] == 0.25 and figures["pages_per_second"] == 12.0
    errors = health_figures({**stats(), "downloader/response_status_count/500": 12,
                             "downloader/response_status_count/404": 5, "item_scraped_count": 90}, "articles")
    assert errors["responses_error"] == 0.1 and errors["items"] == 90  # a 404 is a removal, not an error
    discussions = health_figures({"newsvault/new/discussion": 5, "newsvault/unchanged/discussion": 7}, "discussions")
    assert discussions["discussion_entries"] == 12 and "coverage/body" not in discussions


def test_a_redesign_names_the_fields_that_fell_and_the_extraction_shift() -> None:
    redesign = health_figures(stats(100, selectors=0, authors=0), "articles")
    reasons = [r.text for r in check_run(redesign, good_history(), "articles", POLICY)]
    assert "body from selectors 100% -> 0% (median of 5 runs)" in reasons
    assert "authors coverage 100% -> 0% (median of 5 runs)" in reasons
    assert len(reasons) == 2


def test_bans_empty_listings_and_robots_have_their_own_reasons() -> None:
    banned = health_figures(stats(10, responses=120, status_403=60, status_429=40), "articles")
    texts = [r.text for r in check_run(banned, good_history(), "articles", POLICY)]
    assert "403 responses 0% -> 50% (median of 5 runs)" in texts and "429 responses 0% -> 33% (median of 5 runs)" in texts
    assert any(t.startswith("articles 102 -> 10") for t in texts)
    empty = health_figures(stats(2), "articles")
    assert [r.figure for r in check_run(empty, good_history(), "articles", POLICY)] == ["articles"]
    robots = health_figures(stats(100, disallowed=40), "articles")
    assert [r.figure for r in check_run(robots, good_history(), "articles", POLICY)] == ["robots_refused"]


def test_no_false_alarm_on_normal_variation() -> None:
    normal = health_figures(stats(95, selectors=90, authors=85, status_403=2), "articles")
    assert check_run(normal, good_history(), "articles", POLICY) == []


def test_floors_hold_without_history_and_relative_checks_wait_for_a_baseline() -> None:
    weak = health_figures(stats(100, selectors=0), "articles")
    assert check_run(weak, [], "articles", POLICY) == []  # a body from the fallbacks is still a body
    no_bodies = dict(health_figures(stats(100), "articles"), **{"coverage/body": 0.2})
    assert [r.text for r in check_run(no_bodies, [], "articles", POLICY)] == ["body coverage 20%, below the floor 50%"]
    assert [r.text for r in check_run(health_figures(stats(0), "articles"), [], "articles", POLICY)] == ["no articles at all"]
    # Two good runs are not a baseline yet (min_baseline_runs = 3): only the floors apply.
    assert check_run(weak, good_history(2), "articles", POLICY) == []
    assert check_run(weak, good_history(3), "articles", POLICY)
    assert check_run(no_bodies, good_history(), "articles", HealthPolicy(enabled=False)) == []


def test_policy_overrides_and_refuses_unknown_keys() -> None:
    loose = POLICY.with_overrides({"max_share_drop": 0.9, "baseline_runs": None})
    assert loose.max_share_drop == 0.9 and loose.baseline_runs == POLICY.baseline_runs
    redesign = health_figures(stats(100, selectors=0, authors=0), "articles")
    assert check_run(redesign, good_history(), "articles", loose)  # 100 points still fall by more than 90
    assert not check_run(health_figures(stats(100, selectors=20), "articles"), good_history(), "articles", loose)
    with pytest.raises(ValueError, match="unknown health keys: nonsense"):
        POLICY.with_overrides({"nonsense": 1})


def test_alerts_config_refuses_a_password_login_without_starttls() -> None:
    from newsvault.config import AlertsConfig

    with pytest.raises(ValueError, match="smtp_starttls"):
        AlertsConfig(smtp_host="mail", mail_to=["a@b"], smtp_user="newsvault")
    with pytest.raises(ValueError, match="no recipient"):
        AlertsConfig(smtp_host="mail")
    with pytest.raises(ValueError, match="http"):
        AlertsConfig(webhook_url="ftp://hooks/x")
    assert AlertsConfig(smtp_host="mail", mail_to=["a@b"], smtp_user="nv", smtp_starttls=True).smtp_user == "nv"
