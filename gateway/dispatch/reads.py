"""Dispatch reads for one tenant: tickets, decisions, holds, the policy control and proposals."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.dispatch.bundles import load_bundle
from actors.dispatch.errors import BundleError
from actors.policy import store as policy_store
from actors.tickets import store as ticket_store
from actors.tickets.tables import approvals, decisions, tickets
from actors.workflow import store as workflow_store
from schemas.base import Name
from schemas.dispatch.bundle import BundleRules
from schemas.dispatch.common import Sha256Hex
from schemas.dispatch.policy import ActivationRecord, ActiveBundle, PausedScope, TenantControl
from schemas.dispatch.records import TimelineEntry
from schemas.dispatch.tickets import Approval, ApprovalStatus, DecisionRef, TicketState
from schemas.dispatch.workflow import ProposalRecord, WorkflowStage

__all__ = [
    "ACTIVATIONS_SHOWN",
    "ActivationRequest",
    "ApprovalList",
    "ApprovalView",
    "BundleView",
    "DecisionView",
    "KeptBundle",
    "PolicyView",
    "ProposalList",
    "TicketView",
    "approval",
    "approval_list",
    "bundle_view",
    "control",
    "decision",
    "policy_view",
    "proposals",
    "ticket",
    "ticket_tenant",
]

ACTIVATIONS_SHOWN = 10
"""How many of the most recent activation attempts the policy view lists."""


class ActivationRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Make the bundle stored under ``sha256`` the caller's tenant's active bundle."""

    sha256: Sha256Hex
    """The bundle hash: an object in the ``dispatch-bundles`` store, or a bundle the tenant
    keeps from an earlier activation (a rollback)."""
    reason: Name


class TicketView(msgspec.Struct, frozen=True, kw_only=True):
    """A ticket with its timeline, decisions and holds; ``version`` is its ETag."""

    version: int
    ticket: TicketState


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    """One decision record and the timeline lines that link to it."""

    ticket_id: str
    decision: DecisionRef
    timeline: tuple[TimelineEntry, ...]


class ApprovalView(msgspec.Struct, frozen=True, kw_only=True):
    """A hold and its ticket; ``overdue`` when it is still pending past its deadline."""

    ticket_id: str
    overdue: bool
    approval: Approval


class ApprovalList(msgspec.Struct, frozen=True, kw_only=True):
    """Holds by deadline, earliest first; ``more`` when the limit cut the list short."""

    items: tuple[ApprovalView, ...]
    more: bool


class KeptBundle(msgspec.Struct, frozen=True, kw_only=True):
    """A bundle the tenant keeps for rollbacks."""

    version: str
    sha256: str
    created_at: datetime


