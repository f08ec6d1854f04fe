"""Serving the gateway: who may run it without auth, and uvicorn without its own signals or logs."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Generator, Mapping
from typing import Any

import uvicorn

from gateway.auth import AuthConfig, Authenticator

__all__ = [
    "ExposureError",
    "GatewayServer",
    "authenticator_for",
    "is_loopback",
    "port_free",
    "server",
]


class ExposureError(RuntimeError):
    """Raised when the gateway would serve a non-loopback address without authentication."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authenticator_for(
    host: str, *, insecure: bool, env: Mapping[str, str] | None = None
) -> tuple[Authenticator, str | None]:
    """The authenticator ``TROUPE_AUTH_*`` configures, and a warning to print loudly, if any.

    Without auth, a loopback address runs with a warning; any other address
    refuses to start unless ``insecure``. A partial configuration raises
    ``AuthConfigError`` whatever the address.
    """
    env = os.environ if env is None else env
    config = AuthConfig.from_env(env, allow_unconfigured=True)
    authenticator = Authenticator(config)
    if config.enabled:
        return authenticator, None
    if is_loopback(host):
        return authenticator, (
            "AUTH IS OFF: every request on loopback runs as the local user. Set "
            "TROUPE_AUTH_ISSUER, TROUPE_AUTH_AUDIENCE and TROUPE_AUTH_JWKS_URL to require tokens."
        )
    if not insecure:
        raise ExposureError(
            f"refusing to serve {host} without authentication: configure TROUPE_AUTH_* "
            "(see docs/auth.md) or pass --insecure"
        )
    return authenticator, (
        f"AUTH IS OFF on a non-loopback address ({host}) because of --insecure: anyone who "
        "reaches it can send commands."
    )


def port_free(host: str, port: int) -> bool:
    """True if ``host:port`` can be bound now (uvicorn exits the process when it cannot)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class GatewayServer(uvicorn.Server):
    """uvicorn without its own signal handling: the command that runs it owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def server(app: Any, host: str, port: int) -> GatewayServer:
    """A uvicorn server for ``app``; logging stays with actors.kernel.logs (no access log)."""
    return GatewayServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            ws_max_size=1024 * 1024,
        )
    )
