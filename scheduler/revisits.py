"""The revisit queue of one site as the next crawl will see it (what `newsvault revisits SITE` prints)."""

from __future__ import annotations

from datetime import UTC, datetime

from newsvault.config import Config
from newsvault.revisit import QueueSummary, RevisitPolicy, summarise
from pipelines.state import revisit_records
from spiders.profile import find_profile


def site_policy(config: Config, site: str) -> RevisitPolicy:
    """The config's [revisit] (off with crawl.recheck_known = false) under the site profile's own [revisit]."""
    profile = find_profile(site, config.sites_dir)
    return profile.revisit.over(config.revisit.policy(enabled=config.crawl.recheck_known))


def revisit_queue(config: Config, site: str, *, now: datetime | None = None, upcoming: int = 10) -> QueueSummary:
    """Per tier, how many known articles of ``site`` are due at ``now`` (default: now) and when the next ones are."""
    policy = site_policy(config, site)
    records = revisit_records(config.state_dir, site, url=config.cluster.url_value)
    return summarise(records, now or datetime.now(UTC), policy, upcoming=upcoming)
