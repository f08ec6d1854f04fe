"""Fresh databases for tests: PostgreSQL clones of a migrated template, and SQLite files."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from actors.kernel import migrate

T = TypeVar("T")

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    """Where test databases are created: TROUPE_TEST_DATABASE_URL, else the local server."""
    return os.environ.get("TROUPE_TEST_DATABASE_URL") or DEFAULT_ADMIN_URL


def start_container() -> tuple[str, Callable[[], None]] | None:
    """A PostgreSQL container (testcontainers) when a Docker engine answers, else None.

    The fallback for machines with Docker but no local PostgreSQL; returns the
    admin URL and how to stop the container.
    """
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return None
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver="asyncpg")
    container.start()
    return container.get_connection_url(), container.stop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if a loop is running in this thread."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _dsn(url: str, database: str | None = None) -> str:
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _with_db(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(_dsn(admin_url()))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class PostgresTemplate:
    """A migrated template database for this test run; each test gets a clone of it."""

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.template = f"troupe_tpl_{self.run_id}"
        self.created: list[str] = []

    def create(self) -> None:
        run_sync(_execute(f'CREATE DATABASE "{self.template}"'))
        migrate.upgrade(_with_db(admin_url(), self.template))

    def clone(self) -> str:
        name = f"troupe_t_{self.run_id}_{uuid.uuid4().hex[:8]}"
        run_sync(_execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.created.append(name)
        return _with_db(admin_url(), name)

    def empty(self) -> str:
        """A database with no tables at all (for migration tests)."""
        name = f"troupe_e_{self.run_id}_{uuid.uuid4().hex[:8]}"
        run_sync(_execute(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return _with_db(admin_url(), name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name is not None
        run_sync(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def destroy(self) -> None:
        for name in list(self.created):
            run_sync(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        run_sync(_execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
