"""The routes under /v1/dispatch: ticket and policy commands, reads, and the optimizer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
import nats.errors
from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.dispatch.bundles.sources import (
    BUCKET,
    StoredBundle,
    UnknownBundleObject,
    download,
    listing,
)
from actors.dispatch.errors import BundleError, NormalizationError
from actors.dispatch.normalize import build
from actors.dispatch.optimizer import rank
from actors.kernel import telemetry
from gateway import idempotency
from gateway.commands import COMMAND_OPT, KeyPath, Mode
from gateway.dispatch import answers, reads
from gateway.models import CommandResult, PendingCommand
from gateway.problems import (
    FieldError,
    ProblemError,
    bad_request,
    not_found,
    require_json,
    service_unavailable,
    validation_failed,
)
from gateway.queries import read_action
from gateway.sender import BusUnavailable
from schemas.base import KEY_PATTERN, Command, domain_of, name_of, tag_of
from schemas.dispatch.optimizer import OptimizationInput, OptimizationOutput
from schemas.dispatch.policy import ActivateBundle, PauseAutonomy, ResumeAutonomy
from schemas.dispatch.records import DispatchCommand
from schemas.dispatch.tickets import TICKET_COMMANDS, ApprovalStatus, CreateTicket
from schemas.headers import Header

if TYPE_CHECKING:
    from gateway.app import Caller, Services

__all__ = ["OPTIMIZE_ACTION", "TAG", "DispatchHttp", "routes"]

log = logging.getLogger("troupe.gateway.dispatch")

TAG: Final = "dispatch"
TICKETS: Final = "tickets"
POLICY: Final = "policy"
WORKFLOW: Final = "workflow"
OPTIMIZE_ACTION: Final = "dispatch.optimize"
"""The action (for ``TROUPE_AUTH_REQUIRED_SCOPES``) of asking the optimizer for a ranking."""
MAX_ID_LENGTH: Final = 200
"""Request, correlation and actor ids of a DispatchCommand are at most this long."""
REQUEST_ID_HEADER: Final = "x-request-id"
_CORRELATION_SOURCES: Final = ("Troupe-Correlation-Id", "X-Request-Id", "X-Trace-Id")
"""Where the gateway takes the correlation id from, in this order."""
_ENCODER = msgspec.json.Encoder()
_EMPTY_BODY: Final = b"{}"

ModeQuery = Annotated[
    Mode,
    QueryParameter(
        description=(
            "`apply` (default) sends the command; `preview` answers with the decision and events "
            "it would produce now and records nothing."
        ),
    ),
]
IdPath = Annotated[
    str,
    PathParameter(pattern=KEY_PATTERN, min_length=1, max_length=128, description="An id."),
]
TicketQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=KEY_PATTERN, max_length=128, description="Only the holds of this ticket."
    ),
]
StatusQuery = Annotated[
    ApprovalStatus, QueryParameter(description="Holds in this status (default `pending`).")
]
LimitQuery = Annotated[
    int, QueryParameter(ge=1, le=500, description="At most this many holds (default 100).")
]
IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description=(
            "Required: a unique value per operation, reused only to retry it. It is the request "
            "id (see docs/dispatch.md, HTTP)."
        ),
    ),
]

_COMMAND_RESPONSES: Final = {
    200: ResponseSpec(
        data_container=CommandResult,
        description=(
            "ALLOW (or, with mode=preview, what applying would record now): the outcome with "
            "the DecisionRecorded event first."
        ),
        generate_examples=False,
    ),
    202: ResponseSpec(
        data_container=PendingCommand,
        description=(
            "REQUIRE_APPROVAL: the outcome (`status: applied`) with ApprovalRequested, and "
            "`Location` of the hold; or, with `status: pending`, not handled within the wait "
            "(poll the status URL)."
        ),
        generate_examples=False,
    ),
}


def _idempotency_key(request: Request[Any, Any, Any]) -> str:
    key = idempotency.parse_key(
        request.headers.getall(idempotency.HEADER, []), method=request.method
    )
    assert key is not None  # required on every POST
    return key


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    try:
        return decoder.decode(body if body.strip() else _EMPTY_BODY)
    except msgspec.ValidationError as exc:
        raise ProblemError(validation_failed(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProblemError(
            bad_request(f"the body is not valid JSON: {exc}", code="malformed_json")
        ) from None


def _json(value: Any, *, etag: int | None = None) -> Response[bytes]:
    headers = {} if etag is None else {"etag": f'"{etag}"'}
    return Response(
        content=_ENCODER.encode(value), media_type=answers.JSON, status_code=200, headers=headers
    )


def _echo(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The client's X-Request-Id, returned as sent (it is also the command's correlation id)."""
    value = request.headers.get(REQUEST_ID_HEADER)
    return {} if value is None else {REQUEST_ID_HEADER: value}


