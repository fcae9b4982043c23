"""After a run: its health figures checked against the job's good runs, and an alert when the verdict turns.

The job runner calls :func:`assess` with the crawl's stats before it records
the run (an ``ok`` run that fails a check is recorded ``degraded``), and
:func:`announce_transition` after: the first degraded run of a job and the
first good run after degraded ones are announced, never every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from newsvault.config import Config, load_config
from newsvault.errors import NewsvaultError
from newsvault.run_health import HealthPolicy, Reason, baseline_medians, check_run, health_figures
from scheduler.alerts import Alert, deliver
from scheduler.history import RunHistory, RunRecord
from spiders.profile import find_profile

log = logging.getLogger(__name__)


@dataclass
class Assessment:
    figures: dict[str, float]
    reasons: list[Reason]
    baseline_runs: int

    @property
    def degraded(self) -> bool:
        return bool(self.reasons)

    def as_health(self) -> dict[str, Any]:
        """What the run history keeps: the figures, one line per reason and the figures that failed."""
        return {"figures": self.figures, "reasons": [r.text for r in self.reasons],
                "failed": sorted({r.figure for r in self.reasons}), "baseline_runs": self.baseline_runs}


def site_health_policy(config: Config, site: str) -> HealthPolicy:
    """The config's [health] under the site profile's own [health] (the config's alone if the profile is gone)."""
    policy = config.health.policy()
    try:
        return find_profile(site, config.sites_dir).health.over(policy)
    except NewsvaultError:
        return policy


def assess(history: RunHistory, job_id: str, site: str, kind: str, stats: dict[str, Any],
           config: Config) -> Assessment:
    """The run's figures and the reasons it is degraded, against the job's latest good runs."""
    policy = site_health_policy(config, site)
    figures = health_figures(stats, kind)
    baseline = history.good_figures(job_id, policy.baseline_runs)
    reasons = check_run(figures, baseline, kind, policy)
    return Assessment(figures, reasons, len(baseline))


@dataclass
class JobHealth:
    """What ``newsvault health`` shows of one job: its latest judged run beside the baseline."""

    run: RunRecord
    figures: dict[str, float]
    medians: dict[str, float]
    baseline_runs: int

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.run.job_id, "run_id": self.run.run_id, "status": self.run.status,
                "finished_at": self.run.finished_at, "reasons": self.run.reasons, "figures": self.figures,
                "baseline": self.medians, "baseline_runs": self.baseline_runs}


def job_health(history: RunHistory, config: Config, *, site: str | None = None) -> list[JobHealth]:
    """Per job (of ``site``), the latest ok or degraded run with its figures and the medians of its good runs."""
    out = []
    for job_id, run in sorted(history.last_judged_runs().items()):
        if site and run.site != site:
            continue
        policy = site_health_policy(config, run.site)
        baseline = history.good_figures(job_id, policy.baseline_runs)
        out.append(JobHealth(run, dict((run.health or {}).get("figures") or {}), baseline_medians(baseline),
                             len(baseline)))
    return out


def load_job_config(config_file: str | None, state_dir: str) -> Config:
    return load_config(config_file, overrides={"state.dir": state_dir})


def announce_transition(history: RunHistory, run: RunRecord, config: Config) -> Alert | None:
    """Alert on the first degraded run of a job and on its recovery; None when the verdict did not turn."""
    previous = history.previous_verdict(run.job_id, run.run_id)
    if run.status == "degraded" and previous != "degraded":
        event = "degraded"
    elif run.status == "ok" and previous == "degraded":
        event = "recovered"
    else:
        return None
    alert = Alert(event=event, job_id=run.job_id, site=run.site, kind=run.kind, run_id=run.run_id,
                  status=run.status, reasons=run.reasons, finished_at=run.finished_at,
                  figures=(run.health or {}).get("figures") or {})
    log.warning("health %s: %s run %s%s", event, run.job_id, run.run_id,
                f": {'; '.join(run.reasons)}" if run.reasons else "")
    deliver(alert, config.alerts)
    return alert
