"""One small database interface over SQLite (one host) and PostgreSQL (several hosts sharing state).

The state stores are written once, in the SQL both engines speak: ``?``
placeholders, ``INSERT ... ON CONFLICT ... DO UPDATE``, row-value ``UPDATE``,
``CREATE ... IF NOT EXISTS``. What differs is here and only here: how a
connection is opened, how a write transaction starts (SQLite's ``BEGIN
IMMEDIATE`` takes the write lock up front; PostgreSQL locks rows as it goes),
how placeholders are spelled, how a schema is created when several processes
open a fresh database at once, and how a column is added to a table an older
version created.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

from newsvault.sqlite import add_column, connect_wal

log = logging.getLogger(__name__)
T = TypeVar("T")

# The libpq URL schemes: a state URL with one of these is a PostgreSQL database.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """What a state store needs of its database."""

    dialect: str  # "sqlite" or "postgresql"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def ensure_columns(self, table: str, columns: Iterable[tuple[str, str]]) -> None: ...

    def is_disconnect(self, exc: BaseException) -> bool: ...

    def close(self) -> None: ...


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(POSTGRES_SCHEMES)


class SQLiteDatabase:
    """A WAL-mode SQLite file in autocommit mode; writes go in ``BEGIN IMMEDIATE`` transactions.

    ``named_rows``: rows are read by column name (``row["status"]``), as with
    PostgresDatabase's; ``threads``: the connection may be used from several
    threads (the caller serialises them).
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, schema: str, timeout: float, synchronous: str | None = "NORMAL",
                 named_rows: bool = False, threads: bool = False) -> None:
        self.path = Path(path)
        self.conn = connect_wal(self.path, timeout=timeout, isolation_level=None, synchronous=synchronous,
                                schema=schema, check_same_thread=not threads)
        if named_rows:
            self.conn.row_factory = sqlite3.Row

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so the busy timeout applies
        # here instead of failing later on a lock upgrade.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def ensure_columns(self, table: str, columns: Iterable[tuple[str, str]]) -> None:
        present = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
        for name, declaration in columns:
            if name not in present:
                add_column(self.conn, table, name, declaration)

    def is_disconnect(self, exc: BaseException) -> bool:
        return False  # a file: there is no link to lose

    def close(self) -> None:
        self.conn.close()


# What libpq says while a server restarts (not for a wrong password or database).
_SERVER_AWAY = ("shutting down", "starting up", "Connection refused", "No such file or directory")
# Waits between attempts at a statement while the server is unreachable (a restart takes seconds).
RECONNECT_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)


@lru_cache(maxsize=512)
def postgres_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled); quoted text is left alone."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    for i in range(0, len(parts), 2):  # the even parts are outside quotes
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    return "".join(parts)


class PostgresDatabase:
    """A PostgreSQL database (psycopg 3) in autocommit mode; writes go in explicit transactions.

    ``schema_lock`` names the advisory lock taken while the schema is created:
    ``CREATE TABLE IF NOT EXISTS`` run by two sessions at once can still fail
    on PostgreSQL's catalog (a duplicate type), so schema creation is serialised.
    Each statement commits on its own: ``CREATE INDEX IF NOT EXISTS`` locks its
    table even when the index exists, and one transaction holding those locks
    while another session writes to the same tables deadlocks the two.
    """

    dialect = "postgresql"
    _closed = False
    _in_transaction = False

    def __init__(self, url: str, *, schema: str, schema_lock: str, connect_timeout: float = 10.0,
                 named_rows: bool = False) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._named_rows = named_rows
        self.conn = self._connect()
        try:
            self.conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (schema_lock,))
            try:
                for statement in _statements(schema):
                    self.conn.execute(statement)  # autocommit: its locks end with it
            finally:
                self.conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (schema_lock,))
        except BaseException:
            self.conn.close()
            raise

    def _connect(self) -> Any:
        from psycopg.rows import dict_row, tuple_row

        return pg_connect(self._url, connect_timeout=self._connect_timeout,
                          row_factory=dict_row if self._named_rows else tuple_row)

    def _live(self) -> Any:
        """The connection, opened again if the server restarted since (the statement that saw it fail raised)."""
        if self.conn.broken or (self.conn.closed and not self._closed):
            self.conn.close()
            self.conn = self._connect()
        return self.conn

    def is_disconnect(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.OperationalError) and (self.conn.broken or self.conn.closed)

    def _again(self, work: Any) -> Any:
        """``work(connection)``; outside a transaction, again on a new connection after a lost link."""
        if self._in_transaction:
            return work(self.conn)  # the caller's transaction is gone with the link: it decides
        for pause in RECONNECT_PAUSES:
            try:
                return work(self._live())
            except BaseException as exc:
                if not self.is_disconnect(exc):
                    raise
                time.sleep(pause)
        return work(self._live())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._again(lambda conn: conn.execute(postgres_sql(sql), params))  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            def run(conn: Any) -> None:
                with conn.cursor() as cursor:
                    cursor.executemany(postgres_sql(sql), rows)
            self._again(run)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._live().transaction():
            self._in_transaction = True
            try:
                yield
            finally:
                self._in_transaction = False

    def ensure_columns(self, table: str, columns: Iterable[tuple[str, str]]) -> None:
        for name, declaration in columns:
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {declaration}")

    def close(self) -> None:
        self._closed = True
        self.conn.close()


def pg_connect(url: str, *, connect_timeout: float = 10.0, **kwargs: Any) -> Any:
    """An autocommit psycopg connection, tried again for a few seconds while the server restarts."""
    import psycopg

    def connect() -> Any:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(connect_timeout)), **kwargs)

    for pause in RECONNECT_PAUSES:
        try:
            return connect()
        except psycopg.OperationalError as exc:
            if not any(sign in str(exc) for sign in _SERVER_AWAY):
                raise  # a wrong password or database name: no point waiting
            time.sleep(pause)
    return connect()


def in_transaction(db: Database, work: Callable[[], T]) -> T:
    """``work()`` in one write transaction of ``db``, run again from the start if the link to the server broke.

    A shared database may restart under a running crawl or daemon. Nothing of
    an attempt that lost its link was committed (unless the link broke after
    the server committed and before it answered, which the writes here
    tolerate: upserts and deletes land the same twice), so the next attempt
    starts clean on a new connection.
    """
    for pause in RECONNECT_PAUSES:
        try:
            with db.transaction():
                return work()
        except BaseException as exc:
            if not db.is_disconnect(exc):
                raise
            log.warning("database link lost (%s); the transaction runs again", exc)
            time.sleep(pause)
    with db.transaction():
        return work()


def _statements(script: str) -> list[str]:
    """A schema script's statements (the scripts here hold no ``;`` inside a statement)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def database_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a database failure raises, for either engine (psycopg only if installed)."""
    errors: list[type[BaseException]] = [sqlite3.Error]
    with contextlib.suppress(ImportError):
        import psycopg

        errors.append(psycopg.Error)
    return tuple(errors)
