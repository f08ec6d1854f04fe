"""The OpenAPI document: Litestar's paths, with bus message schemas taken from msgspec itself.

Litestar documents paths, parameters and the gateway's own bodies. What
travels on the bus (command bodies, entity states) is described by
``msgspec.json.schema_components``, the same generator the AsyncAPI document
uses, so both documents describe exactly what msgspec decodes and encodes.
Every ``/v1`` operation also lists its RFC 9457 problem responses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec
from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from gateway.commands import COMMAND_OPT
from gateway.idempotency import HEADER, MAX_KEY_LENGTH
from gateway.problems import PROBLEM_JSON, Problem
from gateway.queries import STATE_OPT
from schemas.base import Command

__all__ = ["KEY_HEADER_PATTERN", "OpenApiJson", "patch_document"]

_REF: Final = "#/components/schemas/"
KEY_HEADER_PATTERN: Final = rf"^[!#-~][!-~]{{0,{MAX_KEY_LENGTH - 1}}}$"
"""What to send as an Idempotency-Key: visible ASCII, not starting with a quote (a UUID fits)."""

_PROBLEM_STATUSES: Final[dict[int, str]] = {
    400: "Malformed request: bad JSON, a missing or malformed Idempotency-Key, a bad header.",
    401: "No token, or a token that does not verify.",
    403: "The token lacks a scope this action needs, or the actor refused it as forbidden.",
    404: "No such entity, outcome or route.",
    409: (
        "The actor refused the command as a conflict, or the Idempotency-Key was used for a "
        "different request (`code` idempotency_key_reused, with `mismatch`) or is in flight."
    ),
    413: "The body is larger than the gateway accepts.",
    415: "The body is not JSON.",
    422: "The body or a parameter fails the schema (`errors` names each path), or the actor "
    "refused the command as invalid.",
    500: "The gateway failed, or the actor's handler failed and the command was dead-lettered.",
    503: "The bus, an actor or the token keys are unavailable; retry (see Retry-After).",
    504: "The actor did not answer a request/reply call in time.",
}
_READ_STATUSES: Final = (400, 401, 403, 404, 422, 500, 503, 504)
_COMMAND_STATUSES: Final = (400, 401, 403, 404, 409, 413, 415, 422, 500, 503, 504)


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
                name = value.removeprefix(_REF)
                out[key] = _REF + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _state_reply(state_type: type[Any]) -> type[msgspec.Struct]:
    name = getattr(state_type, "__name__", "State")
    return msgspec.defstruct(
        f"{name}Reply",
        [
            ("domain", str),
            ("key", str),
            ("exists", bool),
            ("version", int),
            ("state", state_type),
        ],
        frozen=True,
        kw_only=True,
    )


def _operations(app: Litestar) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    """(OpenAPI path, lower-case method, route opt) for every HTTP route handler."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                yield route.path_format, method.lower(), handler.opt


def _merge_components(schemas: dict[str, Any], generated: Mapping[str, Any]) -> dict[str, str]:
    """Add msgspec's components; a name Litestar already used for something else is renamed."""
    renames: dict[str, str] = {}
    for name, schema in generated.items():
        if name in schemas and schemas[name] != schema:
            candidate, n = f"{name}Message", 2
            while candidate in schemas or candidate in generated:
                candidate, n = f"{name}Message{n}", n + 1
            renames[name] = candidate
    for name, schema in generated.items():
        schemas[renames.get(name, name)] = _rewrite_refs(schema, renames)
    return renames


def _problem_responses(operation: dict[str, Any], statuses: Sequence[int]) -> None:
    responses = operation.setdefault("responses", {})
    problem = {PROBLEM_JSON: {"schema": {"$ref": _REF + "Problem"}}}
    # Every error leaves as a problem, whatever Litestar inferred (its 400 says application/json).
    for status in [s for s in responses if s.isdigit() and int(s) >= 400]:
        responses[status]["content"] = problem
    for status in statuses:
        responses.setdefault(
            str(status), {"description": _PROBLEM_STATUSES[status], "content": problem}
        )


