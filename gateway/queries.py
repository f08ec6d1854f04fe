"""Reads: an entity's state, pages of stored events, a command's outcome, the caller itself."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlencode

import msgspec
import nats.errors
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from nats.js.errors import BadRequestError, NotFoundError

from actors.kernel import history
from actors.kernel.bus import EVENTS
from gateway.auth import Principal
from gateway.commands import JSON, KeyPath, send_error_problem
from gateway.models import CommandResult, EventPage, Me, PendingCommand
from gateway.problems import FieldError as ProblemField
from gateway.problems import ProblemError, not_found, service_unavailable, validation_failed
from gateway.sender import BusUnavailable, NoResponder, RequestRefused
from schemas.envelope import Recorded
from schemas.headers import Header

if TYPE_CHECKING:
    from gateway.app import Caller, Services

__all__ = [
    "EVENTS_ACTION",
    "STATE_OPT",
    "SUBJECT_FILTER_PATTERN",
    "InvalidFilter",
    "check_filter",
    "query_routes",
    "read_action",
    "visible_to",
]

log = logging.getLogger("troupe.gateway.queries")

STATE_OPT: Final = "troupe_state"
"""Route ``opt`` entry naming the state type whose schema documents a state response."""
EVENTS_ACTION: Final = "events.read"
"""The action (for ``TROUPE_AUTH_REQUIRED_SCOPES``) of reading events, paged or live."""

_TOKEN: Final = r"(?:[A-Za-z0-9_-]{1,128}|\*)"
SUBJECT_FILTER_PATTERN: Final = rf"^evt(?:(?:\.{_TOKEN}){{1,4}}|(?:\.{_TOKEN}){{0,3}}\.>)$"
"""An events subject filter: ``evt.`` then up to four tokens (``*`` any one, ``>`` the rest)."""
_FILTER = re.compile(SUBJECT_FILTER_PATTERN)
_ENCODER = msgspec.json.Encoder()
MAX_SEQ: Final = 2**53
"""Largest sequence a client may name: exact in every JSON number implementation."""
DEFAULT_TENANT: Final = "default"

CommandIdPath = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=300,
        description="The command id (the `Troupe-Command-Id` header of the command's response).",
    ),
]
SubjectQuery = Annotated[
    str,
    QueryParameter(
        pattern=SUBJECT_FILTER_PATTERN,
        description=(
            "Subject filter on the EVENTS stream, e.g. `evt.acct.a1.>` (one entity), "
            "`evt.acct.*.deposited` (one event type), `evt.>` (everything)."
        ),
    ),
]


class InvalidFilter(ValueError):
    """Raised when an events subject filter does not follow ``evt.<domain>.<key>.<event>``."""


def read_action(domain: str) -> str:
    """The action (for ``TROUPE_AUTH_REQUIRED_SCOPES``) of reading a domain's state and outcomes."""
    return f"{domain}.read"


def check_filter(subject: str, partitions: int = 1) -> str:
    """``subject`` as a consumer filter for the EVENTS stream, or ``InvalidFilter``.

    On a partitioned stream subjects carry a fifth (partition) token, so a
    four-token filter gets ``.*`` appended to keep matching them.
    """
    if not _FILTER.match(subject):
        raise InvalidFilter(
            f"{subject!r} is not an events filter: 'evt.' then up to four tokens of letters, "
            "digits, '_' or '-', each of which may be '*', the last of which may be '>'"
        )
    tokens = subject.split(".")
    if partitions > 1 and len(tokens) == 4 and tokens[-1] != ">":
        return subject + ".*"
    return subject


def visible_to(record_headers: dict[str, str], caller: Caller) -> bool:
    """Whether a stored message belongs to the caller's tenant (untagged messages: the default)."""
    return record_headers.get(Header.TENANT, DEFAULT_TENANT) == caller.tenant


class _Page(msgspec.Struct, frozen=True, kw_only=True):
    """The wire form of ``EventPage``: records keep their bodies as stored."""

    subject: str
    items: list[Recorded]
    next_seq: int
    more: bool


