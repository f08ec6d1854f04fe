"""What the runtime itself puts on the bus: outcomes, state replies, dead letters, replays."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from schemas.base import Rejection

OutcomeStatus = Literal["applied", "rejected", "dead_lettered", "preview"]


class EmittedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event a command produced (or would produce, in preview), with its wire body."""

    id: str
    subject: str
    type: str
    data: msgspec.Raw


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one command, published to ``out.<domain>.<digest(command id)>``.

    ``applied``: the events it produced (possibly none). ``rejected``: the
    actor's refusal; nothing changed. ``dead_lettered``: the message could not
    be handled and sits in the dead-letter stream. ``preview``: what applying
    would produce; nothing changed.
    """

    command_id: str
    domain: str
    key: str
    command: str
    status: OutcomeStatus
    events: list[EmittedEvent] = []
    rejection: Rejection | None = None
    version: int | None = None
    handled_at: datetime | None = None


class StateReply(msgspec.Struct, frozen=True, kw_only=True):
    """The answer on ``query.<domain>.<key>``: an entity's current state and version."""

    domain: str
    key: str
    exists: bool
    version: int
    state: msgspec.Raw


class ErrorReply(msgspec.Struct, frozen=True, kw_only=True):
    """A request/reply answer when the request itself was unusable."""

    error: Rejection


DeadLetterKind = Literal["decode", "schema", "unknown_type", "subject", "handler"]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A dead-lettered message as ``troupe dlq list`` shows it."""

    seq: int
    consumer: str
    kind: DeadLetterKind
    reason: str
    subject: str
    stream: str
    stream_seq: int
    attempts: int
    time: datetime
    headers: dict[str, str]
    data: str


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """One stored message as ``troupe replay`` prints it and the gateway pages it."""

    stream: str
    seq: int
    subject: str
    time: datetime
    id: str | None
    headers: dict[str, str]
    data: msgspec.Raw
