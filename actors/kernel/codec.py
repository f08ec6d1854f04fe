"""Turning a JetStream message into (context, typed message) for one actor, or a dead-letter reason.

Decoders are built once per actor: one per command verb and one per event
type it reacts to, so decoding a message is a dict lookup plus msgspec.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from actors.kernel.actor import Actor
from schemas import subjects
from schemas.base import Command, Context, Event, domain_of, name_of
from schemas.envelope import DeadLetterKind
from schemas.headers import Header


class Undecodable(Exception):
    """Raised when a message cannot become a typed message; it is dead-lettered with ``kind``."""

    def __init__(self, kind: DeadLetterKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: DeadLetterKind = kind
        self.reason = reason


class Decoded(msgspec.Struct, frozen=True):
    """A message ready for ``decide``."""

    body: Command | Event
    ctx: Context
    message_id: str
    want_outcome: bool
    expected_version: int | None
    headers: Mapping[str, str]


def message_id(headers: Mapping[str, str] | None, stream: str, seq: int) -> str:
    """The identity the ledger records: Troupe-Message-Id, else Nats-Msg-Id, else stream:seq.

    A message published without an id is still applied once: its identity is
    its place in the stream, which redelivery does not change.
    """
    if headers:
        explicit = headers.get(Header.MESSAGE_ID) or headers.get(Header.MSG_ID)
        if explicit:
            return explicit
    return f"{stream}:{seq}"


class Codec:
    """Decodes the messages one actor consumes."""

    def __init__(self, actor: Actor[Any]) -> None:
        self.actor = actor
        self._commands: dict[str, msgspec.json.Decoder[Any]] = {
            verb: msgspec.json.Decoder(cls) for verb, cls in actor.command_types().items()
        }
        self._reactions: dict[tuple[str, str], msgspec.json.Decoder[Any]] = {
            key: msgspec.json.Decoder(cls) for key, cls in actor.reaction_types().items()
        }

    def decode_body(self, subject: subjects.Subject, data: bytes) -> Command | Event:
        """Decode ``data`` as the message type ``subject`` names, or raise ``Undecodable``."""
        if subject.kind == "cmd":
            if subject.domain != self.actor.domain:
                raise Undecodable(
                    "unknown_type",
                    f"actor {self.actor.name} takes commands of domain {self.actor.domain!r}, "
                    f"not {subject.domain!r}",
                )
            decoder = self._commands.get(subject.name)
            if decoder is None:
                known = ", ".join(sorted(self._commands)) or "none"
                raise Undecodable(
                    "unknown_type",
                    f"{subject.domain} has no command {subject.name!r} (known: {known})",
                )
        else:
            decoder = self._reactions.get((subject.domain, subject.name))
            if decoder is None:
                raise Undecodable(
                    "unknown_type",
                    f"actor {self.actor.name} does not react to {subject.domain}.{subject.name}",
                )
        try:
            body: Command | Event = decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise Undecodable("schema", f"invalid {subject.domain}.{subject.name}: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise Undecodable("decode", f"body is not valid JSON: {exc}") from exc
        return body

    def decode(
        self,
        subject: str,
        data: bytes,
        headers: Mapping[str, str] | None,
        *,
        stream: str,
        seq: int,
        received_at: datetime,
    ) -> Decoded:
        """Subject, body and headers to a ``Decoded`` message, or raise ``Undecodable``."""
        try:
            parsed = subjects.parse(subject)
        except subjects.InvalidSubject as exc:
            raise Undecodable("subject", str(exc)) from exc
        body = self.decode_body(parsed, data)
        hdrs: Mapping[str, str] = headers or {}
        mid = message_id(hdrs, stream, seq)
        expected: int | None = None
        raw_expected = hdrs.get(Header.EXPECTED_VERSION)
        if raw_expected is not None:
            try:
                expected = int(raw_expected)
            except ValueError:
                raise Undecodable(
                    "schema", f"header {Header.EXPECTED_VERSION} must be an integer"
                ) from None
        key = parsed.key
        ctx = Context(
            key=key,
            message_id=mid,
            subject=subject,
            received_at=received_at,
            correlation_id=hdrs.get(Header.CORRELATION_ID) or mid,
            causation_id=hdrs.get(Header.CAUSATION_ID),
            tenant=hdrs.get(Header.TENANT) or "default",
            principal=hdrs.get(Header.PRINCIPAL),
            stream_seq=seq,
        )
        if self.actor.key_of is not None and parsed.kind == "evt":
            key = self.actor.key_of(body, ctx)
            subjects.check_key(key)
            ctx = msgspec.structs.replace(ctx, key=key)
        return Decoded(
            body=body,
            ctx=ctx,
            message_id=mid,
            want_outcome=hdrs.get(Header.WANT_OUTCOME) == "1",
            expected_version=expected,
            headers=hdrs,
        )


def describe(cls: type[Command | Event]) -> str:
    """``domain.name`` of a message class, for messages and logs."""
    return f"{domain_of(cls)}.{name_of(cls)}"
