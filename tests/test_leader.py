"""The cluster's leader lease on a real PostgreSQL: one leader, takeover after death or a freeze, fencing."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from scheduler.leader import LeaderLease, lease_state
from tests.plugins.cli import child_env

RENEW = 0.5  # short, so a frozen leader loses its session in 1.5 s

# A daemon's part: lead when possible, renew, say so on stdout.
_LEADER_CHILD = textwrap.dedent("""
    import sys, time
    from scheduler.leader import LeaderLease
    lease = LeaderLease(sys.argv[1], holder="child", renew_seconds=float(sys.argv[2]))
    while lease.try_acquire() is None:
        time.sleep(0.1)
    print(f"leading {lease.token}", flush=True)
    while lease.renew():
        time.sleep(lease.renew_seconds)
    print("stepped down", flush=True)
""")


@pytest.fixture
def child_leader(postgres_url: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _LEADER_CHILD, postgres_url, str(RENEW)],
                            stdout=subprocess.PIPE, text=True, env=child_env())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("leading "), line
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
    proc.wait()
    proc.stdout.close()


def _wait_to_lead(lease: LeaderLease, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if lease.try_acquire() is not None:
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"no takeover within {seconds:.1f} s")


def _holds(lease: LeaderLease, url: str) -> bool:
    """Check the fence from a connection of its own, as an enqueue would."""
    import psycopg

    with psycopg.connect(url) as conn, conn.transaction():
        return lease.holds(conn.cursor())


def test_one_leader_at_a_time_and_each_takeover_has_a_new_token(postgres_url: str) -> None:
    first = LeaderLease(postgres_url, holder="a", renew_seconds=RENEW)
    second = LeaderLease(postgres_url, holder="b", renew_seconds=RENEW)
    assert first.try_acquire() == 1
    assert second.try_acquire() is None and not second.is_leader
    assert first.renew() and _holds(first, postgres_url) and not _holds(second, postgres_url)
    first.release()
    assert second.try_acquire() == 2
    state = lease_state(postgres_url)
    assert state is not None and (state.holder, state.token) == ("b", 2)
    assert not _holds(first, postgres_url) and _holds(second, postgres_url)
    second.release()


def test_a_deposed_leader_that_has_not_noticed_can_never_pass_the_fence(postgres_url: str) -> None:
    import psycopg

    old = LeaderLease(postgres_url, holder="old", renew_seconds=RENEW)
    new = LeaderLease(postgres_url, holder="new", renew_seconds=RENEW)
    assert old.try_acquire() == 1
    state = lease_state(postgres_url)
    assert state is not None
    # The server ends the leader's session (a network cut, an operator): the old leader still believes.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (state.holder_pid,))
    assert old.is_leader
    # Before anyone takes over, the token alone still matches, but the lock is gone: refused.
    deadline = time.monotonic() + 5
    while _holds(old, postgres_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _holds(old, postgres_url)
    assert new.try_acquire() == 2
    assert not _holds(old, postgres_url) and _holds(new, postgres_url)
    assert not old.renew() and not old.is_leader
    new.release()


def test_a_killed_leader_is_replaced_within_the_takeover_bound(postgres_url: str,
                                                               child_leader: subprocess.Popen[str]) -> None:
    standby = LeaderLease(postgres_url, holder="standby", renew_seconds=RENEW, poll_seconds=0.1)
    assert standby.try_acquire() is None
    child_leader.kill()
    took = _wait_to_lead(standby, standby.takeover_bound_seconds)
    assert standby.token == 2, took
    standby.release()


def test_a_frozen_leader_loses_its_session_and_steps_down_when_it_wakes(postgres_url: str,
                                                                        child_leader: subprocess.Popen[str]) -> None:
    standby = LeaderLease(postgres_url, holder="standby", renew_seconds=RENEW, poll_seconds=0.1)
    child_leader.send_signal(signal.SIGSTOP)  # a host that hangs: its socket stays open
    _wait_to_lead(standby, standby.takeover_bound_seconds)
    assert standby.token == 2
    child_leader.send_signal(signal.SIGCONT)
    assert child_leader.stdout is not None
    assert child_leader.stdout.readline().strip() == "stepped down"
    assert _holds(standby, postgres_url)
    standby.release()
