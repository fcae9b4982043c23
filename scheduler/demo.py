"""`make run`: the bundled sample site, a demo schedule and the daemon, in the foreground.

Starts ``python -m samplesite`` as a child process, writes ``./var/demo/newsvault.toml``
(discussions every minute, articles every 3 minutes, snapshots to ./var/archive),
and runs the daemon with the sample profile pointed at the sample site's URL.
One log line per run start and end; Ctrl-C stops the daemon, lets running crawls
close their snapshots, then stops the sample site.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from newsvault.config import load_config
from newsvault.errors import NewsvaultError
from newsvault.redact import redact_handlers

log = logging.getLogger("newsvault.demo")

DEMO_DIR = Path("var/demo")
DEMO_WEB_PORT = 8765
SITE = "sample"

DEMO_CONFIG = """\
# Written by `make run` (python -m scheduler.demo); edit freely, it is rewritten each run.
[archive]
url = "{archive}"

[state]
dir = "{state}"

[crawl]
# The sample site runs on this machine: no need to be as polite as with a real site.
download_delay_seconds = 0.05
concurrency_per_domain = 8

[daemon]
crawl_timeout_seconds = 600
shutdown_grace_seconds = 30

[schedules.{site}.discussions]
interval_seconds = 60

[schedules.{site}.articles]
interval_seconds = 180
"""


def start_sample_site(articles: int) -> tuple[subprocess.Popen[str], str]:
    """Start the sample site on a free loopback port; return the process and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "samplesite", "--port", "0", "--articles", str(articles),
         "--clock", "now", "--tick-every", "60"],
        stdout=subprocess.PIPE, text=True,
        # Its own session: Ctrl-C in the terminal reaches the daemon, which lets
        # running crawls finish, and not the site they are still fetching from
        # (it is stopped after the daemon, below).
        start_new_session=True,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http"):
        proc.kill()
        proc.wait()
        raise RuntimeError("the sample site did not print its URL; is the samplesite package complete?")
    return proc, base_url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=300, help="articles on the sample site")
    parser.add_argument("--metrics-port", type=int, default=None, help="serve /healthz and /metrics")
    parser.add_argument("--web-port", type=int, default=DEMO_WEB_PORT,
                        help=f"serve the web view on 127.0.0.1:P (default {DEMO_WEB_PORT}; 0: any free port)")
    parser.add_argument("--no-web", action="store_true", help="no web view")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    redact_handlers()
    # The run start/end lines come from scheduler.jobs; APScheduler's own chatter is noise here.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

    from scheduler.daemon import run_daemon

    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    config_path = DEMO_DIR / "newsvault.toml"
    config_path.write_text(
        # The default state dir (./var): `newsvault crawl`, `push` and `runs` from here share it, so the
        # demo and one-off crawls are one writer of the archive, not two interleaving chains.
        DEMO_CONFIG.format(archive="var/archive", state="var", site=SITE),
        encoding="utf-8",
    )
    site_proc, base_url = start_sample_site(args.articles)
    try:
        log.info("sample site on %s (pid %s); config %s; archive var/archive", base_url,
                 site_proc.pid, config_path)
        log.info("press Ctrl-C to stop; see runs with: newsvault runs --config %s%s", config_path,
                 "" if args.no_web else " or in the web view (its address follows)")
        config = load_config(config_path)
        root = base_url.rstrip("/")
        return run_daemon(config, metrics_port=args.metrics_port, web_port=None if args.no_web else args.web_port,
                          start_urls={f"{SITE}:articles": [f"{root}/"],
                                      f"{SITE}:discussions": [f"{root}/discussions/"]},
                          run_now=True)
    except NewsvaultError as exc:
        print(f"newsvault: error: {exc}", file=sys.stderr)
        return 1
    finally:
        site_proc.terminate()
        try:
            site_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            site_proc.kill()
            site_proc.wait()
        log.info("sample site stopped")


if __name__ == "__main__":
    raise SystemExit(main())
