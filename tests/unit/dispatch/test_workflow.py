"""The workflow actor in shadow mode: proposals only, the pause checked before proposing."""

from __future__ import annotations

from datetime import datetime, timedelta

from actors.dispatch.env import PolicyEnvironment
from actors.workflow.rules import REACTIONS, decide, evolve, initial, proposal_id
from schemas.base import Command, Context, Event, Rejection
from schemas.dispatch import (
    AttachEvidence,
    ConfirmVisit,
    EvidenceNoted,
    ExpireApproval,
    Money,
    ProposalMade,
    ProposalSuppressed,
    ProposeVisit,
    Scope,
    WorkflowCompleted,
    WorkflowStarted,
    WorkflowState,
)
from schemas.dispatch.tickets import ChangeNte, CloseOut
from schemas.dispatch.workflow import WORKFLOW_EVENTS
from schemas.subjects import event_subject_for
from tests.unit.dispatch.builders import (
    MONDAY_10_CDT,
    TENANT,
    TICKET,
    Driver,
    create_ticket,
    env_for,
    evidence,
    make_bundle,
    utc,
    window,
)
from tests.unit.dispatch.test_policies import NINE_PM_CDT, sms

STARTER = make_bundle()


class Shadow:
    """Feeds ticket events to the workflow, as the runtime would."""

    def __init__(self, env: PolicyEnvironment) -> None:
        self.env = env
        self.state: WorkflowState = initial(TICKET)
        self.emitted: list[Event] = []

    def react(self, event: Event, message_id: str, at: datetime = MONDAY_10_CDT) -> list[Event]:
        ctx = Context(
            key=TICKET,
            message_id=message_id,
            subject=event_subject_for(type(event), TICKET),
            received_at=at,
            correlation_id=getattr(event, "correlation_id", "corr"),
            tenant=TENANT,
        )
        out = decide(self.state, event, ctx, self.env)
        assert not isinstance(out, Rejection)
        produced: list[Event] = []
        for emitted in out:
            assert isinstance(emitted, Event)
            self.state = evolve(self.state, emitted)
            produced.append(emitted)
        self.emitted += produced
        return produced


def run(commands: list[tuple[Command, datetime]], env: PolicyEnvironment) -> Shadow:
    tickets = Driver(env_for(STARTER))
    for command, at in commands:
        tickets.send(command, at=at, principal="user:manager")
    shadow = Shadow(env)
    for i, event in enumerate(tickets.events):
        if isinstance(event, REACTIONS):
            shadow.react(event, f"evt-{i}")
    return shadow


def proposals(shadow: Shadow) -> list[ProposalMade]:
    return [e for e in shadow.emitted if isinstance(e, ProposalMade)]


def test_a_ticket_lifecycle_produces_proposals_and_never_commands() -> None:
    visit = ProposeVisit(visit_id="v1", technician_id="tech-7", window=window(utc(2025, 6, 3, 14)))
    commands: list[tuple[Command, datetime]] = [
        (create_ticket(), MONDAY_10_CDT),
        (visit, MONDAY_10_CDT),
        (ConfirmVisit(visit_id="v1"), MONDAY_10_CDT),
        *[
            (AttachEvidence(evidence=evidence(f"ev-{i}", kind)), MONDAY_10_CDT)
            for i, kind in enumerate(
                ("photo_before", "photo_after", "moisture_reading", "signature")
            )
        ],
        (
            CloseOut(evidence_ids=("ev-0", "ev-1", "ev-2", "ev-3"), resolution="Fixed"),
            MONDAY_10_CDT,
        ),
    ]
    shadow = run(commands, env_for(STARTER))
    assert all(isinstance(e, WORKFLOW_EVENTS) for e in shadow.emitted)
    assert not any(isinstance(e, Command) for e in shadow.emitted)
    assert [p.kind for p in proposals(shadow)] == [
        "find_technician",
        "confirm_visit",
        "notify_customer",
        "close_out",
    ]
    confirm, close = proposals(shadow)[1], proposals(shadow)[3]
    assert confirm.suggested == ConfirmVisit(visit_id="v1")
    assert isinstance(close.suggested, CloseOut)
    assert close.suggested.evidence_ids == ("ev-0", "ev-1", "ev-2", "ev-3")
    assert isinstance(shadow.emitted[0], WorkflowStarted)
    assert sum(isinstance(e, EvidenceNoted) for e in shadow.emitted) == 4
    assert isinstance(shadow.emitted[-1], WorkflowCompleted)
    assert shadow.state.stage == "completed"


