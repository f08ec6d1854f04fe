"""A process hosting actors: one bus connection, the database engines, one runner per consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel.actor import Actor
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.db import create_engine, is_sqlite
from actors.kernel.runtime import Runner

log = logging.getLogger("troupe.host")


def engines(settings: Settings) -> tuple[AsyncEngine, AsyncEngine]:
    """(write engine, read engine); they are one engine except on SQLite."""
    url = settings.resolved_database_url()
    write = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        pool_pre_ping=settings.pool_pre_ping,
        command_timeout=settings.command_timeout_seconds,
        sqlite_synchronous=settings.sqlite_synchronous,
        write=True,
    )
    if not is_sqlite(url):
        return write, write
    read = create_engine(url, sqlite_synchronous=settings.sqlite_synchronous, write=False)
    return write, read


class Host:
    """Runs a set of actors (optionally one partition each) until stopped."""

    def __init__(
        self,
        settings: Settings,
        actors: Sequence[Actor[Any]],
        *,
        nats_url: str,
        partition: int | None = None,
        serve_requests: bool = True,
    ) -> None:
        self.settings = settings
        self.actors = list(actors)
        self.nats_url = nats_url
        self.partition = partition
        self.serve_requests = serve_requests
        self.stop_event = asyncio.Event()
        self.bus: Bus | None = None
        self.engine: AsyncEngine | None = None
        self.read_engine: AsyncEngine | None = None
        self.runners: list[Runner[Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect, declare streams and start every runner (returns once they are started)."""
        self.bus = await Bus.connect(self.nats_url, self.settings, name="troupe-host")
        await self.bus.ensure_streams()
        self.engine, self.read_engine = engines(self.settings)
        partitions: list[int | None]
        if self.partition is not None:
            partitions = [self.partition]
        elif self.settings.streams.partitions > 1:
            partitions = list(range(self.settings.streams.partitions))
        else:
            partitions = [None]
        for actor in self.actors:
            for part in partitions:
                runner = Runner(
                    actor,
                    bus=self.bus,
                    engine=self.engine,
                    read_engine=self.read_engine,
                    settings=self.settings,
                    partition=part,
                    serve_requests=self.serve_requests and part in (None, partitions[0]),
                )
                self.runners.append(runner)
                self._tasks.append(asyncio.create_task(runner.run(self.stop_event)))

    async def wait_ready(self, within: float = 30.0) -> None:
        """Until every runner holds its lease and consumes (or one of them failed)."""
        async with asyncio.timeout(within):
            for runner, task in zip(self.runners, self._tasks, strict=True):
                ready = asyncio.ensure_future(runner.ready.wait())
                await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    ready.cancel()
                    task.result()

    async def serve(self) -> None:
        """Until stopped; a runner that fails for good stops the host."""
        done, _ = await asyncio.wait(
            [*self._tasks, asyncio.ensure_future(self.stop_event.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in done:
            if task in self._tasks and task.exception() is not None:
                self.stop_event.set()
                raise task.exception()  # type: ignore[misc]

    async def stop(self) -> None:
        """Finish the batches in hand, then close connections."""
        self.stop_event.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.bus is not None:
            await self.bus.close()
        for engine in {self.engine, self.read_engine} - {None}:
            assert engine is not None
            with contextlib.suppress(Exception):
                await engine.dispose()
