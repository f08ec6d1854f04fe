"""The HTTP gateway application: built once per process around a bus and a database engine.

Routes (every ``/v1`` route needs a bearer token when auth is configured)::

    GET  /health  /status  /metrics  /asyncapi.json  /schema/openapi.json
    POST /v1/cmd/<domain>/{key}/<verb>[?mode=preview]   one route per command class
    GET  /v1/state/<domain>/{key}                        an entity's state (ETag: version)
    GET  /v1/outcomes/<domain>/{command_id}              a command's outcome (status URL)
    GET  /v1/events?subject=evt....&from_seq=&limit=     stored events, paged by sequence
    WS   /v1/events/live?subject=evt....&from_seq=       the same, tailed live
    GET  /v1/me                                          the caller

Domain modules ``gateway/routes/<name>.py`` defining ``routes(services)`` are
mounted under ``/v1`` too (see docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel import status as kernel_status
from actors.kernel.actor import Actor
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from gateway.asyncapi import build_asyncapi
from gateway.auth import AuthConfig, Authenticator, Principal, auth_middleware, principal_of
from gateway.commands import CommandGateway, Mode, command_routes
from gateway.config import GatewaySettings
from gateway.kv import IdempotencyBucket
from gateway.live import live_route
from gateway.openapi import OpenApiJson, patch_document
from gateway.ops import ops_routes
from gateway.problems import exception_handlers
from gateway.queries import query_routes
from gateway.sender import CommandSender, Sent
from gateway.tracing import RequestTelemetry
from gateway.users import DEFAULT_TENANT, User, UserDirectory
from schemas.base import Command, domain_of, name_of

__all__ = [
    "Caller",
    "RouteModuleError",
    "Services",
    "command_action",
    "create_app",
    "discover_routes",
]

log = logging.getLogger("troupe.gateway")

OPEN_PATHS = ("^/schema",)
"""Path regexes served without a token (besides routes marked ``exclude_from_auth``)."""


class RouteModuleError(RuntimeError):
    """Raised when a ``gateway/routes/<name>.py`` module cannot be imported or mounted."""


def command_action(cls: type[Command]) -> str:
    """The action (``TROUPE_AUTH_REQUIRED_SCOPES`` key) of sending ``cls``: ``<domain>.<verb>``."""
    return f"{domain_of(cls)}.{name_of(cls)}"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request and the internal user it maps to."""

    principal: Principal
    user: User

    @property
    def tenant(self) -> str:
        """The caller's tenant (``default`` when the token names none)."""
        return self.principal.tenant or DEFAULT_TENANT


def closed_reads(actors: Sequence[Actor[Any]]) -> dict[str, str]:
    """Reads that show secret state unredacted: closed to tokens until scopes are configured."""
    secret = sorted(a.domain for a in actors if a.secret_state)
    if not secret:
        return {}
    closed = {
        f"{domain}.read": f"{domain} state holds what some callers must not see"
        for domain in secret
    }
    closed["events.read"] = f"the event stream shows {', '.join(secret)} events unredacted"
    return closed


def _no_auth() -> Authenticator:
    return Authenticator(AuthConfig(enabled=False))