def _command_parameters(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    parameters += [
        {
            "name": HEADER,
            "in": "header",
            "required": True,
            "description": (
                "A unique value per operation (a UUID, say), reused only to retry it: the "
                "same key and body answer with the first response; a different body is a 409. "
                "Scoped to the caller; kept 24 hours. Previews check it but never store or "
                "replay their answers."
            ),
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_KEY_LENGTH,
                "pattern": KEY_HEADER_PATTERN,
            },
        },
        {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "description": (
                'Apply only at this entity version: the ETag of its state, e.g. "3"; otherwise '
                "the actor refuses with 409 version_mismatch."
            ),
            "schema": {"type": "string", "pattern": r'^"\d{1,18}"$'},
        },
        {
            "name": "Prefer",
            "in": "header",
            "required": False,
            "description": (
                "RFC 7240 preferences: `wait=<seconds>` waits at most that long for the "
                "outcome (capped by the server); `respond-async` answers 202 as soon as the "
                "command is stored. Others are ignored."
            ),
            "schema": {"type": "string"},
        },
    ]


def patch_document(document: dict[str, Any], app: Litestar, *, auth: bool) -> dict[str, Any]:
    """Litestar's document with msgspec schemas for commands and states, and problem responses."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    commands: dict[tuple[str, str], type[Command]] = {}
    states: dict[tuple[str, str], type[msgspec.Struct]] = {}
    for path, method, opt in _operations(app):
        if COMMAND_OPT in opt:
            commands[(path, method)] = opt[COMMAND_OPT]
        if STATE_OPT in opt:
            states[(path, method)] = _state_reply(opt[STATE_OPT])
    types: list[Any] = [Problem, *dict.fromkeys(commands.values()), *states.values()]
    refs, generated = msgspec.json.schema_components(types, ref_template=_REF + "{name}")
    names = {t: ref["$ref"].removeprefix(_REF) for t, ref in zip(types, refs, strict=True)}
    renames = _merge_components(schemas, generated)
    names = {t: renames.get(n, n) for t, n in names.items()}
    # Schemas msgspec writes for tagged commands require the tag; the route names the verb,
    # so clients may leave "type" out (and msgspec accepts it either way).
    for cls in dict.fromkeys(commands.values()):
        schema = schemas[names[cls]]
        required = [name for name in schema.get("required", []) if name != "type"]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
    problem_name = names[Problem]
    if problem_name != "Problem":
        schemas["Problem"] = {"$ref": _REF + problem_name}
    if auth:
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from the configured OIDC issuer (see docs/auth.md).",
        }
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or method not in {
                "get",
                "post",
                "put",
                "patch",
                "delete",
            }:
                continue
            if (path, method) in commands:
                cls = commands[(path, method)]
                operation["requestBody"] = {
                    # A command without required fields may be sent with no body at all.
                    "required": bool(schemas[names[cls]].get("required")),
                    "description": "The command's fields (an empty body means `{}`).",
                    "content": {"application/json": {"schema": {"$ref": _REF + names[cls]}}},
                }
                _command_parameters(operation)
            if (path, method) in states:
                state = states[(path, method)]
                operation["responses"]["200"]["content"] = {
                    "application/json": {"schema": {"$ref": _REF + names[state]}}
                }
            if not path.startswith("/v1/"):
                continue
            mutating = method != "get"
            _problem_responses(operation, _COMMAND_STATUSES if mutating else _READ_STATUSES)
            if auth:
                operation["security"] = [{"bearer": []}]
    return document


class OpenApiJson(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` from the patched document, built once."""

    def __init__(self, patch: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        super().__init__(path="/openapi.json")
        self._patch = patch
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = msgspec.json.encode(self._patch(openapi_schema))
        return self._rendered
