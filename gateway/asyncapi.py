"""An AsyncAPI 3.0.0 description of the bus, generated from the actors and their msgspec Structs."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec

from actors.kernel.actor import Actor, Versioned
from schemas.base import Command, Event, Message, Rejection, domain_of, name_of, tag_of
from schemas.headers import Header
from schemas.subjects import check_token

__all__ = ["ASYNCAPI_VERSION", "build_asyncapi"]

ASYNCAPI_VERSION: Final = "3.0.0"
JSON: Final = "application/json"
_SCHEMAS: Final = "#/components/schemas/"

_HEADER_DOCS: Final[dict[Header, str]] = {
    Header.MSG_ID: "JetStream de-duplication id: the command id, or the derived event id.",
    Header.EXPECTED_LAST_SUBJECT_SEQ: "Publish only if the subject's last sequence is this.",
    Header.TRACEPARENT: "W3C trace context.",
    Header.TRACESTATE: "W3C trace context vendor state.",
    Header.MESSAGE_ID: "Identity the ledger records when it differs from Nats-Msg-Id.",
    Header.CORRELATION_ID: "Ties every message of one request together.",
    Header.CAUSATION_ID: "The id of the message that caused this one.",
    Header.TENANT: "The tenant the message belongs to.",
    Header.PRINCIPAL: "The authenticated subject that sent the command.",
    Header.PRODUCER: "The actor that published the event.",
    Header.EVENT_TYPE: "The event's wire tag, e.g. encounter.turn_ended.v1.",
    Header.WANT_OUTCOME: 'Set to "1" when the sender waits for the outcome on out.<domain>.',
    Header.EXPECTED_VERSION: "Reject with a conflict unless the entity is at this version.",
    Header.DLQ_REASON: "Why the message was dead-lettered.",
    Header.DLQ_KIND: "The failure class (undecodable, invalid, poison, ...).",
    Header.DLQ_SUBJECT: "The subject the message was first published to.",
    Header.DLQ_STREAM: "The stream it came from.",
    Header.DLQ_STREAM_SEQ: "Its sequence in that stream.",
    Header.DLQ_CONSUMER: "The consumer that gave up on it.",
    Header.DLQ_ATTEMPTS: "How many deliveries were tried.",
}

_COMMON: Final = (
    Header.TRACEPARENT,
    Header.TRACESTATE,
    Header.CORRELATION_ID,
    Header.CAUSATION_ID,
    Header.TENANT,
)
_HEADER_SETS: Final[dict[str, tuple[tuple[Header, ...], tuple[Header, ...]]]] = {
    # name: (headers, required headers)
    "CommandHeaders": (
        (
            Header.MSG_ID,
            *_COMMON,
            Header.PRINCIPAL,
            Header.WANT_OUTCOME,
            Header.EXPECTED_VERSION,
            Header.EXPECTED_LAST_SUBJECT_SEQ,
        ),
        (Header.MSG_ID,),
    ),
    "EventHeaders": (
        (Header.MSG_ID, *_COMMON, Header.MESSAGE_ID, Header.PRODUCER, Header.EVENT_TYPE),
        (Header.MSG_ID, Header.EVENT_TYPE),
    ),
    "OutcomeHeaders": ((*_COMMON, Header.PRODUCER), ()),
    "DeadLetterHeaders": (
        (
            *_COMMON,
            Header.MSG_ID,
            Header.DLQ_REASON,
            Header.DLQ_KIND,
            Header.DLQ_SUBJECT,
            Header.DLQ_STREAM,
            Header.DLQ_STREAM_SEQ,
            Header.DLQ_CONSUMER,
            Header.DLQ_ATTEMPTS,
        ),
        (Header.DLQ_REASON, Header.DLQ_SUBJECT),
    ),
}

_KEY_PARAMETER: Final = {
    "description": "Entity key: 1-128 letters, digits, '_' or '-' (one subject token).",
    "examples": ["e1"],
}
_DIGEST_PARAMETER: Final = {
    "description": "First 32 hex digits of sha256(command id): where that command's outcome lands.",
}


def _ref(pointer: str) -> dict[str, str]:
    return {"$ref": pointer}


def _summary(cls: type[Any]) -> str:
    doc = inspect.getdoc(cls) or ""
    base_docs = {inspect.getdoc(base) for base in (Command, Event, Message, msgspec.Struct)}
    if doc in base_docs:
        return ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def _without_openapi_discriminators(node: Any, *, names: bool = False) -> Any:
    """``node`` without msgspec's OpenAPI-style ``discriminator`` objects.

    AsyncAPI's Schema Object defines ``discriminator`` as a property name for
    ``allOf`` inheritance, not OpenAPI's ``{propertyName, mapping}`` on a
    ``oneOf``. Every variant of a tagged union already pins its tag with an
    ``enum``, so the union stays exact without it. ``names``: ``node`` maps
    field names to schemas (``properties``), where a field may be called so.
    """
    if isinstance(node, dict):
        return {
            key: _without_openapi_discriminators(value, names=key in _NAME_MAPS and not names)
            for key, value in node.items()
            if names or not (key == "discriminator" and isinstance(value, dict))
        }
    if isinstance(node, list):
        return [_without_openapi_discriminators(item) for item in node]
    return node


_NAME_MAPS: Final = frozenset({"properties", "patternProperties", "$defs", "definitions"})


def _header_schema(headers: Sequence[Header], required: Sequence[Header]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for header in headers:
        prop: dict[str, Any] = {"type": "string", "description": _HEADER_DOCS[header]}
        if header is Header.WANT_OUTCOME:
            prop["enum"] = ["1"]
        properties[header.value] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = [h.value for h in required]
    return schema


def _server(url: str) -> dict[str, Any]:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    if not parts.hostname:
        raise ValueError(f"server URL {url!r} has no host")
    # Credentials in the URL never reach the published document.
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname:
        host = f"[{parts.hostname}]" + ("" if parts.port is None else f":{parts.port}")
    server: dict[str, Any] = {
        "host": host,
        "protocol": "nats" if parts.scheme in ("nats", "tls") else parts.scheme,
        "description": "NATS with JetStream: commands, events, outcomes and dead letters.",
    }
    if parts.scheme == "tls":
        server["description"] += " TLS required."
    return server


class _Builder:
    """Accumulates channels, operations and messages, each named once."""

    def __init__(self, schema_names: Mapping[type[Any], str]) -> None:
        self.names = schema_names
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}

    def payload(self, cls: type[Any]) -> dict[str, str]:
        return _ref(_SCHEMAS + self.names[cls])

    def message(
        self,
        message_id: str,
        *,
        name: str,
        payload: Mapping[str, Any],
        headers: str | None,
        summary: str = "",
        domain: str | None = None,
    ) -> str:
        if message_id not in self.messages:
            message: dict[str, Any] = {
                "name": name,
                "title": name,
                "contentType": JSON,
                "payload": dict(payload),
            }
            if headers is not None:
                message["headers"] = _ref(_SCHEMAS + headers)
                message["correlationId"] = _ref("#/components/correlationIds/correlation")
            if summary:
                message["summary"] = summary
            if domain is not None:
                message["tags"] = [{"name": domain}]
            self.messages[message_id] = message
        return message_id

    def channel(
        self,
        channel_id: str,
        address: str | None,
        message_ids: Iterable[str],
        *,
        parameters: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> str:
        channel = self.channels.setdefault(channel_id, {"address": address, "messages": {}})
        for message_id in message_ids:
            channel["messages"][message_id] = _ref(f"#/components/messages/{message_id}")
        if parameters:
            channel["parameters"] = dict(parameters)
        if description:
            channel["description"] = description
        return channel_id

    def operation(
        self,
        operation_id: str,
        action: str,
        channel_id: str,
        *,
        summary: str,
        domain: str | None = None,
        reply_channel: str | None = None,
    ) -> None:
        if operation_id in self.operations:
            return
        operation: dict[str, Any] = {
            "action": action,
            "channel": _ref(f"#/channels/{channel_id}"),
            "summary": summary,
            "messages": [
                _ref(f"#/channels/{channel_id}/messages/{message_id}")
                for message_id in self.channels[channel_id]["messages"]
            ],
        }
        if domain is not None:
            operation["tags"] = [{"name": domain}]
        if reply_channel is not None:
            operation["reply"] = {
                "channel": _ref(f"#/channels/{reply_channel}"),
                "messages": [
                    _ref(f"#/channels/{reply_channel}/messages/{message_id}")
                    for message_id in self.channels[reply_channel]["messages"]
                ],
            }
        self.operations[operation_id] = operation


def _decision_schema(builder: _Builder, events: Sequence[type[Event]]) -> dict[str, Any]:
    """A command's outcome: the events it produced, in order, or the actor's rejection."""
    items: dict[str, Any] = (
        {"anyOf": [builder.payload(e) for e in events]} if events else {"type": "object"}
    )
    return {
        "description": "The events the command produced, in order, or the actor's rejection.",
        "anyOf": [
            {"type": "array", "items": items},
            builder.payload(Rejection),
        ],
    }


def build_asyncapi(
    actors: Sequence[Actor[Any]],
    *,
    title: str,
    version: str,
    server_url: str,
    description: str = "",
) -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document for these actors' subjects, messages and headers.

    Operations are seen from a client of the bus: it sends commands (and
    preview/query requests) and receives events, outcomes and dead letters.
    Payload schemas come from the msgspec Structs (``schema_components``).
    """
    actors = list(actors)
    names = {a.name for a in actors}
    if len(names) != len(actors):
        raise ValueError("actor names must be unique")
    for actor in actors:
        check_token(actor.domain, "domain")

    commands: dict[str, type[Command]] = {}
    events: dict[str, type[Event]] = {}
    for actor in actors:
        for cmd in actor.commands:
            commands.setdefault(tag_of(cmd), cmd)
        for evt in (*actor.emits, *actor.reactions):
            events.setdefault(tag_of(evt), evt)
    states = {actor.domain: Versioned[actor.state_type] for actor in actors}  # type: ignore[name-defined]

    types: list[Any] = [*commands.values(), *events.values(), Rejection, *states.values()]
    refs, components = msgspec.json.schema_components(types, ref_template=_SCHEMAS + "{name}")
    components = {name: _without_openapi_discriminators(c) for name, c in components.items()}
    schema_names = {
        t: ref["$ref"].removeprefix(_SCHEMAS) for t, ref in zip(types, refs, strict=True)
    }
    builder = _Builder(schema_names)
    for name, (headers, required) in _HEADER_SETS.items():
        components[name] = _header_schema(headers, required)

    for tag, cmd in sorted(commands.items()):
        domain, verb = domain_of(cmd), name_of(cmd)
        message_id = builder.message(
            tag,
            name=cmd.__name__,
            payload=builder.payload(cmd),
            headers="CommandHeaders",
            summary=_summary(cmd),
            domain=domain,
        )
        channel = builder.channel(
            f"cmd.{domain}.{verb}",
            f"cmd.{domain}.{{key}}.{verb}",
            [message_id],
            parameters={"key": _KEY_PARAMETER},
            description=f"Commands {verb} for one {domain} entity (COMMANDS stream).",
        )
        builder.operation(
            f"send.cmd.{domain}.{verb}",
            "send",
            channel,
            summary=f"Ask the {domain} actor to {verb.replace('_', ' ')}.",
            domain=domain,
        )

    for tag, evt in sorted(events.items()):
        domain, event_name = domain_of(evt), name_of(evt)
        message_id = builder.message(
            tag,
            name=evt.__name__,
            payload=builder.payload(evt),
            headers="EventHeaders",
            summary=_summary(evt),
            domain=domain,
        )
        channel = builder.channel(
            f"evt.{domain}.{event_name}",
            f"evt.{domain}.{{key}}.{event_name}",
            [message_id],
            parameters={"key": _KEY_PARAMETER},
            description=f"{event_name} events about one {domain} entity (EVENTS stream).",
        )
        builder.operation(
            f"receive.evt.{domain}.{event_name}",
            "receive",
            channel,
            summary=f"Observe {domain} {event_name.replace('_', ' ')} events.",
            domain=domain,
        )

    for actor in sorted(actors, key=lambda a: a.name):
        domain = actor.domain
        domain_events = [e for e in actor.emits if domain_of(e) == domain]
        decision = _decision_schema(builder, domain_events)
        if actor.commands:
            outcome = builder.message(
                f"{domain}.outcome",
                name=f"{domain}Outcome",
                payload=decision,
                headers="OutcomeHeaders",
                summary=f"What a {domain} command did: its events or its rejection.",
                domain=domain,
            )
            channel = builder.channel(
                f"out.{domain}",
                f"out.{domain}.{{digest}}",
                [outcome],
                parameters={"digest": _DIGEST_PARAMETER},
                description=f"Outcomes of {domain} commands sent with Troupe-Want-Outcome: 1.",
            )
            builder.operation(
                f"receive.out.{domain}",
                "receive",
                channel,
                summary=f"Wait for the outcome of a {domain} command.",
                domain=domain,
            )
            preview_reply = builder.message(
                f"{domain}.preview_result",
                name=f"{domain}PreviewResult",
                payload=decision,
                headers=None,
                summary="What the command would do now; nothing is committed.",
                domain=domain,
            )
            reply_channel = builder.channel(
                f"preview.{domain}.reply", None, [preview_reply], description="The reply inbox."
            )
            for cmd in actor.commands:
                verb = name_of(cmd)
                channel = builder.channel(
                    f"preview.{domain}.{verb}",
                    f"preview.{domain}.{{key}}.{verb}",
                    [tag_of(cmd)],
                    parameters={"key": _KEY_PARAMETER},
                    description=f"Request/reply: decide {verb} without committing.",
                )
                builder.operation(
                    f"send.preview.{domain}.{verb}",
                    "send",
                    channel,
                    summary=f"Preview {verb.replace('_', ' ')} on a {domain} entity.",
                    domain=domain,
                    reply_channel=reply_channel,
                )
        query = builder.message(
            f"{domain}.query",
            name=f"{domain}Query",
            payload={"description": "Empty: the key is in the subject."},
            headers=None,
            summary=f"Ask for one {domain} entity's current state.",
            domain=domain,
        )
        state = builder.message(
            f"{domain}.state",
            name=f"{domain}State",
            payload=builder.payload(states[domain]),
            headers=None,
            summary=f"A {domain} entity's state and version.",
            domain=domain,
        )
        reply_channel = builder.channel(
            f"query.{domain}.reply", None, [state], description="The reply inbox."
        )
        channel = builder.channel(
            f"query.{domain}",
            f"query.{domain}.{{key}}",
            [query],
            parameters={"key": _KEY_PARAMETER},
            description=f"Request/reply: the current state of one {domain} entity.",
        )
        builder.operation(
            f"send.query.{domain}",
            "send",
            channel,
            summary=f"Read a {domain} entity's state.",
            domain=domain,
            reply_channel=reply_channel,
        )

    dead_letter = builder.message(
        "troupe.dead_letter",
        name="DeadLetter",
        payload={"description": "The original message body, unchanged."},
        headers="DeadLetterHeaders",
        summary="A message a consumer could not process, with the reason in headers.",
    )
    channel = builder.channel(
        "dlq",
        "dlq.{consumer}",
        [dead_letter],
        parameters={
            "consumer": {
                "description": "The durable consumer (actor) that gave up on the message.",
                "enum": sorted(names),
            }
        },
        description="Dead letters (DEADLETTER stream).",
    )
    builder.operation("receive.dlq", "receive", channel, summary="Observe dead letters.")

    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    domains = sorted({a.domain for a in actors} | {domain_of(e) for e in events.values()})
    info["tags"] = [{"name": d} for d in domains]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": info,
        "defaultContentType": JSON,
        "servers": {"nats": _server(server_url)},
        "channels": builder.channels,
        "operations": builder.operations,
        "components": {
            "schemas": dict(sorted(components.items())),
            "messages": builder.messages,
            "correlationIds": {
                "correlation": {
                    "description": "Every message of one request carries the same id.",
                    "location": f"$message.header#/{Header.CORRELATION_ID.value}",
                }
            },
        },
    }
