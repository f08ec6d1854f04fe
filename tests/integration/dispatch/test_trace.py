"""W3C trace context from the command through the tickets actor's events to the workflow's."""

from __future__ import annotations

import msgspec
import pytest

from actors.dispatch.bundles import Bundle
from actors.dispatch.outbox import outbox_view
from actors.kernel import history
from actors.kernel.bus import EVENTS
from schemas.dispatch import TicketCreated
from schemas.envelope import Recorded
from schemas.headers import Header
from tests.integration.dispatch.conftest import Stack, eventually
from tests.unit.dispatch.builders import create_ticket

pytestmark = pytest.mark.asyncio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TRACESTATE = "vendor=abc123"


async def _events(stack: Stack, subject: str) -> list[Recorded]:
    return [r async for r in history.read(stack.nc.jetstream(), EVENTS, subject)]


async def test_traceparent_and_tracestate_travel_command_to_outbox_event_to_workflow(
    stack: Stack, starter: Bundle
) -> None:
    await stack.activate(starter)
    await stack.ticket(
        "t-trace",
        create_ticket(),
        request_id="create-traced",
        headers={Header.TRACEPARENT: TRACEPARENT, Header.TRACESTATE: TRACESTATE},
    )

    async def recorded() -> list[Recorded] | None:
        found = await _events(stack, "evt.tickets.t-trace.>")
        return found if len(found) >= 2 else None

    # Events and the outcome are published together after the commit; the outcome can be
    # seen a moment before the events stream has stored them.
    ticket_events = await eventually(recorded)
    assert [r.subject.split(".")[3] for r in ticket_events] == [
        "decision_recorded",
        "ticket_created",
    ]
    for record in ticket_events:
        assert record.headers[Header.TRACEPARENT].split("-")[1] == TRACE_ID
        assert record.headers[Header.TRACESTATE] == TRACESTATE
        assert record.headers[Header.CORRELATION_ID] == "create-traced"

    created = ticket_events[1]
    view = outbox_view(
        msgspec.json.decode(created.data, type=TicketCreated),
        key="t-trace",
        event_id=created.id or "",
        occurred_at=created.time,
        headers=created.headers,
        stream_seq=created.seq,
    )
    assert view.traceparent is not None
    assert view.traceparent.split("-")[1] == TRACE_ID
    assert (view.tracestate, view.request_id, view.producer) == (
        TRACESTATE,
        "create-traced",
        "tickets",
    )

    async def proposals() -> list[Recorded] | None:
        found = await _events(stack, "evt.workflow.t-trace.>")
        return found if len(found) >= 2 else None

    for record in await eventually(proposals):
        assert record.headers[Header.TRACEPARENT].split("-")[1] == TRACE_ID
        assert record.headers[Header.TRACESTATE] == TRACESTATE
        assert record.headers[Header.CORRELATION_ID] == "create-traced"
        assert record.headers[Header.CAUSATION_ID] == created.id
