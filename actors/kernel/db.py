"""Database engines for PostgreSQL (asyncpg) and the embedded SQLite default (aiosqlite, WAL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, DateTime, MetaData, TextClause, any_, bindparam, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# Deterministic constraint names, so alembic migrations name the same thing on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""One MetaData for every actor's tables: alembic's target."""


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    pool_pre_ping: bool = True,
    command_timeout: float | None = None,
    sqlite_synchronous: str = "NORMAL",
    write: bool = True,
) -> AsyncEngine:
    """An engine with the pool settings for Postgres, or WAL SQLite.

    On SQLite a ``write`` engine opens every transaction with BEGIN IMMEDIATE:
    a deferred transaction that reads and then writes cannot wait for another
    writer (SQLite refuses the lock upgrade at once), so writers queue instead.
    """
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine, synchronous=sqlite_synchronous, immediate=write)
        return engine
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout,
        "pool_pre_ping": pool_pre_ping,
    }
    if command_timeout is not None and is_postgres(url):
        # asyncpg has no deadline by default: a stalled link would hang a batch forever.
        kwargs["connect_args"] = {"command_timeout": command_timeout, "timeout": command_timeout}
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine, *, synchronous: str, immediate: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own transaction start instead of the driver.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction whose connection is thrown away, not pooled, if the link failed.

    A statement cut off mid-flight (a dropped or stalled link, a command
    timeout) can leave the driver's protocol state unusable; returning such a
    connection to the pool would fail the next batch too.
    """
    from actors.kernel.errors import needs_new_connection

    conn = await engine.connect()
    try:
        async with conn.begin():
            yield conn
    except BaseException as exc:
        if needs_new_connection(exc) or isinstance(exc, asyncio.CancelledError):
            with contextlib.suppress(Exception):
                await conn.invalidate()
        raise
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


def one_of(
    conn: AsyncConnection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``, one parameter.

    An expanding IN renders a statement per number of values, which asyncpg
    prepares anew and PostgreSQL plans anew for every batch.
    """
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def values_update(
    template: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, chunk: int = 500
) -> Iterator[tuple[TextClause, dict[str, Any]]]:
    """SQLite statements updating many rows at once from a ``VALUES`` list.

    ``template`` holds ``{values}``, replaced by ``WITH v(cols) AS (VALUES ...)``;
    rows are chunked so the bound parameters stay far below SQLite's limit.
    One statement per chunk, instead of one per row, is what keeps a batch
    on SQLite to a handful of statements.
    """
    names = ", ".join(columns)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        params: dict[str, Any] = {}
        tuples = []
        for i, row in enumerate(part):
            slots = []
            for j, value in enumerate(row):
                params[f"v{i}_{j}"] = value
                slots.append(f":v{i}_{j}")
            tuples.append(f"({', '.join(slots)})")
        values = f"WITH v({names}) AS (VALUES {', '.join(tuples)})"
        # ``now`` goes through SQLAlchemy's DateTime so SQLite stores it as it reads it back.
        stmt = text(template.replace("{values}", values)).bindparams(
            bindparam("now", type_=DateTime(timezone=True))
        )
        yield stmt, params
