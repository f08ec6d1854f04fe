"""Commands over HTTP: validate, publish once per idempotency key, answer with the outcome.

``CommandGateway.respond`` is the one implementation of the command request
flow; the generated ``POST /v1/cmd/<domain>/{key}/<verb>`` routes and every
domain route module use it, so none of them re-implement idempotency,
outcome waiting or the mapping of outcomes to HTTP statuses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
import nats.errors
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter

from actors.kernel import telemetry
from gateway import idempotency
from gateway.auth import Principal
from gateway.kv import Pending
from gateway.metrics import gateway_metrics
from gateway.models import CommandResult, PendingCommand
from gateway.problems import (
    PROBLEM_JSON,
    FieldError,
    Problem,
    ProblemError,
    bad_request,
    from_rejection,
    gateway_timeout,
    require_json,
    service_unavailable,
    validation_failed,
)
from gateway.sender import BusUnavailable, NoResponder, RequestRefused, Sent
from schemas.base import KEY_PATTERN, Command, domain_of, name_of, tag_of
from schemas.envelope import Outcome
from schemas.subjects import InvalidSubject, check_key

if TYPE_CHECKING:
    from gateway.app import Caller, Services

__all__ = [
    "COMMAND_OPT",
    "CommandGateway",
    "KeyPath",
    "Mode",
    "command_routes",
    "outcome_response",
    "outcome_url",
    "parse_if_match",
    "parse_prefer",
    "send_error_problem",
]

log = logging.getLogger("troupe.gateway.commands")

JSON: Final = "application/json"
COMMAND_OPT: Final = "troupe_command"
"""Route ``opt`` entry naming the command class whose schema documents the request body."""

Mode = Literal["apply", "preview"]
KeyPath = Annotated[
    str,
    PathParameter(
        pattern=KEY_PATTERN,
        min_length=1,
        max_length=128,
        description="The entity key: 1-128 letters, digits, '_' or '-'.",
    ),
]
ModeQuery = Annotated[
    Mode,
    QueryParameter(
        description=(
            "`apply` (default) sends the command; `preview` answers with the events it would "
            "produce now and changes nothing."
        ),
    ),
]

_IF_MATCH = re.compile(r'^"(?P<version>\d{1,18})"$')
_PREFER_WAIT = re.compile(r"^wait\s*=\s*(?P<seconds>\d{1,6}(?:\.\d{1,3})?)$", re.IGNORECASE)
_ENCODER = msgspec.json.Encoder()
_EMPTY_BODY: Final = b"{}"


def outcome_url(domain: str, command_id: str) -> str:
    """The status URL of a command: ``/v1/outcomes/<domain>/<command id>``."""
    return f"/v1/outcomes/{domain}/{command_id}"


def _problem_response(problem: Problem) -> idempotency.StoredResponse:
    return idempotency.StoredResponse(
        status_code=problem.status,
        body=_ENCODER.encode(problem),
        headers=(("content-type", PROBLEM_JSON),),
    )


def outcome_response(outcome: Outcome, raw: bytes, *, status_url: str | None) -> Any:
    """The HTTP answer for an outcome: 200 with its events, or the rejection as a problem.

    Rejections map by kind (invalid 422, conflict 409, forbidden 403,
    not_found 404, unavailable 503). A dead-lettered command is a 500 when its
    handler failed (an operator must look) and a 422 when the actor could not
    read it.
    """
    match outcome.status:
        case "applied" | "preview":
            headers: list[tuple[str, str]] = [("content-type", JSON)]
            if status_url is not None:
                headers.append(("content-location", status_url))
            if outcome.version is not None and outcome.status == "applied":
                headers.append(("etag", f'"{outcome.version}"'))
            return idempotency.StoredResponse(status_code=200, body=raw, headers=tuple(headers))
        case "rejected":
            assert outcome.rejection is not None
            problem = from_rejection(outcome.rejection)
        case "dead_lettered":
            rejection = outcome.rejection
            kind = rejection.code if rejection is not None else "handler"
            reason = rejection.reason if rejection is not None else "no reason recorded"
            status = 500 if kind == "handler" else 422
            problem = Problem(
                type="tag:troupe,2025:problems/dead_lettered",
                title="Command dead-lettered",
                status=status,
                detail=(
                    f"the {outcome.domain} actor could not handle this command and set it aside "
                    f"in the dead-letter stream; it was not applied ({kind}: {reason})"
                ),
                code="dead_lettered",
                details={"kind": kind},
            )
    problem = msgspec.structs.replace(problem, instance=status_url, command_id=outcome.command_id)
    return _problem_response(problem)


def parse_if_match(values: Sequence[str]) -> int | None:
    """``If-Match: "<version>"`` as the entity version the command expects (``*``: any)."""
    if not values:
        return None
    if len(values) > 1:
        raise ProblemError(bad_request("send one If-Match header", code="invalid_if_match"))
    value = values[0].strip()
    if value == "*":
        return None
    match = _IF_MATCH.match(value)
    if match is None:
        raise ProblemError(
            bad_request(
                'If-Match must be the entity version as a quoted integer, e.g. "3" '
                "(the ETag of GET /v1/state/...)",
                code="invalid_if_match",
            )
        )
    return int(match["version"])


def parse_prefer(values: Sequence[str], default: float, limit: float) -> tuple[float, list[str]]:
    """The outcome wait from ``Prefer`` (RFC 7240): ``respond-async`` or ``wait=<seconds>``.

    Returns the wait and the preferences applied (for ``Preference-Applied``).
    """
    wait, applied = default, []
    for value in values:
        for preference in value.split(","):
            token = preference.split(";", 1)[0].strip()
            if token.lower() == "respond-async":
                wait, applied = 0.0, ["respond-async"]
                return wait, applied
            match = _PREFER_WAIT.match(token)
            if match is not None:
                wait = min(float(match["seconds"]), limit)
                applied = [f"wait={match['seconds']}"]
    return wait, applied


class CommandGateway:
    """Runs a command request end to end for any route that has a ``Command`` in hand."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _key(self, request: Request[Any, Any, Any]) -> str:
        key = idempotency.parse_key(
            request.headers.getall(idempotency.HEADER, []), method=request.method
        )
        assert key is not None  # required on every mutating method
        return key

    async def handle(
        self,
        request: Request[Any, Any, Any],
        key: str,
        decoder: msgspec.json.Decoder[Any],
        cls: type[Command],
        mode: Mode,
    ) -> Response[bytes]:
        """Decode the body as ``cls`` (strictly: unknown fields, wrong types are 422), then run it.

        Authorisation and the idempotency key are checked before the body, so
        a caller learns about a 403 or a missing key before fixing its body.
        """
        caller = await self.services.caller(request)
        self.services.authorize(caller.principal, cls)
        self._key(request)
        # Checked here rather than as a guard: Litestar runs synchronous guards on a thread.
        require_json(request, request.route_handler)
        body = await request.body()
        try:
            command = decoder.decode(body if body.strip() else _EMPTY_BODY)
        except msgspec.ValidationError as exc:
            raise ProblemError(validation_failed(exc)) from None
        except msgspec.DecodeError as exc:
            raise ProblemError(
                bad_request(f"the body is not valid JSON: {exc}", code="malformed_json")
            ) from None
        return await self.respond(request, command, key, mode=mode, caller=caller, body=body)

    async def respond(
        self,
        request: Request[Any, Any, Any],
        command: Command,
        key: str,
        *,
        mode: Mode = "apply",
        caller: Caller | None = None,
        body: bytes | None = None,
    ) -> Response[bytes]:
        """Send ``command`` for ``key`` on behalf of the request's caller and answer over HTTP.

        The ``Idempotency-Key`` header is required. ``apply``: the first request
        with a key publishes once (the command id derives from the caller and the
        key) and waits for the outcome: 200 with the events, the rejection as a
        problem, or 202 with a status URL. Repeats replay that response; a
        different request under the same key is a 409. ``preview``: the events
        the command would produce now, nothing sent or stored. Domain routes call this with
        the command they built; ``body`` defaults to the request's body, which is
        what a repeat is compared on; ``caller`` defaults to the request's caller
        (a route acting for someone else passes its own).
        """
        services = self.services
        if caller is None:
            caller = await services.caller(request)
        services.authorize(caller.principal, type(command))
        try:
            check_key(key)
        except InvalidSubject as exc:
            raise ProblemError(
                validation_failed([FieldError(path="path.key", message=str(exc))])
            ) from None
        correlation = telemetry.correlation_id(request.headers) or telemetry.current_trace_id()
        # Every POST carries a key, previews too (one rule for clients); a preview's answer
        # reflects the state of the moment, so it is never stored or replayed.
        idem_key = self._key(request)
        if mode == "preview":
            return await self._preview(command, key, caller, correlation)
        expected = parse_if_match(request.headers.getall("if-match", []))
        wait, applied = parse_prefer(
            request.headers.getall("prefer", []),
            services.gateway.outcome_wait_seconds,
            services.gateway.max_outcome_wait_seconds,
        )
        raw_body = await request.body() if body is None else body
        fingerprint = idempotency.fingerprint(
            request.method, request.url.path, raw_body, query=request.url.query or ""
        )
        domain = domain_of(type(command))

        async def execute(command_id: str) -> idempotency.StoredResponse:
            return await self._execute(
                command, key, command_id, caller, correlation, wait, expected
            )

        try:
            result = await idempotency.run_idempotent(
                services.idempotency,
                tenant=caller.tenant,
                subject=caller.user.id,
                key=idem_key,
                request=fingerprint,
                execute=execute,
                config=services.gateway.idempotency,
                settle=services.settle,
            )
        except (nats.errors.Error, TimeoutError) as exc:
            # The key's record could not be read or written: nothing was published.
            log.warning("idempotency store unavailable: %s", exc)
            gateway_metrics().command(domain, "unavailable")
            raise ProblemError(
                service_unavailable(
                    "the bus is unavailable; nothing was sent, retry with the same Idempotency-Key",
                    code="bus_unavailable",
                ),
                headers={"Retry-After": "1"},
            ) from None
        if result.replayed:
            gateway_metrics().command(domain, "replayed")
        response = result.response
        media_type = JSON
        headers: dict[str, str] = {"troupe-command-id": result.command_id}
        for name, value in response.headers:
            if name == "content-type":
                media_type = value
            else:
                headers[name] = value
        if applied:
            headers["preference-applied"] = ", ".join(applied)
        return Response(
            content=response.body,
            status_code=response.status_code,
            media_type=media_type,
            headers=headers,
        )

    async def _execute(
        self,
        command: Command,
        key: str,
        command_id: str,
        caller: Caller,
        correlation: str | None,
        wait: float,
        expected: int | None,
    ) -> idempotency.StoredResponse:
        services = self.services
        domain = domain_of(type(command))
        try:
            sent = await services.sender.send(
                command,
                key,
                command_id=command_id,
                tenant=caller.tenant,
                principal=caller.principal.subject,
                correlation_id=correlation,
                wait=wait,
                expected_version=expected,
            )
        except BusUnavailable as exc:
            log.warning("command %s not published: %s", command_id, exc)
            gateway_metrics().command(domain, "unavailable")
            return _problem_response(
                service_unavailable(
                    "the command could not be handed to the bus; nothing was sent, retry "
                    "with the same Idempotency-Key",
                    code="bus_unavailable",
                )
            )
        url = outcome_url(domain, command_id)
        if sent.outcome is None or sent.raw is None:
            gateway_metrics().command(domain, "pending")
            return await self._pending(command, sent, caller, url)
        gateway_metrics().command(domain, sent.outcome.status)
        response: idempotency.StoredResponse = outcome_response(
            sent.outcome, sent.raw, status_url=url
        )
        return response

    async def _pending(
        self, command: Command, sent: Sent, caller: Caller, url: str
    ) -> idempotency.StoredResponse:
        pending = Pending(
            command_id=sent.command_id,
            domain=sent.domain,
            key=sent.key,
            command=tag_of(type(command)),
            tenant=caller.tenant,
            principal=caller.principal.subject,
            status_url=url,
            sent_at=datetime.now(UTC),
        )
        try:
            await self.services.idempotency.put_pending(pending)
        except Exception as exc:
            # The command is stored; its status URL still answers once the outcome lands.
            log.warning("could not record pending command %s: %s", sent.command_id, exc)
        body = PendingCommand(
            command_id=sent.command_id,
            domain=sent.domain,
            key=sent.key,
            command=pending.command,
            status_url=url,
        )
        return idempotency.StoredResponse(
            status_code=202,
            body=_ENCODER.encode(body),
            headers=(("content-type", JSON), ("location", url), ("retry-after", "1")),
        )

    async def _preview(
        self, command: Command, key: str, caller: Caller, correlation: str | None
    ) -> Response[bytes]:
        services = self.services
        domain = domain_of(type(command))
        try:
            outcome, raw = await services.sender.preview(
                command,
                key,
                tenant=caller.tenant,
                principal=caller.principal.subject,
                correlation_id=correlation,
                within=services.gateway.request_timeout_seconds,
            )
        except (NoResponder, RequestRefused, BusUnavailable) as exc:
            raise send_error_problem(exc, domain) from None
        stored = outcome_response(outcome, raw, status_url=None)
        media_type = dict(stored.headers).get("content-type", JSON)
        gateway_metrics().command(domain, "preview")
        return Response(content=stored.body, status_code=stored.status_code, media_type=media_type)


