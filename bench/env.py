"""What every benchmark gets: fresh servers and databases, sizes, and a result type."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import msgspec
from sqlalchemy.engine import make_url

from actors.kernel import migrate
from actors.kernel.embedded import EmbeddedNats


class Result(msgspec.Struct, kw_only=True):
    """One measured figure. ``baseline`` names the result in the same group it is divided by."""

    group: str
    name: str
    value: float
    unit: str
    baseline: str | None = None
    higher_is_better: bool = True
    notes: str = ""


class BenchEnv:
    """Fresh infrastructure per benchmark; ``quick`` shrinks every workload (the smoke test)."""

    def __init__(self, *, quick: bool = False) -> None:
        self.quick = quick
        self.admin_url = os.environ.get(
            "TROUPE_BENCH_DATABASE_URL",
            os.environ.get(
                "TROUPE_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
            ),
        )
        self._tmp = Path(tempfile.mkdtemp(prefix="troupe-bench-"))

    def size(self, full: int, quick: int) -> int:
        """A workload size: ``quick`` in the smoke test, ``full`` in `make bench`."""
        return quick if self.quick else full

    @contextlib.contextmanager
    def nats(self, *, sync: str = "always") -> Iterator[EmbeddedNats]:
        server = EmbeddedNats(self._tmp / f"nats-{uuid.uuid4().hex[:6]}", sync=sync)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    @contextlib.asynccontextmanager
    async def postgres(self) -> AsyncIterator[str]:
        """A fresh, migrated PostgreSQL database, dropped afterwards."""
        name = f"troupe_bench_{uuid.uuid4().hex[:8]}"
        admin = make_url(self.admin_url).set(drivername="postgresql")
        dsn = admin.render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        try:
            import asyncio

            await asyncio.to_thread(migrate.upgrade, url)
            yield url
        finally:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

    @contextlib.asynccontextmanager
    async def sqlite(self) -> AsyncIterator[str]:
        """A fresh, migrated SQLite database file."""
        import asyncio

        url = f"sqlite+aiosqlite:///{self._tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
