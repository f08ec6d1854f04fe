"""``troupe gateway``: the HTTP gateway alone, against the configured NATS and database."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from rich.console import Console

from actors import registry
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.host import engines
from gateway.app import Services, create_app
from gateway.auth import AuthConfigError
from gateway.config import GatewayConfigError, GatewaySettings
from gateway.serve import ExposureError, authenticator_for, port_free, server
from troupe import services as troupe_services

__all__ = ["handler", "register"]

log = logging.getLogger("troupe.gateway.command")
err = Console(stderr=True)


class GatewayCommandError(Exception):
    """Raised when ``troupe gateway`` cannot start as configured; printed without a traceback."""


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"--http wants HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def register(sub: Any) -> None:
    """Add ``troupe gateway``."""
    parser = sub.add_parser(
        "gateway",
        help="run the HTTP gateway alone against TROUPE_NATS_URL and TROUPE_DATABASE_URL",
        description=(
            "Serve the HTTP gateway (commands, state, events, live tails, /status, /metrics, "
            "OpenAPI, AsyncAPI) without running any actor. Actors run elsewhere "
            "(`troupe actor NAME`, `troupe up`)."
        ),
    )
    parser.add_argument("--http", help="address HOST:PORT (default TROUPE_HTTP or 127.0.0.1:8000)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback address without authentication",
    )
    parser.set_defaults(handler=handler)


async def handler(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 2 when refused."""
    try:
        return await _serve(args, settings)
    except (GatewayCommandError, ExposureError, AuthConfigError, GatewayConfigError) as exc:
        err.print(f"[red]troupe gateway: {exc}[/red]")
        return 2


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    try:
        host, port = _address(args.http or settings.http)
    except argparse.ArgumentTypeError as exc:
        raise GatewayCommandError(str(exc)) from None
    authenticator, warning = authenticator_for(host, insecure=args.insecure)
    if not port_free(host, port):
        raise GatewayCommandError(f"{host}:{port} is already in use; choose another with --http")
    gateway_settings = GatewaySettings.from_env()
    try:
        nats_url = troupe_services.nats_url(settings)
    except troupe_services.NotRunning as exc:
        raise GatewayCommandError(str(exc)) from None
    actors = registry.load_all()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    write, read = engines(settings)
    bus = await Bus.connect(nats_url, settings, name="troupe-gateway")
    try:
        await bus.ensure_streams()
        services = Services(
            bus=bus,
            engine=write,
            read_engine=read,
            settings=settings,
            gateway=gateway_settings,
            actors=actors,
            authenticator=authenticator,
            nats_url=nats_url,
        )
        http = server(create_app(services), host, port)
        serving = asyncio.create_task(http.serve())
        stopper = asyncio.create_task(stop.wait())
        err.print(
            f"gateway on http://{host}:{port} for {len(actors)} actors "
            f"({', '.join(a.domain for a in actors) or 'none'}); NATS {nats_url}"
        )
        if warning:
            err.print(f"[bold yellow]{warning}[/bold yellow]")
        await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        http.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        if serving.done() and not serving.cancelled() and serving.exception() is not None:
            return 1
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await bus.close()
        await write.dispose()
        await read.dispose()
