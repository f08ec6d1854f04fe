"""The kill switch: a pause stops the next automatic action on both planes; overrides audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from actors.dispatch.bundles import Bundle
from actors.policy.tables import controls, pauses
from actors.tickets.tables import decisions
from actors.workflow.tables import proposals
from schemas.dispatch import (
    AttachEvidence,
    DecisionRecorded,
    ManualOverride,
    OverrideApplied,
    ProposeVisit,
    Scope,
    TicketState,
)
from tests.integration.dispatch.conftest import ADMIN, Stack, eventually
from tests.unit.dispatch.builders import create_ticket, evidence, window

pytestmark = pytest.mark.asyncio


def _visit(visit_id: str) -> ProposeVisit:
    return ProposeVisit(
        visit_id=visit_id,
        technician_id="tech-7",
        window=window(datetime.now(UTC) + timedelta(days=1)),
    )


def _made(sent: object) -> DecisionRecorded:
    first = sent.outcome.events[0]  # type: ignore[attr-defined]
    return msgspec.json.decode(first.data, type=DecisionRecorded)


async def test_pausing_a_region_blocks_the_next_automatic_action_at_both_planes(
    stack: Stack, starter: Bundle
) -> None:
    await stack.activate(starter)
    await stack.ticket("t-10", create_ticket(region="west"))
    paused = await stack.pause(Scope(kind="region", id="west"))
    assert paused.outcome.status == "applied"
    [row] = await stack.rows(pauses, scope_kind="region")
    assert (row.scope_id, row.paused_by) == ("west", ADMIN)

    # Data plane: the very next gated command is denied, with the scope and who paused it.
    denied = await stack.ticket("t-10", _visit("v1"))
    made = _made(denied).decision
    assert (made.decision, made.reason_code, made.rule) == (
        "DENY",
        "autonomy.paused",
        "kill_switch",
    )
    assert made.inputs["scope"] == "region:west"
    assert made.inputs["paused_by"] == ADMIN
    # Recording facts goes on.
    kept = await stack.ticket(
        "t-10", AttachEvidence(evidence=evidence("e1", "photo_before", "t-10"))
    )
    assert _made(kept).decision.decision == "ALLOW"

    # Control plane: the workflow checks the pause before proposing for a new ticket.
    await stack.ticket("t-11", create_ticket(region="west"))

    async def suppressed() -> list[Any] | None:
        rows = await stack.rows(proposals, ticket_id="t-11")
        return rows or None

    [proposal] = await eventually(suppressed)
    assert (proposal.kind, proposal.suppressed, proposal.reason_code) == (
        "find_technician",
        True,
        "autonomy.paused",
    )
    assert (proposal.scope_kind, proposal.scope_id) == ("region", "west")

    # Another region is untouched.
    await stack.ticket("t-12", create_ticket(region="east"))
    assert _made(await stack.ticket("t-12", _visit("v1"))).decision.decision == "ALLOW"

    await stack.resume(Scope(kind="region", id="west"))
    assert await stack.rows(pauses) == []
    assert _made(await stack.ticket("t-10", _visit("v2"))).decision.decision == "ALLOW"
    [control] = await stack.rows(controls)
    assert control.revision == 3  # activation, pause, resume


async def test_a_manual_override_is_explicit_and_audited(stack: Stack, starter: Bundle) -> None:
    await stack.activate(starter)
    await stack.ticket("t-20", create_ticket())
    await stack.pause(Scope(kind="ticket", id="t-20"))
    assert _made(await stack.ticket("t-20", _visit("v1"))).decision.reason_code == (
        "autonomy.paused"
    )
    override = await stack.ticket(
        "t-20",
        ManualOverride(command=_visit("v1"), justification="customer is waiting on site"),
        principal="user:lead",
        request_id="override-1",
    )
    assert [e.type for e in override.outcome.events] == [
        "tickets.decision_recorded.v1",
        "tickets.override_applied.v1",
        "tickets.visit_proposed.v1",
    ]
    audit = msgspec.json.decode(override.outcome.events[1].data, type=OverrideApplied)
    assert audit.overridden_by == "user:lead"
    assert audit.paused_scope == Scope(kind="ticket", id="t-20")
    assert audit.bypassed.decision == "ALLOW"
    [row] = await stack.rows(decisions, request_id="override-1")
    assert (row.decision, row.reason_code, row.rule) == ("ALLOW", "override.permitted", "override")
    assert msgspec.json.decode(row.inputs)["paused_scope"] == "ticket:t-20"
    state = await stack.state("tickets", "t-20", TicketState)
    assert [v.visit_id for v in state.visits] == ["v1"]


async def test_a_tenant_pause_stops_every_ticket_of_the_tenant_only(
    stack: Stack, starter: Bundle
) -> None:
    await stack.activate(starter)
    await stack.activate(starter, tenant="globex")
    await stack.ticket("t-30", create_ticket())
    await stack.ticket("t-31", create_ticket(), tenant="globex")
    await stack.pause(Scope(kind="tenant"))
    assert _made(await stack.ticket("t-30", _visit("v1"))).decision.reason_code == (
        "autonomy.paused"
    )
    other = await stack.ticket("t-31", _visit("v1"), tenant="globex")
    assert _made(other).decision.decision == "ALLOW"