def test_quiet_hours_denials_become_retry_proposals_at_the_end_of_quiet_hours() -> None:
    shadow = run([(create_ticket(), MONDAY_10_CDT), (sms(), NINE_PM_CDT)], env_for(STARTER))
    retry = proposals(shadow)[-1]
    assert retry.kind == "retry_after_quiet_hours"
    assert retry.not_before == utc(2025, 6, 3, 12, 0)
    assert retry.suggested == sms()


def test_held_commands_get_an_expiry_proposal_at_their_deadline() -> None:
    raise_nte = ChangeNte(nte=Money(cents=500_000, currency="USD"), reason="new boiler")
    shadow = run([(create_ticket(), MONDAY_10_CDT), (raise_nte, MONDAY_10_CDT)], env_for(STARTER))
    expire = proposals(shadow)[-1]
    assert expire.kind == "expire_approval"
    assert isinstance(expire.suggested, ExpireApproval)
    assert expire.not_before == MONDAY_10_CDT + timedelta(days=1)


def test_a_paused_scope_suppresses_proposals() -> None:
    paused = env_for(STARTER, paused=(Scope(kind="ticket", id=TICKET),))
    visit = ProposeVisit(visit_id="v1", technician_id="tech-7", window=window(utc(2025, 6, 3, 14)))
    shadow = run([(create_ticket(), MONDAY_10_CDT), (visit, MONDAY_10_CDT)], paused)
    assert proposals(shadow) == []
    suppressed = [e for e in shadow.emitted if isinstance(e, ProposalSuppressed)]
    assert [(s.kind, s.reason_code, s.scope.label()) for s in suppressed] == [
        ("find_technician", "autonomy.paused", f"ticket:{TICKET}"),
        ("confirm_visit", "autonomy.paused", f"ticket:{TICKET}"),
    ]
    assert shadow.state.suppressed == 2


def test_a_redelivered_trigger_proposes_nothing_twice() -> None:
    tickets = Driver(env_for(STARTER))
    tickets.send(create_ticket())
    shadow = Shadow(env_for(STARTER))
    created = tickets.events[1]
    first = shadow.react(created, "evt-1")
    assert [type(e) for e in first] == [WorkflowStarted, ProposalMade]
    assert shadow.state.has_proposal(proposal_id("evt-1", "find_technician"))
    again = shadow.react(created, "evt-1")
    assert [type(e) for e in again] == [WorkflowStarted]


def test_reactions_are_deterministic() -> None:
    visit = ProposeVisit(visit_id="v1", technician_id="tech-7", window=window(utc(2025, 6, 3, 14)))
    commands: list[tuple[Command, datetime]] = [
        (create_ticket(), MONDAY_10_CDT),
        (visit, MONDAY_10_CDT),
        (sms(), NINE_PM_CDT),
    ]
    assert run(commands, env_for(STARTER)).emitted == run(commands, env_for(STARTER)).emitted


def test_a_workflow_that_missed_the_creation_still_checks_the_pause() -> None:
    tickets = Driver(env_for(STARTER))
    tickets.send(create_ticket())
    visit = ProposeVisit(visit_id="v1", technician_id="tech-7", window=window(utc(2025, 6, 3, 14)))
    tickets.send(visit)
    shadow = Shadow(env_for(STARTER, paused=(Scope(kind="tenant"),)))
    out = shadow.react(tickets.events[-1], "evt-3")
    assert [type(e) for e in out] == [ProposalSuppressed]


def test_an_environment_for_another_tenant_is_refused() -> None:
    tickets = Driver(env_for(STARTER))
    tickets.send(create_ticket())
    ctx = Context(
        key=TICKET,
        message_id="evt-1",
        subject=event_subject_for(type(tickets.events[1]), TICKET),
        received_at=MONDAY_10_CDT,
        correlation_id="corr",
        tenant=TENANT,
    )
    out = decide(initial(TICKET), tickets.events[1], ctx, env_for(STARTER, tenant="globex"))
    assert isinstance(out, Rejection)
    assert (out.code, out.kind) == ("policy.environment_mismatch", "unavailable")
