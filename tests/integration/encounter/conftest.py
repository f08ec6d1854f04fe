"""Fixtures for the turn engine: the three actors in one host on a real nats-server and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.effects.actor import ACTOR as EFFECTS
from actors.encounter.actor import make_actor
from actors.encounter.flagstore import FlagHolder
from actors.kernel.actor import Actor
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.mastery.actor import ACTOR as MASTERY
from schemas.flags import COMBAT
from tests.integration.encounter.support import Client

RESYNC_SECONDS = 0.5


@pytest.fixture
def flags() -> FlagHolder:
    """The combat flag as the encounter actor of this test sees it."""
    return FlagHolder(COMBAT)


@pytest.fixture
def encounter_actor(flags: FlagHolder) -> Actor[Any]:
    return make_actor(flags, resync_seconds=RESYNC_SECONDS, poll_seconds=0.2)


def settings_for(nats_server: EmbeddedNats, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        batch_size=64,
        fetch_timeout_seconds=0.25,
    )


@pytest.fixture
async def pg_host(
    nats_server: EmbeddedNats, postgres_url: str, encounter_actor: Actor[Any]
) -> AsyncIterator[Host]:
    """encounter, effects and mastery on PostgreSQL."""
    host = Host(
        settings_for(nats_server, postgres_url),
        [encounter_actor, EFFECTS, MASTERY],
        nats_url=nats_server.url,
    )
    await host.start()
    await host.wait_ready()
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
async def any_host(
    nats_server: EmbeddedNats, database_url: str, encounter_actor: Actor[Any]
) -> AsyncIterator[Host]:
    """encounter, effects and mastery on PostgreSQL and on SQLite."""
    host = Host(
        settings_for(nats_server, database_url),
        [encounter_actor, EFFECTS, MASTERY],
        nats_url=nats_server.url,
    )
    await host.start()
    await host.wait_ready()
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
async def client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    c = await Client.connect(nats_server.url)
    try:
        yield c
    finally:
        await c.close()
