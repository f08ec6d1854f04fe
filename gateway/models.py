"""The gateway's HTTP bodies and WebSocket frames: msgspec Structs, the one schema source."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from schemas.base import Rejection

__all__ = [
    "CommandResult",
    "EmittedEventBody",
    "EventPage",
    "EventRecord",
    "Health",
    "LiveCaughtUp",
    "LiveError",
    "LiveEvent",
    "LiveFrame",
    "LiveHeartbeat",
    "LiveReady",
    "Me",
    "PendingCommand",
]


class EmittedEventBody(msgspec.Struct, frozen=True, kw_only=True):
    """One event a command produced: its id, subject, wire tag and body."""

    id: str
    subject: str
    type: str
    data: Any


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """A command's outcome as the actor published it on ``out.<domain>.<digest>``.

    ``applied``: ``events`` lists what it produced, in order, and ``version`` is
    the entity's version after it. ``rejected``: ``rejection`` says why; nothing
    changed. ``dead_lettered``: the actor could not handle it and set it aside.
    ``preview``: what applying it now would produce; nothing changed.
    """

    command_id: str
    domain: str
    key: str
    command: str
    status: Literal["applied", "rejected", "dead_lettered", "preview"]
    events: list[EmittedEventBody] = []
    rejection: Rejection | None = None
    version: int | None = None
    handled_at: datetime | None = None


class PendingCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A command that is stored on the bus but whose outcome has not arrived yet."""

    command_id: str
    domain: str
    key: str
    command: str
    status: Literal["pending"] = "pending"
    status_url: str


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event, as ``troupe replay`` prints it: stream order is ``seq`` order."""

    stream: str
    seq: int
    subject: str
    time: datetime
    id: str | None
    headers: dict[str, str]
    data: Any


class EventPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of events; ask again with ``from_seq=next_seq`` for the next one."""

    subject: str
    items: list[EventRecord]
    next_seq: int
    """The sequence to continue from (also when ``more`` is false: new events land there)."""
    more: bool
    """True if events matching the filter were already stored past this page."""


class Me(msgspec.Struct, frozen=True, kw_only=True):
    """The caller as the gateway sees it."""

    id: str
    """The internal user id: stable for one (issuer, subject)."""
    subject: str
    issuer: str
    tenant: str
    scopes: list[str]
    anonymous: bool
    first_seen_at: datetime


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


# -- WebSocket frames (JSON text frames, discriminated by "type") ------------------------


class LiveReady(msgspec.Struct, frozen=True, kw_only=True, tag="gateway.live_ready.v1"):
    """First frame: the tail is set up and will deliver from ``from_seq`` on."""

    subject: str
    from_seq: int
    last_seq: int
    """The stream's last sequence when the tail started."""


class LiveEvent(msgspec.Struct, frozen=True, kw_only=True, tag="gateway.live_event.v1"):
    """One stored event. Resume after a disconnect with ``from_seq = seq + 1``."""

    stream: str
    seq: int
    subject: str
    time: datetime
    id: str | None
    headers: dict[str, str]
    data: msgspec.Raw


class LiveCaughtUp(msgspec.Struct, frozen=True, kw_only=True, tag="gateway.live_caught_up.v1"):
    """Every stored event up to ``seq`` was delivered; what follows is live."""

    seq: int


class LiveHeartbeat(msgspec.Struct, frozen=True, kw_only=True, tag="gateway.live_heartbeat.v1"):
    """Sent on a quiet tail; ``seq`` is the last sequence delivered (0: none yet)."""

    seq: int


class LiveError(msgspec.Struct, frozen=True, kw_only=True, tag="gateway.live_error.v1"):
    """Last frame before the server closes the socket: what went wrong."""

    code: str
    detail: str


LiveFrame = LiveReady | LiveEvent | LiveCaughtUp | LiveHeartbeat | LiveError
"""Every frame the server sends on ``/v1/events/live``."""
