"""`newsvault web`: the web view of the archive, served in the foreground."""

from __future__ import annotations

import argparse

from scheduler.cli.common import EXIT_OK, archive_option, config_from_args


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's commands."""
    p = subparsers.add_parser(
        "web", parents=[common], help="serve the web view (runs, snapshots, articles, threads, search)",
        description="Serve the web view of the archive until Ctrl-C. Read-only unless a token is set "
                    "([web] token or $NEWSVAULT_WEB_TOKEN); serving beyond loopback needs one.",
        epilog="Example: newsvault web --port 8765",
    )
    archive_option(p)
    p.add_argument("--host", metavar="HOST", help="address to bind (default: [web] host, 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="P", help="port (default: [web] port, 8765; 0: any free port)")
    p.set_defaults(handler=cmd_web)


def cmd_web(args: argparse.Namespace) -> int:
    from web.server import WebServer

    config = config_from_args(args)
    server = WebServer(config, host=args.host, port=args.port)
    writes = "writes on (token set)" if config.web.token else "read-only (no token)"
    print(f"newsvault web view on {server.url}/ ({writes}); Ctrl-C stops it", flush=True)
    server.serve_forever()
    return EXIT_OK
