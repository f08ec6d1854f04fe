"""Approval expiry: the scheduler sends expire_approval for overdue holds; the actor judges time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from actors.dispatch.bundles import Bundle
from actors.dispatch.client import DispatchClient
from actors.kernel.actor import Services
from actors.kernel.embedded import EmbeddedNats
from actors.tickets.actor import EXPIRY_PRINCIPAL, INTERVAL_ENV, expire_due
from actors.tickets.tables import approvals, decisions
from schemas.dispatch import ChangeNte, Money
from schemas.dispatch.tickets import ApprovalRequested
from tests.integration.dispatch.conftest import Stack, eventually, start
from tests.unit.dispatch.builders import create_ticket, make_bundle, rules_json

pytestmark = pytest.mark.asyncio


def _services(stack: Stack) -> Services:
    host = stack.host
    assert host.bus is not None
    assert host.engine is not None
    assert host.read_engine is not None
    return Services(host.bus, host.engine, host.read_engine, stack.settings)


async def _hold(stack: Stack, ticket: str) -> ApprovalRequested:
    await stack.ticket(ticket, create_ticket())
    held = await stack.ticket(
        ticket, ChangeNte(nte=Money(cents=300_000, currency="USD"), reason="new heater")
    )
    return msgspec.json.decode(held.outcome.events[1].data, type=ApprovalRequested)


async def test_the_scheduler_sends_expiries_only_for_overdue_holds(
    any_stack: Stack, starter: Bundle
) -> None:
    stack = any_stack
    await stack.activate(starter)
    requested = await _hold(stack, "t-1")
    services = _services(stack)
    assert await expire_due(services, requested.expires_at - timedelta(minutes=1)) == 0
    # Pretend the scheduler's clock is a day ahead: it sends the expiry, and the actor,
    # which only trusts the time JetStream stamped on the message, refuses it as not due.
    assert await expire_due(services, requested.expires_at + timedelta(minutes=1)) == 1

    async def judged() -> list[Any] | None:
        rows = await stack.rows(decisions, ticket_id="t-1", intent="expire_approval")
        return rows or None

    [row] = await eventually(judged)
    assert (row.actor, row.decision, row.reason_code) == (
        EXPIRY_PRINCIPAL,
        "DENY",
        "approval.not_due",
    )
    [hold] = await stack.rows(approvals, ticket_id="t-1")
    assert hold.status == "pending"


@pytest.fixture
async def fast_expiry(
    nats_server: EmbeddedNats, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    monkeypatch.setenv(INTERVAL_ENV, "1")
    host, nc, settings = await start(nats_server.url, postgres_url)
    try:
        yield Stack(host=host, nc=nc, client=DispatchClient(nc), settings=settings)
    finally:
        await nc.close()
        await host.stop()


@pytest.mark.slow
async def test_a_hold_nobody_decides_expires_after_the_bundles_time_to_live(
    fast_expiry: Stack,
) -> None:
    stack = fast_expiry
    approvals_json = rules_json()["policy/approvals.json"]
    short = make_bundle({"policy/approvals.json": {**approvals_json, "ttl_seconds": 60}})
    await stack.activate(short)
    requested = await _hold(stack, "t-2")
    assert requested.expires_at - requested.at == timedelta(seconds=60)

    async def expired() -> Any:
        [hold] = await stack.rows(approvals, ticket_id="t-2")
        return hold if hold.status == "expired" else None

    hold = await eventually(expired, within=120)
    assert hold.resolved_at >= requested.expires_at
    [row] = await stack.rows(decisions, ticket_id="t-2", intent="expire_approval")
    assert (row.actor, row.decision, row.reason_code) == (
        EXPIRY_PRINCIPAL,
        "ALLOW",
        "approval.expired",
    )
