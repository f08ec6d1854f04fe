"""Pure rules of the workflow actor: react to ticket events with proposals, never commands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypedDict

from msgspec import structs

from actors.dispatch.env import PolicyEnvironment
from actors.dispatch.normalize import command_of
from schemas.base import Context, Decision, Event, Rejection, tag_of
from schemas.dispatch.tickets import (
    ApprovalRequested,
    CloseOut,
    ConfirmVisit,
    DecisionRecorded,
    EvidenceAttached,
    ExpireApproval,
    SendComms,
    TicketClosed,
    TicketCreated,
    VisitConfirmed,
    VisitProposed,
)
from schemas.dispatch.workflow import (
    WORKFLOW_EVENTS,
    EvidenceNoted,
    NotedEvidence,
    ProposalKind,
    ProposalMade,
    ProposalRecord,
    ProposalSuppressed,
    SuggestedCommand,
    WorkflowCompleted,
    WorkflowStarted,
    WorkflowState,
)
from schemas.subjects import digest

NAME = "workflow"
DOMAIN = "workflow"
REACTIONS: tuple[type[Event], ...] = (
    TicketCreated,
    VisitProposed,
    VisitConfirmed,
    DecisionRecorded,
    ApprovalRequested,
    EvidenceAttached,
    TicketClosed,
)
EMITS = WORKFLOW_EVENTS

EnvFor = Callable[[Context], PolicyEnvironment]


class Trigger(TypedDict):
    """The ticket event a workflow event answers."""

    trigger_id: str
    trigger_type: str
    correlation_id: str
    at: datetime


def initial(key: str) -> WorkflowState:
    """A ticket the workflow has not seen yet."""
    return WorkflowState(ticket_id=key)


def proposal_id(trigger_id: str, kind: str) -> str:
    """A proposal's id: derived from its trigger, so redelivery proposes nothing twice."""
    return f"prp_{digest(f'{trigger_id}:{kind}')}"


def decide(state: WorkflowState, message: Event, ctx: Context, env: PolicyEnvironment) -> Decision:
    """React to one ticket event. Emits observations and proposals only: never a command."""
    if state.stage == "completed":
        return []
    if env.control.tenant != ctx.tenant:
        return Rejection(
            code="policy.environment_mismatch",
            reason=f"the policy environment loaded is tenant {env.control.tenant}'s, "
            f"not {ctx.tenant}'s",
            kind="unavailable",
        )
    if not state.tenant:
        # Not started yet (the creation was missed or is replayed later): the event's
        # tenant is the ticket's.
        state = structs.replace(state, tenant=ctx.tenant)
    trigger = Trigger(
        trigger_id=ctx.message_id,
        trigger_type=tag_of(type(message)),
        correlation_id=ctx.correlation_id,
        at=ctx.received_at,
    )
    match message:
        case TicketCreated():
            started = WorkflowStarted(
                **trigger,
                tenant=message.tenant,
                region=message.region,
                incident_template=message.incident_template,
                priority=message.priority,
                contact=message.contact,
            )
            skills = ", ".join(message.required_skills) or "any skills"
            return [
                started,
                *_propose(
                    structs.replace(state, tenant=message.tenant, region=message.region),
                    env,
                    trigger,
                    "find_technician",
                    f"rank technicians ({skills}) for {message.title!r} and propose a visit",
                ),
            ]
        case VisitProposed():
            return _propose(
                state,
                env,
                trigger,
                "confirm_visit",
                f"confirm visit {message.visit_id} with {message.technician_id} "
                f"from {message.window.start.isoformat()}",
                ConfirmVisit(visit_id=message.visit_id),
            )
        case VisitConfirmed():
            if state.contact is None:
                return []
            return _propose(
                state,
                env,
                trigger,
                "notify_customer",
                f"tell {state.contact.name} that {message.technician_id} comes "
                f"{message.window.start.isoformat()} - {message.window.end.isoformat()}",
            )
        case DecisionRecorded():
            return _retry_after_quiet_hours(state, env, trigger, message)
        case ApprovalRequested():
            return _propose(
                state,
                env,
                trigger,
                "expire_approval",
                f"expire {message.approval_id} at its deadline unless someone decides it",
                ExpireApproval(approval_id=message.approval_id),
                not_before=message.expires_at,
            )
        case EvidenceAttached():
            noted = EvidenceNoted(
                **trigger, evidence_id=message.evidence.evidence_id, kind=message.evidence.kind
            )
            return [noted, *_close_out_when_complete(state, env, trigger, noted)]
        case TicketClosed():
            return [WorkflowCompleted(**trigger, resolution=message.resolution)]
        case _:
            return []


