"""Shadow replay flips exactly what a changed bundle changes, stamped with its hash."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dispatch.outbox import history_from_outbox, outbox_view
from actors.dispatch.shadow import jsonl, replay, summarize
from schemas.base import Command
from schemas.dispatch import (
    ChangeNte,
    ConfirmVisit,
    HistoryEntry,
    Money,
    OutboxEvent,
    Scope,
    ShadowRecord,
    ShadowSummary,
)
from schemas.headers import Header
from tests.unit.dispatch.builders import (
    MONDAY_10_CDT,
    TENANT,
    Driver,
    create_ticket,
    env_for,
    make_bundle,
    utc,
)
from tests.unit.dispatch.test_policies import sms

STARTER = make_bundle(version="starter-test")
STRICT = make_bundle(version="strict-test", base="strict")
EIGHT_THIRTY_PM = utc(2025, 6, 3, 1, 30)  # 20:30 CDT: quiet only under the strict bundle


def nte(cents: int) -> ChangeNte:
    return ChangeNte(nte=Money(cents=cents, currency="USD"), reason="scope grew")


def history_of(*drivers: Driver) -> list[HistoryEntry]:
    return [
        HistoryEntry(ticket_id=d.ticket, event=e, stream_seq=i)  # type: ignore[arg-type]
        for d in drivers
        for i, e in enumerate(d.events, start=1)
    ]


def recorded_history() -> list[HistoryEntry]:
    driver = Driver(env_for(STARTER))
    steps: list[tuple[Command, datetime]] = [
        (create_ticket(), MONDAY_10_CDT),  # req-1: ALLOW under both
        (nte(115_000), MONDAY_10_CDT),  # req-2: +15 %: ALLOW, strict wants approval
        (sms(), EIGHT_THIRTY_PM),  # req-3: ALLOW, strict is in quiet hours
        (sms(), MONDAY_10_CDT + timedelta(days=1)),  # req-4: ALLOW under both
        (nte(150_000), MONDAY_10_CDT + timedelta(days=1)),  # req-5: approval under both
        (ConfirmVisit(visit_id="v404"), MONDAY_10_CDT + timedelta(days=1)),  # req-6: invariant
    ]
    for command, at in steps:
        driver.send(command, at=at)
    driver.env = env_for(STARTER, paused=(Scope(kind="tenant"),))
    driver.send(sms(), at=MONDAY_10_CDT + timedelta(days=1))  # req-7: kill switch
    return history_of(driver)


def by_request(records: list[ShadowRecord]) -> dict[str, ShadowRecord]:
    return {r.request_id: r for r in records}


def test_the_changed_bundle_flips_exactly_the_affected_decisions() -> None:
    records = by_request(list(replay(recorded_history(), STRICT)))
    assert sorted(records) == [f"req-{i}" for i in range(1, 8)]
    flipped = {rid: r.flip for rid, r in records.items() if r.flipped}
    assert flipped == {"req-2": "ALLOW->REQUIRE_APPROVAL", "req-3": "ALLOW->DENY"}
    assert records["req-3"].would_be.reason_code == "quiet_hours.active"
    assert records["req-5"].would_be.decision == "REQUIRE_APPROVAL"
    assert records["req-6"].carried
    assert records["req-6"].would_be.reason_code == "ticket.unknown_visit"
    assert records["req-7"].carried
    assert records["req-7"].would_be.reason_code == "autonomy.paused"
    for record in records.values():
        assert (record.bundle_sha256, record.bundle_version) == (STRICT.sha256, STRICT.version)
        assert record.would_be.bundle_sha256 == STRICT.sha256
        assert record.recorded.bundle_sha256 == STARTER.sha256
        assert record.tenant == TENANT


def test_replaying_under_the_recording_bundle_flips_nothing() -> None:
    records = list(replay(recorded_history(), STARTER))
    assert not any(r.flipped or r.reason_changed for r in records)
    summary = summarize(records, STARTER)
    assert (summary.decisions, summary.flipped, summary.carried) == (7, 0, 2)


def test_filters_select_decisions_but_state_is_still_folded() -> None:
    history = recorded_history()
    since = MONDAY_10_CDT + timedelta(hours=12)
    later = list(replay(history, STRICT, since=since))
    assert [r.request_id for r in later] == ["req-4", "req-5", "req-6", "req-7"]
    # req-5 is judged against the NTE of 1150.00 that the earlier, unselected req-2 set.
    assert by_request(later)["req-5"].would_be.reason_code == "nte.approval_required"
    assert list(replay(history, STRICT, tenant="globex")) == []


def test_the_jsonl_artefact_is_records_then_a_summary() -> None:
    lines = list(jsonl(recorded_history(), STRICT))
    assert all(line.endswith(b"\n") for line in lines)
    records = [msgspec.json.decode(line, type=ShadowRecord) for line in lines[:-1]]
    summary = msgspec.json.decode(lines[-1], type=ShadowSummary)
    assert len(records) == 7
    assert summary.bundle_sha256 == STRICT.sha256
    assert (summary.decisions, summary.flipped, summary.carried) == (7, 2, 2)
    assert summary.flips == {"ALLOW->DENY": 1, "ALLOW->REQUIRE_APPROVAL": 1}
    assert b'"type":"dispatch.shadow_record.v1"' in lines[0]


def test_history_read_back_from_outbox_views_replays_identically() -> None:
    history = recorded_history()
    views = [
        outbox_view(
            entry.event,
            key=entry.ticket_id,
            event_id=f"ev-{entry.stream_seq}",
            occurred_at=entry.event.at,
            stream_seq=entry.stream_seq,
            headers={Header.TENANT: TENANT, Header.CORRELATION_ID: entry.event.correlation_id},
        )
        for entry in history
    ]
    wire = [msgspec.json.decode(msgspec.json.encode(v), type=OutboxEvent) for v in views]
    again = list(history_from_outbox(wire))
    assert again == history
    assert list(replay(again, STRICT)) == list(replay(history, STRICT))


@settings(max_examples=20, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["nte", "sms"]), st.integers(0, 48 * 60), st.integers(0, 600_000)
        ),
        max_size=8,
    )
)
def test_replay_under_the_same_bundle_reproduces_every_decision(
    steps: list[tuple[str, int, int]],
) -> None:
    driver = Driver(env_for(STARTER))
    driver.send(create_ticket())
    at = MONDAY_10_CDT
    for kind, minutes, cents in steps:
        at += timedelta(minutes=minutes)
        driver.send(nte(cents) if kind == "nte" else sms(), at=at)
    records = list(replay(history_of(driver), STARTER))
    assert len(records) == len(steps) + 1
    assert not any(r.flipped or r.reason_changed for r in records)