def _no_ticket(caller: Caller, ticket: str) -> ProblemError:
    return ProblemError(
        not_found(f"tenant {caller.tenant} has no ticket {ticket!r}", code="ticket_not_found")
    )


def _unavailable() -> ProblemError:
    return ProblemError(
        service_unavailable("the bus is unavailable; retry later", code="bus_unavailable"),
        headers={"Retry-After": "1"},
    )


class DispatchHttp:
    """What the dispatch handlers share: command sending with dispatch answers, and reads."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def engine(self) -> AsyncEngine:
        engine = self.services.read_engine
        assert engine is not None  # Services fills it in
        return engine

    # -- commands ---------------------------------------------------------------------

    async def command(
        self,
        request: Request[Any, Any, Any],
        key: str | None,
        decoder: msgspec.json.Decoder[Any],
        cls: type[Command],
        mode: Mode,
    ) -> Response[bytes]:
        """Decode the body strictly as ``cls`` and send it for ``key`` (None: the tenant).

        The scope and the Idempotency-Key are checked before the body, as on /v1/cmd.
        """
        caller = await self.services.caller(request)
        self.services.authorize(caller.principal, cls)
        idem = _idempotency_key(request)
        # Checked here rather than as a guard: Litestar runs synchronous guards on a thread.
        require_json(request, request.route_handler)
        command = _decode(decoder, await request.body())
        return await self.send(request, caller, command, key or caller.tenant, idem, mode)

    async def send(
        self,
        request: Request[Any, Any, Any],
        caller: Caller,
        command: Command,
        key: str,
        idem: str,
        mode: Mode = "apply",
    ) -> Response[bytes]:
        """Normalize (ticket commands), send through the gateway, and answer as dispatch does.

        The request id is the command id the gateway derives from the caller and the
        Idempotency-Key, so the normalized command here is the one the actor will record.
        """
        cls = type(command)
        command_id = idempotency.command_id(caller.tenant, caller.user.id, idem)
        requested = None
        if domain_of(cls) == TICKETS:
            requested = self._normalized(request, caller, command, key, command_id)
        try:
            response = await self.services.respond(request, command, key, mode=mode)
        except idempotency.IdempotencyKeyReused as exc:
            raise await self._reused(exc, caller, command, key, command_id, requested) from None
        echo = _echo(request)
        if mode == "preview":
            response.headers.update(echo)
            return response
        headers = {str(k).lower(): str(v) for k, v in response.headers.items()}
        answer = answers.shape(
            answers.Answer(
                status=response.status_code or 200,
                body=response.content,
                media_type=str(response.media_type),
                headers=headers,
            ),
            key=key,
            command=tag_of(cls),
            requested=requested,
        )
        return Response(
            content=answer.body,
            status_code=answer.status,
            media_type=answer.media_type,
            headers={**answer.headers, **echo},
        )

    def _normalized(
        self,
        request: Request[Any, Any, Any],
        caller: Caller,
        command: Command,
        key: str,
        command_id: str,
    ) -> DispatchCommand:
        """The DispatchCommand the tickets actor will build; one that cannot is refused here."""
        # The same correlation id the gateway puts on the command.
        correlation = telemetry.correlation_id(request.headers) or telemetry.current_trace_id()
        if correlation is not None and len(correlation) > MAX_ID_LENGTH:
            source = next(
                (n for n in _CORRELATION_SOURCES if request.headers.get(n.lower())),
                _CORRELATION_SOURCES[0],
            )
            raise ProblemError(
                validation_failed(
                    [
                        FieldError(
                            path=f"header.{source}",
                            message=f"a correlation id is at most {MAX_ID_LENGTH} characters",
                        )
                    ]
                )
            )
        try:
            return build(
                command,
                request_id=command_id,
                correlation_id=correlation or command_id,
                actor=caller.principal.subject,
                tenant=caller.tenant,
                ticket=key,
            )
        except NormalizationError as err:
            raise ProblemError(answers.normalization_problem(err)) from None

    async def _reused(
        self,
        exc: idempotency.IdempotencyKeyReused,
        caller: Caller,
        command: Command,
        key: str,
        command_id: str,
        requested: DispatchCommand | None,
    ) -> ProblemError:
        """The gateway's 409 with what differs in the normalized command, when it can tell."""
        domain = domain_of(type(command))
        try:
            found = await self.services.sender.stored_outcome(domain, command_id)
        except BusUnavailable:
            return exc
        if found is None or found.headers.get(Header.TENANT.value, caller.tenant) != caller.tenant:
            return exc
        mismatch = answers.reuse_of(
            found.outcome, key=key, command=tag_of(type(command)), requested=requested
        )
        if mismatch is None:
            return exc
        return ProblemError(answers.enriched(exc.problem, mismatch), exc.headers)

    async def activate(
        self, request: Request[Any, Any, Any], data: reads.ActivationRequest
    ) -> Response[bytes]:
        """Activate a bundle by hash: from the object store, else one the tenant keeps."""
        caller = await self.services.caller(request)
        self.services.authorize(caller.principal, ActivateBundle)
        idem = _idempotency_key(request)
        command = await self._activation(caller.tenant, data)
        return await self.send(request, caller, command, caller.tenant, idem)

    async def _activation(self, tenant: str, data: reads.ActivationRequest) -> ActivateBundle:
        try:
            bundle = await download(self.services.bus.js, data.sha256)
        except UnknownBundleObject:
            async with self.engine.connect() as conn:
                control = await reads.control(conn, tenant)
            kept = control.known_bundle(sha256=data.sha256)
            if kept is None:
                raise ProblemError(
                    not_found(
                        f"no bundle {data.sha256} in the object store bucket {BUCKET}, and tenant "
                        f"{tenant} keeps none with that hash; upload it with "
                        "`troupe dispatch bundle upload`",
                        code=UnknownBundleObject.code,
                    )
                ) from None
            # A rollback: the policy actor restores a bundle it keeps by its version.
            return ActivateBundle(
                expected_sha256=data.sha256, reason=data.reason, version=kept.version
            )
        except BundleError as err:
            problem = validation_failed([FieldError(path="$.sha256", message=str(err))])
            raise ProblemError(
                msgspec.structs.replace(problem, detail=str(err), code=err.code)
            ) from None
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("reading bundle %s failed: %s", data.sha256, exc)
            raise _unavailable() from None
        return ActivateBundle(expected_sha256=data.sha256, reason=data.reason, files=bundle.files)

    # -- reads ------------------------------------------------------------------------

    async def reader(self, request: Request[Any, Any, Any], action: str) -> Caller:
        """The caller, once allowed ``action``."""
        caller = await self.services.caller(request)
        self.services.authorize_action(caller.principal, action)
        return caller

    async def bundles(self) -> list[StoredBundle]:
        """The object store's bundles, newest first."""
        try:
            return await listing(self.services.bus.js)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("listing bundles failed: %s", exc)
            raise _unavailable() from None


