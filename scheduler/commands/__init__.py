"""Subcommands of the `newsvault` CLI, one module per concern.

Each module exposes ``register(subparsers, common)`` which adds its commands;
``common`` is an argparse parent carrying ``--config`` and ``--state-dir``.
A command handler takes the parsed namespace and returns the exit code.
"""
