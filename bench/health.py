"""Run health: no false alarm over a soak of normal runs, what each switch trips, and what the checks cost.

50 runs of the sample site's articles job through the daemon's job runner
(each a real child crawl of a 300-article site on loopback), the site's clock
one tick further every run (edits, removals, new articles, moving threads):
every run must be ``ok``. Then the redesign, the ban and the empty listings,
each for one run, each followed by a normal run: each must be ``degraded``
with its own reason, and the run after it ``ok``. The checks' cost per run
(figures, baseline query and checks, timed on each run's own stats) is
printed as a share of the run's time.

    python bench/health.py [--runs N] [--articles N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import FAST_CRAWL_ENV, REPO_ROOT, Table, verdict, write_json

from samplesite.model import SampleSite
from samplesite.server import SiteServer
from scheduler.history import open_history
from scheduler.jobs import run_job
from scheduler.run_checks import assess, load_job_config

SWITCHES = ("redesign_from_tick", "ban_from_tick", "empty_from_tick")


def soak(articles: int, runs: int) -> list[dict[str, Any]]:
    """``runs`` normal runs one tick apart, then each switch for one run and a normal run after it."""
    os.environ.update(FAST_CRAWL_ENV)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    site = SampleSite(articles)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nv-health-") as tmp, SiteServer(site) as server:
        root = Path(tmp)
        config_file = root / "newsvault.toml"
        config_file.write_text("", "utf-8")
        state, archive = root / "state", root / "archive"
        config = load_job_config(str(config_file), str(state))

        def one(phase: str) -> None:
            started = time.perf_counter()
            row = run_job("sample", "articles", config_file=str(config_file), state_dir=str(state),
                          archive_url=str(archive), crawl_timeout=600, start_urls=[server.base_url + "/"],
                          trigger="manual")
            wall = time.perf_counter() - started
            assert row is not None
            summary = json.loads(Path(row["log_path"]).with_suffix(".summary.json").read_text("utf-8"))
            history = open_history(state)
            try:
                check_started = time.perf_counter()
                assess(history, row["job_id"], "sample", "articles", summary["stats"], config)
                check_seconds = time.perf_counter() - check_started
            finally:
                history.close()
            rows.append({"phase": phase, "tick": site.tick, "status": row["status"],
                         "reasons": (row.get("health") or {}).get("reasons") or [], "wall_seconds": wall,
                         "check_seconds": check_seconds})
            print(f"  {phase} tick {site.tick}: {row['status']} {'; '.join(rows[-1]['reasons'])}", file=sys.stderr)

        for _ in range(runs):
            one("normal")
            site.set_tick(site.tick + 1)
        for switch in SWITCHES:
            setattr(site, switch, site.tick)
            one(switch.removesuffix("_from_tick"))
            setattr(site, switch, None)
            one("after " + switch.removesuffix("_from_tick"))
    return rows


def verdicts(rows: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(normal runs not ok, switched runs not degraded, runs after a switch not ok)."""
    return (sum(r["status"] != "ok" for r in rows if r["phase"] == "normal"),
            sum(r["status"] != "degraded" for r in rows if r["phase"] in ("redesign", "ban", "empty")),
            sum(r["status"] != "ok" for r in rows if r["phase"].startswith("after ")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="normal runs of the soak (default 50)")
    parser.add_argument("--articles", type=int, default=100, help="site size (default 100)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    rows = soak(args.articles, args.runs)
    false_alarms, missed, not_recovered = verdicts(rows)
    caught = missed == 0 and not_recovered == 0
    table = Table(["phase", "runs", "ok", "degraded", "reasons (first run)"])
    for phase in dict.fromkeys(r["phase"] for r in rows):
        of = [r for r in rows if r["phase"] == phase]
        table.add(phase, len(of), sum(r["status"] == "ok" for r in of), sum(r["status"] == "degraded" for r in of),
                  "; ".join(of[0]["reasons"])[:150] or "-")
    shares = [r["check_seconds"] / r["wall_seconds"] for r in rows]
    print(f"run health: {args.runs} normal runs of a {args.articles:,}-article site, one tick apart, then each "
          "switch for one run")
    print(table.render())
    print(f"false alarms in {args.runs} normal runs: {false_alarms}: {verdict(false_alarms == 0)}; "
          f"each switch degraded with its own reason, the next run ok: {verdict(caught)}")
    print(f"checks per run: median {statistics.median(r['check_seconds'] for r in rows) * 1000:.1f} ms = "
          f"{statistics.median(shares):.4%} of the run's time (max {max(shares):.4%}); "
          f"run median {statistics.median(r['wall_seconds'] for r in rows):.1f} s")
    write_json(args.json, {"runs": rows, "false_alarms": false_alarms, "switches_caught": caught,
                           "check_share_median": statistics.median(shares), "met": false_alarms == 0 and caught})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