def bind(env_for: EnvFor) -> Callable[[WorkflowState, Event, Context], Decision]:
    """``decide`` with its environment supplied by the wiring."""

    def bound(state: WorkflowState, message: Event, ctx: Context) -> Decision:
        return decide(state, message, ctx, env_for(ctx))

    return bound


def evolve(state: WorkflowState, event: Event) -> WorkflowState:
    """The workflow after one of its own events."""
    match event:
        case WorkflowStarted():
            return structs.replace(
                state,
                stage="active",
                tenant=event.tenant,
                region=event.region,
                incident_template=event.incident_template,
                priority=event.priority,
                contact=event.contact,
            )
        case EvidenceNoted():
            noted = NotedEvidence(evidence_id=event.evidence_id, kind=event.kind)
            return structs.replace(state, evidence=(*state.evidence, noted))
        case ProposalMade():
            made = ProposalRecord(
                proposal_id=event.proposal_id,
                kind=event.kind,
                suppressed=False,
                trigger_id=event.trigger_id,
                trigger_type=event.trigger_type,
                correlation_id=event.correlation_id,
                at=event.at.astimezone(UTC),
                summary=event.summary,
                suggested=event.suggested,
                not_before=None if event.not_before is None else event.not_before.astimezone(UTC),
            )
            return structs.replace(state, proposals=(*state.proposals, made), made=state.made + 1)
        case ProposalSuppressed():
            stopped = ProposalRecord(
                proposal_id=event.proposal_id,
                kind=event.kind,
                suppressed=True,
                trigger_id=event.trigger_id,
                trigger_type=event.trigger_type,
                correlation_id=event.correlation_id,
                at=event.at.astimezone(UTC),
                reason_code=event.reason_code,
                scope=event.scope,
            )
            return structs.replace(
                state,
                proposals=(*state.proposals, stopped),
                suppressed=state.suppressed + 1,
            )
        case WorkflowCompleted():
            return structs.replace(state, stage="completed")
        case _:
            return state


def _propose(
    state: WorkflowState,
    env: PolicyEnvironment,
    trigger: Trigger,
    kind: ProposalKind,
    summary: str,
    suggested: SuggestedCommand | None = None,
    *,
    not_before: datetime | None = None,
    ident: str | None = None,
) -> list[Event]:
    """One proposal, or its suppression when the ticket's scope is paused (checked first)."""
    ident = ident or proposal_id(trigger["trigger_id"], kind)
    if state.has_proposal(ident):
        return []
    pause = env.paused(tenant=state.tenant, region=state.region, ticket=state.ticket_id)
    if pause is not None:
        return [
            ProposalSuppressed(
                **trigger,
                proposal_id=ident,
                kind=kind,
                reason_code="autonomy.paused",
                scope=pause.scope,
            )
        ]
    return [
        ProposalMade(
            **trigger,
            proposal_id=ident,
            kind=kind,
            summary=summary,
            suggested=suggested,
            not_before=not_before,
        )
    ]


def _retry_after_quiet_hours(
    state: WorkflowState, env: PolicyEnvironment, trigger: Trigger, recorded: DecisionRecorded
) -> list[Event]:
    if recorded.decision.reason_code != "quiet_hours.active":
        return []
    until = recorded.decision.inputs.get("quiet_until")
    if not isinstance(until, str):
        return []
    held = command_of(recorded.command)
    if not isinstance(held, ConfirmVisit | SendComms):
        return []
    return _propose(
        state,
        env,
        trigger,
        "retry_after_quiet_hours",
        f"send {recorded.command.intent} again when quiet hours end ({until})",
        held,
        not_before=datetime.fromisoformat(until),
    )


def _close_out_when_complete(
    state: WorkflowState, env: PolicyEnvironment, trigger: Trigger, noted: EvidenceNoted
) -> list[Event]:
    bundle = env.bundle
    if bundle is None:
        return []
    requirement = bundle.rules.evidence.templates.get(state.incident_template)
    if requirement is None:
        return []
    seen = [*state.evidence, NotedEvidence(evidence_id=noted.evidence_id, kind=noted.kind)]
    have = Counter(e.kind for e in seen)
    if any(have[kind] < n for kind, n in requirement.required.items()):
        return []
    cited = tuple(sorted(e.evidence_id for e in seen if e.kind in requirement.required))
    return _propose(
        state,
        env,
        trigger,
        "close_out",
        f"close out: the evidence now covers every {state.incident_template} requirement",
        CloseOut(evidence_ids=cited, resolution="Work complete; evidence attached"),
        ident=f"prp_{digest(f'{state.ticket_id}:close_out')}",
    )