@dataclass(eq=False)
class Services:
    """What route handlers use: the bus, the engines, settings, auth helpers and command sending.

    One per process, built before the app; ``start`` (run by the app at
    startup) opens the idempotency bucket. Domain route modules receive it in
    ``routes(services)`` and use ``respond`` (or ``send``) rather than
    publishing commands themselves.
    """

    bus: Bus
    engine: AsyncEngine
    read_engine: AsyncEngine | None = None
    settings: Settings = field(default_factory=Settings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    actors: Sequence[Actor[Any]] = ()
    authenticator: Authenticator = field(default_factory=_no_auth)
    nats_url: str | None = None
    """Published in the AsyncAPI document's server (credentials are never included)."""
    sender: CommandSender = field(init=False)
    idempotency: IdempotencyBucket = field(init=False)
    users: UserDirectory = field(init=False)
    commands: CommandGateway = field(init=False)
    _asyncapi: bytes | None = field(init=False, default=None)
    _settling: set[asyncio.Task[Any]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        if self.read_engine is None:
            self.read_engine = self.engine
        domains = [a.domain for a in self.actors]
        if len(set(domains)) != len(domains):
            raise ValueError(f"two actors share a domain: {sorted(domains)}")
        self.authenticator.close(closed_reads(self.actors))
        self.sender = CommandSender(self.bus)
        retention = self.gateway.idempotency.retention + self.gateway.idempotency.lease
        self.idempotency = IdempotencyBucket(
            self.bus.nc,
            self.bus.js,
            self.gateway.idempotency_bucket,
            retention,
            replicas=self.settings.streams.replicas,
            memory=self.gateway.idempotency_storage == "memory",
        )
        self.users = UserDirectory(self.engine)
        self.commands = CommandGateway(self)

    async def start(self) -> None:
        """Open the idempotency bucket (created on first start)."""
        await self.idempotency.start()

    async def stop(self) -> None:
        """Finish the record updates still in flight, then close the bucket's subscription."""
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=10)
        await self.idempotency.stop()

    def settle(self, update: Coroutine[Any, Any, Any]) -> None:
        """Run an idempotency record update after the response has left (see run_idempotent)."""
        task = asyncio.ensure_future(update)
        self._settling.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # The record stays in flight until its lease ends; a retry then runs the command
            # again under the same id, which the bus and the ledger keep single.
            log.warning("idempotency record update failed: %s", error)

    # -- callers and permissions ------------------------------------------------------

    async def caller(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
        """The request's caller, its user row created on first sight (cached per request)."""
        state = connection.state
        cached = getattr(state, "troupe_caller", None)
        if isinstance(cached, Caller):
            return cached
        principal = principal_of(connection)
        caller = Caller(principal=principal, user=await self.users.ensure(principal))
        state.troupe_caller = caller
        return caller

    def authorize_action(self, principal: Principal, action: str) -> None:
        """Raise a 403 problem unless ``principal`` holds the scopes configured for ``action``."""
        self.authenticator.authorize(principal, action)

    def authorize(self, principal: Principal, command: type[Command]) -> None:
        """Raise a 403 problem unless ``principal`` may send commands of class ``command``."""
        self.authorize_action(principal, command_action(command))

    def guard(
        self, action: str
    ) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
        """A Litestar guard for ``action`` (for domain routes that are not commands).

        Asynchronous, because Litestar runs synchronous guards on a worker thread.
        """
        authenticator = self.authenticator

        async def check(
            connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
        ) -> None:
            authenticator.authorize(principal_of(connection), action)

        return check

    # -- commands ---------------------------------------------------------------------

    async def respond(
        self,
        request: Request[Any, Any, Any],
        command: Command,
        key: str,
        *,
        mode: Mode = "apply",
        caller: Caller | None = None,
    ) -> Response[bytes]:
        """Send ``command`` for ``key`` as the request's caller; the full HTTP answer.

        Idempotency-Key handling, scope check (action ``<domain>.<verb>``),
        outcome waiting, 200/202/problem mapping and ``?mode=preview`` semantics
        are the same as on ``POST /v1/cmd/...``. ``caller`` replaces the request's
        own (its tenant and user scope the key; its subject becomes the principal).
        """
        return await self.commands.respond(request, command, key, mode=mode, caller=caller)

    async def send(
        self,
        command: Command,
        key: str,
        *,
        command_id: str,
        caller: Caller,
        correlation_id: str | None = None,
        wait: float | None = None,
        expected_version: int | None = None,
    ) -> Sent:
        """Publish ``command`` and await its outcome, without any HTTP semantics."""
        return await self.sender.send(
            command,
            key,
            command_id=command_id,
            tenant=caller.tenant,
            principal=caller.principal.subject,
            correlation_id=correlation_id,
            wait=self.gateway.outcome_wait_seconds if wait is None else wait,
            expected_version=expected_version,
        )

    # -- operations ---------------------------------------------------------------------

    async def status(self) -> kernel_status.Status:
        """Readiness: the kernel's checks plus the idempotency bucket."""
        assert self.read_engine is not None
        result = await kernel_status.gather(self.bus, self.read_engine)
        try:
            await self.idempotency.check()
            check = kernel_status.Check(
                name="idempotency", ok=True, detail=f"KV bucket {self.idempotency.bucket}"
            )
        except Exception as exc:
            check = kernel_status.Check(name="idempotency", ok=False, detail=str(exc))
        return msgspec.structs.replace(
            result, ok=result.ok and check.ok, checks=[*result.checks, check]
        )

    def asyncapi_json(self) -> bytes:
        """The AsyncAPI 3.0 document of these actors, built once."""
        if self._asyncapi is None:
            version, _ = kernel_status.version()
            url = self.nats_url
            connected = self.bus.nc.connected_url
            if url is None and connected is not None and connected.hostname:
                url = f"nats://{connected.hostname}:{connected.port or 4222}"
            document = build_asyncapi(
                self.actors,
                title="Troupe",
                version=version,
                server_url=url or "nats://localhost:4222",
                description="Commands, events, outcomes and dead letters of Troupe's actors.",
            )
            self._asyncapi = msgspec.json.encode(document)
        return self._asyncapi


def discover_routes(
    services: Services, package: str = "gateway.routes"
) -> list[ControllerRouterHandler]:
    """The handlers of every ``<package>/<name>.py`` module defining ``routes(services)``.

    Modules whose name starts with ``_`` are skipped; a module that fails to
    import or to build its routes stops the gateway with the module's name.
    """
    root = importlib.import_module(package)
    handlers: list[ControllerRouterHandler] = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        name = f"{package}.{info.name}"
        try:
            module = importlib.import_module(name)
            factory = getattr(module, "routes", None)
            if factory is None:
                continue
            found = list(factory(services))
        except Exception as exc:
            raise RouteModuleError(f"route module {name} failed: {exc}") from exc
        handlers += found
        log.debug("mounted %d handlers from %s", len(found), name)
    return handlers


def create_app(services: Services, *, route_package: str | None = "gateway.routes") -> Litestar:
    """The gateway app for one process (``route_package=None`` mounts no domain modules)."""
    v1: list[ControllerRouterHandler] = [
        *command_routes(services),
        *query_routes(services),
        live_route(services),
    ]
    if route_package is not None:
        v1 += discover_routes(services, route_package)
    auth = services.authenticator

    def patch(document: dict[str, Any]) -> dict[str, Any]:
        return patch_document(document, app, auth=auth.enabled)

    version, _ = kernel_status.version()
    app = Litestar(
        route_handlers=[*ops_routes(services), Router("/v1", route_handlers=v1)],
        middleware=[auth_middleware(auth, exclude=OPEN_PATHS)],
        exception_handlers=exception_handlers(),
        on_startup=[services.start],
        on_shutdown=[services.stop],
        openapi_config=OpenAPIConfig(
            title="Troupe gateway",
            version=version,
            description=(
                "Commands, state and events of Troupe's actors over HTTP. Errors are RFC 9457 "
                "problems; mutating requests need an Idempotency-Key."
            ),
            path="/schema",
            render_plugins=[OpenApiJson(patch)],
            create_examples=False,
        ),
        request_max_body_size=services.gateway.max_body_bytes,
        # Logs go through actors.kernel.logs; Litestar's own config would add a root handler.
        logging_config=None,
        debug=False,
    )
    app.asgi_handler = RequestTelemetry(app.asgi_handler)
    return app
