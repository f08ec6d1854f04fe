"""Events and state of the ``workflow`` actor (key: the ticket id): observations, proposals."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from schemas.base import Event, Key, Name, Text
from schemas.dispatch.common import AwareDatetime, Contact, Priority, Scope, Token
from schemas.dispatch.tickets import (
    ChangeNte,
    CloseOut,
    ConfirmVisit,
    ExpireApproval,
    ProposeVisit,
    SendComms,
)

ProposalKind = Literal[
    "find_technician",
    "confirm_visit",
    "notify_customer",
    "retry_after_quiet_hours",
    "expire_approval",
    "close_out",
]
SuggestedCommand = ProposeVisit | ConfirmVisit | SendComms | ChangeNte | CloseOut | ExpireApproval
"""What a proposal would send, never sent by the workflow itself."""


class WorkflowEvent(Event, frozen=True):
    """Fields every workflow event carries: the ticket event it reacted to."""

    trigger_id: str
    """The message id of the ticket event that caused this one."""
    trigger_type: str
    correlation_id: str
    at: AwareDatetime


class WorkflowStarted(WorkflowEvent, frozen=True, tag="workflow.workflow_started.v1"):
    """The workflow saw its ticket created and noted what later proposals need."""

    tenant: Key
    region: Key
    incident_template: Token
    priority: Priority = "normal"
    contact: Contact | None = None


class EvidenceNoted(WorkflowEvent, frozen=True, tag="workflow.evidence_noted.v1"):
    """The workflow saw evidence attached."""

    evidence_id: Key
    kind: Token


class ProposalMade(WorkflowEvent, frozen=True, tag="workflow.proposal_made.v1"):
    """A would-do: what the workflow suggests, for a person or a later autonomy tier to act on."""

    proposal_id: str
    kind: ProposalKind
    summary: Text
    suggested: SuggestedCommand | None = None
    not_before: AwareDatetime | None = None


class ProposalSuppressed(WorkflowEvent, frozen=True, tag="workflow.proposal_suppressed.v1"):
    """A proposal the kill switch stopped before it was made."""

    proposal_id: str
    kind: ProposalKind
    reason_code: str
    scope: Scope


class WorkflowCompleted(WorkflowEvent, frozen=True, tag="workflow.workflow_completed.v1"):
    """The ticket closed; the workflow proposes nothing more."""

    resolution: Name


WorkflowEventType = (
    WorkflowStarted | EvidenceNoted | ProposalMade | ProposalSuppressed | WorkflowCompleted
)
WORKFLOW_EVENTS: tuple[type[Event], ...] = (
    WorkflowStarted,
    EvidenceNoted,
    ProposalMade,
    ProposalSuppressed,
    WorkflowCompleted,
)

WorkflowStage = Literal["idle", "active", "completed"]


class NotedEvidence(Struct, frozen=True, kw_only=True):
    """Evidence the workflow has seen."""

    evidence_id: str
    kind: str


class ProposalRecord(Struct, frozen=True, kw_only=True):
    """A proposal made or suppressed, as the workflow keeps it (the ``workflow_proposals`` row)."""

    proposal_id: str
    kind: ProposalKind
    suppressed: bool
    trigger_id: str
    trigger_type: str
    correlation_id: str
    at: AwareDatetime
    summary: Text = ""
    suggested: SuggestedCommand | None = None
    not_before: AwareDatetime | None = None
    reason_code: str = ""
    scope: Scope | None = None


class WorkflowState(Struct, frozen=True, kw_only=True):
    """What the workflow knows about its ticket."""

    ticket_id: str
    stage: WorkflowStage = "idle"
    tenant: str = ""
    region: str = ""
    incident_template: str = ""
    priority: Priority = "normal"
    contact: Contact | None = None
    evidence: tuple[NotedEvidence, ...] = ()
    proposals: tuple[ProposalRecord, ...] = ()
    """Proposals made or suppressed, so a redelivered trigger proposes nothing twice."""
    made: int = 0
    suppressed: int = 0

    def has_proposal(self, proposal_id: str) -> bool:
        """True once a proposal with this id was made or suppressed."""
        return any(p.proposal_id == proposal_id for p in self.proposals)


__all__ = [
    "WORKFLOW_EVENTS",
    "EvidenceNoted",
    "NotedEvidence",
    "ProposalKind",
    "ProposalMade",
    "ProposalRecord",
    "ProposalSuppressed",
    "SuggestedCommand",
    "WorkflowCompleted",
    "WorkflowEvent",
    "WorkflowEventType",
    "WorkflowStage",
    "WorkflowStarted",
    "WorkflowState",
]
