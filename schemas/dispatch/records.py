"""Dispatch records: the normalized command, the policy decision, timeline and outbox views."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from schemas.base import Key, Text
from schemas.dispatch.common import AwareDatetime, Principal, Sha256Hex, Token

DecisionValue = Literal["ALLOW", "DENY", "REQUIRE_APPROVAL"]
ReasonCode = Annotated[str, Meta(pattern=r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")]
"""``<area>.<condition>``, stable and machine-readable (``quiet_hours.active``)."""
InputValue = str | int | bool | list[str] | None
RequestId = Annotated[str, Meta(min_length=1, max_length=200)]


class DispatchCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The one normalized shape every mutating ticket command takes before any decision.

    ``request_id`` is the command's idempotency key (its ``Nats-Msg-Id``);
    ``parameters`` is the command body as plain data (its ``type`` tag removed);
    ``fingerprint`` is the sha256 of the canonical JSON of intent, tenant,
    ticket, actor and parameters, so a reused request id with a different body
    is detected as a mismatch.
    """

    request_id: RequestId
    correlation_id: RequestId
    actor: Principal
    tenant: Key
    ticket: Key
    intent: Token
    parameters: dict[str, Any]
    fingerprint: Sha256Hex


class PolicyDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What policy said about one command, with everything needed to explain and reproduce it."""

    decision: DecisionValue
    reason_code: ReasonCode
    explanation: Text
    rule: Token
    """Which rule decided: ``quiet_hours``, ``nte_threshold``, ``closeout_evidence``,
    ``approvals``, ``override``, ``kill_switch``, ``ticket_state``, ``bundle`` or ``default``."""
    bundle_version: str
    bundle_sha256: str
    """Empty only when no bundle was active (and the decision is then a DENY)."""
    inputs: dict[str, InputValue] = {}
    """The facts that mattered, e.g. ``local_time``, ``delta_cents``, ``missing``."""


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a ticket's timeline: an event, linked to the request that caused it."""

    seq: int
    at: AwareDatetime
    kind: Token
    request_id: str
    correlation_id: str
    decision_id: str


class OutboxEvent(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="dispatch.outbox_event.v1"
):
    """A consumer's view of one emitted event: the body plus the metadata carried in headers.

    The runtime's outbox stores exactly these facts; this struct is how readers
    (shadow replay, exports, the history API) see them in one JSON object.
    """

    event_id: str
    event_type: str
    """The event's wire tag, e.g. ``tickets.decision_recorded.v1``."""
    subject: str
    entity_key: Key
    tenant: Key
    correlation_id: str
    occurred_at: AwareDatetime
    payload: dict[str, Any]
    causation_id: str | None = None
    request_id: str | None = None
    stream_seq: int = 0
    traceparent: (
        Annotated[str, Meta(pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")] | None
    ) = None
    tracestate: Annotated[str, Meta(max_length=512)] | None = None
    producer: str | None = None


__all__ = [
    "DecisionValue",
    "DispatchCommand",
    "InputValue",
    "OutboxEvent",
    "PolicyDecision",
    "ReasonCode",
    "RequestId",
    "TimelineEntry",
]
