"""``troupe up``: everything in one process, with no configuration needed.

Starts a nats-server from the wheel (unless TROUPE_NATS_URL points elsewhere),
uses SQLite under ``.troupe/`` (unless TROUPE_DATABASE_URL), applies
migrations, runs every actor, the relay and the gateway, and stops cleanly on
Ctrl-C or SIGTERM. Running it again resumes where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from actors import registry
from actors.kernel import migrate
from actors.kernel.actor import Actor
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.kernel.relay import Relay
from gateway.app import Services, create_app
from gateway.auth import AuthConfigError, Authenticator
from gateway.config import GatewayConfigError, GatewaySettings
from gateway.serve import ExposureError, GatewayServer, authenticator_for, server
from gateway.serve import is_loopback as is_loopback
from troupe.services import url_file

log = logging.getLogger("troupe.up")


class UpError(RuntimeError):
    """Raised when ``troupe up`` refuses to start; the message says what to change."""


def parse_http(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:8000``) to a (host, port) pair."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise UpError(f"--http wants HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def gateway_auth(host: str, *, insecure: bool) -> tuple[Authenticator, GatewaySettings, str | None]:
    """The gateway's authenticator and settings from the environment, and a loud warning if any.

    Refuses a non-loopback address without auth (unless ``insecure``) and a
    partial auth configuration, before anything starts.
    """
    try:
        authenticator, warning = authenticator_for(host, insecure=insecure)
        return authenticator, GatewaySettings.from_env(), warning
    except (ExposureError, AuthConfigError, GatewayConfigError) as exc:
        raise UpError(str(exc)) from exc


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


async def run(
    settings: Settings,
    *,
    http: str,
    insecure: bool = False,
    actors: Sequence[Actor[Any]] | None = None,
    console: Console | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    console = console or Console(stderr=True)
    host_name, port = parse_http(http)
    authenticator, gateway_settings, warning = gateway_auth(host_name, insecure=insecure)
    if not _port_free(host_name, port):
        raise UpError(f"{host_name}:{port} is already in use; choose another with --http")
    home = settings.home_path
    home.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    embedded: EmbeddedNats | None = None
    if settings.is_embedded_nats:
        embedded = EmbeddedNats(home / "nats", port=settings.nats_port, sync=settings.nats_sync)
        await asyncio.to_thread(embedded.start)
        nats_url = embedded.url
        url_file(settings).write_text(nats_url + "\n")
    else:
        assert settings.nats_url is not None
        nats_url = settings.nats_url
    db_url = settings.resolved_database_url()
    host: Host | None = None
    http_server: GatewayServer | None = None
    server_task: asyncio.Task[None] | None = None
    relay_task: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(migrate.upgrade, db_url)
        chosen = registry.load_all() if actors is None else list(actors)
        host = Host(settings, chosen, nats_url=nats_url)
        await host.start()
        assert host.bus is not None
        assert host.engine is not None
        relay = Relay(
            bus=host.bus, engine=host.engine, read_engine=host.read_engine, settings=settings
        )
        relay_task = asyncio.create_task(relay.run(stop))
        app = create_app(
            Services(
                bus=host.bus,
                engine=host.engine,
                read_engine=host.read_engine,
                settings=settings,
                gateway=gateway_settings,
                actors=chosen,
                authenticator=authenticator,
                nats_url=nats_url,
            )
        )
        http_server = server(app, host_name, port)
        server_task = asyncio.create_task(http_server.serve())
        await host.wait_ready()
        _banner(console, settings, nats_url, db_url, host_name, port, chosen, warning)
        serve_task = asyncio.create_task(host.serve())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({serve_task, stopper, server_task}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if serve_task.done() and serve_task.exception() is not None:
            console.print(f"[red]an actor stopped: {serve_task.exception()}[/red]")
            return 1
        return 0
    finally:
        stop.set()
        console.print("stopping: finishing batches in hand...")
        if http_server is not None:
            http_server.should_exit = True
        if server_task is not None:
            with contextlib.suppress(Exception):
                await server_task
        if relay_task is not None:
            with contextlib.suppress(Exception):
                await relay_task
        if host is not None:
            await host.stop()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
            with contextlib.suppress(FileNotFoundError):
                url_file(settings).unlink()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        console.print("stopped.")


def _banner(
    console: Console,
    settings: Settings,
    nats_url: str,
    db_url: str,
    host: str,
    port: int,
    actors: Sequence[Actor[Any]],
    warning: str | None,
) -> None:
    table = Table(title="Troupe is up", show_header=False, title_justify="left")
    table.add_row(
        "gateway", f"http://{host}:{port}  (/v1, /status, /metrics, /schema/openapi.json)"
    )
    table.add_row("nats", nats_url + ("  (embedded)" if settings.is_embedded_nats else ""))
    table.add_row("database", _redact(db_url))
    table.add_row("home", str(settings.home_path.resolve()))
    table.add_row("actors", ", ".join(a.name for a in actors) or "none")
    console.print(table)
    if warning:
        console.print(f"[bold yellow]{warning}[/bold yellow]")
    console.print("Ctrl-C stops Troupe cleanly; `troupe up` again resumes where it left off.")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
