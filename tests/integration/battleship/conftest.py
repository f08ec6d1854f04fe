"""Fixtures of the Battleship integration tests: the three actors on real NATS and databases."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import msgspec
import nats
import nats.js.errors
import pytest
from nats.aio.client import Client as NATS

from actors.kernel import telemetry
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.lobby.actor import ACTOR as LOBBY
from actors.match.actor import ACTOR as MATCH
from actors.ratings.actor import ACTOR as RATINGS
from schemas import subjects
from schemas.base import Command
from schemas.envelope import Outcome
from schemas.headers import Header

T = TypeVar("T")


class Bus:
    """A client of the running actors: send commands, wait for outcomes, query state."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self._ids = itertools.count(1)

    async def send(
        self, key: str, command: Command, *, principal: str | None = None, msg_id: str | None = None
    ) -> Outcome:
        """Publish ``command`` for ``key`` and wait for its outcome."""
        ident = msg_id or f"test-{next(self._ids)}"
        headers = {Header.MSG_ID.value: ident, Header.WANT_OUTCOME.value: "1"}
        if principal is not None:
            headers[Header.PRINCIPAL.value] = principal
        subject = subjects.command_subject_for(type(command), key)
        await self.js.publish(subject, msgspec.json.encode(command), headers=headers)
        return await self.outcome(subject.split(".")[1], ident)

    async def ok(self, key: str, command: Command, **kwargs: Any) -> Outcome:
        """Send and insist on acceptance."""
        outcome = await self.send(key, command, **kwargs)
        assert outcome.status == "applied", outcome.rejection
        return outcome

    async def refused(self, key: str, command: Command, code: str, **kwargs: Any) -> Outcome:
        """Send and insist on a rejection with ``code``."""
        outcome = await self.send(key, command, **kwargs)
        assert outcome.status == "rejected", outcome
        assert outcome.rejection is not None
        assert outcome.rejection.code == code, outcome.rejection
        return outcome

    async def outcome(self, domain: str, command_id: str) -> Outcome:
        subject = subjects.outcome_subject(domain, command_id)
        async with asyncio.timeout(20):
            while True:
                try:
                    msg = await self.js.get_last_msg("OUTCOMES", subject)
                    return msgspec.json.decode(msg.data, type=Outcome)
                except nats.js.errors.NotFoundError:
                    await asyncio.sleep(0.02)

    async def state(self, domain: str, key: str, type: type[T]) -> T:
        """The entity's current state as its actor answers it."""
        reply = await self.nc.request(subjects.query_subject(domain, key), b"", timeout=10)
        body = msgspec.json.decode(reply.data)
        return msgspec.convert(body["state"], type)

    async def until(
        self, probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 20
    ) -> T:
        """Poll ``probe`` until ``done`` holds for its value (or fail after ``within`` s)."""
        async with asyncio.timeout(within):
            while True:
                value = await probe()
                if done(value):
                    return value
                await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def _fresh_telemetry() -> Iterator[None]:
    """Leave the process's telemetry unconfigured, as the test found it."""
    yield
    telemetry.reset()


@pytest.fixture
async def host(nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Host]:
    """Lobby, match and ratings running on a fresh server and database."""
    settings = Settings(database_url=database_url, nats_url=nats_server.url, batch_size=64)
    h = Host(settings, [LOBBY, MATCH, RATINGS], nats_url=nats_server.url)
    await h.start()
    try:
        await h.wait_ready()
        yield h
    finally:
        await h.stop()


@pytest.fixture
async def bus(host: Host, nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    nc = await nats.connect(nats_server.url)
    try:
        yield Bus(nc)
    finally:
        await nc.close()
