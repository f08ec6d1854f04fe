"""Commands, events and state of the ``tickets`` actor (key: the ticket id)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from schemas.base import Command, Event, Key, Name, Text
from schemas.dispatch.common import (
    AwareDatetime,
    CommsEnvelope,
    Contact,
    EvidenceRecord,
    Money,
    Principal,
    Priority,
    Scope,
    Site,
    TimeWindow,
    Token,
)
from schemas.dispatch.optimizer import Recommendation
from schemas.dispatch.records import DispatchCommand, InputValue, PolicyDecision, TimelineEntry

Justification = Annotated[str, Meta(min_length=8, max_length=2000)]

# Commands ------------------------------------------------------------------


class CreateTicket(Command, frozen=True, tag="tickets.create_ticket.v1"):
    """Open a ticket for an incident at a site."""

    region: Key
    incident_template: Token
    title: Name
    site: Site
    nte: Money
    """The initial not-to-exceed amount."""
    priority: Priority = "normal"
    description: Text = ""
    contact: Contact | None = None
    required_skills: tuple[Token, ...] = ()


class ProposeVisit(Command, frozen=True, tag="tickets.propose_visit.v1"):
    """Offer a technician and a time window for a visit (nothing is sent to the customer)."""

    visit_id: Key
    technician_id: Key
    window: TimeWindow
    note: Text = ""
    recommendation: Recommendation | None = None
    """The optimizer ranking this proposal follows, if it follows one."""


class ConfirmVisit(Command, frozen=True, tag="tickets.confirm_visit.v1"):
    """Confirm a proposed visit; the customer is told, so quiet hours apply."""

    visit_id: Key


class SendComms(Command, frozen=True, tag="tickets.send_comms.v1"):
    """Queue one outbound message to the customer; quiet hours apply."""

    envelope: CommsEnvelope

    def __post_init__(self) -> None:
        if self.envelope.direction != "outbound":
            raise ValueError("send_comms takes an outbound envelope")


class ChangeNte(Command, frozen=True, tag="tickets.change_nte.v1"):
    """Set a new not-to-exceed amount; large increases need an approval."""

    nte: Money
    reason: Name


class AttachEvidence(Command, frozen=True, tag="tickets.attach_evidence.v1"):
    """Link one stored, immutable artefact to the ticket."""

    evidence: EvidenceRecord


class CloseOut(Command, frozen=True, tag="tickets.close_out.v1"):
    """Close the ticket, citing the evidence that proves the work."""

    evidence_ids: tuple[Key, ...]
    resolution: Name


class RecordApprovalDecision(Command, frozen=True, tag="tickets.record_approval_decision.v1"):
    """Approve or reject a command held for approval."""

    approval_id: Key
    outcome: Literal["approve", "reject"]
    note: Text = ""


class ExpireApproval(Command, frozen=True, tag="tickets.expire_approval.v1"):
    """Expire a held command whose approval deadline has passed (a scheduler or a person)."""

    approval_id: Key


GatedCommand = ProposeVisit | ConfirmVisit | SendComms | ChangeNte | CloseOut
"""The commands that act on the world: the kill switch stops them; approvals may hold them."""


class ManualOverride(Command, frozen=True, tag="tickets.manual_override.v1"):
    """Carry out one gated command despite the kill switch or a policy refusal, on the record."""

    command: GatedCommand
    justification: Justification


TicketCommand = (
    CreateTicket
    | ProposeVisit
    | ConfirmVisit
    | SendComms
    | ChangeNte
    | AttachEvidence
    | CloseOut
    | RecordApprovalDecision
    | ExpireApproval
    | ManualOverride
)

TICKET_COMMANDS: tuple[type[Command], ...] = (
    CreateTicket,
    ProposeVisit,
    ConfirmVisit,
    SendComms,
    ChangeNte,
    AttachEvidence,
    CloseOut,
    RecordApprovalDecision,
    ExpireApproval,
    ManualOverride,
)
GATED_COMMANDS: tuple[type[Command], ...] = (
    ProposeVisit,
    ConfirmVisit,
    SendComms,
    ChangeNte,
    CloseOut,
)

# Events --------------------------------------------------------------------


class TicketEvent(Event, frozen=True):
    """Fields every ticket event carries, so each timeline entry links to its request."""

    request_id: str
    correlation_id: str
    decision_id: str
    at: AwareDatetime


class DecisionRecorded(TicketEvent, frozen=True, tag="tickets.decision_recorded.v1"):
    """The decision record: one per attempted command, denied ones included."""

    command: DispatchCommand
    decision: PolicyDecision
    control_revision: int = 0
    """The tenant control revision (active bundle and pauses) the decision was made under."""


class TicketCreated(TicketEvent, frozen=True, tag="tickets.ticket_created.v1"):
    """A ticket was opened."""

    tenant: Key
    region: Key
    incident_template: Token
    title: Name
    site: Site
    nte: Money
    priority: Priority = "normal"
    description: Text = ""
    contact: Contact | None = None
    required_skills: tuple[Token, ...] = ()


class VisitProposed(TicketEvent, frozen=True, tag="tickets.visit_proposed.v1"):
    """A visit was proposed."""

    visit_id: Key
    technician_id: Key
    window: TimeWindow
    note: Text = ""
    recommendation: Recommendation | None = None
    """The optimizer ranking this proposal follows, if it follows one."""


class VisitConfirmed(TicketEvent, frozen=True, tag="tickets.visit_confirmed.v1"):
    """A proposed visit was confirmed; any earlier confirmed visit is superseded."""

    visit_id: Key
    technician_id: Key
    window: TimeWindow


class CommsQueued(TicketEvent, frozen=True, tag="tickets.comms_queued.v1"):
    """An outbound message was cleared for delivery; the comms edge sends it."""

    envelope: CommsEnvelope


class NteChanged(TicketEvent, frozen=True, tag="tickets.nte_changed.v1"):
    """The not-to-exceed amount changed."""

    previous: Money
    nte: Money
    reason: Name
    approval_id: str | None = None


class EvidenceAttached(TicketEvent, frozen=True, tag="tickets.evidence_attached.v1"):
    """An artefact was linked to the ticket."""

    evidence: EvidenceRecord


class ApprovalRequested(TicketEvent, frozen=True, tag="tickets.approval_requested.v1"):
    """A command is held until someone approves or rejects it, or it expires."""

    approval_id: Key
    command: GatedCommand
    requested_by: Principal
    reason_code: str
    explanation: Text
    expires_at: AwareDatetime


class ApprovalResolved(TicketEvent, frozen=True, tag="tickets.approval_resolved.v1"):
    """A held command's approval was decided or expired.

    ``request_id`` and ``correlation_id`` are those of the message that
    resolved it (the approval decision, the expire command, or the later
    message whose arrival showed the deadline had passed);
    ``decision_id`` is the held command's decision.
    """

    approval_id: Key
    outcome: Literal["approved", "rejected", "expired"]
    held_request_id: str
    held_intent: Token
    resolved_by: Principal | None = None
    note: Text = ""
    released: bool = False
    """True when the held command was carried out (approved and still allowed)."""
    refusal_code: str = ""
    """Why an approved command was not carried out (``autonomy.paused``, ``ticket.closed``)."""


class TicketClosed(TicketEvent, frozen=True, tag="tickets.ticket_closed.v1"):
    """The work is done and proven."""

    resolution: Name
    evidence_ids: tuple[Key, ...]


class OverrideApplied(TicketEvent, frozen=True, tag="tickets.override_applied.v1"):
    """A person carried out a gated command despite the kill switch or policy: the audit entry."""

    intent: Token
    overridden_by: Principal
    justification: Justification
    bypassed: PolicyDecision
    """What policy would have decided without the override."""
    paused_scope: Scope | None = None
    """The pause that was in force, if any."""


TicketEventType = (
    DecisionRecorded
    | TicketCreated
    | VisitProposed
    | VisitConfirmed
    | CommsQueued
    | NteChanged
    | EvidenceAttached
    | ApprovalRequested
    | ApprovalResolved
    | TicketClosed
    | OverrideApplied
)

TICKET_EVENTS: tuple[type[Event], ...] = (
    DecisionRecorded,
    TicketCreated,
    VisitProposed,
    VisitConfirmed,
    CommsQueued,
    NteChanged,
    EvidenceAttached,
    ApprovalRequested,
    ApprovalResolved,
    TicketClosed,
    OverrideApplied,
)

# State ---------------------------------------------------------------------

TicketStatus = Literal["absent", "open", "scheduling", "scheduled", "closed"]
VisitStatus = Literal["proposed", "confirmed", "superseded"]
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]


class Visit(Struct, frozen=True, kw_only=True):
    """A visit as the ticket knows it."""

    visit_id: str
    technician_id: str
    window: TimeWindow
    status: VisitStatus = "proposed"


class Approval(Struct, frozen=True, kw_only=True):
    """A held command and what became of it."""

    approval_id: str
    command: GatedCommand
    intent: str
    requested_by: str
    request_id: str
    correlation_id: str
    decision_id: str
    requested_at: AwareDatetime
    expires_at: AwareDatetime
    status: ApprovalStatus = "pending"
    resolved_by: str | None = None
    resolved_at: AwareDatetime | None = None


class DecisionRef(Struct, frozen=True, kw_only=True):
    """A recorded decision as the ticket keeps it: enough to answer retries of the same request
    and to rebuild the decision record row without reading the event again."""

    request_id: str
    decision_id: str
    intent: str
    fingerprint: str
    decision: str
    reason_code: str
    correlation_id: str = ""
    actor: str = ""
    rule: str = ""
    explanation: str = ""
    bundle_version: str = ""
    bundle_sha256: str = ""
    control_revision: int = 0
    inputs: dict[str, InputValue] = {}
    parameters: dict[str, Any] = {}
    at: AwareDatetime | None = None
    timeline_seq: int = 0
    """The timeline entry of the ``decision_recorded`` event: the link from the timeline."""


class TicketState(Struct, frozen=True, kw_only=True):
    """One ticket as folded from its events; also the answer on ``query.tickets.<id>``."""

    ticket_id: str
    status: TicketStatus = "absent"
    tenant: str = ""
    region: str = ""
    incident_template: str = ""
    title: str = ""
    priority: Priority = "normal"
    site: Site | None = None
    contact: Contact | None = None
    required_skills: tuple[str, ...] = ()
    nte: Money | None = None
    visits: tuple[Visit, ...] = ()
    evidence: tuple[EvidenceRecord, ...] = ()
    approvals: tuple[Approval, ...] = ()
    decisions: tuple[DecisionRef, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    resolution: str = ""
    closed_at: AwareDatetime | None = None

    def pending(self) -> tuple[Approval, ...]:
        """Approvals still waiting, oldest deadline first."""
        waiting = [a for a in self.approvals if a.status == "pending"]
        return tuple(sorted(waiting, key=lambda a: (a.expires_at, a.approval_id)))

    def approval(self, approval_id: str) -> Approval | None:
        """The approval with this id, if any."""
        return next((a for a in self.approvals if a.approval_id == approval_id), None)

    def visit(self, visit_id: str) -> Visit | None:
        """The visit with this id, if any."""
        return next((v for v in self.visits if v.visit_id == visit_id), None)

    def evidence_by_id(self, evidence_id: str) -> EvidenceRecord | None:
        """The attached evidence with this id, if any."""
        return next((e for e in self.evidence if e.evidence_id == evidence_id), None)

    def decision_for(self, request_id: str) -> DecisionRef | None:
        """The decision recorded for a request id, if any."""
        return next((d for d in self.decisions if d.request_id == request_id), None)


__all__ = [
    "GATED_COMMANDS",
    "TICKET_COMMANDS",
    "TICKET_EVENTS",
    "Approval",
    "ApprovalRequested",
    "ApprovalResolved",
    "ApprovalStatus",
    "AttachEvidence",
    "ChangeNte",
    "CloseOut",
    "CommsQueued",
    "ConfirmVisit",
    "CreateTicket",
    "DecisionRecorded",
    "DecisionRef",
    "EvidenceAttached",
    "ExpireApproval",
    "GatedCommand",
    "Justification",
    "ManualOverride",
    "NteChanged",
    "OverrideApplied",
    "ProposeVisit",
    "RecordApprovalDecision",
    "SendComms",
    "TicketClosed",
    "TicketCommand",
    "TicketCreated",
    "TicketEvent",
    "TicketEventType",
    "TicketState",
    "TicketStatus",
    "Visit",
    "VisitConfirmed",
    "VisitProposed",
    "VisitStatus",
]
