"""The tickets actor: recorded decisions, timeline links, approvals, kill switch, overrides."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.tickets.rules import approval_id_for, decide, decision_id_for, evolve, initial
from schemas.base import Event, Rejection
from schemas.dispatch import (
    ApprovalRequested,
    ApprovalResolved,
    AttachEvidence,
    ChangeNte,
    CloseOut,
    CommsQueued,
    ConfirmVisit,
    DecisionRecorded,
    ExpireApproval,
    ManualOverride,
    Money,
    NteChanged,
    OverrideApplied,
    ProposeVisit,
    RecordApprovalDecision,
    Scope,
    TicketClosed,
    TicketCreated,
    VisitConfirmed,
)
from tests.unit.dispatch.builders import (
    MONDAY_10_CDT,
    TICKET,
    Driver,
    context,
    create_ticket,
    env_for,
    evidence,
    make_bundle,
    utc,
    window,
)
from tests.unit.dispatch.test_policies import NINE_PM_CDT, sms

STARTER = make_bundle()
DAY = timedelta(days=1)
TOMORROW_9 = utc(2025, 6, 3, 14, 0)


def opened(*, paused: tuple[Scope, ...] = (), **create: object) -> Driver:
    driver = Driver(env_for(STARTER, paused=paused))
    driver.send(create_ticket(**create))  # type: ignore[arg-type]
    return driver


def events(decision: object) -> list[Event]:
    assert not isinstance(decision, Rejection), decision
    assert isinstance(decision, list)
    return decision


def recorded(decision: object) -> DecisionRecorded:
    found = [e for e in events(decision) if isinstance(e, DecisionRecorded)]
    assert len(found) == 1
    return found[0]


def status(driver: Driver) -> str:
    return driver.state.status


def approval_status(driver: Driver) -> str:
    return driver.state.approvals[0].status


def big_raise() -> ChangeNte:
    return ChangeNte(nte=Money(cents=300_000, currency="USD"), reason="replace the water heater")


# Decisions and the timeline -----------------------------------------------------------


def test_creating_records_the_decision_then_the_ticket() -> None:
    driver = Driver(env_for(STARTER))
    out = events(driver.send(create_ticket(), request_id="req-A", correlation_id="corr-A"))
    assert [type(e) for e in out] == [DecisionRecorded, TicketCreated]
    decision = recorded(out)
    assert decision.decision.decision == "ALLOW"
    assert decision.decision.bundle_sha256 == STARTER.sha256
    assert decision.decision_id == decision_id_for("req-A")
    assert decision.control_revision == 1
    assert status(driver) == "open"
    assert [
        (t.kind, t.request_id, t.correlation_id, t.decision_id) for t in driver.state.timeline
    ] == [
        ("decision_recorded", "req-A", "corr-A", decision_id_for("req-A")),
        ("ticket_created", "req-A", "corr-A", decision_id_for("req-A")),
    ]


def test_a_denied_command_is_recorded_and_changes_nothing_else() -> None:
    driver = opened()
    before = driver.state
    out = events(driver.send(sms(), at=NINE_PM_CDT, request_id="req-Q", correlation_id="corr-Q"))
    assert [type(e) for e in out] == [DecisionRecorded]
    assert recorded(out).decision.reason_code == "quiet_hours.active"
    assert driver.state.timeline[-1].request_id == "req-Q"
    assert driver.state.timeline[-1].correlation_id == "corr-Q"
    assert driver.state.decision_for("req-Q") is not None
    assert driver.state.decision_for("req-Q").decision == "DENY"  # type: ignore[union-attr]
    assert (
        msgspec.structs.replace(driver.state, timeline=before.timeline, decisions=before.decisions)
        == before
    )


def test_what_cannot_reach_a_timeline_is_rejected() -> None:
    driver = Driver(env_for(STARTER))
    missing = driver.send(ConfirmVisit(visit_id="v1"))
    assert isinstance(missing, Rejection)
    assert missing.kind == "not_found"
    anonymous = driver.send(create_ticket(), principal=None)
    assert isinstance(anonymous, Rejection)
    assert (anonymous.code, anonymous.kind) == ("normalize.missing_field", "forbidden")
    driver.send(create_ticket())
    foreign = driver.send(ConfirmVisit(visit_id="v1"), tenant="globex")
    assert isinstance(foreign, Rejection)
    assert foreign.code == "policy.environment_mismatch"
    driver.env = env_for(STARTER, tenant="globex")
    foreign = driver.send(ConfirmVisit(visit_id="v1"), tenant="globex")
    assert isinstance(foreign, Rejection)
    assert (foreign.code, foreign.kind) == ("tickets.tenant_mismatch", "forbidden")
    driver.env = env_for(STARTER)
    mismatch = driver.send(AttachEvidence(evidence=evidence("ev-1", "photo_after", "t-9")))
    assert isinstance(mismatch, Rejection)
    assert mismatch.code == "normalize.ticket_mismatch"
    assert len(driver.events) == 2  # only the successful create


def test_a_retried_request_changes_nothing_and_a_reused_id_is_a_conflict() -> None:
    driver = opened()
    command = ProposeVisit(visit_id="v1", technician_id="tech-7", window=window(TOMORROW_9))
    events(driver.send(command, request_id="req-P"))
    assert driver.send(command, request_id="req-P") == []
    other = ProposeVisit(visit_id="v2", technician_id="tech-7", window=window(TOMORROW_9))
    conflict = driver.send(other, request_id="req-P")
    assert isinstance(conflict, Rejection)
    assert (conflict.code, conflict.kind) == ("request.mismatch", "conflict")
    assert conflict.details["decision_id"] == decision_id_for("req-P")
    assert conflict.details["recorded_fingerprint"] != conflict.details["fingerprint"]


def test_ticket_invariants_are_recorded_refusals() -> None:
    driver = opened()
    assert recorded(driver.send(ConfirmVisit(visit_id="nope"))).decision.reason_code == (
        "ticket.unknown_visit"
    )
    assert recorded(driver.send(create_ticket())).decision.reason_code == "ticket.exists"
    old = ProposeVisit(visit_id="v0", technician_id="t", window=window(MONDAY_10_CDT - DAY))
    assert recorded(driver.send(old)).decision.reason_code == "ticket.visit_in_past"
    euros = ChangeNte(nte=Money(cents=1, currency="EUR"), reason="oops")
    made = recorded(driver.send(euros)).decision
    assert (made.reason_code, made.rule) == ("ticket.currency_mismatch", "ticket_state")
    driver.send(AttachEvidence(evidence=evidence("ev-1", "photo_after")))
    again = driver.send(AttachEvidence(evidence=evidence("ev-1", "photo_after")))
    assert recorded(again).decision.reason_code == "ticket.evidence_exists"


def test_the_full_lifecycle() -> None:
    driver = opened()
    driver.send(ProposeVisit(visit_id="v1", technician_id="tech-7", window=window(TOMORROW_9)))
    assert status(driver) == "scheduling"
    out = events(driver.send(ConfirmVisit(visit_id="v1")))
    assert isinstance(out[-1], VisitConfirmed)
    assert out[-1].technician_id == "tech-7"
    driver.send(
        ProposeVisit(visit_id="v2", technician_id="tech-9", window=window(TOMORROW_9 + DAY))
    )
    driver.send(ConfirmVisit(visit_id="v2"))
    assert [v.status for v in driver.state.visits] == ["superseded", "confirmed"]
    assert status(driver) == "scheduled"
    for i, kind in enumerate(("photo_before", "photo_after", "moisture_reading", "signature")):
        driver.send(AttachEvidence(evidence=evidence(f"ev-{i}", kind)))
    done = events(
        driver.send(CloseOut(evidence_ids=("ev-3", "ev-0", "ev-1", "ev-2"), resolution="Fixed"))
    )
    assert isinstance(done[-1], TicketClosed)
    assert done[-1].evidence_ids == ("ev-0", "ev-1", "ev-2", "ev-3")
    assert status(driver) == "closed"
    late = driver.send(sms())
    assert recorded(late).decision.reason_code == "ticket.closed"


def test_without_an_active_bundle_everything_is_denied() -> None:
    driver = Driver(env_for(None))
    made = recorded(driver.send(create_ticket())).decision
    assert (made.decision, made.reason_code, made.bundle_sha256) == (
        "DENY",
        "bundle.none_active",
        "",
    )
    assert status(driver) == "absent"
    assert len(driver.state.timeline) == 1


# Approvals ------------------------------------------------------------------------------


def held() -> tuple[Driver, str]:
    driver = opened()
    out = events(driver.send(big_raise(), request_id="req-N", correlation_id="corr-N"))
    assert [type(e) for e in out] == [DecisionRecorded, ApprovalRequested]
    return driver, approval_id_for("req-N")


def test_require_approval_holds_the_command() -> None:
    driver, approval = held()
    request = driver.events[-1]
    assert isinstance(request, ApprovalRequested)
    assert request.approval_id == approval
    assert request.expires_at == MONDAY_10_CDT + DAY
    assert request.reason_code == "nte.approval_required"
    assert driver.state.nte == Money(cents=100_000, currency="USD")
    assert [a.status for a in driver.state.approvals] == ["pending"]


def test_approving_releases_the_held_command_linked_to_its_request() -> None:
    driver, approval = held()
    out = events(
        driver.send(
            RecordApprovalDecision(approval_id=approval, outcome="approve", note="ok"),
            principal="user:manager",
            request_id="req-Y",
            at=MONDAY_10_CDT + timedelta(hours=1),
        )
    )
    assert [type(e) for e in out] == [DecisionRecorded, ApprovalResolved, NteChanged]
    resolved, changed = out[1], out[2]
    assert isinstance(resolved, ApprovalResolved)
    assert isinstance(changed, NteChanged)
    assert (resolved.outcome, resolved.released, resolved.resolved_by) == (
        "approved",
        True,
        "user:manager",
    )
    assert (resolved.request_id, resolved.held_request_id) == ("req-Y", "req-N")
    assert (changed.request_id, changed.correlation_id) == ("req-N", "corr-N")
    assert changed.decision_id == decision_id_for("req-N")
    assert changed.approval_id == approval
    assert driver.state.nte == Money(cents=300_000, currency="USD")
    assert approval_status(driver) == "approved"


def test_rejecting_refuses_the_held_command() -> None:
    driver, approval = held()
    out = events(
        driver.send(
            RecordApprovalDecision(approval_id=approval, outcome="reject", note="too much"),
            principal="user:manager",
        )
    )
    assert [type(e) for e in out] == [DecisionRecorded, ApprovalResolved]
    assert isinstance(out[1], ApprovalResolved)
    assert out[1].outcome == "rejected"
    assert driver.state.nte == Money(cents=100_000, currency="USD")
    again = driver.send(
        RecordApprovalDecision(approval_id=approval, outcome="approve"), principal="user:manager"
    )
    assert recorded(again).decision.reason_code == "approval.already_resolved"


def test_requesters_and_services_cannot_approve() -> None:
    driver, approval = held()
    mine = driver.send(RecordApprovalDecision(approval_id=approval, outcome="approve"))
    assert recorded(mine).decision.reason_code == "approval.self_approval"
    bot = driver.send(
        RecordApprovalDecision(approval_id=approval, outcome="approve"), principal="svc:bot"
    )
    assert recorded(bot).decision.reason_code == "approval.not_permitted"
    assert approval_status(driver) == "pending"


def test_an_approval_in_the_last_second_still_counts() -> None:
    driver, approval = held()
    out = events(
        driver.send(
            RecordApprovalDecision(approval_id=approval, outcome="approve"),
            principal="user:manager",
            at=MONDAY_10_CDT + DAY - timedelta(seconds=1),
        )
    )
    assert any(isinstance(e, NteChanged) for e in out)


def test_any_message_at_the_deadline_expires_the_hold_first() -> None:
    driver, approval = held()
    out = events(
        driver.send(
            AttachEvidence(evidence=evidence("ev-1", "photo_after")),
            at=MONDAY_10_CDT + DAY,
            request_id="req-E",
        )
    )
    assert [type(e) for e in out] == [ApprovalResolved, DecisionRecorded, type(out[2])]
    expired = out[0]
    assert isinstance(expired, ApprovalResolved)
    assert (expired.outcome, expired.request_id, expired.held_request_id) == (
        "expired",
        "req-E",
        "req-N",
    )
    late = driver.send(
        RecordApprovalDecision(approval_id=approval, outcome="approve"), principal="user:manager"
    )
    assert recorded(late).decision.reason_code == "approval.already_resolved"
    assert driver.state.nte == Money(cents=100_000, currency="USD")


def test_an_approval_arriving_after_the_deadline_is_too_late() -> None:
    driver, approval = held()
    out = events(
        driver.send(
            RecordApprovalDecision(approval_id=approval, outcome="approve"),
            principal="user:manager",
            at=MONDAY_10_CDT + DAY + timedelta(minutes=5),
        )
    )
    assert [type(e) for e in out] == [ApprovalResolved, DecisionRecorded]
    assert recorded(out).decision.reason_code == "approval.expired"


def test_the_explicit_expire_command() -> None:
    driver, approval = held()
    early = driver.send(ExpireApproval(approval_id=approval), at=MONDAY_10_CDT + timedelta(hours=2))
    assert recorded(early).decision.reason_code == "approval.not_due"
    assert approval_status(driver) == "pending"
    out = events(driver.send(ExpireApproval(approval_id=approval), at=MONDAY_10_CDT + DAY))
    assert [type(e) for e in out] == [ApprovalResolved, DecisionRecorded]
    assert recorded(out).decision.reason_code == "approval.expired"
    assert approval_status(driver) == "expired"
    unknown = driver.send(ExpireApproval(approval_id="apr_unknown"), at=MONDAY_10_CDT + DAY)
    assert recorded(unknown).decision.reason_code == "ticket.unknown_approval"


def test_the_approval_ttl_comes_from_the_bundle() -> None:
    strict = make_bundle(base="strict")
    driver = Driver(env_for(strict))
    driver.send(create_ticket())
    events(driver.send(big_raise()))
    assert driver.state.approvals[0].expires_at == MONDAY_10_CDT + timedelta(hours=8)


def test_pending_approvals_block_a_second_change_and_the_closeout() -> None:
    driver, _ = held()
    second = driver.send(ChangeNte(nte=Money(cents=90_000, currency="USD"), reason="less"))
    assert recorded(second).decision.reason_code == "ticket.approval_pending"
    close = driver.send(CloseOut(evidence_ids=(), resolution="done"))
    assert recorded(close).decision.reason_code == "ticket.approval_pending"


def test_an_approval_granted_while_paused_is_not_carried_out() -> None:
    driver, approval = held()
    driver.env = env_for(STARTER, paused=(Scope(kind="ticket", id=TICKET),))
    out = events(
        driver.send(
            RecordApprovalDecision(approval_id=approval, outcome="approve"),
            principal="user:manager",
        )
    )
    assert [type(e) for e in out] == [DecisionRecorded, ApprovalResolved]
    resolved = out[1]
    assert isinstance(resolved, ApprovalResolved)
    assert (resolved.outcome, resolved.released, resolved.refusal_code) == (
        "approved",
        False,
        "autonomy.paused",
    )
    assert driver.state.nte == Money(cents=100_000, currency="USD")


# Kill switch and overrides -------------------------------------------------------------------


def test_a_paused_tenant_denies_gated_commands_with_the_scope() -> None:
    driver = opened(paused=(Scope(kind="tenant"),))
    made = recorded(driver.send(sms())).decision
    assert (made.decision, made.reason_code, made.rule) == (
        "DENY",
        "autonomy.paused",
        "kill_switch",
    )
    assert made.inputs["scope"] == "tenant"
    assert made.inputs["paused_by"] == "user:oncall"
    # Recording facts goes on: evidence is still accepted while paused.
    kept = recorded(driver.send(AttachEvidence(evidence=evidence("ev-1", "photo_after"))))
    assert kept.decision.decision == "ALLOW"


def test_region_and_ticket_pauses_cover_only_their_scope() -> None:
    west = (Scope(kind="region", id="west"),)
    assert recorded(opened(paused=west, region="west").send(sms())).decision.decision == "DENY"
    assert recorded(opened(paused=west, region="central").send(sms())).decision.decision == "ALLOW"
    one = (Scope(kind="ticket", id=TICKET),)
    assert recorded(opened(paused=one).send(sms())).decision.reason_code == "autonomy.paused"
    other = Driver(env_for(STARTER, paused=one), ticket="t-200")
    other.send(create_ticket())
    assert recorded(other.send(sms())).decision.decision == "ALLOW"


def test_resuming_lets_commands_through_again() -> None:
    driver = opened(paused=(Scope(kind="tenant"),))
    assert recorded(driver.send(sms())).decision.decision == "DENY"
    driver.env = env_for(STARTER)
    assert recorded(driver.send(sms())).decision.decision == "ALLOW"


def test_a_manual_override_acts_despite_the_pause_and_is_audited() -> None:
    driver = opened(paused=(Scope(kind="tenant"),))
    command = ManualOverride(command=sms(), justification="burst pipe, customer must know now")
    out = events(driver.send(command, principal="user:lead", at=NINE_PM_CDT, request_id="req-O"))
    assert [type(e) for e in out] == [DecisionRecorded, OverrideApplied, CommsQueued]
    made = recorded(out).decision
    assert (made.decision, made.reason_code) == ("ALLOW", "override.permitted")
    assert made.inputs["bypassed_reason"] == "quiet_hours.active"
    assert made.inputs["paused_scope"] == "tenant"
    audit = out[1]
    assert isinstance(audit, OverrideApplied)
    assert audit.overridden_by == "user:lead"
    assert audit.bypassed.reason_code == "quiet_hours.active"
    assert audit.paused_scope == Scope(kind="tenant")
    assert audit.request_id == out[2].request_id == "req-O"  # type: ignore[attr-defined]


def test_overrides_bypass_approvals_but_not_ticket_invariants_or_permissions() -> None:
    driver = opened()
    out = events(
        driver.send(
            ManualOverride(command=big_raise(), justification="approved by phone"),
            principal="user:lead",
        )
    )
    assert [type(e) for e in out] == [DecisionRecorded, OverrideApplied, NteChanged]
    assert isinstance(out[1], OverrideApplied)
    assert out[1].bypassed.decision == "REQUIRE_APPROVAL"
    bogus = ManualOverride(command=ConfirmVisit(visit_id="v404"), justification="just do it now")
    assert recorded(driver.send(bogus, principal="user:lead")).decision.reason_code == (
        "ticket.unknown_visit"
    )
    bot = driver.send(
        ManualOverride(command=sms(), justification="bots cannot"), principal="svc:bot"
    )
    assert recorded(bot).decision.reason_code == "override.not_permitted"


# Properties ------------------------------------------------------------------------------------

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "sms",
                "propose",
                "confirm",
                "raise",
                "approve",
                "reject",
                "expire",
                "evidence",
                "close",
            ]
        ),
        st.integers(0, 36 * 60),
        st.sampled_from(["user:dispatcher", "user:manager"]),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(steps=STEPS)
def test_every_accepted_command_records_one_decision_and_folding_rebuilds_state(
    steps: list[tuple[str, int, str]],
) -> None:
    driver = opened()
    at = MONDAY_10_CDT
    for i, (kind, minutes, who) in enumerate(steps):
        at = at + timedelta(minutes=minutes)
        pending = driver.state.pending()
        target = pending[0].approval_id if pending else "apr_none"
        command = {
            "sms": sms(),
            "propose": ProposeVisit(
                visit_id=f"v{i}", technician_id="tech-7", window=window(at + DAY)
            ),
            "confirm": ConfirmVisit(
                visit_id=driver.state.visits[-1].visit_id if driver.state.visits else "v0"
            ),
            "raise": big_raise(),
            "approve": RecordApprovalDecision(approval_id=target, outcome="approve"),
            "reject": RecordApprovalDecision(approval_id=target, outcome="reject"),
            "expire": ExpireApproval(approval_id=target),
            "evidence": AttachEvidence(evidence=evidence(f"ev-{i}", "signature")),
            "close": CloseOut(evidence_ids=(), resolution="done"),
        }[kind]
        before = driver.state
        out = driver.send(command, at=at, principal=who, request_id=f"step-{i}")
        produced = events(out)
        decisions = [e for e in produced if isinstance(e, DecisionRecorded)]
        assert len(decisions) == 1
        assert decisions[0].command.request_id == f"step-{i}"
        again = driver.send(command, at=at, principal=who, request_id=f"step-{i}")
        assert again == []
        replay = decide(
            before,
            command,
            context(
                at=at,
                message_id=f"step-{i}",
                principal=who,
                correlation_id=f"corr-step-{i}",
                command=type(command),
            ),
            driver.env,
        )
        assert replay == produced
    rebuilt = initial(TICKET)
    for event in driver.events:
        rebuilt = evolve(rebuilt, event)
    assert rebuilt == driver.state
    assert len(driver.state.timeline) == len(driver.events)
    assert all(entry.request_id and entry.decision_id for entry in driver.state.timeline)
    assert [e.seq for e in driver.state.timeline] == list(range(1, len(driver.events) + 1))
