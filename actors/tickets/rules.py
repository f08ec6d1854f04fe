"""Pure rules of the tickets actor: normalize, check, gate, decide, record, hold for approval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from msgspec import structs

from actors.dispatch import policies
from actors.dispatch.bundles.loader import Bundle
from actors.dispatch.env import PolicyEnvironment
from actors.dispatch.errors import MissingField, NormalizationError
from actors.dispatch.normalize import build, normalize
from schemas.base import Command, Context, Decision, Event, Rejection, name_of
from schemas.dispatch.common import TimeWindow
from schemas.dispatch.policy import PausedScope
from schemas.dispatch.records import DispatchCommand, InputValue, PolicyDecision, TimelineEntry
from schemas.dispatch.tickets import (
    GATED_COMMANDS,
    TICKET_COMMANDS,
    TICKET_EVENTS,
    Approval,
    ApprovalRequested,
    ApprovalResolved,
    AttachEvidence,
    ChangeNte,
    CloseOut,
    CommsQueued,
    ConfirmVisit,
    CreateTicket,
    DecisionRecorded,
    DecisionRef,
    EvidenceAttached,
    ExpireApproval,
    GatedCommand,
    ManualOverride,
    NteChanged,
    OverrideApplied,
    ProposeVisit,
    RecordApprovalDecision,
    SendComms,
    TicketClosed,
    TicketCreated,
    TicketEvent,
    TicketState,
    Visit,
    VisitConfirmed,
    VisitProposed,
)
from schemas.subjects import digest

NAME = "tickets"
DOMAIN = "tickets"
COMMANDS = TICKET_COMMANDS
EMITS = TICKET_EVENTS

EnvFor = Callable[[Context], PolicyEnvironment]


def initial(key: str) -> TicketState:
    """A ticket never seen before."""
    return TicketState(ticket_id=key)


def decision_id_for(request_id: str) -> str:
    """The decision id of a request: derived, so a retry records the same id."""
    return f"dec_{digest(request_id)}"


def approval_id_for(request_id: str) -> str:
    """The approval id of a held request."""
    return f"apr_{digest(request_id)}"


class Link(TypedDict):
    """The request an event is linked to on the timeline: the fields every ticket event has."""

    request_id: str
    correlation_id: str
    decision_id: str
    at: datetime


def decide(state: TicketState, message: Command, ctx: Context, env: PolicyEnvironment) -> Decision:
    """Decide one command: the events to record (a decision first), or a Rejection.

    Rejections are only for what cannot be put on this ticket's timeline: an
    unknown ticket, another tenant's ticket, or a command that does not
    normalize. Everything else, refused or not, records a ``DecisionRecorded``.
    """
    if not isinstance(message, TICKET_COMMANDS):
        return Rejection(
            code="tickets.unknown_command",
            reason=f"{type(message).__qualname__} is not a ticket command",
        )
    if env.control.tenant != ctx.tenant:
        return Rejection(
            code="policy.environment_mismatch",
            reason=f"the policy environment loaded is tenant {env.control.tenant}'s, "
            f"not {ctx.tenant}'s; the command is retried",
            kind="unavailable",
        )
    if state.tenant and state.tenant != ctx.tenant:
        return Rejection(
            code="tickets.tenant_mismatch",
            reason=f"ticket {ctx.key} belongs to another tenant",
            kind="forbidden",
        )
    if state.status == "absent" and not isinstance(message, CreateTicket):
        return Rejection(
            code="tickets.not_found",
            reason=f"ticket {ctx.key} does not exist; create it first",
            kind="not_found",
        )
    try:
        command = normalize(message, ctx)
    except NormalizationError as err:
        return Rejection(
            code=err.code,
            reason=str(err),
            kind="forbidden"
            if isinstance(err, MissingField) and err.field == "actor"
            else "invalid",
        )
    prior = state.decision_for(command.request_id)
    if prior is not None:
        if prior.fingerprint == command.fingerprint:
            return []  # the same request again: its decision stands, nothing new happens
        return Rejection(
            code="request.mismatch",
            reason=f"request id {command.request_id} was already used for a different "
            f"{prior.intent} command; use a new request id",
            kind="conflict",
            details={
                "request_id": command.request_id,
                "decision_id": prior.decision_id,
                "recorded_intent": prior.intent,
                "recorded_fingerprint": prior.fingerprint,
                "intent": command.intent,
                "fingerprint": command.fingerprint,
            },
        )
    now = ctx.received_at
    expired = _expire_due(state, command, now)
    working = fold(state, expired)
    return [
        *expired,
        *_decide(working, message, command, now, env, {e.approval_id for e in expired}),
    ]


def bind(env_for: EnvFor) -> Callable[[TicketState, Command, Context], Decision]:
    """``decide`` with its environment supplied by the wiring (read in the same transaction)."""

    def bound(state: TicketState, message: Command, ctx: Context) -> Decision:
        return decide(state, message, ctx, env_for(ctx))

    return bound


def fold(state: TicketState, events: Sequence[Event]) -> TicketState:
    """Apply ``evolve`` over events."""
    for event in events:
        state = evolve(state, event)
    return state


# Deciding ---------------------------------------------------------------------------


def _expire_due(
    state: TicketState, command: DispatchCommand, now: datetime
) -> list[ApprovalResolved]:
    """Holds whose deadline is at or before ``now``: a message arriving exactly at the
    deadline is already too late."""
    return [
        ApprovalResolved(
            request_id=command.request_id,
            correlation_id=command.correlation_id,
            decision_id=held.decision_id,
            at=now,
            approval_id=held.approval_id,
            outcome="expired",
            held_request_id=held.request_id,
            held_intent=held.intent,
            note=f"no decision by {held.expires_at.isoformat()}",
        )
        for held in state.pending()
        if held.expires_at <= now
    ]


def _decide(
    state: TicketState,
    message: Command,
    command: DispatchCommand,
    now: datetime,
    env: PolicyEnvironment,
    just_expired: set[str],
) -> list[TicketEvent]:
    bundle = env.bundle
    link = Link(
        request_id=command.request_id,
        correlation_id=command.correlation_id,
        decision_id=decision_id_for(command.request_id),
        at=now,
    )

    def record(made: PolicyDecision) -> DecisionRecorded:
        return DecisionRecorded(
            **link,
            command=command,
            decision=made,
            control_revision=env.control.revision,
        )

    if isinstance(message, ExpireApproval):
        return [record(_expiry(state, message.approval_id, just_expired, env, now))]
    refusal = _check(state, message, now, env, just_expired)
    if refusal is not None:
        return [record(refusal)]
    if bundle is None:
        return [record(policies.no_bundle(command.intent))]
    if command.intent in policies.GATED_INTENTS:
        pause = env.paused(
            tenant=command.tenant, region=_region(state, message), ticket=state.ticket_id
        )
        if pause is not None:
            return [record(policies.paused(bundle, command.intent, pause))]
    made = policies.decide_policy(bundle, command, state, now)
    if made.decision == "DENY":
        return [record(made)]
    if made.decision == "REQUIRE_APPROVAL":
        held = _holdable(message)
        if held is None:
            # Only gated commands can be held; anything else asking for approval is a
            # rule defect, refused rather than guessed at.
            return [record(structs.replace(made, decision="DENY"))]
        return [
            record(made),
            ApprovalRequested(
                **link,
                approval_id=approval_id_for(command.request_id),
                command=held,
                requested_by=command.actor,
                reason_code=made.reason_code,
                explanation=made.explanation,
                expires_at=now + timedelta(seconds=bundle.rules.approvals.ttl_seconds),
            ),
        ]
    match message:
        case RecordApprovalDecision():
            return [record(made), *_resolve(state, message, command, link, env)]
        case ManualOverride():
            return _override(bundle, state, message, command, made, link, env, record)
        case _:
            return [record(made), *_effects(state, message, link, command.tenant)]


def _expiry(
    state: TicketState,
    approval_id: str,
    just_expired: set[str],
    env: PolicyEnvironment,
    now: datetime,
) -> PolicyDecision:
    """The decision on an explicit expire command: a timing fact, not a bundle rule."""
    bundle = env.bundle
    held = state.approval(approval_id)
    inputs: dict[str, InputValue] = {"approval_id": approval_id}
    if held is None:
        return _refuse(bundle, "ticket.unknown_approval", f"no approval {approval_id}", inputs)
    inputs["expires_at"] = held.expires_at.isoformat()
    if approval_id in just_expired:
        return policies.decision(
            bundle,
            "ALLOW",
            "approval.expired",
            f"{approval_id} passed its deadline {held.expires_at.isoformat()} and is expired",
            rule="ticket_state",
            inputs=inputs,
        )
    if held.status == "pending":
        return _refuse(
            bundle,
            "approval.not_due",
            f"{approval_id} expires at {held.expires_at.isoformat()}, after {now.isoformat()}",
            inputs,
        )
    return _refuse(bundle, "approval.already_resolved", f"{approval_id} is {held.status}", inputs)


def _check(
    state: TicketState,
    message: Command,
    now: datetime,
    env: PolicyEnvironment,
    just_expired: set[str],
    *,
    releasing: str | None = None,
) -> PolicyDecision | None:
    """Ticket invariants, which no bundle and no override can waive; None when they hold."""
    bundle = env.bundle
    if isinstance(message, CreateTicket):
        if state.status != "absent":
            return _refuse(bundle, "ticket.exists", f"ticket {state.ticket_id} already exists")
        return None
    if state.status == "closed":
        return _refuse(bundle, "ticket.closed", f"ticket {state.ticket_id} is closed")
    if isinstance(message, ManualOverride):
        return _check(state, message.command, now, env, just_expired)
    if isinstance(message, RecordApprovalDecision):
        held = state.approval(message.approval_id)
        if held is None:
            return _refuse(bundle, "ticket.unknown_approval", f"no approval {message.approval_id}")
        if message.approval_id in just_expired:
            return _refuse(
                bundle,
                "approval.expired",
                f"{message.approval_id} expired at {held.expires_at.isoformat()}, before "
                "this decision arrived",
            )
        if held.status != "pending":
            return _refuse(
                bundle, "approval.already_resolved", f"{message.approval_id} is {held.status}"
            )
        return None
    if isinstance(message, GATED_COMMANDS):
        intent = name_of(type(message))
        waiting = [a for a in state.pending() if a.intent == intent and a.approval_id != releasing]
        if waiting:
            return _refuse(
                bundle,
                "ticket.approval_pending",
                f"a {intent} is already awaiting approval ({waiting[0].approval_id}); "
                "decide that one first",
            )
    match message:
        case ProposeVisit():
            if state.visit(message.visit_id) is not None:
                return _refuse(bundle, "ticket.visit_exists", f"visit {message.visit_id} exists")
            if message.window.end <= now:
                return _refuse(bundle, "ticket.visit_in_past", "the visit window has ended")
        case ConfirmVisit():
            visit = state.visit(message.visit_id)
            if visit is None:
                return _refuse(bundle, "ticket.unknown_visit", f"no visit {message.visit_id}")
            if visit.status != "proposed":
                return _refuse(
                    bundle, "ticket.visit_not_proposed", f"visit {visit.visit_id} is {visit.status}"
                )
            if visit.window.end <= now:
                return _refuse(bundle, "ticket.visit_in_past", "the visit window has ended")
        case ChangeNte():
            if state.nte is not None and state.nte.currency != message.nte.currency:
                return _refuse(
                    bundle,
                    "ticket.currency_mismatch",
                    f"the NTE is in {state.nte.currency}, not {message.nte.currency}",
                )
        case AttachEvidence():
            if state.evidence_by_id(message.evidence.evidence_id) is not None:
                return _refuse(
                    bundle,
                    "ticket.evidence_exists",
                    f"evidence {message.evidence.evidence_id} is attached and immutable",
                )
        case CloseOut():
            open_ids = [a.approval_id for a in state.pending() if a.approval_id != releasing]
            if open_ids:
                return _refuse(
                    bundle,
                    "ticket.approval_pending",
                    f"approvals are still pending: {', '.join(open_ids)}",
                )
        case _:
            pass
    return None


def _refuse(
    bundle: Bundle | None,
    code: str,
    explanation: str,
    inputs: dict[str, InputValue] | None = None,
) -> PolicyDecision:
    return policies.decision(bundle, "DENY", code, explanation, rule="ticket_state", inputs=inputs)


def _resolve(
    state: TicketState,
    message: RecordApprovalDecision,
    command: DispatchCommand,
    link: Link,
    env: PolicyEnvironment,
) -> list[TicketEvent]:
    held = state.approval(message.approval_id)
    if held is None:  # _check refused unknown ids before policy ran
        return []
    resolved_link = Link(
        request_id=link["request_id"],
        correlation_id=link["correlation_id"],
        decision_id=held.decision_id,
        at=link["at"],
    )
    if message.outcome == "reject":
        return [
            ApprovalResolved(
                **resolved_link,
                approval_id=held.approval_id,
                outcome="rejected",
                held_request_id=held.request_id,
                held_intent=held.intent,
                resolved_by=command.actor,
                note=message.note,
            )
        ]
    refusal = _check(state, held.command, link["at"], env, set(), releasing=held.approval_id)
    pause = env.paused(tenant=command.tenant, region=state.region, ticket=state.ticket_id)
    code = refusal.reason_code if refusal is not None else "autonomy.paused" if pause else ""
    resolved = ApprovalResolved(
        **resolved_link,
        approval_id=held.approval_id,
        outcome="approved",
        held_request_id=held.request_id,
        held_intent=held.intent,
        resolved_by=command.actor,
        note=message.note,
        released=not code,
        refusal_code=code,
    )
    if code:
        return [resolved]
    held_link = Link(
        request_id=held.request_id,
        correlation_id=held.correlation_id,
        decision_id=held.decision_id,
        at=link["at"],
    )
    released = _effects(evolve(state, resolved), held.command, held_link, command.tenant)
    if released and isinstance(released[0], NteChanged):
        released[0] = structs.replace(released[0], approval_id=held.approval_id)
    return [resolved, *released]


def _override(
    bundle: Bundle,
    state: TicketState,
    message: ManualOverride,
    command: DispatchCommand,
    permitted: PolicyDecision,
    link: Link,
    env: PolicyEnvironment,
    record: Callable[[PolicyDecision], DecisionRecorded],
) -> list[TicketEvent]:
    inner = build(
        message.command,
        request_id=command.request_id,
        correlation_id=command.correlation_id,
        actor=command.actor,
        tenant=command.tenant,
        ticket=command.ticket,
    )
    bypassed = policies.decide_policy(bundle, inner, state, link["at"])
    pause: PausedScope | None = env.paused(
        tenant=command.tenant, region=state.region, ticket=state.ticket_id
    )
    made = structs.replace(
        permitted,
        explanation=f"{command.actor} overrode {inner.intent}: policy said {bypassed.decision} "
        f"({bypassed.reason_code})"
        + ("" if pause is None else f" and {pause.scope.label()} is paused")
        + f"; justification: {message.justification}",
        inputs={
            **permitted.inputs,
            "overridden_intent": inner.intent,
            "bypassed_decision": bypassed.decision,
            "bypassed_reason": bypassed.reason_code,
            "paused_scope": None if pause is None else pause.scope.label(),
        },
    )
    audit = OverrideApplied(
        **link,
        intent=inner.intent,
        overridden_by=command.actor,
        justification=message.justification,
        bypassed=bypassed,
        paused_scope=None if pause is None else pause.scope,
    )
    return [record(made), audit, *_effects(state, message.command, link, command.tenant)]


def _effects(state: TicketState, message: Command, link: Link, tenant: str) -> list[TicketEvent]:
    """The events an allowed command records."""
    match message:
        case CreateTicket():
            return [
                TicketCreated(
                    **link,
                    tenant=tenant,
                    region=message.region,
                    incident_template=message.incident_template,
                    title=message.title,
                    site=message.site,
                    nte=message.nte,
                    priority=message.priority,
                    description=message.description,
                    contact=message.contact,
                    required_skills=message.required_skills,
                )
            ]
        case ProposeVisit():
            return [
                VisitProposed(
                    **link,
                    visit_id=message.visit_id,
                    technician_id=message.technician_id,
                    window=message.window,
                    note=message.note,
                    recommendation=message.recommendation,
                )
            ]
        case ConfirmVisit():
            visit = state.visit(message.visit_id)
            if visit is None:  # _check refused unknown visits
                return []
            return [
                VisitConfirmed(
                    **link,
                    visit_id=visit.visit_id,
                    technician_id=visit.technician_id,
                    window=visit.window,
                )
            ]
        case SendComms():
            return [CommsQueued(**link, envelope=message.envelope)]
        case ChangeNte():
            previous = state.nte if state.nte is not None else structs.replace(message.nte, cents=0)
            return [
                NteChanged(
                    **link,
                    previous=previous,
                    nte=message.nte,
                    reason=message.reason,
                )
            ]
        case AttachEvidence():
            return [EvidenceAttached(**link, evidence=message.evidence)]
        case CloseOut():
            return [
                TicketClosed(
                    **link,
                    resolution=message.resolution,
                    evidence_ids=tuple(sorted(set(message.evidence_ids))),
                )
            ]
        case _:
            return []


def _holdable(message: Command) -> GatedCommand | None:
    match message:
        case ProposeVisit() | ConfirmVisit() | SendComms() | ChangeNte() | CloseOut():
            return message
        case _:
            return None


def _region(state: TicketState, message: Command) -> str:
    if isinstance(message, CreateTicket):
        return message.region
    return state.region


# Evolving ---------------------------------------------------------------------------


def evolve(state: TicketState, event: Event) -> TicketState:
    """The ticket after one of its events; every event also adds a timeline entry."""
    if not isinstance(event, TicketEvent):
        return state
    entry = TimelineEntry(
        seq=len(state.timeline) + 1,
        at=_utc(event.at),
        kind=name_of(type(event)),
        request_id=event.request_id,
        correlation_id=event.correlation_id,
        decision_id=event.decision_id,
    )
    state = structs.replace(state, timeline=(*state.timeline, entry))
    match event:
        case DecisionRecorded():
            made = event.decision
            ref = DecisionRef(
                request_id=event.command.request_id,
                decision_id=event.decision_id,
                intent=event.command.intent,
                fingerprint=event.command.fingerprint,
                decision=made.decision,
                reason_code=made.reason_code,
                correlation_id=event.command.correlation_id,
                actor=event.command.actor,
                rule=made.rule,
                explanation=made.explanation,
                bundle_version=made.bundle_version,
                bundle_sha256=made.bundle_sha256,
                control_revision=event.control_revision,
                inputs=made.inputs,
                parameters=event.command.parameters,
                at=_utc(event.at),
                timeline_seq=entry.seq,
            )
            # A refused creation still belongs to the tenant that asked: the ticket id is taken.
            tenant = state.tenant or event.command.tenant
            return structs.replace(state, decisions=(*state.decisions, ref), tenant=tenant)
        case TicketCreated():
            return structs.replace(
                state,
                status="open",
                tenant=event.tenant,
                region=event.region,
                incident_template=event.incident_template,
                title=event.title,
                priority=event.priority,
                site=event.site,
                contact=event.contact,
                required_skills=event.required_skills,
                nte=event.nte,
            )
        case VisitProposed():
            visit = Visit(
                visit_id=event.visit_id,
                technician_id=event.technician_id,
                window=_utc_window(event.window),
            )
            status = "scheduled" if state.status == "scheduled" else "scheduling"
            return structs.replace(state, visits=(*state.visits, visit), status=status)
        case VisitConfirmed():
            visits = tuple(
                structs.replace(v, status="confirmed")
                if v.visit_id == event.visit_id
                else structs.replace(v, status="superseded")
                if v.status == "confirmed"
                else v
                for v in state.visits
            )
            return structs.replace(state, visits=visits, status="scheduled")
        case NteChanged():
            return structs.replace(state, nte=event.nte)
        case EvidenceAttached():
            record = structs.replace(event.evidence, captured_at=_utc(event.evidence.captured_at))
            return structs.replace(state, evidence=(*state.evidence, record))
        case ApprovalRequested():
            held = Approval(
                approval_id=event.approval_id,
                command=event.command,
                intent=name_of(type(event.command)),
                requested_by=event.requested_by,
                request_id=event.request_id,
                correlation_id=event.correlation_id,
                decision_id=event.decision_id,
                requested_at=_utc(event.at),
                expires_at=_utc(event.expires_at),
            )
            return structs.replace(state, approvals=(*state.approvals, held))
        case ApprovalResolved():
            approvals = tuple(
                structs.replace(
                    a,
                    status=event.outcome,
                    resolved_by=event.resolved_by,
                    resolved_at=_utc(event.at),
                )
                if a.approval_id == event.approval_id
                else a
                for a in state.approvals
            )
            return structs.replace(state, approvals=approvals)
        case TicketClosed():
            return structs.replace(
                state, status="closed", resolution=event.resolution, closed_at=_utc(event.at)
            )
        case _:
            return state


def _utc(instant: datetime) -> datetime:
    """State keeps instants in UTC, so a stored row reads back exactly as the fold built it."""
    return instant.astimezone(UTC)


def _utc_window(window: TimeWindow) -> TimeWindow:
    return TimeWindow(start=_utc(window.start), end=_utc(window.end))
