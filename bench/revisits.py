"""Revisit policy over a simulated week: requests per run, edits captured, and how late, per tier.

A 5,000-article sample site with realistic timed edits (samplesite/edits.py),
its ticks adding and removing articles, is crawled every 30 simulated minutes
for a week, after a first full crawl. Each run reaches the newest articles
from the front page (its first two listing pages) and then revisits known
articles as the policy says. Both sides run in this process, over the same
site and edits: the tier policy with its budget, and mode ``all`` (every known
article on every run, the behaviour before the tiers).

The crawls are simulated: no HTTP, since a week of runs over 5,000 articles
in mode ``all`` would be 1.7 million requests. What is real is the decision
and its state: the state store (SQLite, :class:`pipelines.state.SQLiteStateStore`),
the records it gives, :func:`newsvault.revisit.plan_revisits` with the
policy and budget, and the content identity of what a fetch at that moment
would return (the article's version from the sample site's ground truth).

An edit is *captured* when a fetch returns its version before the next edit
replaces it; its delay is fetch time minus edit time. Its tier is the
policy's tier for the article's quiet time when the edit was made, counted as
the policy counts it: since the last change this side's archive saw, else
since publication (an edit made before the first crawl is a change nobody
saw). An edited article is *missed* when its
final edit of the week is not captured within its tier's interval plus one
run period (edits whose deadline falls after the week are not judged).

    python bench/revisits.py [--quick] [--articles N] [--days D] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import Table, verdict, write_json

from newsvault.revisit import RevisitPolicy, plan_revisits
from pipelines.state import SQLiteStateStore
from samplesite.edits import TimedEdit
from samplesite.model import PAGE_SIZE, TICK, SampleSite, iso_utc

SITE = "sample"
RUN_EVERY = timedelta(minutes=30)
FRONT_PAGES = 2


@dataclass
class Fetch:
    at: datetime
    version: int


@dataclass
class Side:
    """One policy's week: its state store, every fetch per article, requests per run."""

    name: str
    policy: RevisitPolicy
    store: SQLiteStateStore
    fetches: dict[int, list[Fetch]] = field(default_factory=dict)
    revisits_per_run: list[int] = field(default_factory=list)
    due_per_run: list[int] = field(default_factory=list)
    removed: int = 0
    seconds: float = 0.0


class World:
    """The site at any simulated moment: which articles are live, and which version each shows."""

    def __init__(self, articles: int) -> None:
        self.site = SampleSite(articles, edits="realistic")
        self.start = self.site.now(0)
        self._edits: dict[int, tuple[TimedEdit, ...]] = {}

    def tick(self, at: datetime) -> int:
        return int((at - self.start) / TICK)

    def edits(self, article_id: int) -> tuple[TimedEdit, ...]:
        if article_id not in self._edits:
            self._edits[article_id] = self.site.timed_edits(article_id)
        return self._edits[article_id]

    def version(self, article_id: int, at: datetime) -> int:
        return sum(1 for e in self.edits(article_id) if e.at <= at)

    def front_page(self, at: datetime) -> list[int]:
        tick = self.tick(at)
        ids = [i for page in range(1, FRONT_PAGES + 1) for i in self.site.listing(page, tick=tick)]
        # An article of this tick counts once it is published.
        return [i for i in ids if self.site.published_at(i) <= at]

    def url(self, article_id: int) -> str:
        return self.site.canonical_url(article_id)

    def article_id(self, url: str) -> int:
        return int(url.rsplit("/", 1)[1].split("-", 1)[0])


def fetch(world: World, side: Side, article_id: int, at: datetime) -> None:
    """What the change-tracking stage records for one fetched article (a 410 for a removed one)."""
    url = world.url(article_id)
    if not world.site.is_live(article_id, world.tick(at)):
        if side.store.mark_removed(SITE, url, 410, iso_utc(at)):
            side.removed += 1
        return
    version = world.version(article_id, at)
    side.fetches.setdefault(article_id, []).append(Fetch(at, version))
    side.store.record_article(SITE, url, f"{article_id}.{version}", iso_utc(at), {},
                              published_at=iso_utc(world.site.published_at(article_id)))


def run(world: World, side: Side, at: datetime, *, first: bool = False) -> None:
    started = time.perf_counter()
    if first:  # the first crawl: the sitemap, every live article
        reached = world.site.live_ids(world.tick(at))
    else:
        reached = world.front_page(at)
    for article_id in reached:
        fetch(world, side, article_id, at)
    side.store.commit()
    if not first:
        urls = {world.url(i) for i in reached}
        plan = plan_revisits(side.store.revisit_records(SITE), at, side.policy, reached=urls.__contains__)
        for due in plan.selected:
            fetch(world, side, world.article_id(due.record.url), at)
        side.store.commit()
        side.revisits_per_run.append(len(plan.selected))
        side.due_per_run.append(plan.due)
    side.seconds += time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class EditOutcome:
    edit: TimedEdit
    tier: int
    captured_at: datetime | None
    final: bool


def last_change_seen(world: World, side: Side, article_id: int, before: datetime) -> datetime:
    """The last change this side's fetches saw before ``before``, else publication (if not after the first fetch)."""
    fetches = [f for f in side.fetches.get(article_id, []) if f.at < before]
    seen = [b.at for a, b in itertools.pairwise(fetches) if b.version != a.version]
    if seen:
        return seen[-1]
    published = world.site.published_at(article_id)
    return published if not fetches or published <= fetches[0].at else fetches[0].at