class PolicyView(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's control plane: the active bundle, pauses in force, kept bundles, attempts."""

    tenant: str
    revision: int
    active: ActiveBundle | None
    paused: tuple[PausedScope, ...]
    kept: tuple[KeptBundle, ...]
    attempts: int
    refusals: int
    activations: tuple[ActivationRecord, ...]
    """The most recent activation attempts, oldest first."""


class BundleView(msgspec.Struct, frozen=True, kw_only=True):
    """The active bundle: who activated it and when, its files and its parsed rules."""

    version: str
    sha256: str
    created_at: datetime
    activated_at: datetime
    activated_by: str
    files: tuple[str, ...]
    rules: BundleRules


class ProposalList(msgspec.Struct, frozen=True, kw_only=True):
    """What the shadow workflow proposed (or suppressed) for a ticket, oldest first."""

    ticket_id: str
    stage: WorkflowStage
    made: int
    suppressed: int
    items: tuple[ProposalRecord, ...]


async def ticket_tenant(conn: AsyncConnection, ticket_id: str) -> str | None:
    """The tenant holding a ticket id, if the id was ever used."""
    row = (
        await conn.execute(select(tickets.c.tenant).where(tickets.c.ticket_id == ticket_id))
    ).first()
    return None if row is None else str(row[0])


async def ticket(conn: AsyncConnection, tenant: str, ticket_id: str) -> TicketView | None:
    """The ticket as stored, if it is this tenant's."""
    found = (await ticket_store.read(conn, [ticket_id])).get(ticket_id)
    if found is None or found.state.tenant != tenant:
        return None
    return TicketView(version=found.version, ticket=found.state)


async def decision(conn: AsyncConnection, tenant: str, decision_id: str) -> DecisionView | None:
    """A decision record by id, with the timeline lines linked to it."""
    row = (
        await conn.execute(
            select(decisions.c.ticket_id).where(
                decisions.c.tenant == tenant, decisions.c.decision_id == decision_id
            )
        )
    ).first()
    if row is None:
        return None
    view = await ticket(conn, tenant, row.ticket_id)
    if view is None:
        return None
    found = next((d for d in view.ticket.decisions if d.decision_id == decision_id), None)
    if found is None:
        return None
    lines = tuple(e for e in view.ticket.timeline if e.decision_id == decision_id)
    return DecisionView(ticket_id=row.ticket_id, decision=found, timeline=lines)


def _view(ticket_id: str, held: Approval, now: datetime) -> ApprovalView:
    overdue = held.status == "pending" and held.expires_at <= now
    return ApprovalView(ticket_id=ticket_id, overdue=overdue, approval=held)


async def approval(
    conn: AsyncConnection, tenant: str, approval_id: str, now: datetime
) -> ApprovalView | None:
    """A hold by id, whatever became of it."""
    row = (
        await conn.execute(
            select(approvals.c.ticket_id).where(
                approvals.c.tenant == tenant, approvals.c.approval_id == approval_id
            )
        )
    ).first()
    if row is None:
        return None
    view = await ticket(conn, tenant, row.ticket_id)
    held = None if view is None else view.ticket.approval(approval_id)
    return None if held is None else _view(row.ticket_id, held, now)


async def approval_list(
    conn: AsyncConnection,
    tenant: str,
    now: datetime,
    *,
    status: ApprovalStatus = "pending",
    ticket_id: str | None = None,
    limit: int = 100,
) -> ApprovalList:
    """Holds in one status (pending by default), earliest deadline first."""
    query = select(approvals.c.ticket_id, approvals.c.approval_id).where(
        approvals.c.tenant == tenant, approvals.c.status == status
    )
    if ticket_id is not None:
        query = query.where(approvals.c.ticket_id == ticket_id)
    query = query.order_by(approvals.c.expires_at, approvals.c.approval_id).limit(limit + 1)
    rows = list(await conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    ids = list(dict.fromkeys(r.ticket_id for r in rows))
    states = await ticket_store.read(conn, ids) if ids else {}
    items: list[ApprovalView] = []
    for r in rows:
        stored = states.get(r.ticket_id)
        held = None if stored is None else stored.state.approval(r.approval_id)
        if held is not None and held.status == status:
            items.append(_view(r.ticket_id, held, now))
    return ApprovalList(items=tuple(items), more=more)


async def control(conn: AsyncConnection, tenant: str) -> TenantControl:
    """The tenant's control as stored (an empty one before its first policy command)."""
    found = (await policy_store.read(conn, [tenant])).get(tenant)
    return TenantControl(tenant=tenant) if found is None else found.state


def policy_view(control: TenantControl) -> PolicyView:
    """The control without the bundles' files."""
    return PolicyView(
        tenant=control.tenant,
        revision=control.revision,
        active=control.active,
        paused=control.paused,
        kept=tuple(
            KeptBundle(version=k.version, sha256=k.sha256, created_at=k.created_at)
            for k in control.known
        ),
        attempts=control.attempts,
        refusals=control.refusals,
        activations=control.activations[-ACTIVATIONS_SHOWN:],
    )


def bundle_view(control: TenantControl) -> BundleView | None:
    """The active bundle, verified again as it is read; None when there is none (or it no
    longer verifies, in which case the tickets actor denies everything too)."""
    active, files = control.active, control.active_files()
    if active is None or files is None:
        return None
    try:
        bundle = load_bundle(files, expected_sha256=active.sha256)
    except BundleError:
        return None
    return BundleView(
        version=bundle.version,
        sha256=bundle.sha256,
        created_at=bundle.created_at,
        activated_at=active.activated_at,
        activated_by=active.activated_by,
        files=tuple(sorted(bundle.files)),
        rules=bundle.rules,
    )


async def proposals(conn: AsyncConnection, tenant: str, ticket_id: str) -> ProposalList | None:
    """The workflow's proposals for a ticket of this tenant (none yet: an empty list)."""
    if await ticket_tenant(conn, ticket_id) != tenant:
        return None
    found = (await workflow_store.read(conn, [ticket_id])).get(ticket_id)
    if found is None:
        return ProposalList(ticket_id=ticket_id, stage="idle", made=0, suppressed=0, items=())
    state = found.state
    if state.tenant and state.tenant != tenant:
        return None
    return ProposalList(
        ticket_id=ticket_id,
        stage=state.stage,
        made=state.made,
        suppressed=state.suppressed,
        items=state.proposals,
    )
