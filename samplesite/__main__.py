"""Command line: ``python -m samplesite --port 0 --articles N --tick T``.

The first line on stdout is the base URL (flushed at once, so a parent process
can read it), then the site serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import UTC, datetime

from samplesite.model import (
    DEFAULT_CLOCK,
    DEFAULT_OVERSIZE_BYTES,
    DEFAULT_THREADS,
    EDIT_MODELS,
    SampleSite,
)
from samplesite.server import SiteServer

logger = logging.getLogger(__name__)


def _clock(value: str) -> datetime:
    if value == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or 'now': {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m samplesite",
        description="Serve the deterministic sample news site on loopback.",
        epilog="example: python -m samplesite --port 0 --articles 300 --tick 0 --tick-every 60",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--articles", type=int, default=300, help="articles at tick 0 (>= 50)")
    parser.add_argument("--tick", type=int, default=0, help="initial tick (each tick is +6 h)")
    parser.add_argument("--seed", type=int, default=0, help="content seed")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="discussion threads at tick 0")
    parser.add_argument("--clock", type=_clock, default=DEFAULT_CLOCK,
                        help="simulated time of tick 0, ISO 8601 or 'now' "
                             "(default 2026-12-31T06:00:00Z)")
    parser.add_argument("--tick-every", type=float, default=None, metavar="SECONDS",
                        help="advance one tick every SECONDS (live demo)")
    parser.add_argument("--oversize-bytes", type=int, default=DEFAULT_OVERSIZE_BYTES,
                        help="size of the oversize fault page (default 12 MiB)")
    parser.add_argument("--edits", choices=EDIT_MODELS, default="ticks",
                        help="ticks: one edit per tick (default); realistic: timed edits, mostly hours after publication")
    parser.add_argument("--redesign-from-tick", type=int, metavar="T",
                        help="from tick T the article markup changes (the sample profile's selectors miss)")
    parser.add_argument("--ban-from-tick", type=int, metavar="T", help="from tick T most deep pages answer 403/429")
    parser.add_argument("--empty-from-tick", type=int, metavar="T",
                        help="from tick T the front page, sections, RSS and sitemaps list nothing")
    parser.add_argument("--hostile", action="store_true",
                        help="add hostile content: articles and discussion titles carrying script, "
                             "event handlers and broken markup (see docs/samplesite.md)")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        site = SampleSite(args.articles, seed=args.seed, tick=args.tick, clock=args.clock,
                          threads=args.threads, oversize_bytes=args.oversize_bytes, edits=args.edits,
                          hostile=args.hostile)
    except ValueError as exc:
        print(f"samplesite: {exc}", file=sys.stderr)
        return 2
    site.redesign_from_tick, site.ban_from_tick = args.redesign_from_tick, args.ban_from_tick
    site.empty_from_tick = args.empty_from_tick
    server = SiteServer(site, host=args.host, port=args.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    if args.tick_every:
        server.tick_every(args.tick_every)
    print(server.base_url, flush=True)
    logger.info("serving %s articles at %s", args.articles, server.base_url)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