def judge(world: World, side: Side, edits: Iterable[TimedEdit], policy: RevisitPolicy) -> list[EditOutcome]:
    outcomes = []
    for edit in edits:
        history = world.edits(edit.article_id)
        tier = policy.tier_index(edit.at - last_change_seen(world, side, edit.article_id, edit.at))
        replaced_at = history[edit.version].at if edit.version < len(history) else None
        captured = next(
            (f.at for f in side.fetches.get(edit.article_id, []) if f.at >= edit.at and f.version == edit.version
             and (replaced_at is None or f.at < replaced_at)), None,
        )
        outcomes.append(EditOutcome(edit, tier, captured, final=False))
    last_of_article: dict[int, EditOutcome] = {}
    for outcome in outcomes:
        last_of_article[outcome.edit.article_id] = outcome
    for outcome in last_of_article.values():
        outcome.final = True
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 articles over one day")
    parser.add_argument("--articles", type=int, help="site size (default 5,000)")
    parser.add_argument("--days", type=float, help="simulated days (default 7)")
    parser.add_argument("--budget", type=int, default=RevisitPolicy().budget, help="revisits per run (default 200)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    articles = args.articles or (1_000 if args.quick else 5_000)
    days = args.days or (1.0 if args.quick else 7.0)

    world = World(articles)
    start, end = world.start, world.start + timedelta(days=days)
    tiered = RevisitPolicy(budget=args.budget)
    with tempfile.TemporaryDirectory(prefix="nv-revisits-") as tmp:
        sides = [
            Side("tiers", tiered, SQLiteStateStore(Path(tmp) / "tiers.sqlite")),
            Side("all (before tiers)", RevisitPolicy(mode="all"), SQLiteStateStore(Path(tmp) / "all.sqlite")),
        ]
        runs = 0
        for side in sides:
            run(world, side, start, first=True)
        at = start + RUN_EVERY
        while at <= end:
            runs += 1
            for side in sides:
                run(world, side, at)
            if runs % 48 == 0:
                print(f"  day {runs // 48} of {days:g} simulated", file=sys.stderr)
            at += RUN_EVERY
        for side in sides:
            side.store.close()

    week_edits = [e for i in range(1, world.site.max_id(world.tick(end)) + 1) for e in world.edits(i)
                  if start < e.at <= end]
    print(f"revisits: {articles:,}-article sample site, realistic edits, a run every 30 min for {days:g} days "
          f"({runs} runs), front page {FRONT_PAGES * PAGE_SIZE} newest; {len(week_edits)} edits of "
          f"{len({e.article_id for e in week_edits})} articles in the period")
    table = Table(["side", "revisits per run p50", "p95", "max", "due per run max", "edits captured",
                   "edited articles missed", "judged", "removals seen", "sim s"])
    per_tier = Table(["side", "tier", "edits", "captured", "delay p50 min", "delay p95 min", "delay max min"])
    results: dict[str, Any] = {}
    missed_total = 0
    for side in sides:
        outcomes = judge(world, side, week_edits, tiered)
        captured = [o for o in outcomes if o.captured_at is not None]
        judged = missed = 0
        for o in outcomes:
            if not o.final:
                continue
            deadline = o.edit.at + tiered.tiers[o.tier].every + RUN_EVERY
            if deadline > end or not world.site.is_live(o.edit.article_id, world.tick(deadline)):
                continue
            judged += 1
            if o.captured_at is None or o.captured_at > deadline:
                missed += 1
        if side.policy.mode == "policy":
            missed_total = missed
        table.add(side.name, statistics.median(side.revisits_per_run), percentile(side.revisits_per_run, 0.95),
                  max(side.revisits_per_run), max(side.due_per_run),
                  f"{len(captured)}/{len(outcomes)} ({len(captured) / max(len(outcomes), 1):.1%})",
                  missed, judged, side.removed, side.seconds)
        tiers_out = []
        for index, tier in enumerate(tiered.tiers):
            of_tier = [o for o in outcomes if o.tier == index]
            delays = [(o.captured_at - o.edit.at).total_seconds() / 60 for o in of_tier if o.captured_at]
            per_tier.add(side.name, tier.label, len(of_tier), len(delays), percentile(delays, 0.5),
                         percentile(delays, 0.95), max(delays, default=0.0))
            tiers_out.append({"tier": tier.label, "edits": len(of_tier), "captured": len(delays),
                              "delay_p50_min": percentile(delays, 0.5), "delay_p95_min": percentile(delays, 0.95)})
        results[side.name] = {
            "revisits_per_run": side.revisits_per_run, "captured": len(captured), "edits": len(outcomes),
            "missed": missed, "judged": judged, "removed": side.removed, "tiers": tiers_out,
        }
    print(table.render())
    print("capture delay per tier (the tier of the article's quiet time when it was edited):")
    print(per_tier.render())
    within_budget = max(sides[0].revisits_per_run) <= args.budget
    print(f"tiers: at most {max(sides[0].revisits_per_run)} revisits per run, budget {args.budget}: "
          f"{verdict(within_budget)}; edited articles missed (final edit not captured within tier interval + "
          f"one run): {missed_total}: {verdict(missed_total == 0)}")
    write_json(args.json, {"articles": articles, "days": days, "runs": runs, "budget": args.budget,
                           "sides": results, "met": within_budget and missed_total == 0})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
