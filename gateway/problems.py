"""RFC 9457 problem details: the one shape every gateway error takes on the wire."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from opentelemetry import trace

from schemas.base import Rejection

__all__ = [
    "PROBLEM_JSON",
    "TYPE_BASE",
    "FieldError",
    "Problem",
    "ProblemError",
    "bad_request",
    "conflict",
    "exception_handlers",
    "field_error_from_message",
    "forbidden",
    "from_rejection",
    "gateway_timeout",
    "internal_error",
    "method_not_allowed",
    "not_found",
    "problem_response",
    "require_json",
    "service_unavailable",
    "too_many_requests",
    "unauthorized",
    "unsupported_media_type",
    "validation_failed",
]

log = logging.getLogger("troupe.gateway")

PROBLEM_JSON: Final = "application/problem+json"
TYPE_BASE: Final = "tag:troupe,2025:problems/"
"""Problem type URIs are tag URIs (RFC 4151): stable identifiers that need no hosting."""

_AT_PATH = re.compile(r"^(?P<message>.*?) - at `(?P<path>\$[^`]*)`$", re.DOTALL)
_NAMED_FIELD = re.compile(
    r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]*)`$"
)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_ENCODER = msgspec.json.Encoder()


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One failing input: where (``$.expected_step``, ``query.limit``) and what is wrong."""

    path: str
    message: str


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An ``application/problem+json`` body (RFC 9457) with Troupe's extension members.

    ``code`` is a stable machine-readable reason; ``errors`` lists failing inputs;
    ``mismatch`` says what differs from an earlier request with the same
    idempotency key; ``trace_id`` ties the response to the server's traces and logs;
    ``command_id`` names the command an actor's refusal is about.
    """

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    errors: tuple[FieldError, ...] = ()
    mismatch: dict[str, Any] | None = None
    required_scopes: tuple[str, ...] = ()
    details: dict[str, Any] | None = None
    trace_id: str | None = None
    command_id: str | None = None


class ProblemError(Exception):
    """Raised to end a request with a given problem (and response headers)."""

    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail or problem.title)
        self.problem = problem
        self.headers: dict[str, str] = dict(headers or {})


def _problem(
    slug: str, title: str, status: int, detail: str | None, code: str | None = None, **extra: Any
) -> Problem:
    return Problem(
        type=TYPE_BASE + slug, title=title, status=status, detail=detail, code=code or slug, **extra
    )


def bad_request(
    detail: str, *, code: str = "bad_request", errors: Iterable[FieldError] = ()
) -> Problem:
    """400: the request is malformed (unparsable JSON, a bad header)."""
    return _problem("bad_request", "Bad request", 400, detail, errors=tuple(errors), code=code)


def unauthorized(detail: str, *, code: str = "invalid_token") -> Problem:
    """401: no credentials, or credentials that did not verify."""
    return _problem("unauthorized", "Unauthorized", 401, detail, code=code)


def forbidden(
    detail: str, *, code: str = "insufficient_scope", required_scopes: Iterable[str] = ()
) -> Problem:
    """403: the caller is known but may not do this."""
    return _problem(
        "forbidden",
        "Forbidden",
        403,
        detail,
        required_scopes=tuple(sorted(required_scopes)),
        code=code,
    )


def not_found(detail: str, *, code: str = "not_found") -> Problem:
    """404: no such route or entity."""
    return _problem("not_found", "Not found", 404, detail, code=code)


def method_not_allowed(method: str, allowed: Iterable[str]) -> Problem:
    """405: the route exists but not for this method."""
    methods = ", ".join(sorted(allowed))
    return _problem(
        "method_not_allowed",
        "Method not allowed",
        405,
        f"{method} is not allowed here; allowed: {methods}"
        if methods
        else f"{method} is not allowed",
    )


def conflict(
    detail: str, *, code: str = "conflict", mismatch: Mapping[str, Any] | None = None
) -> Problem:
    """409: the request conflicts with the current state or an earlier request."""
    return _problem(
        "conflict",
        "Conflict",
        409,
        detail,
        mismatch=None if mismatch is None else dict(mismatch),
        code=code,
    )


def unsupported_media_type(received: str | None, supported: Sequence[str]) -> Problem:
    """415: the body is not in a media type this route reads."""
    got = f"{received!r}" if received else "no Content-Type"
    return _problem(
        "unsupported_media_type",
        "Unsupported media type",
        415,
        f"got {got}; send one of: {', '.join(supported)}",
    )


def field_error_from_message(message: str, *, root: str = "$") -> FieldError:
    """Split a msgspec validation message into the failing path and the message.

    ``"Expected `int`, got `str` - at `$.expected_step`"`` becomes path
    ``$.expected_step``; a missing or unknown field is appended to the path it
    was reported at (``Object missing required field `name``` -> ``$.name``).
    """
    match = _AT_PATH.match(message)
    text, path = (match["message"], match["path"]) if match else (message, root)
    if named := _NAMED_FIELD.match(text):
        path = f"{path}.{named['field']}"
    return FieldError(path=path, message=text)


def validation_failed(
    error: msgspec.ValidationError | str | Iterable[FieldError], *, detail: str | None = None
) -> Problem:
    """422: the body parsed but does not match the schema; ``errors`` names each field."""
    if isinstance(error, msgspec.ValidationError | str):
        errors: tuple[FieldError, ...] = (field_error_from_message(str(error)),)
    else:
        errors = tuple(error)
    if detail is None:
        detail = "; ".join(f"{e.path}: {e.message}" for e in errors) or "validation failed"
    return _problem("validation", "Validation failed", 422, detail, errors=errors)


def too_many_requests(detail: str, *, code: str = "rate_limited") -> Problem:
    """429: slow down (send ``Retry-After`` with it)."""
    return _problem("rate_limited", "Too many requests", 429, detail, code=code)


def internal_error(trace_id: str | None = None) -> Problem:
    """500: something failed on our side; the detail never carries internals."""
    detail = "the server failed to handle this request"
    if trace_id:
        detail += f"; quote trace id {trace_id} when reporting it"
    return _problem("internal", "Internal server error", 500, detail, trace_id=trace_id)


def service_unavailable(detail: str, *, code: str = "unavailable") -> Problem:
    """503: a dependency (bus, key set, actor) is down; retry later."""
    return _problem("unavailable", "Service unavailable", 503, detail, code=code)


def gateway_timeout(detail: str, *, code: str = "timeout") -> Problem:
    """504: the command was sent but its outcome did not arrive in time."""
    return _problem("timeout", "Gateway timeout", 504, detail, code=code)


def from_rejection(rejection: Rejection) -> Problem:
    """An actor's ``Rejection`` as a problem: ``kind`` picks the status, ``code`` passes through.

    invalid 422, conflict 409, forbidden 403, not_found 404, unavailable 503.
    """
    reason, code = rejection.reason, rejection.code
    match rejection.kind:
        case "invalid":
            problem = _problem("validation", "Validation failed", 422, reason, code=code)
        case "conflict":
            problem = conflict(reason, code=code)
        case "forbidden":
            problem = forbidden(reason, code=code)
        case "not_found":
            problem = not_found(reason, code=code)
        case "unavailable":
            problem = service_unavailable(reason, code=code)
    details = dict(rejection.details)
    return msgspec.structs.replace(problem, details=details) if details else problem


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response[bytes]:
    """The Litestar response for ``problem``: its status, ``application/problem+json``."""
    return Response(
        content=_ENCODER.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def trace_id_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The trace id of the current span, else the one in the request's ``traceparent``."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    header = connection.headers.get("traceparent", "")
    match = _TRACEPARENT.match(header.strip().lower())
    if match and match["trace"] != "0" * 32:
        return match["trace"]
    return None


def _finish(
    request: Request[Any, Any, Any], problem: Problem, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    changes: dict[str, Any] = {}
    if problem.instance is None:
        changes["instance"] = request.url.path
    if problem.trace_id is None and (trace_id := trace_id_of(request)) is not None:
        changes["trace_id"] = trace_id
    if changes:
        problem = msgspec.structs.replace(problem, **changes)
    return problem_response(problem, headers)


def _handle_problem_error(request: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    return _finish(request, exc.problem, exc.headers)


def _validation_errors(exc: ValidationException) -> tuple[FieldError, ...]:
    errors: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, Mapping):
            continue
        message = str(item.get("message", "invalid value"))
        key = item.get("key")
        source = item.get("source")
        if key is None:
            root = "$"
        elif source == "body":
            # Litestar reports the body itself as "data" and nested fields without it.
            root = "$" if key == "data" else f"$.{key}"
        else:
            # Litestar names the source with a str enum (ParamType.QUERY); its value is "query".
            root = f"{getattr(source, 'value', source) or 'parameter'}.{key}"
        errors.append(field_error_from_message(message, root=root))
    return tuple(errors)


_PASS_THROUGH_HEADERS: Final = frozenset({"allow", "retry-after", "www-authenticate"})


def _handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    headers = {
        name: value
        for name, value in (exc.headers or {}).items()
        if name.lower() in _PASS_THROUGH_HEADERS
    }
    status = exc.status_code
    detail = exc.detail
    problem: Problem
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc)
        problem = validation_failed(errors, detail=detail)
    elif status == 400:
        problem = bad_request(detail)
    elif status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="troupe"')
        problem = unauthorized(detail, code="unauthorized")
    elif status == 403:
        problem = forbidden(detail, code="forbidden")
    elif status == 404:
        # Litestar's own 404 says only "Not Found"; a handler's may say what is missing.
        if detail == HTTPStatus.NOT_FOUND.phrase:
            detail = f"nothing at {request.method} {request.url.path}"
        problem = not_found(detail)
    elif status == 405:
        allow = next((v for k, v in headers.items() if k.lower() == "allow"), "")
        allowed = [m.strip() for m in allow.split(",") if m.strip()]
        problem = method_not_allowed(request.method, allowed)
    elif status == 415:
        problem = unsupported_media_type(request.headers.get("content-type"), ["application/json"])
    elif status == 429:
        problem = too_many_requests(detail)
    elif status == 503:
        problem = service_unavailable("the service is temporarily unavailable; retry later")
    elif status == 504:
        problem = gateway_timeout("the request timed out")
    elif status >= 500:
        return _handle_unexpected(request, exc)
    else:
        # Any other 4xx Litestar raises (413, 406, ...): keep its status and its safe detail.
        problem = Problem(
            type="about:blank",
            title=_reason_phrase(status),
            status=status,
            detail=detail,
            code=_reason_phrase(status).lower().replace(" ", "_"),
        )
    return _finish(request, problem, headers)


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    trace_id = trace_id_of(request) or secrets.token_hex(16)
    log.error(
        "unhandled error on %s %s (trace id %s)",
        request.method,
        request.url.path,
        trace_id,
        exc_info=exc,
    )
    return _finish(request, internal_error(trace_id))


def exception_handlers() -> dict[type[Exception] | int, Callable[..., Response[bytes]]]:
    """Handlers to pass as ``Litestar(exception_handlers=...)``: every error becomes a problem.

    Litestar's own errors (validation -> 422, 404, 405, ...) and anything
    unexpected (500, logged with a trace id, no internals in the body) included.
    """
    return {
        ProblemError: _handle_problem_error,
        HTTPException: _handle_http_exception,
        Exception: _handle_unexpected,
    }


JSON_MEDIA_TYPES: Final = ("application/json",)
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def require_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: a request that carries a body must send it as JSON, else 415."""
    if connection.scope.get("method") not in _BODY_METHODS:
        return
    headers = connection.headers
    content_type = headers.get("content-type")
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if content_type is None and not has_body:
        return
    if content_type is None or not _is_json(content_type):
        raise ProblemError(
            unsupported_media_type(content_type, JSON_MEDIA_TYPES),
            headers={"Accept-Post": ", ".join(JSON_MEDIA_TYPES)},
        )
