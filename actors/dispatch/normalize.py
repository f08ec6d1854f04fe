"""Normalization: every mutating ticket command becomes one DispatchCommand, or fails closed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from actors.dispatch.errors import InvalidParameters, MissingField, TicketMismatch, UnknownIntent
from schemas.base import KEY_PATTERN, Command, Context, name_of, tag_of
from schemas.dispatch.records import DispatchCommand
from schemas.dispatch.tickets import (
    TICKET_COMMANDS,
    AttachEvidence,
    TicketCommand,
)

INTENTS: dict[str, type[Command]] = {name_of(c): c for c in TICKET_COMMANDS}
"""Intent (the command's verb) -> command class."""

_KEY = re.compile(KEY_PATTERN)
_ENCODER = msgspec.json.Encoder(order="sorted")


def parameters_of(command: Command) -> dict[str, Any]:
    """The command body as plain JSON data, without its ``type`` tag."""
    # Through JSON and back, so parameters are exactly what a decoded event will hold
    # (lists, not tuples; strings for datetimes), and equal before and after the wire.
    data = msgspec.json.decode(msgspec.json.encode(command))
    if not isinstance(data, dict):
        raise TypeError(f"{type(command).__qualname__} did not encode to an object")
    data.pop("type", None)
    return data


def fingerprint(
    *, intent: str, tenant: str, ticket: str, actor: str, parameters: Mapping[str, Any]
) -> str:
    """sha256 over the sorted-key JSON of what the command asks: equal bodies, equal prints."""
    body = {
        "intent": intent,
        "tenant": tenant,
        "ticket": ticket,
        "actor": actor,
        "parameters": dict(parameters),
    }
    return hashlib.sha256(_ENCODER.encode(body)).hexdigest()


def parse_command(intent: str, parameters: Mapping[str, Any]) -> TicketCommand:
    """Build the typed command for an intent from plain parameters (strictly, unknown fields
    refused); the gateway's path from a request body."""
    cls = INTENTS.get(intent)
    if cls is None:
        raise UnknownIntent(intent)
    try:
        command = msgspec.convert({**parameters, "type": tag_of(cls)}, cls)
    except msgspec.ValidationError as err:
        raise InvalidParameters(intent, str(err)) from err
    return command  # type: ignore[return-value]  # INTENTS holds only TicketCommand classes


def command_of(command: DispatchCommand) -> TicketCommand:
    """The typed command a DispatchCommand was normalized from."""
    return parse_command(command.intent, command.parameters)


def normalize(command: Command, ctx: Context) -> DispatchCommand:
    """The normalized form of ``command`` as the runtime delivered it.

    ``request_id`` is the message id (the idempotency key), ``actor`` the
    authenticated principal, ``tenant`` and ``ticket`` come from the context.
    Anything missing raises ``MissingField``: no principal, no decision.
    """
    return build(
        command,
        request_id=ctx.message_id,
        correlation_id=ctx.correlation_id,
        actor=ctx.principal,
        tenant=ctx.tenant,
        ticket=ctx.key,
    )


def build(
    command: Command,
    *,
    request_id: str | None,
    correlation_id: str | None,
    actor: str | None,
    tenant: str | None,
    ticket: str | None,
) -> DispatchCommand:
    """Normalize from explicit request metadata (what a gateway has before publishing)."""
    intent = name_of(type(command))
    if INTENTS.get(intent) is not type(command):
        raise UnknownIntent(intent)
    request_id = _required("request_id", request_id, "the message id is the idempotency key")
    correlation_id = _required("correlation_id", correlation_id, "set Troupe-Correlation-Id")
    actor = _required("actor", actor, "the command must come from an authenticated principal")
    tenant = _required("tenant", tenant, "set Troupe-Tenant")
    ticket = _required("ticket", ticket, "the ticket id is the subject's key")
    for field, value in (("tenant", tenant), ("ticket", ticket)):
        if not _KEY.match(value):
            raise InvalidParameters(intent, f"{field} {value!r} is not a subject-safe key")
    if len(request_id) > 200 or len(correlation_id) > 200 or len(actor) > 200:
        raise InvalidParameters(intent, "request_id, correlation_id and actor are 200 chars max")
    if isinstance(command, AttachEvidence) and command.evidence.ticket_id != ticket:
        raise TicketMismatch("evidence.ticket_id", command.evidence.ticket_id, ticket)
    parameters = parameters_of(command)
    return DispatchCommand(
        request_id=request_id,
        correlation_id=correlation_id,
        actor=actor,
        tenant=tenant,
        ticket=ticket,
        intent=intent,
        parameters=parameters,
        fingerprint=fingerprint(
            intent=intent, tenant=tenant, ticket=ticket, actor=actor, parameters=parameters
        ),
    )


def _required(field: str, value: str | None, hint: str) -> str:
    if value is None or not value.strip():
        raise MissingField(field, hint)
    return value
