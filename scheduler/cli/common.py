"""What every command shares: exit codes, the common options, loading the config from the arguments."""

from __future__ import annotations

import argparse

from newsvault.config import Config, load_config

# Exit codes: 0 ok, 1 the operation failed, 2 bad usage, config or profile.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


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