def send_error_problem(exc: Exception, domain: str) -> ProblemError:
    """A request/reply failure as the problem the client gets."""
    if isinstance(exc, NoResponder):
        if exc.timed_out:
            return ProblemError(
                gateway_timeout(
                    f"the {domain} actor did not answer in time; retry later",
                    code="actor_timeout",
                )
            )
        return ProblemError(
            service_unavailable(
                f"no {domain} actor is running right now; retry later", code="actor_unavailable"
            ),
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, RequestRefused):
        return ProblemError(from_rejection(exc.rejection))
    return ProblemError(
        service_unavailable("the bus is unavailable; retry later", code="bus_unavailable"),
        headers={"Retry-After": "1"},
    )


def command_routes(services: Services) -> list[HTTPRouteHandler]:
    """``POST /cmd/<domain>/{key}/<verb>`` for every command of every actor (mounted at /v1)."""
    handlers: list[HTTPRouteHandler] = []
    seen: set[str] = set()
    for actor in services.actors:
        for cls in actor.commands:
            tag = tag_of(cls)
            if tag in seen:
                continue
            seen.add(tag)
            handlers.append(_command_route(services, cls))
    return handlers


def _summary(cls: type[Command]) -> str:
    doc = (cls.__doc__ or "").strip()
    base = (Command.__doc__ or "").strip()
    if not doc or doc == base:
        return ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def _command_route(services: Services, cls: type[Command]) -> HTTPRouteHandler:
    domain, verb = domain_of(cls), name_of(cls)
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(cls)
    gateway = services.commands

    async def send_command(
        request: Request[Principal, Any, Any], key: KeyPath, mode: ModeQuery = "apply"
    ) -> Response[bytes]:
        return await gateway.handle(request, key, decoder, cls, mode)

    summary = _summary(cls)
    description = (
        f"Sends `{tag_of(cls)}` to the {domain} actor for entity `key` "
        f"(subject `cmd.{domain}.<key>.{verb}`) and waits for its outcome."
    )
    if summary:
        description = f"{summary}\n\n{description}"
    return post(
        f"/cmd/{domain}/{{key:str}}/{verb}",
        name=f"cmd:{domain}:{verb}",
        operation_id=f"send_{domain}_{verb}",
        summary=f"{domain} {verb.replace('_', ' ')}",
        description=description,
        tags=[domain],
        status_code=200,
        opt={COMMAND_OPT: cls},
        responses={
            200: ResponseSpec(
                data_container=CommandResult,
                description="Applied (or, with mode=preview, what applying would do now).",
                generate_examples=False,
            ),
            202: ResponseSpec(
                data_container=PendingCommand,
                description=(
                    "Stored, but the actor has not answered within the wait; poll the "
                    "status URL in Location."
                ),
                generate_examples=False,
            ),
        },
    )(send_command)
