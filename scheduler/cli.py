"""The `newsvault` command line: parses arguments, calls the library, maps errors to exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from newsvault import __version__
from newsvault.config import Config, load_config
from newsvault.errors import ConfigError, NewsvaultError
from newsvault.redact import redact_handlers

# Exit codes: 0 ok, 1 the operation failed, 2 bad usage, config or profile.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

log = logging.getLogger(__name__)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="FILE", help="config file (default: $NEWSVAULT_CONFIG or ./newsvault.toml)")
    parent.add_argument("--state-dir", metavar="DIR", help="state directory (default: $NEWSVAULT_STATE_DIR, config, ./var)")
    return parent


def archive_option(parser: argparse.ArgumentParser) -> None:
    """Add --archive to a command that touches the snapshot store."""
    parser.add_argument(
        "--archive",
        metavar="URL",
        help="s3://bucket/prefix or a directory (default: $NEWSVAULT_ARCHIVE, config, ./var/archive)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the config with the command line's overrides applied."""
    return load_config(
        getattr(args, "config", None),
        overrides={
            "state.dir": getattr(args, "state_dir", None),
            "archive.url": getattr(args, "archive", None),
        },
    )


def build_parser() -> argparse.ArgumentParser:
    from scheduler.commands import archive, crawl, daemon

    parser = argparse.ArgumentParser(
        prog="newsvault",
        description="Crawl news sites and their discussion lists into verifiable snapshots.",
        epilog="Example: newsvault crawl sample --kind articles",
    )
    parser.add_argument("--version", action="version", version=f"newsvault {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()
    for module in (crawl, archive, daemon):
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
