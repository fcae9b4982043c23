"""The `newsvault` command line: parses arguments, calls the library, maps errors to exit codes.

One module per group of commands (crawl, archive, daemon); they parse and
print, the library does the work. What they share is in ``common``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from newsvault import __version__
from newsvault.errors import ConfigError, NewsvaultError
from newsvault.redact import redact_handlers
from scheduler.cli.common import EXIT_FAILED, EXIT_USAGE, common_options

log = logging.getLogger(__name__)

def build_parser() -> argparse.ArgumentParser:
    from scheduler.cli import archive, catalog, cluster, crawl, daemon, web

    parser = argparse.ArgumentParser(
        prog="newsvault",
        description="Crawl news sites and their discussion lists into verifiable snapshots.",
        epilog="Example: newsvault crawl sample --kind articles",
    )
    parser.add_argument("--version", action="version", version=f"newsvault {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()
    for module in (crawl, archive, catalog, daemon, web, cluster):
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact_handlers()
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"newsvault: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NewsvaultError as exc:
        print(f"newsvault: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        # A full disk, a name too long, a missing directory: one line, never a traceback.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"newsvault: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("newsvault: interrupted", file=sys.stderr)
        return 130
