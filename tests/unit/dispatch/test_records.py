"""What the stores write comes from state: decision records, attempts, pause order, clients."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from actors.dispatch.bundles.registry import apply_refusal
from actors.dispatch.client import differences, recorded_command
from actors.dispatch.errors import RequestMismatch
from actors.dispatch.normalize import build
from actors.dispatch.replay import records
from actors.dispatch.shadow import compare
from actors.policy.rules import evolve as policy_evolve
from schemas.base import Event, Rejection, tag_of
from schemas.dispatch import (
    AttachEvidence,
    ChangeNte,
    DecisionRecorded,
    Money,
    ProposeVisit,
    Scope,
    TicketCreated,
)
from schemas.dispatch.policy import ACTIVATIONS_KEPT, BundleActivationRefused
from schemas.dispatch.shadow import HistoryEntry
from schemas.envelope import EmittedEvent, Outcome
from tests.unit.dispatch.builders import (
    MONDAY_10_CDT,
    TENANT,
    TICKET,
    Driver,
    control_for,
    create_ticket,
    env_for,
    evidence,
    make_bundle,
    utc,
    window,
)

STARTER = make_bundle()


def test_a_decision_keeps_everything_its_record_row_needs() -> None:
    driver = Driver(env_for(STARTER))
    driver.send(create_ticket())
    driver.send(
        ChangeNte(nte=Money(cents=300_000, currency="USD"), reason="new heater"),
        request_id="raise",
        correlation_id="corr-raise",
    )
    ref = driver.state.decision_for("raise")
    assert ref is not None
    assert (ref.decision, ref.reason_code, ref.rule) == (
        "REQUIRE_APPROVAL",
        "nte.approval_required",
        "nte_threshold",
    )
    assert (ref.bundle_version, ref.bundle_sha256) == (STARTER.version, STARTER.sha256)
    assert (ref.actor, ref.correlation_id, ref.at) == (
        "user:dispatcher",
        "corr-raise",
        MONDAY_10_CDT,
    )
    assert ref.parameters["nte"] == {"cents": 300_000, "currency": "USD"}
    assert ref.inputs["delta_cents"] == 200_000
    assert driver.state.timeline[ref.timeline_seq - 1].kind == "decision_recorded"
    assert driver.state.timeline[ref.timeline_seq - 1].decision_id == ref.decision_id


def test_a_refused_creation_still_takes_the_ticket_id_for_its_tenant() -> None:
    driver = Driver(env_for(None))
    refused = driver.send(create_ticket())
    assert not isinstance(refused, Rejection)
    assert (driver.state.status, driver.state.tenant) == ("absent", TENANT)
    driver.env = env_for(None, tenant="globex")
    other = driver.send(create_ticket(), tenant="globex")
    assert isinstance(other, Rejection)
    assert (other.code, other.kind) == ("tickets.tenant_mismatch", "forbidden")


def test_state_keeps_instants_in_utc_whatever_offset_a_command_used() -> None:
    driver = Driver(env_for(STARTER))
    driver.send(create_ticket())
    local = msgspec.json.decode(
        b'{"start": "2025-06-03T09:00:00-05:00", "end": "2025-06-03T11:00:00-05:00"}',
        type=type(window(MONDAY_10_CDT)),
    )
    driver.send(ProposeVisit(visit_id="v1", technician_id="tech-1", window=local))
    [visit] = driver.state.visits
    assert visit.window.start == utc(2025, 6, 3, 14, 0)
    assert visit.window.start.utcoffset() == timedelta(0)
    record = msgspec.structs.replace(
        evidence("e1", "photo_after"),
        captured_at=msgspec.json.decode(b'"2025-06-02T10:00:00-05:00"', type=type(MONDAY_10_CDT)),
    )
    driver.send(AttachEvidence(evidence=record))
    assert driver.state.evidence[0].captured_at.utcoffset() == timedelta(0)


def test_activation_attempts_are_kept_in_order_and_bounded() -> None:
    control = control_for(STARTER)
    assert [(r.seq, r.outcome) for r in control.activations] == [(1, "activated")]
    refusal = BundleActivationRefused(
        error_code="bundle.tampered",
        error="policy/nte.json does not match its manifest digest",
        requested_by="user:admin",
        reason="try",
        expected_sha256="b" * 64,
        at=MONDAY_10_CDT,
    )
    for _ in range(ACTIVATIONS_KEPT + 5):
        control = policy_evolve(control, refusal)
    assert control.attempts == ACTIVATIONS_KEPT + 6
    assert control.refusals == ACTIVATIONS_KEPT + 5
    assert len(control.activations) == ACTIVATIONS_KEPT
    assert [r.seq for r in control.activations] == list(range(7, ACTIVATIONS_KEPT + 7))
    assert control.revision == 1  # a refusal changes nothing in force
    assert apply_refusal(control, refusal).activations[-1].error_code == "bundle.tampered"


def test_pauses_remember_the_revision_that_made_them() -> None:
    env = env_for(STARTER, paused=(Scope(kind="region", id="west"), Scope(kind="ticket", id="t")))
    assert [(p.scope.label(), p.revision) for p in env.control.paused] == [
        ("region:west", 2),
        ("ticket:t", 3),
    ]


def _outcome(events: list[Event], key: str = TICKET) -> Outcome:
    return Outcome(
        command_id="req",
        domain="tickets",
        key=key,
        command="tickets.change_nte.v1",
        status="applied",
        events=[
            EmittedEvent(
                id=f"e{i}",
                subject=f"evt.tickets.{key}.x",
                type=tag_of(type(e)),
                data=msgspec.Raw(msgspec.json.encode(e)),
            )
            for i, e in enumerate(events)
        ],
    )


def test_a_mismatch_names_every_path_that_differs() -> None:
    driver = Driver(env_for(STARTER))
    driver.send(create_ticket())
    decision = driver.send(
        ChangeNte(nte=Money(cents=110_000, currency="USD"), reason="parts"), request_id="r"
    )
    assert not isinstance(decision, Rejection)
    recorded = recorded_command(_outcome([e for e in decision if isinstance(e, Event)]))
    assert recorded is not None
    again = build(
        ChangeNte(nte=Money(cents=120_000, currency="EUR"), reason="parts"),
        request_id="r",
        correlation_id="other-correlation",
        actor="user:dispatcher",
        tenant=TENANT,
        ticket=TICKET,
    )
    assert differences(recorded, again) == [
        ("$.parameters.nte.cents", 110_000, 120_000),
        ("$.parameters.nte.currency", "USD", "EUR"),
    ]
    same = msgspec.structs.replace(recorded, correlation_id="retry")
    assert differences(recorded, same) == []
    error = RequestMismatch("r", differences(recorded, again), decision_id="dec_x")
    assert "$.parameters.nte.cents" in str(error)
    assert error.details()["decision_id"] == "dec_x"
    assert recorded_command(_outcome([])) is None


def test_replay_records_say_which_tenants_had_no_bundle() -> None:
    acme = Driver(env_for(STARTER))
    acme.send(create_ticket(), request_id="a-1")
    globex = Driver(env_for(STARTER, tenant="globex"), ticket="t-g")
    globex.send(create_ticket(), request_id="g-1", tenant="globex")
    history = [
        HistoryEntry(ticket_id=TICKET, event=e, stream_seq=i + 1)  # type: ignore[arg-type]
        for i, e in enumerate(acme.events)
    ] + [
        HistoryEntry(ticket_id="t-g", event=e, stream_seq=10 + i)  # type: ignore[arg-type]
        for i, e in enumerate(globex.events)
    ]
    out = list(records(history, {TENANT: STARTER}.get, {}))
    assert out[1:] == ["globex"]
    first = out[0]
    assert not isinstance(first, str)
    assert (first.request_id, first.flipped, first.command_seq) == ("a-1", False, 0)
    created = acme.events[1]
    assert isinstance(created, TicketCreated)
    recorded = acme.events[0]
    assert isinstance(recorded, DecisionRecorded)
    assert compare(acme.state, recorded, STARTER).bundle_sha256 == STARTER.sha256
