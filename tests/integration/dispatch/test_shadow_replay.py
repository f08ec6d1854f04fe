"""Shadow replay over a seeded timeline: exactly the decisions a changed bundle should flip."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from actors.dispatch.bundles import Bundle
from actors.dispatch.replay import shadow_replay
from actors.tickets.tables import decisions
from schemas.dispatch import (
    ChangeNte,
    CloseOut,
    Money,
    ProposeVisit,
    RecordApprovalDecision,
    Scope,
    ShadowRecord,
    ShadowSummary,
)
from schemas.dispatch.tickets import ApprovalRequested
from tests.integration.dispatch.conftest import APPROVER, Stack
from tests.unit.dispatch.builders import create_ticket, window

pytestmark = pytest.mark.asyncio

LINE = msgspec.json.Decoder(ShadowRecord | ShadowSummary)


def _nte(cents: int) -> ChangeNte:
    return ChangeNte(nte=Money(cents=cents, currency="USD"), reason="revised quote")


async def _seed(stack: Stack, starter: Bundle) -> None:
    """Decisions under the starter bundle; only a-2 and b-1 sit between its NTE thresholds
    (USD 500 / 20 %) and the strict bundle's (USD 250 / 10 %)."""
    await stack.activate(starter)
    await stack.activate(starter, tenant="globex")
    await stack.ticket("t-a", create_ticket(nte_cents=1_000_000), request_id="a-0")
    await stack.ticket("t-a", _nte(1_010_000), request_id="a-1")  # +1 %: allowed by both
    await stack.ticket("t-a", _nte(1_040_000), request_id="a-2")  # +USD 300: strict holds
    await stack.ticket("t-a", _nte(900_000), request_id="a-3")  # a decrease: allowed by both
    await stack.ticket("t-b", create_ticket(), request_id="b-0")
    await stack.ticket("t-b", _nte(115_000), request_id="b-1")  # +15 %: strict holds
    held = await stack.ticket("t-b", _nte(175_000), request_id="b-2")  # +USD 600: both hold
    approval = msgspec.json.decode(held.outcome.events[1].data, type=ApprovalRequested)
    await stack.ticket(
        "t-b",
        RecordApprovalDecision(approval_id=approval.approval_id, outcome="approve"),
        principal=APPROVER,
        request_id="b-3",
    )
    await stack.ticket("t-b", CloseOut(evidence_ids=(), resolution="done"), request_id="b-4")
    await stack.pause(Scope(kind="ticket", id="t-b"))
    visit = ProposeVisit(visit_id="v1", technician_id="tech-1", window=window(approval.expires_at))
    await stack.ticket("t-b", visit, request_id="b-5")  # kill switch: carried, never flipped
    await stack.ticket("t-g", create_ticket(), tenant="globex", request_id="g-0")
    await stack.ticket("t-g", _nte(115_000), tenant="globex", request_id="g-1")


def _lines(data: bytes) -> tuple[list[ShadowRecord], list[ShadowSummary]]:
    items = [LINE.decode(line) for line in data.splitlines()]
    return (
        [i for i in items if isinstance(i, ShadowRecord)],
        [i for i in items if isinstance(i, ShadowSummary)],
    )


async def _snapshot(stack: Stack) -> tuple[dict[str, int], int]:
    js = stack.nc.jetstream()
    seqs = {s: (await js.stream_info(s)).state.last_seq for s in ("COMMANDS", "EVENTS", "OUTCOMES")}
    async with stack.engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(decisions))).scalar_one()
    return seqs, int(rows)


async def test_replay_under_the_active_bundle_flips_exactly_what_it_should(
    stack: Stack, starter: Bundle, strict: Bundle, tmp_path: Path
) -> None:
    await _seed(stack, starter)
    await stack.activate(strict)  # acme's active bundle is now strict; globex keeps starter
    before = await _snapshot(stack)

    out = io.BytesIO()
    result = await shadow_replay(stack.nc.jetstream(), out)
    records, summaries = _lines(out.getvalue())
    assert await _snapshot(stack) == before  # nothing published, nothing written

    acme = [r for r in records if r.tenant == "acme"]
    assert {r.bundle_sha256 for r in acme} == {strict.sha256}
    assert {r.bundle_sha256 for r in records if r.tenant == "globex"} == {starter.sha256}
    assert [r.request_id for r in records if r.flipped] == ["a-2", "b-1"]
    assert {r.flip for r in records if r.flipped} == {"ALLOW->REQUIRE_APPROVAL"}
    [carried] = [r for r in records if r.carried]
    assert (carried.request_id, carried.recorded.reason_code) == ("b-5", "autonomy.paused")
    assert all(r.command_seq > 0 for r in records)
    assert [r.request_id for r in acme] == [
        "a-0",
        "a-1",
        "a-2",
        "a-3",
        "b-0",
        "b-1",
        "b-2",
        "b-3",
        "b-4",
        "b-5",
    ]
    by_tenant = {s.tenant: s for s in summaries}
    assert (by_tenant["acme"].decisions, by_tenant["acme"].flipped) == (10, 2)
    assert by_tenant["acme"].flips == {"ALLOW->REQUIRE_APPROVAL": 2}
    assert (by_tenant["globex"].decisions, by_tenant["globex"].flipped) == (2, 0)
    assert by_tenant["acme"].undecided == 0
    assert result.skipped_tenants == []

    # Under the bundle that made the decisions nothing flips.
    same = io.BytesIO()
    await shadow_replay(stack.nc.jetstream(), same, tenant="acme", bundle=starter)
    records, summaries = _lines(same.getvalue())
    assert [r for r in records if r.flipped] == []
    assert [s.flipped for s in summaries] == [0]

    # --since keeps the fold from the beginning but reports only later decisions.
    [a2] = [r for r in acme if r.request_id == "a-2"]
    later = io.BytesIO()
    await shadow_replay(
        stack.nc.jetstream(),
        later,
        tenant="acme",
        since=a2.at + timedelta(microseconds=1),
        flips_only=True,
    )
    records, summaries = _lines(later.getvalue())
    assert [r.request_id for r in records] == ["b-1"]
    assert summaries[0].decisions == 7
