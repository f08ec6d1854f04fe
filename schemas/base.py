"""The base classes and constraint aliases every message on the bus derives from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

# Entity keys become one subject token (cmd.<domain>.<key>.<verb>), so they may not
# contain '.', '*', '>' or whitespace.
KEY_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
Key = Annotated[str, Meta(pattern=KEY_PATTERN, description="Subject-safe entity key.")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=10_000)]
PositiveInt = Annotated[int, Meta(gt=0)]
NonNegativeInt = Annotated[int, Meta(ge=0)]


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every message on the bus.

    Subclasses declare an explicit, versioned ``tag=`` such as
    ``"encounter.turn_ended.v1"`` (``<domain>.<name>.v<N>``) so renaming a
    class never changes the wire.
    """


class Command(Message, frozen=True, forbid_unknown_fields=True):
    """A request to change one entity. Inbound, so unknown fields are refused."""


class Event(Message, frozen=True):
    """A fact an actor recorded. Tolerates unknown fields so old and new readers interoperate."""


RejectionKind = Literal["invalid", "conflict", "forbidden", "not_found", "unavailable"]


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """An actor's refusal of a command: nothing changed, nothing was emitted.

    ``kind`` tells a client what to do (the gateway maps it to an HTTP status:
    invalid 422, conflict 409, forbidden 403, not_found 404, unavailable 503);
    ``code`` is a stable machine-readable reason; ``reason`` a sentence a user
    can act on.
    """

    code: str
    reason: str
    kind: RejectionKind = "invalid"
    details: dict[str, Any] = {}


class Addressed(msgspec.Struct, frozen=True):
    """A message an actor emits about another entity, or a command to another domain.

    Plain events returned by ``decide`` are about the key being handled and are
    folded into its state; addressed ones are only published.
    """

    key: str
    message: Event | Command


Emitted = Event | Addressed
Decision = Sequence[Emitted] | Rejection
"""What ``decide`` returns: the messages to emit, in order, or a refusal."""


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """What the runtime knows about the message being handled.

    ``received_at`` is when JetStream stored the message: the only clock pure
    rules may read, so audit replay reproduces every decision.
    """

    key: str
    message_id: str
    subject: str
    received_at: datetime
    correlation_id: str
    causation_id: str | None = None
    tenant: str = "default"
    principal: str | None = None
    stream_seq: int = 0


@cache
def tag_of(cls: type[Message]) -> str:
    """The wire tag of a message class, e.g. ``encounter.next_turn.v1``."""
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{cls.__qualname__} has no string tag")
    return tag


@cache  # runs for every emitted message: a class's tag never changes
def _split_tag(cls: type[Message]) -> tuple[str, str, int]:
    tag = tag_of(cls)
    parts = tag.split(".")
    if len(parts) != 3 or not parts[2].startswith("v") or not parts[2][1:].isdigit():
        raise ValueError(f"tag {tag!r} of {cls.__qualname__} is not '<domain>.<name>.v<N>'")
    return parts[0], parts[1], int(parts[2][1:])


def domain_of(cls: type[Message]) -> str:
    """The domain a message belongs to: the first token of its tag."""
    return _split_tag(cls)[0]


def name_of(cls: type[Message]) -> str:
    """The message name, the verb of a command or the type of an event: the tag's middle token."""
    return _split_tag(cls)[1]


def version_of(cls: type[Message]) -> int:
    """The schema version in the tag."""
    return _split_tag(cls)[2]
