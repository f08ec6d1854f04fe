"""Decisions on the data plane: denials recorded and linked, holds that wait, then go or not."""

from __future__ import annotations

import msgspec
import pytest

from actors.dispatch.bundles import Bundle
from actors.tickets.rules import approval_id_for, decision_id_for
from actors.tickets.tables import approvals, decisions, tickets, timeline
from actors.workflow.tables import proposals
from schemas.dispatch import (
    ChangeNte,
    DecisionRecorded,
    ExpireApproval,
    Money,
    RecordApprovalDecision,
    TicketState,
)
from schemas.dispatch.tickets import ApprovalRequested, ApprovalResolved, NteChanged
from tests.integration.dispatch.conftest import (
    APPROVER,
    DISPATCHER,
    TENANT,
    Stack,
    eventually,
)
from tests.unit.dispatch.builders import create_ticket

pytestmark = pytest.mark.asyncio


def _events(sent: object) -> list[str]:
    return [e.type for e in sent.outcome.events]  # type: ignore[attr-defined]


def _decision(sent: object) -> DecisionRecorded:
    for emitted in sent.outcome.events:  # type: ignore[attr-defined]
        if emitted.type == "tickets.decision_recorded.v1":
            return msgspec.json.decode(emitted.data, type=DecisionRecorded)
    raise AssertionError("no decision recorded")


async def test_a_command_without_an_active_bundle_is_denied_on_the_record(stack: Stack) -> None:
    sent = await stack.ticket("t-nobundle", create_ticket(), request_id="create-1")
    assert sent.outcome.status == "applied"  # the denial itself is what was applied
    made = _decision(sent).decision
    assert (made.decision, made.reason_code, made.bundle_sha256) == (
        "DENY",
        "bundle.none_active",
        "",
    )
    [row] = await stack.rows(decisions, ticket_id="t-nobundle")
    assert (row.decision, row.reason_code, row.tenant) == ("DENY", "bundle.none_active", TENANT)
    [head] = await stack.rows(tickets, ticket_id="t-nobundle")
    assert (head.status, head.tenant) == ("absent", TENANT)


async def test_a_denied_command_writes_its_decision_and_its_timeline_entry(
    stack: Stack, starter: Bundle
) -> None:
    await stack.activate(starter)
    await stack.ticket("t-1", create_ticket())
    denied = await stack.ticket(
        "t-1",
        ChangeNte(nte=Money(cents=3_000_000, currency="USD"), reason="whole new kitchen"),
        request_id="raise-too-far",
    )
    assert _events(denied) == ["tickets.decision_recorded.v1"]
    recorded = _decision(denied)
    assert (recorded.decision.decision, recorded.decision.reason_code) == (
        "DENY",
        "nte.above_ceiling",
    )

    [row] = await stack.rows(decisions, request_id="raise-too-far")
    assert row.decision_id == decision_id_for("raise-too-far")
    assert (row.decision, row.reason_code, row.rule) == (
        "DENY",
        "nte.above_ceiling",
        "nte_threshold",
    )
    assert row.bundle_sha256 == starter.sha256
    assert row.bundle_version == starter.version
    assert row.explanation == recorded.decision.explanation
    assert row.actor == DISPATCHER
    assert msgspec.json.decode(row.parameters)["nte"] == {"cents": 3_000_000, "currency": "USD"}
    assert msgspec.json.decode(row.inputs) == recorded.decision.inputs

    [line] = await stack.rows(timeline, ticket_id="t-1", seq=row.timeline_seq)
    assert (line.kind, line.decision_id, line.request_id) == (
        "decision_recorded",
        row.decision_id,
        "raise-too-far",
    )
    state = await stack.state("tickets", "t-1", TicketState)
    assert state.nte == Money(cents=100_000, currency="USD")  # nothing else happened


async def test_a_held_command_waits_for_approval_then_proceeds(
    stack: Stack, starter: Bundle
) -> None:
    await stack.activate(starter)
    await stack.ticket("t-2", create_ticket())
    held = await stack.ticket(
        "t-2",
        ChangeNte(nte=Money(cents=300_000, currency="USD"), reason="replace the water heater"),
        request_id="raise-big",
    )
    assert _events(held) == ["tickets.decision_recorded.v1", "tickets.approval_requested.v1"]
    approval_id = approval_id_for("raise-big")
    [hold] = await stack.rows(approvals, approval_id=approval_id)
    assert (hold.status, hold.intent, hold.decision_id) == (
        "pending",
        "change_nte",
        decision_id_for("raise-big"),
    )
    waiting = await stack.state("tickets", "t-2", TicketState)
    assert waiting.nte == Money(cents=100_000, currency="USD")

    # The workflow proposes the expiry at the deadline (a proposal, never a command).
    async def expiry_proposed() -> bool:
        rows = await stack.rows(proposals, ticket_id="t-2", kind="expire_approval")
        return bool(rows)

    await eventually(expiry_proposed)

    early = await stack.ticket("t-2", ExpireApproval(approval_id=approval_id))
    assert _decision(early).decision.reason_code == "approval.not_due"
    own = await stack.ticket(
        "t-2", RecordApprovalDecision(approval_id=approval_id, outcome="approve")
    )
    assert _decision(own).decision.reason_code == "approval.self_approval"

    approved = await stack.ticket(
        "t-2",
        RecordApprovalDecision(approval_id=approval_id, outcome="approve", note="quote checked"),
        principal=APPROVER,
        request_id="approve-big",
    )
    assert _events(approved) == [
        "tickets.decision_recorded.v1",
        "tickets.approval_resolved.v1",
        "tickets.nte_changed.v1",
    ]
    resolved = msgspec.json.decode(approved.outcome.events[1].data, type=ApprovalResolved)
    assert (resolved.outcome, resolved.released, resolved.decision_id) == (
        "approved",
        True,
        decision_id_for("raise-big"),
    )
    changed = msgspec.json.decode(approved.outcome.events[2].data, type=NteChanged)
    assert (changed.request_id, changed.approval_id) == ("raise-big", approval_id)

    [hold] = await stack.rows(approvals, approval_id=approval_id)
    assert (hold.status, hold.resolved_by) == ("approved", APPROVER)
    state = await stack.state("tickets", "t-2", TicketState)
    assert state.nte == Money(cents=300_000, currency="USD")
    # The released effect sits on the timeline under the held request and its decision.
    lines = await stack.rows(timeline, ticket_id="t-2", kind="nte_changed")
    assert [(r.request_id, r.decision_id) for r in lines] == [
        ("raise-big", decision_id_for("raise-big"))
    ]


async def test_a_held_command_can_be_rejected(stack: Stack, starter: Bundle) -> None:
    await stack.activate(starter)
    await stack.ticket("t-3", create_ticket())
    held = await stack.ticket(
        "t-3",
        ChangeNte(nte=Money(cents=300_000, currency="USD"), reason="replace the water heater"),
        request_id="raise-3",
    )
    requested = msgspec.json.decode(held.outcome.events[1].data, type=ApprovalRequested)
    rejected = await stack.ticket(
        "t-3",
        RecordApprovalDecision(
            approval_id=requested.approval_id, outcome="reject", note="get a second quote"
        ),
        principal=APPROVER,
    )
    assert _events(rejected) == ["tickets.decision_recorded.v1", "tickets.approval_resolved.v1"]
    [hold] = await stack.rows(approvals, approval_id=requested.approval_id)
    assert hold.status == "rejected"
    state = await stack.state("tickets", "t-3", TicketState)
    assert state.nte == Money(cents=100_000, currency="USD")
    assert state.pending() == ()
