"""`newsvault cluster status`: the leader, the daemons' heartbeats, the queue, runs per host."""

from __future__ import annotations

import argparse
import json
import sys

from scheduler.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, config_from_args


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add this module's commands."""
    p = subparsers.add_parser(
        "cluster", parents=[common], help="the cluster of daemons sharing [cluster] url",
        description="What the daemons of a cluster are doing, read from their shared PostgreSQL database.",
        epilog="Example: newsvault cluster status --json",
    )
    p.add_argument("what", choices=["status"], help="status: leader, daemons, queue, runs per host")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_cluster)


def cmd_cluster(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    url = config.cluster.url_value
    if not url:
        print("newsvault: error: no cluster configured ([cluster] url or $NEWSVAULT_CLUSTER_URL)", file=sys.stderr)
        return EXIT_USAGE
    import psycopg  # installed: the config refuses a cluster URL without it

    from scheduler.cluster_status import cluster_status

    try:
        status = cluster_status(url)
    except psycopg.Error as exc:
        print(f"newsvault: error: cannot read the cluster's database: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(status.as_dict(), ensure_ascii=False))
        return EXIT_OK
    print(f"leader: {status.leader or 'none'}"
          + (f" (token {status.leader_token}, renewed {status.leader_renewed_at})" if status.leader else ""))
    print("daemons:")
    for member in status.members:
        state = "stopped " + str(member.stopped_at) if member.stopped_at else (
            f"last heartbeat {member.seconds_since_heartbeat:.0f}s ago")
        print(f"  {member.name:28} {'leader ' if member.leading else '       '}{state}")
    queue = status.queue
    print(f"queue: {queue.get('todo', 0)} waiting, {queue.get('doing', 0)} running, "
          f"{status.retried} retried, {queue.get('succeeded', 0)} done, {queue.get('failed', 0)} failed")
    print("runs per host:")
    for host, counts in status.runs_per_host.items():
        print(f"  {host:28} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return EXIT_OK
