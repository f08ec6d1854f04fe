"""The workflow state store: ``WorkflowState`` as a run row, noted evidence and proposals.

Like the tickets store, ``load`` refreshes the tenants' policy environments in the same
transaction: the workflow checks the kill switch before every proposal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.dispatch import metrics
from actors.dispatch.control import Controls, scope_of
from actors.dispatch.sql import Row, appended, from_json, to_json
from actors.dispatch.storebase import RowStore, read_rows
from actors.kernel.actor import Change, Versioned
from actors.workflow.tables import noted, proposals, runs
from schemas.dispatch.common import Contact
from schemas.dispatch.workflow import (
    NotedEvidence,
    ProposalRecord,
    SuggestedCommand,
    WorkflowState,
)


def _root(state: WorkflowState, version: int, now: datetime) -> Row:
    return {
        "ticket_id": state.ticket_id,
        "tenant": state.tenant,
        "version": version,
        "stage": state.stage,
        "region": state.region,
        "incident_template": state.incident_template,
        "priority": state.priority,
        "contact": None if state.contact is None else to_json(state.contact),
        "made": state.made,
        "suppressed": state.suppressed,
        "updated_at": now,
    }


def _proposal_row(state: WorkflowState, seq: int, p: ProposalRecord) -> Row:
    return {
        "ticket_id": state.ticket_id,
        "seq": seq,
        "tenant": state.tenant,
        "proposal_id": p.proposal_id,
        "kind": p.kind,
        "suppressed": p.suppressed,
        "trigger_id": p.trigger_id,
        "trigger_type": p.trigger_type,
        "correlation_id": p.correlation_id,
        "at": p.at,
        "summary": p.summary,
        "suggested": None if p.suggested is None else to_json(p.suggested),
        "not_before": p.not_before,
        "reason_code": p.reason_code,
        "scope_kind": None if p.scope is None else p.scope.kind,
        "scope_id": None if p.scope is None else (p.scope.id or ""),
    }


class WorkflowStore(RowStore[WorkflowState]):
    """Loads and saves workflow runs as rows; owns the ``Controls`` its decisions read."""

    def __init__(self, controls: Controls | None = None, memory: int = 4096) -> None:
        super().__init__(runs.c.ticket_id, memory)
        self.controls = controls if controls is not None else Controls()

    async def refresh(self, conn: AsyncConnection) -> None:
        await self.controls.refresh(conn)

    def blank(self, key: str) -> WorkflowState:
        return WorkflowState(ticket_id=key)

    def root(self, state: WorkflowState, version: int, now: datetime) -> Row:
        return _root(state, version, now)

    async def assemble(
        self, conn: AsyncConnection, heads: Mapping[str, Any]
    ) -> dict[str, Versioned[WorkflowState]]:
        return await _assemble(conn, heads)

    async def write_children(
        self,
        conn: AsyncConnection,
        changes: Sequence[Change[WorkflowState]],
        befores: Mapping[str, WorkflowState],
    ) -> None:
        evidence_rows: list[Row] = []
        proposal_rows: list[Row] = []
        for c in changes:
            before = befores[c.key]
            start = len(before.evidence)
            evidence_rows += [
                {
                    "ticket_id": c.key,
                    "seq": start + i + 1,
                    "tenant": c.state.tenant,
                    "evidence_id": e.evidence_id,
                    "kind": e.kind,
                }
                for i, e in enumerate(appended(before.evidence, c.state.evidence))
            ]
            start = len(before.proposals)
            proposal_rows += [
                _proposal_row(c.state, start + i + 1, p)
                for i, p in enumerate(appended(before.proposals, c.state.proposals))
            ]
        if evidence_rows:
            await conn.execute(noted.insert(), evidence_rows)
        if proposal_rows:
            await conn.execute(proposals.insert(), proposal_rows)
            counter = metrics.get()
            for row in proposal_rows:
                counter.proposal(row["kind"], bool(row["suppressed"]))


async def read(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Versioned[WorkflowState]]:
    """Workflow runs as stored, by ticket id (absent ids are left out)."""
    return await read_rows(conn, runs.c.ticket_id, keys, _assemble)


async def _assemble(
    conn: AsyncConnection, heads: Mapping[str, Any]
) -> dict[str, Versioned[WorkflowState]]:
    ids = list(heads)
    seen: dict[str, list[NotedEvidence]] = {k: [] for k in ids}
    for r in await conn.execute(
        select(noted).where(noted.c.ticket_id.in_(ids)).order_by(noted.c.ticket_id, noted.c.seq)
    ):
        seen[r.ticket_id].append(NotedEvidence(evidence_id=r.evidence_id, kind=r.kind))
    made: dict[str, list[ProposalRecord]] = {k: [] for k in ids}
    for r in await conn.execute(
        select(proposals)
        .where(proposals.c.ticket_id.in_(ids))
        .order_by(proposals.c.ticket_id, proposals.c.seq)
    ):
        made[r.ticket_id].append(_proposal(r))
    out: dict[str, Versioned[WorkflowState]] = {}
    for key, h in heads.items():
        state = WorkflowState(
            ticket_id=key,
            stage=h.stage,
            tenant=h.tenant,
            region=h.region,
            incident_template=h.incident_template,
            priority=h.priority,
            contact=None if h.contact is None else from_json(h.contact, Contact),
            evidence=tuple(seen[key]),
            proposals=tuple(made[key]),
            made=int(h.made),
            suppressed=int(h.suppressed),
        )
        out[key] = Versioned(state, int(h.version))
    return out


def _proposal(r: Any) -> ProposalRecord:
    suggested: Any = (
        None if r.suggested is None else from_json(r.suggested, SuggestedCommand)  # type: ignore[arg-type]
    )
    return ProposalRecord(
        proposal_id=r.proposal_id,
        kind=r.kind,
        suppressed=bool(r.suppressed),
        trigger_id=r.trigger_id,
        trigger_type=r.trigger_type,
        correlation_id=r.correlation_id,
        at=r.at,
        summary=r.summary,
        suggested=suggested,
        not_before=r.not_before,
        reason_code=r.reason_code,
        scope=None if r.scope_kind is None else scope_of(r.scope_kind, r.scope_id or ""),
    )


__all__ = ["WorkflowStore", "read"]
