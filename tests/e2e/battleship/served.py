"""The gateway with only the Battleship routes, served by uvicorn in-process on a free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.embedded import free_port
from actors.kernel.host import Host, engines
from actors.lobby.actor import ACTOR as LOBBY
from actors.match.actor import ACTOR as MATCH
from actors.ratings.actor import ACTOR as RATINGS
from gateway.app import Services, create_app
from gateway.auth import AuthConfig, Authenticator
from gateway.config import GatewaySettings
from gateway.serve import server


@dataclass
class Served:
    """A serving gateway: where it listens and its services."""

    base_url: str
    services: Services


@contextlib.asynccontextmanager
async def serve_gateway(
    nats_url: str,
    database_url: str,
    *,
    auth: AuthConfig | None = None,
    gateway: GatewaySettings | None = None,
) -> AsyncIterator[Served]:
    """Serve the gateway (its own NATS connection, no actors in it) until the block ends."""
    settings = Settings(nats_url=nats_url, database_url=database_url)
    bus = await Bus.connect(nats_url, settings, name="battleship-gateway")
    write, read = engines(settings)
    try:
        await bus.ensure_streams()
        services = Services(
            bus=bus,
            engine=write,
            read_engine=read,
            settings=settings,
            gateway=gateway or GatewaySettings(),
            actors=(LOBBY, MATCH, RATINGS),
            authenticator=Authenticator(auth or AuthConfig(enabled=False)),
            nats_url=nats_url,
        )
        app = create_app(services, route_package="gateway.battleship")
        port = free_port()
        uvicorn = server(app, "127.0.0.1", port)
        task = asyncio.create_task(uvicorn.serve())
        try:
            async with asyncio.timeout(30):
                while not uvicorn.started:
                    if task.done():
                        task.result()
                        raise RuntimeError("the gateway stopped before it started")
                    await asyncio.sleep(0.02)
            yield Served(base_url=f"http://127.0.0.1:{port}", services=services)
        finally:
            uvicorn.should_exit = True
            await asyncio.wait_for(task, 30)
    finally:
        await bus.close()
        await write.dispose()
        await read.dispose()


@contextlib.asynccontextmanager
async def battleship_actors(nats_url: str, database_url: str) -> AsyncIterator[Host]:
    """The lobby, match and ratings actors in a host of their own."""
    settings = Settings(database_url=database_url, nats_url=nats_url, batch_size=64)
    host = Host(settings, [LOBBY, MATCH, RATINGS], nats_url=nats_url)
    await host.start()
    try:
        await host.wait_ready()
        yield host
    finally:
        await host.stop()
