"""Who fires the schedule in a cluster: one leader, chosen by a PostgreSQL advisory lock, with a fencing token.

APScheduler 3 must not share a job store between running schedulers, so of
several daemons only the leader's scheduler fires jobs. Leadership is a
session-level advisory lock held by a connection of its own:

- PostgreSQL releases the lock the moment that session ends: the leader's
  process died (its socket closes), or the server ended a session that stopped
  renewing (``idle_session_timeout``: a frozen or cut-off host), or the server
  restarted. A standby polling :meth:`LeaderLease.try_acquire` then takes over
  within :attr:`LeaderLease.takeover_bound_seconds`.
- Each acquisition increments a fencing token in ``newsvault_leases``. Work a
  leader hands out (a run put in the queue) is written in a transaction that
  first checks :meth:`LeaderLease.holds` against the table, so a deposed
  leader that has not noticed yet can never enqueue: its token is no longer
  the current one, or its session (and with it the lock) is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

LEASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS newsvault_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    holder_pid INTEGER NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL
)
"""
DEFAULT_LEASE = "scheduler"
# The leader renews this often; a session silent for IDLE_FACTOR renewals is ended by the server.
RENEW_SECONDS = 2.0
IDLE_FACTOR = 3
CONNECT_TIMEOUT_SECONDS = 5


def create_leases_table(conn: Any) -> None:
    """The lease table, if missing. Two daemons starting at once may race on it: the loser finds it made."""
    import psycopg

    try:
        conn.execute(LEASES_SCHEMA)
    except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
        pass  # autocommit: the failed statement left nothing open


def lock_key(name: str) -> int:
    """The advisory lock key of a lease name: 63 bits of its sha256 (PostgreSQL's bigint is signed)."""
    return int.from_bytes(hashlib.sha256(f"newsvault:{name}".encode()).digest()[:8], "big") >> 1


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaseState:
    """The lease row as the table has it: who led last and with which token."""

    name: str
    holder: str
    token: int
    holder_pid: int
    acquired_at: str
    renewed_at: str


class LeaderLease:
    """One daemon's claim on a lease: acquire, renew, check, release; the session is its own connection."""

    def __init__(self, url: str, name: str = DEFAULT_LEASE, *, holder: str | None = None,
                 renew_seconds: float = RENEW_SECONDS, poll_seconds: float | None = None) -> None:
        self.url = url
        self.name = name
        self.holder = holder or default_holder()
        self.renew_seconds = renew_seconds
        self.poll_seconds = poll_seconds if poll_seconds is not None else renew_seconds
        self.token: int | None = None
        self._conn: Any = None

    @property
    def takeover_bound_seconds(self) -> float:
        """How long leadership can stay with a dead or frozen leader before a polling standby has it."""
        return self.renew_seconds * IDLE_FACTOR + self.poll_seconds + CONNECT_TIMEOUT_SECONDS

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                               application_name=f"newsvault lease {self.name}")
        try:
            # A leader that stops renewing (frozen, cut off) loses its session, and the lock with it.
            conn.execute(f"SET idle_session_timeout = {int(self.renew_seconds * IDLE_FACTOR * 1000)}")
            create_leases_table(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def try_acquire(self) -> int | None:
        """Take the lease if nobody holds it; the new fencing token, or None (someone else leads)."""
        import psycopg

        if self.token is not None:
            return self.token if self.renew() else None
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            got = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(self.name),)).fetchone()[0]
            if not got:
                return None
            row = self._conn.execute(
                "INSERT INTO newsvault_leases (name, holder, token, holder_pid, acquired_at, renewed_at)"
                " VALUES (%s, %s, 1, pg_backend_pid(), now(), now())"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = newsvault_leases.token + 1,"
                " holder_pid = excluded.holder_pid, acquired_at = now(), renewed_at = now() RETURNING token",
                (self.name, self.holder)).fetchone()
        except psycopg.Error as exc:
            log.warning("lease %s: cannot reach the database to take it: %s", self.name, exc)
            self._drop()
            return None
        self.token = int(row[0])
        log.info("lease %s: %s leads with token %d", self.name, self.holder, self.token)
        return self.token

    def renew(self) -> bool:
        """Keep the session alive and the row current; False (and no longer leader) if the lease is lost."""
        import psycopg

        if self.token is None or self._conn is None:
            return False
        try:
            row = self._conn.execute(
                "UPDATE newsvault_leases SET renewed_at = now() WHERE name = %s AND token = %s RETURNING token",
                (self.name, self.token)).fetchone()
        except psycopg.Error as exc:
            log.warning("lease %s: lost (%s)", self.name, exc)
            self._drop()
            return False
        if row is None:  # another leader's token: this session should not be leading
            log.warning("lease %s: token %d is no longer current; stepping down", self.name, self.token)
            self.release()
            return False
        return True

    def holds(self, cursor: Any) -> bool:
        """In the caller's transaction (on any connection): is this lease's token still the current one?

        The row is locked for share, so no new leader can take over until that
        transaction ends: what it writes was written by the current leader.
        """
        if self.token is None:
            return False
        # The token must be current and its session must still hold the lock: between a leader's
        # session ending and the next leader taking over, the token alone would still match.
        key = lock_key(self.name)
        row = cursor.execute(
            "SELECT l.token FROM newsvault_leases l WHERE l.name = %s AND EXISTS ("
            " SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted AND k.pid = l.holder_pid"
            " AND k.objsubid = 1 AND k.classid::bigint = %s AND k.objid::bigint = %s) FOR SHARE OF l",
            (self.name, key >> 32, key & 0xFFFFFFFF)).fetchone()
        return row is not None and int(row[0]) == self.token

    def release(self) -> None:
        """Give the lease up (a clean stop). Unlocked first: a closed socket frees the lock only once
        the server has noticed, and a standby should not have to wait for that."""
        import psycopg

        if self.token is not None and self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(self.name),))
            except psycopg.Error:
                pass  # the session is gone, and the lock with it
        self._drop()

    def _drop(self) -> None:
        self.token = None
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken connection is what is being dropped
                self._conn.close()
        self._conn = None


def lease_state(url: str, name: str = DEFAULT_LEASE) -> LeaseState | None:
    """The lease row (for ``cluster status``), or None before anyone led."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
        create_leases_table(conn)
        row = conn.execute("SELECT name, holder, token, holder_pid, acquired_at, renewed_at FROM newsvault_leases"
                           " WHERE name = %s", (name,)).fetchone()
    if row is None:
        return None
    return LeaseState(row[0], row[1], int(row[2]), int(row[3]), row[4].isoformat(), row[5].isoformat())
