"""The OutboxEvent view: body and header metadata together, trace context validated."""

from __future__ import annotations

import pytest

from actors.dispatch.outbox import outbox_view, ticket_event, valid_traceparent
from schemas.dispatch import AutonomyPaused, Scope
from schemas.headers import Header
from tests.unit.dispatch.builders import (
    MONDAY_10_CDT,
    TENANT,
    TICKET,
    Driver,
    create_ticket,
    env_for,
    make_bundle,
)

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (TRACE, TRACE),
        (f" {TRACE} ", TRACE),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_trace_context_is_kept_only_when_valid(value: str | None, kept: str | None) -> None:
    assert valid_traceparent(value) == kept


def test_a_ticket_event_view_carries_its_links() -> None:
    driver = Driver(env_for(make_bundle()))
    driver.send(create_ticket(), request_id="req-A", correlation_id="corr-A")
    created = driver.events[1]
    view = outbox_view(
        created,
        key=TICKET,
        event_id="evt-1",
        occurred_at=MONDAY_10_CDT,
        stream_seq=42,
        headers={
            Header.TENANT: TENANT,
            Header.CORRELATION_ID: "corr-A",
            Header.CAUSATION_ID: "req-A",
            Header.TRACEPARENT: TRACE,
            Header.TRACESTATE: "vendor=1",
            Header.PRODUCER: "tickets",
        },
    )
    assert view.subject == f"evt.tickets.{TICKET}.ticket_created"
    assert view.event_type == "tickets.ticket_created.v1"
    assert (view.request_id, view.correlation_id, view.causation_id) == ("req-A", "corr-A", "req-A")
    assert (view.traceparent, view.tracestate, view.producer) == (TRACE, "vendor=1", "tickets")
    assert view.payload["type"] == "tickets.ticket_created.v1"
    assert ticket_event(view) == created


def test_other_domains_are_viewed_but_not_read_as_ticket_history() -> None:
    paused = AutonomyPaused(
        scope=Scope(kind="tenant"), paused_by="user:oncall", reason="drill", at=MONDAY_10_CDT
    )
    view = outbox_view(
        paused,
        key=TENANT,
        event_id="evt-9",
        occurred_at=MONDAY_10_CDT,
        headers={Header.TRACEPARENT: "bad", Header.TRACESTATE: "orphan=1"},
    )
    assert view.subject == f"evt.policy.{TENANT}.autonomy_paused"
    assert (view.tenant, view.correlation_id, view.request_id) == ("default", "", None)
    assert (view.traceparent, view.tracestate) == (None, None)
    assert ticket_event(view) is None
