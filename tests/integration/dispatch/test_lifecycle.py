"""A ticket's whole life through the three actors, on both backends: rows, proposals, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors.dispatch.bundles import Bundle
from actors.kernel import history
from actors.policy.actor import ACTOR as POLICY
from actors.tickets.actor import ACTOR as TICKETS
from actors.tickets.tables import decisions, evidence, timeline, visits
from actors.workflow.actor import ACTOR as WORKFLOW
from actors.workflow.tables import proposals, runs
from schemas.dispatch import (
    AttachEvidence,
    ChangeNte,
    CloseOut,
    Money,
    ProposeVisit,
    TicketState,
)
from tests.integration.dispatch.conftest import TENANT, Stack, eventually
from tests.unit.dispatch.builders import create_ticket, window
from tests.unit.dispatch.builders import evidence as evidence_record

pytestmark = pytest.mark.asyncio

KINDS = ("photo_before", "photo_after", "moisture_reading", "signature")


async def test_a_ticket_life_is_recorded_in_rows_and_audits_clean(
    any_stack: Stack, starter: Bundle
) -> None:
    stack = any_stack
    activated = await stack.activate(starter)
    assert activated.outcome.status == "applied"
    ticket = "t-life"
    sent = [
        await stack.ticket(ticket, create_ticket()),
        await stack.ticket(
            ticket,
            ProposeVisit(
                visit_id="v1",
                technician_id="tech-7",
                window=window(datetime.now(UTC) + timedelta(days=1)),
            ),
        ),
        *[
            await stack.ticket(ticket, AttachEvidence(evidence=evidence_record(f"e{i}", k, ticket)))
            for i, k in enumerate(KINDS)
        ],
        await stack.ticket(
            ticket, ChangeNte(nte=Money(cents=110_000, currency="USD"), reason="extra parts")
        ),
        await stack.ticket(
            ticket, CloseOut(evidence_ids=tuple(f"e{i}" for i in range(4)), resolution="Fixed")
        ),
    ]
    assert [s.outcome.status for s in sent] == ["applied"] * len(sent)
    state = await stack.state("tickets", ticket, TicketState)
    assert state.status == "closed"
    assert state.nte == Money(cents=110_000, currency="USD")
    assert [d.decision for d in state.decisions] == ["ALLOW"] * len(sent)

    stored = await stack.rows(decisions, ticket_id=ticket)
    assert [r.request_id for r in stored] == [d.request_id for d in state.decisions]
    assert {r.bundle_sha256 for r in stored} == {starter.sha256}
    assert {r.tenant for r in stored} == {TENANT}
    lines = await stack.rows(timeline, ticket_id=ticket)
    assert len(lines) == len(state.timeline)
    by_decision = {r.decision_id: r for r in stored}
    for line in lines:
        assert line.decision_id in by_decision  # every timeline line links to a decision row
    assert len(await stack.rows(evidence, ticket_id=ticket)) == 4
    assert [r.status for r in await stack.rows(visits, ticket_id=ticket)] == ["proposed"]

    async def completed() -> bool:
        rows = await stack.rows(runs, ticket_id=ticket)
        return bool(rows) and rows[0].stage == "completed"

    await eventually(completed)
    kinds = {r.kind for r in await stack.rows(proposals, ticket_id=ticket)}
    assert {"find_technician", "confirm_visit", "close_out"} <= kinds

    for actor, key in ((TICKETS, ticket), (POLICY, TENANT), (WORKFLOW, ticket)):
        report = await history.audit(stack.nc.jetstream(), stack.engine, actor, key)
        assert report.ok, (actor.name, report.differences)