def query_routes(services: Services) -> list[HTTPRouteHandler]:
    """State and outcome routes per domain, the events pages and ``/me`` (mounted at /v1)."""
    handlers: list[HTTPRouteHandler] = [_events_route(services), _me_route(services)]
    for actor in services.actors:
        handlers.append(_state_route(services, actor.domain, actor.state_type))
        if actor.commands:
            handlers.append(_outcome_route(services, actor.domain))
    return handlers


def _state_route(services: Services, domain: str, state_type: type[Any]) -> HTTPRouteHandler:
    action = read_action(domain)

    async def read_state(request: Request[Principal, Any, Any], key: KeyPath) -> Response[bytes]:
        caller = await services.caller(request)
        services.authorize_action(caller.principal, action)
        try:
            reply, raw = await services.sender.state(
                domain, key, within=services.gateway.request_timeout_seconds
            )
        except (NoResponder, RequestRefused, BusUnavailable) as exc:
            raise send_error_problem(exc, domain) from None
        if not reply.exists:
            raise ProblemError(
                not_found(f"there is no {domain} entity {key!r}", code="entity_not_found")
            )
        return Response(
            content=raw, media_type=JSON, headers={"etag": f'"{reply.version}"'}, status_code=200
        )

    return get(
        f"/state/{domain}/{{key:str}}",
        name=f"state:{domain}",
        operation_id=f"state_{domain}",
        summary=f"{domain} state",
        description=(
            f"The current state and version of one {domain} entity, from the actor that owns it "
            f"(`query.{domain}.<key>`). The ETag is the version: send it as `If-Match` on a "
            "command to apply it only at that version."
        ),
        tags=[domain],
        opt={STATE_OPT: state_type},
        responses={
            200: ResponseSpec(
                data_container=dict[str, Any],
                description="The entity's state and version.",
                generate_examples=False,
            )
        },
    )(read_state)


def _outcome_route(services: Services, domain: str) -> HTTPRouteHandler:
    action = read_action(domain)

    async def read_outcome(
        request: Request[Principal, Any, Any], command_id: CommandIdPath
    ) -> Response[bytes]:
        caller = await services.caller(request)
        services.authorize_action(caller.principal, action)
        try:
            found = await services.sender.stored_outcome(domain, command_id)
        except BusUnavailable:
            raise ProblemError(
                service_unavailable("the bus is unavailable; retry later", code="bus_unavailable"),
                headers={"Retry-After": "1"},
            ) from None
        if found is not None and _owns(found.headers, caller):
            return Response(content=found.raw, media_type=JSON, status_code=200)
        pending = None
        if found is None:
            try:
                pending = await services.idempotency.get_pending(domain, command_id)
            except (nats.errors.Error, TimeoutError):
                pending = None
        if (
            pending is not None
            and pending.tenant == caller.tenant
            and pending.principal == caller.principal.subject
        ):
            body = PendingCommand(
                command_id=pending.command_id,
                domain=pending.domain,
                key=pending.key,
                command=pending.command,
                status_url=pending.status_url,
            )
            return Response(
                content=_ENCODER.encode(body),
                media_type=JSON,
                status_code=202,
                headers={"retry-after": "1"},
            )
        raise ProblemError(
            not_found(
                f"no outcome of {domain} command {command_id!r} is known to this caller: it was "
                "never sent, belongs to someone else, or is older than the outcome retention",
                code="outcome_not_found",
            )
        )

    return get(
        f"/outcomes/{domain}/{{command_id:str}}",
        name=f"outcome:{domain}",
        operation_id=f"outcome_{domain}",
        summary=f"{domain} command outcome",
        description=(
            f"The outcome of a {domain} command (the status URL of a 202): 200 with the outcome "
            "once the actor handled it, 202 while it is still pending."
        ),
        tags=[domain],
        responses={
            200: ResponseSpec(
                data_container=CommandResult,
                description="The actor handled the command: applied, rejected or dead-lettered.",
                generate_examples=False,
            ),
            202: ResponseSpec(
                data_container=PendingCommand,
                description="Stored, not handled yet; ask again after Retry-After.",
                generate_examples=False,
            ),
        },
    )(read_outcome)


