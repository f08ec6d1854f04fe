"""The consumer view of emitted events (OutboxEvent) and the way back to typed ticket history."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import msgspec

from schemas.base import Event, tag_of
from schemas.dispatch.records import OutboxEvent
from schemas.dispatch.shadow import HistoryEntry
from schemas.dispatch.tickets import TicketEvent, TicketEventType
from schemas.headers import Header
from schemas.subjects import event_subject_for

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a usable W3C traceparent, else None (invalid context is dropped,
    never repaired, as the W3C Trace Context recommendation says)."""
    if value is None:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _ = match.groups()
    if version == "ff" or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return match.group(0)


def outbox_view(
    event: Event,
    *,
    key: str,
    event_id: str,
    occurred_at: datetime,
    headers: Mapping[str, str],
    stream_seq: int = 0,
) -> OutboxEvent:
    """How a consumer sees one event: body plus the header metadata, in one object."""
    payload: Any = msgspec.to_builtins(event)
    request_id = event.request_id if isinstance(event, TicketEvent) else None
    correlation = headers.get(Header.CORRELATION_ID) or (
        event.correlation_id if isinstance(event, TicketEvent) else ""
    )
    return OutboxEvent(
        event_id=event_id,
        event_type=tag_of(type(event)),
        subject=event_subject_for(type(event), key),
        entity_key=key,
        tenant=headers.get(Header.TENANT) or "default",
        correlation_id=correlation,
        occurred_at=occurred_at,
        payload=payload,
        causation_id=headers.get(Header.CAUSATION_ID),
        request_id=request_id,
        stream_seq=stream_seq,
        traceparent=valid_traceparent(headers.get(Header.TRACEPARENT)),
        tracestate=(headers.get(Header.TRACESTATE) or None)
        if valid_traceparent(headers.get(Header.TRACEPARENT))
        else None,
        producer=headers.get(Header.PRODUCER),
    )


def ticket_event(view: OutboxEvent) -> TicketEventType | None:
    """The typed ticket event in a view, or None for another domain's event."""
    if not view.event_type.startswith("tickets."):
        return None
    event: TicketEventType = msgspec.convert(view.payload, TicketEventType)
    return event


def history_from_outbox(views: Iterable[OutboxEvent]) -> Iterator[HistoryEntry]:
    """Ticket history for shadow replay from outbox views (other domains skipped)."""
    for view in views:
        event = ticket_event(view)
        if event is not None:
            yield HistoryEntry(ticket_id=view.entity_key, event=event, stream_seq=view.stream_seq)
