"""The queue of runs on a real PostgreSQL: one entry per fire, the fence, the queueing lock, stalled retries."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from scheduler.leader import LeaderLease
from scheduler.run_queue import QUEUE, Fire, enqueue_fire, ensure_schema, fire_snapshot_id

PLANNED = "2026-12-02T06:00:00.000000Z"


@pytest.fixture
def queue_url(postgres_url: str) -> str:
    ensure_schema(postgres_url)
    ensure_schema(postgres_url)  # a second daemon starting: nothing to do, no error
    return postgres_url


def _queued(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(status), str(lock)) for status, lock in conn.execute(
            "SELECT status::text, lock FROM procrastinate_jobs WHERE queue_name = %s ORDER BY id", (QUEUE,))]


def test_a_fire_is_queued_once_and_only_by_the_leader(queue_url: str) -> None:
    leader = LeaderLease(queue_url, holder="a")
    assert leader.try_acquire() is not None
    fire = Fire("sample:articles", "sample", "articles", PLANNED)
    with psycopg.connect(queue_url, autocommit=True) as conn:
        assert enqueue_fire(conn, leader, fire) == "enqueued"
        assert enqueue_fire(conn, leader, fire) == "duplicate"  # the same planned time again
        # A deposed leader (its session gone, a new one leading) queues nothing, even a new time.
        leader.release()
        successor = LeaderLease(queue_url, holder="b")
        assert successor.try_acquire() is not None
        later = Fire("sample:articles", "sample", "articles", "2026-12-02T06:00:05.000000Z")
        assert enqueue_fire(conn, leader, later) == "not-leader"
        # The new leader catching up on the first time finds it fired already.
        assert enqueue_fire(conn, successor, fire) == "duplicate"
        successor.release()
    assert _queued(queue_url) == [("todo", "sample:articles")]


def test_a_second_fire_while_one_waits_is_skipped_not_queued(queue_url: str) -> None:
    lease = LeaderLease(queue_url, holder="a")
    assert lease.try_acquire() is not None
    with psycopg.connect(queue_url, autocommit=True) as conn:
        first = Fire("sample:articles", "sample", "articles", PLANNED)
        second = Fire("sample:articles", "sample", "articles", "2026-12-02T06:00:05.000000Z")
        other_kind = Fire("sample:discussions", "sample", "discussions", "2026-12-02T06:00:05.000000Z")
        assert enqueue_fire(conn, lease, first) == "enqueued"
        assert enqueue_fire(conn, lease, second) == "skipped-overlap"
        assert enqueue_fire(conn, lease, other_kind) == "enqueued"
        fired = {row[0] for row in conn.execute("SELECT planned_at FROM newsvault_fires WHERE job_id = 'sample:articles'")}
    lease.release()
    assert fired == {first.planned_at, second.planned_at}  # the skipped time is accounted for, not lost
    assert _queued(queue_url) == [("todo", "sample:articles"), ("todo", "sample:discussions")]


def test_every_attempt_at_a_fire_commits_under_one_snapshot_id() -> None:
    fire = Fire("sample:articles", "sample", "articles", PLANNED)
    again = Fire("sample:articles", "sample", "articles", PLANNED, trigger="missed")
    other = Fire("sample:articles", "sample", "articles", "2026-12-02T06:00:05.000000Z")
    assert fire_snapshot_id(fire) == fire_snapshot_id(again) != fire_snapshot_id(other)
    assert fire_snapshot_id(fire).startswith(datetime(2026, 12, 2, 6, tzinfo=UTC).strftime("%Y%m%dT%H%M%SZ-"))