def _owns(headers: dict[str, str], caller: Caller) -> bool:
    tenant = headers.get(Header.TENANT)
    principal = headers.get(Header.PRINCIPAL)
    # Dead-letter outcomes carry no caller headers; their ids are unguessable per caller.
    if tenant is not None and tenant != caller.tenant:
        return False
    return principal is None or principal == caller.principal.subject


def _events_route(services: Services) -> HTTPRouteHandler:
    settings = services.gateway
    LimitQuery = Annotated[
        int | None,
        QueryParameter(
            ge=1,
            le=settings.events_page_max,
            description=f"Records per page (default {settings.events_page_default}).",
        ),
    ]

    async def read_events(
        request: Request[Principal, Any, Any],
        subject: SubjectQuery,
        from_seq: Annotated[
            int,
            QueryParameter(ge=1, le=MAX_SEQ, description="First stream sequence to return."),
        ] = 1,
        limit: LimitQuery = None,
    ) -> Response[bytes]:
        caller = await services.caller(request)
        services.authorize_action(caller.principal, EVENTS_ACTION)
        try:
            consumer_filter = check_filter(subject, services.settings.streams.partitions)
        except InvalidFilter as exc:
            raise ProblemError(
                validation_failed([ProblemField(path="query.subject", message=str(exc))])
            ) from None
        size = limit or settings.events_page_default
        records: list[Recorded] = []
        try:
            async for record in history.read(
                services.bus.js, EVENTS, consumer_filter, from_seq=from_seq, limit=size + 1
            ):
                records.append(record)
        except (BadRequestError, NotFoundError) as exc:
            raise ProblemError(
                validation_failed(
                    [ProblemField(path="query.subject", message=f"the stream refused it: {exc}")]
                )
            ) from None
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("reading %s failed: %s", subject, exc)
            raise ProblemError(
                service_unavailable("the bus is unavailable; retry later", code="bus_unavailable"),
                headers={"Retry-After": "1"},
            ) from None
        more = len(records) > size
        page = records[:size]
        next_seq = page[-1].seq + 1 if page else from_seq
        body = _Page(
            subject=subject,
            items=[r for r in page if visible_to(r.headers, caller)],
            next_seq=next_seq,
            more=more,
        )
        headers = {}
        if more:
            query = urlencode({"subject": subject, "from_seq": next_seq, "limit": size})
            headers["link"] = f'<{request.url.path}?{query}>; rel="next"'
        return Response(
            content=_ENCODER.encode(body), media_type=JSON, headers=headers, status_code=200
        )

    return get(
        "/events",
        name="events:page",
        operation_id="read_events",
        summary="Stored events",
        description=(
            "Events matching a subject filter in stream order, paged by stream sequence: the "
            "records `troupe replay` prints. Follow `next_seq` (or the Link header) for the next "
            "page; `/v1/events/live` tails the same records over a WebSocket."
        ),
        tags=["events"],
        signature_namespace={"LimitQuery": LimitQuery},
        responses={
            200: ResponseSpec(
                data_container=EventPage, description="A page of events.", generate_examples=False
            )
        },
    )(read_events)


def _me_route(services: Services) -> HTTPRouteHandler:
    async def me(request: Request[Principal, Any, Any]) -> Response[bytes]:
        caller = await services.caller(request)
        body = Me(
            id=caller.user.id,
            subject=caller.principal.subject,
            issuer=caller.principal.issuer,
            tenant=caller.tenant,
            scopes=sorted(caller.principal.scopes),
            anonymous=caller.principal.anonymous,
            first_seen_at=caller.user.first_seen_at,
        )
        return Response(content=_ENCODER.encode(body), media_type=JSON, status_code=200)

    return get(
        "/me",
        name="me",
        operation_id="me",
        summary="The caller",
        description="Who the gateway takes the caller to be: internal user id, tenant, scopes.",
        tags=["auth"],
        responses={
            200: ResponseSpec(data_container=Me, description="The caller.", generate_examples=False)
        },
    )(me)