def _ticket_route(http: DispatchHttp, cls: type[Command]) -> HTTPRouteHandler:
    verb = name_of(cls)
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(cls)
    suffix = "" if cls is CreateTicket else "/" + verb.replace("_", "-")

    async def send_ticket_command(
        request: Request[Any, Any, Any], ticket: KeyPath, mode: ModeQuery = "apply"
    ) -> Response[bytes]:
        return await http.command(request, ticket, decoder, cls, mode)

    summary = (cls.__doc__ or verb).strip().split("\n", 1)[0]
    return post(
        f"/dispatch/tickets/{{ticket:str}}{suffix}",
        name=f"dispatch:{verb}",
        operation_id=f"dispatch_{verb}",
        summary=summary,
        description=(
            f"Sends `{tag_of(cls)}` for the ticket as the caller (principal and tenant from the "
            "token). The Idempotency-Key is the request id. ALLOW answers 200, REQUIRE_APPROVAL "
            "202 with the hold in Location, DENY a problem whose code is the reason code (409 "
            "for the ticket's state, 403 for policy); the decision is recorded either way."
        ),
        tags=[TAG],
        status_code=200,
        opt={COMMAND_OPT: cls},
        responses=_COMMAND_RESPONSES,
    )(send_ticket_command)


def _control_route(http: DispatchHttp, cls: type[Command]) -> HTTPRouteHandler:
    verb = name_of(cls)
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(cls)

    async def send_control_command(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await http.command(request, None, decoder, cls, "apply")

    summary = (cls.__doc__ or verb).strip().split("\n", 1)[0]
    return post(
        f"/dispatch/policy/{verb.replace('_', '-')}",
        name=f"dispatch:{verb}",
        operation_id=f"dispatch_{verb}",
        summary=summary,
        description=(
            f"Sends `{tag_of(cls)}` to the policy actor for the caller's tenant. A scope is "
            '`{"kind": "tenant"}`, `{"kind": "region", "id": "west"}` or `{"kind": "ticket", '
            '"id": "t-100"}`; pausing a paused scope or resuming one that is not is a 409.'
        ),
        tags=[TAG],
        status_code=200,
        opt={COMMAND_OPT: cls},
        responses={200: _COMMAND_RESPONSES[200]},
    )(send_control_command)


def _command_routes(http: DispatchHttp) -> list[HTTPRouteHandler]:
    handlers = [_ticket_route(http, cls) for cls in TICKET_COMMANDS]
    handlers += [_control_route(http, cls) for cls in (PauseAutonomy, ResumeAutonomy)]

    async def activate_bundle(
        request: Request[Any, Any, Any],
        data: JSONBody[reads.ActivationRequest],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response[bytes]:
        return await http.activate(request, data)

    handlers.append(
        post(
            "/dispatch/policy/activate-bundle",
            name="dispatch:activate_bundle",
            operation_id="dispatch_activate_bundle",
            summary="Make a bundle the tenant's one active bundle",
            description=(
                f"Reads the bundle named by `sha256` from the object store bucket `{BUCKET}` "
                "(verified against its manifest and its name) and sends `policy.activate_bundle"
                ".v1` with its files; a hash the tenant keeps from an earlier activation is a "
                "rollback by version. A refused activation is recorded and answers 422 (409 for "
                "a reused version string); re-activating the active bundle is a 409."
            ),
            tags=[TAG],
            status_code=200,
            responses={200: _COMMAND_RESPONSES[200]},
        )(activate_bundle)
    )
    return handlers


def _ticket_reads(http: DispatchHttp) -> list[HTTPRouteHandler]:
    tickets_read = read_action(TICKETS)

    async def read_ticket(request: Request[Any, Any, Any], ticket: KeyPath) -> Response[bytes]:
        caller = await http.reader(request, tickets_read)
        async with http.engine.connect() as conn:
            view = await reads.ticket(conn, caller.tenant, ticket)
        if view is None:
            raise _no_ticket(caller, ticket)
        return _json(view, etag=view.version)

    async def read_decision(
        request: Request[Any, Any, Any], decision_id: IdPath
    ) -> Response[bytes]:
        caller = await http.reader(request, tickets_read)
        async with http.engine.connect() as conn:
            view = await reads.decision(conn, caller.tenant, decision_id)
        if view is None:
            raise ProblemError(
                not_found(
                    f"tenant {caller.tenant} has no decision {decision_id!r}",
                    code="decision_not_found",
                )
            )
        return _json(view)

    async def list_approvals(
        request: Request[Any, Any, Any],
        status: StatusQuery = "pending",
        ticket: TicketQuery = None,
        limit: LimitQuery = 100,
    ) -> Response[bytes]:
        caller = await http.reader(request, tickets_read)
        async with http.engine.connect() as conn:
            found = await reads.approval_list(
                conn,
                caller.tenant,
                datetime.now(UTC),
                status=status,
                ticket_id=ticket,
                limit=limit,
            )
        return _json(found)

    async def read_approval(
        request: Request[Any, Any, Any], approval_id: IdPath
    ) -> Response[bytes]:
        caller = await http.reader(request, tickets_read)
        async with http.engine.connect() as conn:
            view = await reads.approval(conn, caller.tenant, approval_id, datetime.now(UTC))
        if view is None:
            raise ProblemError(
                not_found(
                    f"tenant {caller.tenant} has no approval {approval_id!r}",
                    code="approval_not_found",
                )
            )
        return _json(view)

    async def list_proposals(request: Request[Any, Any, Any], ticket: KeyPath) -> Response[bytes]:
        caller = await http.reader(request, read_action(WORKFLOW))
        async with http.engine.connect() as conn:
            found = await reads.proposals(conn, caller.tenant, ticket)
        if found is None:
            raise _no_ticket(caller, ticket)
        return _json(found)

    def spec(kind: type[Any], description: str) -> dict[int, ResponseSpec]:
        return {
            200: ResponseSpec(data_container=kind, description=description, generate_examples=False)
        }

    return [
        get(
            "/dispatch/tickets/{ticket:str}",
            name="dispatch:ticket",
            operation_id="dispatch_ticket",
            summary="A ticket with its timeline, decisions and holds",
            description=(
                "The ticket as stored, if it is the caller's tenant's. Every timeline line names "
                "the request, correlation and decision behind it. The ETag is the version: send "
                "it as If-Match to act only on this version."
            ),
            tags=[TAG],
            responses=spec(reads.TicketView, "The ticket."),
        )(read_ticket),
        get(
            "/dispatch/decisions/{decision_id:str}",
            name="dispatch:decision",
            operation_id="dispatch_decision",
            summary="A decision record",
            description=(
                "One recorded decision (denied ones included): the decision, reason code, "
                "explanation, rule, bundle version and sha256, inputs and the command's "
                "parameters, with the timeline lines that link to it."
            ),
            tags=[TAG],
            responses=spec(reads.DecisionView, "The decision."),
        )(read_decision),
        get(
            "/dispatch/approvals",
            name="dispatch:approvals",
            operation_id="dispatch_approvals",
            summary="Holds waiting for an approval",
            description=(
                "The tenant's holds in one status (pending by default), earliest deadline "
                "first. `overdue` marks pending holds past their deadline: the next message for "
                "the ticket, or the expiry scheduler, records them expired."
            ),
            tags=[TAG],
            responses=spec(reads.ApprovalList, "The holds."),
        )(list_approvals),
        get(
            "/dispatch/approvals/{approval_id:str}",
            name="dispatch:approval",
            operation_id="dispatch_approval",
            summary="A hold",
            description="One hold by id, whatever became of it.",
            tags=[TAG],
            responses=spec(reads.ApprovalView, "The hold."),
        )(read_approval),
        get(
            "/dispatch/tickets/{ticket:str}/proposals",
            name="dispatch:proposals",
            operation_id="dispatch_proposals",
            summary="The workflow's proposals for a ticket",
            description=(
                "What the shadow workflow would do next for the ticket (made or suppressed by "
                "the kill switch), oldest first. Proposals are never sent by the workflow."
            ),
            tags=[TAG],
            responses=spec(reads.ProposalList, "The proposals."),
        )(list_proposals),
    ]


def _policy_reads(http: DispatchHttp) -> list[HTTPRouteHandler]:
    policy_read = read_action(POLICY)

    async def read_policy(request: Request[Any, Any, Any]) -> Response[bytes]:
        caller = await http.reader(request, policy_read)
        async with http.engine.connect() as conn:
            control = await reads.control(conn, caller.tenant)
        return _json(reads.policy_view(control))

    async def read_bundle(request: Request[Any, Any, Any]) -> Response[bytes]:
        caller = await http.reader(request, policy_read)
        async with http.engine.connect() as conn:
            control = await reads.control(conn, caller.tenant)
        view = reads.bundle_view(control)
        if view is None:
            raise ProblemError(
                not_found(
                    f"tenant {caller.tenant} has no active bundle: every policy decision is DENY "
                    "until one is activated",
                    code="bundle_not_active",
                )
            )
        return _json(view)

    async def list_bundles(request: Request[Any, Any, Any]) -> Response[bytes]:
        await http.reader(request, policy_read)
        return _json(await http.bundles())

    return [
        get(
            "/dispatch/policy",
            name="dispatch:policy",
            operation_id="dispatch_policy",
            summary="The tenant's policy control",
            description=(
                "The active bundle, the paused scopes, the bundles kept for rollbacks and the "
                "most recent activation attempts (refused ones included)."
            ),
            tags=[TAG],
            responses={
                200: ResponseSpec(
                    data_container=reads.PolicyView,
                    description="The control.",
                    generate_examples=False,
                )
            },
        )(read_policy),
        get(
            "/dispatch/policy/bundle",
            name="dispatch:bundle",
            operation_id="dispatch_active_bundle",
            summary="The active bundle and its rules",
            description="The tenant's active bundle, verified as it is read, with its rules.",
            tags=[TAG],
            responses={
                200: ResponseSpec(
                    data_container=reads.BundleView,
                    description="The active bundle.",
                    generate_examples=False,
                )
            },
        )(read_bundle),
        get(
            "/dispatch/policy/bundles",
            name="dispatch:bundles",
            operation_id="dispatch_stored_bundles",
            summary="Bundles in the object store",
            description=(
                f"Every bundle uploaded to the object store bucket `{BUCKET}`, newest first: the "
                "object name is the bundle's sha256, what activate-bundle takes."
            ),
            tags=[TAG],
            responses={
                200: ResponseSpec(
                    data_container=list[StoredBundle],
                    description="The stored bundles.",
                    generate_examples=False,
                )
            },
        )(list_bundles),
    ]


def _optimize_route(http: DispatchHttp) -> HTTPRouteHandler:
    async def optimize(
        request: Request[Any, Any, Any], data: JSONBody[OptimizationInput]
    ) -> Response[bytes]:
        await http.reader(request, OPTIMIZE_ACTION)
        return _json(rank(data))

    return post(
        "/dispatch/optimize",
        name="dispatch:optimize",
        operation_id="dispatch_optimize",
        summary="Rank technicians for a ticket (recommend only)",
        description=(
            "Hard filters (skills, availability, load, distance) exclude candidates with every "
            "reason; the rest are scored and ranked with an explanation per component. Nothing "
            "is read or written: the same input always gets the same output, tied to it by "
            "`input_sha256`. To act on a recommendation, send propose-visit with its "
            "`recommendation` (input_sha256, rank, score): the ticket's events keep it."
        ),
        tags=[TAG],
        status_code=200,
        responses={
            200: ResponseSpec(
                data_container=OptimizationOutput,
                description="The ranking.",
                generate_examples=False,
            )
        },
    )(optimize)


def routes(services: Services) -> list[HTTPRouteHandler]:
    """Every dispatch route (mounted at /v1 by the gateway)."""
    http = DispatchHttp(services)
    return [
        *_command_routes(http),
        *_ticket_reads(http),
        *_policy_reads(http),
        _optimize_route(http),
    ]
