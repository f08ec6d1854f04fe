"""The gateway in-process against a real nats-server and database, with or without its actors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from actors.kernel.actor import Actor
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.host import Host, engines
from gateway.app import Services, create_app
from gateway.config import GatewaySettings
from tests.support.accounts import ACCOUNTS, TALLY

ACTORS: tuple[Actor[Any], ...] = (ACCOUNTS, TALLY)


@dataclass
class Gateway:
    """A started gateway app, its services, and the client that talks to it."""

    client: httpx.AsyncClient
    services: Services


@contextlib.asynccontextmanager
async def running_gateway(
    nats_url: str,
    database_url: str,
    *,
    gateway: GatewaySettings | None = None,
    actors: Sequence[Actor[Any]] = ACTORS,
    route_package: str | None = None,
) -> AsyncIterator[Gateway]:
    """The gateway as ``troupe gateway`` runs it: its own connection, no actors in it."""
    settings = Settings(nats_url=nats_url, database_url=database_url)
    bus = await Bus.connect(nats_url, settings, name="test-gateway")
    write, read = engines(settings)
    try:
        await bus.ensure_streams()
        services = Services(
            bus=bus,
            engine=write,
            read_engine=read,
            settings=settings,
            gateway=gateway or GatewaySettings(),
            actors=actors,
            nats_url=nats_url,
        )
        app = create_app(services, route_package=route_package)
        # httpx drives the app on this event loop, the loop the bus connection belongs to
        # (Litestar's test clients run apps on a thread of their own). The app's startup hook
        # is what the lifespan would run.
        await services.start()
        try:
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway.test", timeout=60
            ) as client:
                yield Gateway(client=client, services=services)
        finally:
            await services.stop()
    finally:
        await bus.close()
        await write.dispose()
        await read.dispose()


@contextlib.asynccontextmanager
async def running_actors(
    nats_url: str, database_url: str, actors: Sequence[Actor[Any]] = ACTORS
) -> AsyncIterator[Host]:
    """The actors in a host of their own (as ``troupe actor`` would run them)."""
    settings = Settings(nats_url=nats_url, database_url=database_url)
    host = Host(settings, actors, nats_url=nats_url)
    await host.start()
    try:
        await host.wait_ready()
        yield host
    finally:
        await host.stop()
