"""Request ids on the bus: a repeat replays its recorded outcome; a changed body conflicts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import nats
import pytest

from actors.dispatch.bundles import Bundle
from actors.dispatch.client import DispatchClient
from actors.dispatch.errors import RequestMismatch
from actors.kernel.config import Settings, StreamSettings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.policy.actor import ACTOR as POLICY
from actors.tickets.actor import ACTOR as TICKETS
from actors.tickets.rules import decision_id_for
from actors.tickets.tables import decisions, timeline
from actors.workflow.actor import ACTOR as WORKFLOW
from schemas import subjects
from schemas.dispatch import ChangeNte, Money
from schemas.headers import Header
from tests.integration.dispatch.conftest import DISPATCHER, TENANT, Stack, eventually
from tests.unit.dispatch.builders import create_ticket

pytestmark = pytest.mark.asyncio


def _raise(cents: int) -> ChangeNte:
    return ChangeNte(nte=Money(cents=cents, currency="USD"), reason="extra parts")


async def test_a_repeated_request_replays_its_recorded_outcome_exactly(
    stack: Stack, starter: Bundle
) -> None:
    await stack.activate(starter)
    await stack.ticket("t-1", create_ticket())
    first = await stack.ticket("t-1", _raise(110_000), request_id="nte-1")
    again = await stack.ticket("t-1", _raise(110_000), request_id="nte-1")
    assert not first.replayed
    assert again.replayed
    assert again.raw == first.raw
    assert len(await stack.rows(decisions, request_id="nte-1")) == 1

    # A bare republish on the bus is dropped by JetStream and changes nothing either.
    js = stack.nc.jetstream()
    ack = await js.publish(
        subjects.command_subject_for(ChangeNte, "t-1"),
        msgspec.json.encode(_raise(110_000)),
        headers={
            Header.MSG_ID: "nte-1",
            Header.TENANT: TENANT,
            Header.PRINCIPAL: DISPATCHER,
        },
    )
    assert ack.duplicate
    assert len(await stack.rows(decisions, ticket_id="t-1")) == 2


async def test_a_reused_request_id_with_another_body_is_a_conflict_naming_what_differs(
    stack: Stack, starter: Bundle
) -> None:
    await stack.activate(starter)
    await stack.ticket("t-2", create_ticket())
    await stack.ticket("t-2", _raise(110_000), request_id="nte-2")
    with pytest.raises(RequestMismatch) as caught:
        await stack.ticket("t-2", _raise(120_000), request_id="nte-2")
    mismatch = caught.value
    assert mismatch.code == "request.mismatch"
    assert mismatch.decision_id == decision_id_for("nte-2")
    assert mismatch.differences == [("$.parameters.nte.cents", 110_000, 120_000)]
    details = mismatch.details()
    assert details["differences"] == [
        {"path": "$.parameters.nte.cents", "recorded": 110_000, "requested": 120_000}
    ]
    with pytest.raises(RequestMismatch) as elsewhere:
        await stack.ticket("t-other", _raise(110_000), request_id="nte-2")
    assert ("$.ticket", "t-2", "t-other") in elsewhere.value.differences
    with pytest.raises(RequestMismatch) as someone:
        await stack.ticket("t-2", _raise(110_000), request_id="nte-2", principal="user:mallory")
    assert someone.value.differences == [("$.actor", DISPATCHER, "user:mallory")]
    assert len(await stack.rows(decisions, request_id="nte-2")) == 1


@pytest.fixture
async def short_window(nats_server: EmbeddedNats, postgres_url: str) -> AsyncIterator[Stack]:
    """JetStream forgets message ids after one second: the ledger alone must hold the line."""
    settings = Settings(
        database_url=postgres_url,
        nats_url=nats_server.url,
        batch_size=64,
        streams=StreamSettings(duplicate_window_seconds=1.0),
    )
    host = Host(settings, [TICKETS, POLICY, WORKFLOW], nats_url=nats_server.url)
    await host.start()
    await host.wait_ready()
    nc = await nats.connect(nats_server.url)
    try:
        yield Stack(host=host, nc=nc, client=DispatchClient(nc), settings=settings)
    finally:
        await nc.close()
        await host.stop()


async def test_a_repeat_after_the_duplicate_window_is_stopped_by_the_ledger(
    short_window: Stack, starter: Bundle
) -> None:
    stack = short_window
    await stack.activate(starter)
    await stack.ticket("t-3", create_ticket())
    await stack.ticket("t-3", _raise(110_000), request_id="nte-3")
    js = stack.nc.jetstream()

    async def stored_again() -> bool:
        ack = await js.publish(
            subjects.command_subject_for(ChangeNte, "t-3"),
            msgspec.json.encode(_raise(150_000)),
            headers={Header.MSG_ID: "nte-3", Header.TENANT: TENANT, Header.PRINCIPAL: DISPATCHER},
        )
        return not ack.duplicate

    await eventually(stored_again)  # the stream took it: its dedup window has passed
    # A later command on the same ticket is applied after it, so the repeat was handled.
    await stack.ticket("t-3", _raise(120_000), request_id="nte-4")
    assert [r.request_id for r in await stack.rows(decisions, ticket_id="t-3")][1:] == [
        "nte-3",
        "nte-4",
    ]
    assert len(await stack.rows(timeline, request_id="nte-3")) == 2  # decision + nte_changed
    with pytest.raises(RequestMismatch):
        await stack.ticket("t-3", _raise(150_000), request_id="nte-3")
