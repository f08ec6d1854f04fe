"""The dispatch actors (tickets, policy, workflow) on a real nats-server and a real database."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import Table, func, select

from actors.dispatch.bundles import Bundle, shipped
from actors.dispatch.client import DispatchClient, Sent
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.policy.actor import ACTOR as POLICY
from actors.tickets.actor import ACTOR as TICKETS
from actors.workflow.actor import ACTOR as WORKFLOW
from schemas import subjects
from schemas.base import Command
from schemas.dispatch.common import Scope
from schemas.dispatch.policy import ActivateBundle, PauseAutonomy, ResumeAutonomy
from schemas.envelope import StateReply

TENANT = "acme"
DISPATCHER = "user:dispatcher"
APPROVER = "user:approver"
ADMIN = "user:admin"

T = TypeVar("T")


@dataclass
class Stack:
    """A running host of the three dispatch actors and a client to drive them."""

    host: Host
    nc: NATS
    client: DispatchClient
    settings: Settings
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def request_id(self, prefix: str = "req") -> str:
        return f"{prefix}-{next(self._ids)}"

    @property
    def engine(self) -> Any:
        assert self.host.engine is not None
        return self.host.engine

    async def ticket(
        self,
        ticket: str,
        command: Command,
        *,
        principal: str = DISPATCHER,
        tenant: str = TENANT,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Sent:
        return await self.client.send_ticket(
            ticket,
            command,
            request_id=request_id or self.request_id(),
            principal=principal,
            tenant=tenant,
            headers=headers,
        )

    async def control(
        self, command: Command, *, tenant: str = TENANT, principal: str = ADMIN
    ) -> Sent:
        return await self.client.send_control(
            tenant, command, request_id=self.request_id("ctl"), principal=principal
        )

    async def activate(self, bundle: Bundle, *, tenant: str = TENANT) -> Sent:
        return await self.control(
            ActivateBundle(expected_sha256=bundle.sha256, reason="rollout", files=bundle.files),
            tenant=tenant,
        )

    async def pause(self, scope: Scope, *, tenant: str = TENANT) -> Sent:
        return await self.control(PauseAutonomy(scope=scope, reason="storm drill"), tenant=tenant)

    async def resume(self, scope: Scope, *, tenant: str = TENANT) -> Sent:
        return await self.control(ResumeAutonomy(scope=scope, reason="all clear"), tenant=tenant)

    async def state(self, domain: str, key: str, kind: type[T]) -> T:
        reply = await self.nc.request(subjects.query_subject(domain, key), b"", timeout=5)
        answer = msgspec.json.decode(reply.data, type=StateReply)
        return msgspec.json.decode(answer.state, type=kind)

    async def rows(self, table: Table, **where: Any) -> list[Any]:
        query = select(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        async with self.engine.connect() as conn:
            return list(await conn.execute(query))

    async def count(self, table: Table) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 15.0) -> T:
    """Poll ``check`` until it returns something other than None (or False), with a deadline."""
    async with asyncio.timeout(within):
        while True:
            found = await check()
            if found is not None and found is not False:
                return found
            await asyncio.sleep(0.05)


async def start(nats_url: str, database_url: str) -> tuple[Host, NATS, Settings]:
    settings = Settings(database_url=database_url, nats_url=nats_url, batch_size=64)
    host = Host(settings, [TICKETS, POLICY, WORKFLOW], nats_url=nats_url)
    await host.start()
    await host.wait_ready()
    nc = await nats.connect(nats_url)
    return host, nc, settings


@pytest.fixture
async def stack(nats_server: EmbeddedNats, postgres_url: str) -> AsyncIterator[Stack]:
    """The dispatch actors on PostgreSQL, with nothing activated yet."""
    host, nc, settings = await start(nats_server.url, postgres_url)
    try:
        yield Stack(host=host, nc=nc, client=DispatchClient(nc), settings=settings)
    finally:
        await nc.close()
        await host.stop()


@pytest.fixture
async def any_stack(nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Stack]:
    """The dispatch actors on SQLite and on PostgreSQL."""
    host, nc, settings = await start(nats_server.url, database_url)
    try:
        yield Stack(host=host, nc=nc, client=DispatchClient(nc), settings=settings)
    finally:
        await nc.close()
        await host.stop()


@pytest.fixture
def starter() -> Bundle:
    return shipped("starter")


@pytest.fixture
def strict() -> Bundle:
    return shipped("strict")
