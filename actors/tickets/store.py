"""The tickets state store: ``TicketState`` as relational rows, plus the tenant environment.

``load`` reads the tickets and, in the same transaction, refreshes the tenants' policy
environments (active bundle, paused scopes) that ``decide`` reads through ``Controls``.
``save`` fences on the ticket row's version, then writes only what the batch added or
changed: timeline lines, decision records, visits, evidence and holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.dispatch import metrics
from actors.dispatch.control import Controls
from actors.dispatch.sql import Row, appended, changed, from_json, to_json
from actors.dispatch.storebase import RowStore, read_rows
from actors.kernel.actor import Change, Versioned
from actors.tickets.tables import approvals, decisions, evidence, tickets, timeline, visits
from schemas.dispatch.common import Contact, EvidenceRecord, Money, Site, TimeWindow
from schemas.dispatch.records import InputValue, TimelineEntry
from schemas.dispatch.tickets import (
    Approval,
    DecisionRef,
    GatedCommand,
    TicketState,
    Visit,
)


def _root(state: TicketState, version: int, now: datetime) -> Row:
    return {
        "ticket_id": state.ticket_id,
        "tenant": state.tenant,
        "version": version,
        "status": state.status,
        "region": state.region,
        "incident_template": state.incident_template,
        "title": state.title,
        "priority": state.priority,
        "site": None if state.site is None else to_json(state.site),
        "contact": None if state.contact is None else to_json(state.contact),
        "required_skills": to_json(state.required_skills),
        "nte_cents": None if state.nte is None else state.nte.cents,
        "nte_currency": None if state.nte is None else state.nte.currency,
        "resolution": state.resolution,
        "closed_at": state.closed_at,
        "updated_at": now,
    }


def _timeline_row(state: TicketState, entry: TimelineEntry) -> Row:
    return {
        "ticket_id": state.ticket_id,
        "seq": entry.seq,
        "tenant": state.tenant,
        "at": entry.at,
        "kind": entry.kind,
        "request_id": entry.request_id,
        "correlation_id": entry.correlation_id,
        "decision_id": entry.decision_id,
    }


def _decision_row(state: TicketState, seq: int, ref: DecisionRef) -> Row:
    if ref.at is None:
        raise ValueError(f"decision {ref.decision_id} of {state.ticket_id} has no time")
    return {
        "ticket_id": state.ticket_id,
        "seq": seq,
        "tenant": state.tenant,
        "decision_id": ref.decision_id,
        "request_id": ref.request_id,
        "correlation_id": ref.correlation_id,
        "intent": ref.intent,
        "actor": ref.actor,
        "fingerprint": ref.fingerprint,
        "decision": ref.decision,
        "reason_code": ref.reason_code,
        "rule": ref.rule,
        "explanation": ref.explanation,
        "bundle_version": ref.bundle_version,
        "bundle_sha256": ref.bundle_sha256,
        "control_revision": ref.control_revision,
        "inputs": to_json(ref.inputs),
        "parameters": to_json(ref.parameters),
        "decided_at": ref.at,
        "timeline_seq": ref.timeline_seq,
    }


def _visit_row(state: TicketState, seq: int, visit: Visit) -> Row:
    return {
        "ticket_id": state.ticket_id,
        "seq": seq,
        "tenant": state.tenant,
        "visit_id": visit.visit_id,
        "technician_id": visit.technician_id,
        "window_start": visit.window.start,
        "window_end": visit.window.end,
        "status": visit.status,
    }


def _evidence_row(state: TicketState, seq: int, record: EvidenceRecord) -> Row:
    return {
        "ticket_id": state.ticket_id,
        "seq": seq,
        "tenant": state.tenant,
        "evidence_id": record.evidence_id,
        "kind": record.kind,
        "sha256": record.sha256,
        "size_bytes": record.size_bytes,
        "content_type": record.content_type,
        "object_name": record.object_name,
        "captured_at": record.captured_at,
        "captured_by": record.captured_by,
        "retention_class": record.retention_class,
        "redaction_state": record.redaction_state,
    }


def _approval_row(state: TicketState, seq: int, held: Approval) -> Row:
    return {
        "ticket_id": state.ticket_id,
        "seq": seq,
        "tenant": state.tenant,
        "approval_id": held.approval_id,
        "intent": held.intent,
        "command": to_json(held.command),
        "requested_by": held.requested_by,
        "request_id": held.request_id,
        "correlation_id": held.correlation_id,
        "decision_id": held.decision_id,
        "requested_at": held.requested_at,
        "expires_at": held.expires_at,
        "status": held.status,
        "resolved_by": held.resolved_by,
        "resolved_at": held.resolved_at,
    }


class _Writes:
    """Rows one save inserts or updates, gathered per table so each is one executemany."""

    def __init__(self) -> None:
        self.timeline: list[Row] = []
        self.decisions: list[Row] = []
        self.visits: list[Row] = []
        self.visit_updates: list[Row] = []
        self.evidence: list[Row] = []
        self.approvals: list[Row] = []
        self.approval_updates: list[Row] = []

    def add(self, before: TicketState, after: TicketState) -> None:
        self.timeline += [
            _timeline_row(after, e) for e in appended(before.timeline, after.timeline)
        ]
        start = len(before.decisions)
        self.decisions += [
            _decision_row(after, start + i + 1, d)
            for i, d in enumerate(appended(before.decisions, after.decisions))
        ]
        start = len(before.evidence)
        self.evidence += [
            _evidence_row(after, start + i + 1, e)
            for i, e in enumerate(appended(before.evidence, after.evidence))
        ]
        new, moved = changed(before.visits, after.visits, lambda v: v.visit_id)
        self.visits += [_visit_row(after, i + 1, v) for i, v in new]
        self.visit_updates += [
            {"b_ticket": after.ticket_id, "b_seq": i + 1, "b_status": v.status} for i, v in moved
        ]
        new_holds, moved_holds = changed(before.approvals, after.approvals, lambda a: a.approval_id)
        self.approvals += [_approval_row(after, i + 1, a) for i, a in new_holds]
        self.approval_updates += [
            {
                "b_ticket": after.ticket_id,
                "b_seq": i + 1,
                "b_status": a.status,
                "b_resolved_by": a.resolved_by,
                "b_resolved_at": a.resolved_at,
            }
            for i, a in moved_holds
        ]

    async def write(self, conn: AsyncConnection) -> None:
        for table, rows in (
            (timeline, self.timeline),
            (decisions, self.decisions),
            (visits, self.visits),
            (evidence, self.evidence),
            (approvals, self.approvals),
        ):
            if rows:
                await conn.execute(table.insert(), rows)
        if self.visit_updates:
            await conn.execute(
                update(visits)
                .where(visits.c.ticket_id == bindparam("b_ticket"))
                .where(visits.c.seq == bindparam("b_seq"))
                .values(status=bindparam("b_status")),
                self.visit_updates,
            )
        if self.approval_updates:
            await conn.execute(
                update(approvals)
                .where(approvals.c.ticket_id == bindparam("b_ticket"))
                .where(approvals.c.seq == bindparam("b_seq"))
                .values(
                    status=bindparam("b_status"),
                    resolved_by=bindparam("b_resolved_by"),
                    resolved_at=bindparam("b_resolved_at"),
                ),
                self.approval_updates,
            )

    def report(self) -> None:
        counter = metrics.get()
        for row in self.decisions:
            counter.decision(row["decision"], row["rule"])
        resolved: dict[str, int] = defaultdict(int)
        for row in self.approval_updates:
            resolved[row["b_status"]] += 1
        for outcome, n in resolved.items():
            counter.approval_resolved(outcome, n)


class TicketStore(RowStore[TicketState]):
    """Loads and saves tickets as rows; owns the ``Controls`` snapshot its decisions read."""

    def __init__(self, controls: Controls | None = None, memory: int = 4096) -> None:
        super().__init__(tickets.c.ticket_id, memory)
        self.controls = controls if controls is not None else Controls()

    async def refresh(self, conn: AsyncConnection) -> None:
        await self.controls.refresh(conn)

    def blank(self, key: str) -> TicketState:
        return TicketState(ticket_id=key)

    def root(self, state: TicketState, version: int, now: datetime) -> Row:
        return _root(state, version, now)

    async def assemble(
        self, conn: AsyncConnection, heads: Mapping[str, Any]
    ) -> dict[str, Versioned[TicketState]]:
        return await _assemble(conn, heads)

    async def write_children(
        self,
        conn: AsyncConnection,
        changes: Sequence[Change[TicketState]],
        befores: Mapping[str, TicketState],
    ) -> None:
        writes = _Writes()
        for c in changes:
            writes.add(befores[c.key], c.state)
        await writes.write(conn)
        writes.report()


async def read(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Versioned[TicketState]]:
    """Tickets as stored, by id (absent ids are left out)."""
    return await read_rows(conn, tickets.c.ticket_id, keys, _assemble)


async def _assemble(
    conn: AsyncConnection, heads: Mapping[str, Any]
) -> dict[str, Versioned[TicketState]]:
    ids = list(heads)
    children: dict[str, dict[str, list[Any]]] = {
        k: {"timeline": [], "decisions": [], "visits": [], "evidence": [], "approvals": []}
        for k in ids
    }
    for name, table in (
        ("timeline", timeline),
        ("decisions", decisions),
        ("visits", visits),
        ("evidence", evidence),
        ("approvals", approvals),
    ):
        rows = await conn.execute(
            select(table).where(table.c.ticket_id.in_(ids)).order_by(table.c.ticket_id, table.c.seq)
        )
        for r in rows:
            children[r.ticket_id][name].append(r)
    out: dict[str, Versioned[TicketState]] = {}
    for key, h in heads.items():
        kids = children[key]
        state = TicketState(
            ticket_id=key,
            status=h.status,
            tenant=h.tenant,
            region=h.region,
            incident_template=h.incident_template,
            title=h.title,
            priority=h.priority,
            site=None if h.site is None else from_json(h.site, Site),
            contact=None if h.contact is None else from_json(h.contact, Contact),
            required_skills=from_json(h.required_skills, tuple[str, ...]),
            nte=None
            if h.nte_cents is None
            else Money(cents=int(h.nte_cents), currency=h.nte_currency),
            visits=tuple(_visit(r) for r in kids["visits"]),
            evidence=tuple(_evidence(r) for r in kids["evidence"]),
            approvals=tuple(_approval(r) for r in kids["approvals"]),
            decisions=tuple(_decision(r) for r in kids["decisions"]),
            timeline=tuple(_entry(r) for r in kids["timeline"]),
            resolution=h.resolution,
            closed_at=h.closed_at,
        )
        out[key] = Versioned(state, int(h.version))
    return out


def _visit(r: Any) -> Visit:
    return Visit(
        visit_id=r.visit_id,
        technician_id=r.technician_id,
        window=TimeWindow(start=r.window_start, end=r.window_end),
        status=r.status,
    )


def _evidence(r: Any) -> EvidenceRecord:
    return EvidenceRecord(
        evidence_id=r.evidence_id,
        ticket_id=r.ticket_id,
        kind=r.kind,
        sha256=r.sha256,
        size_bytes=int(r.size_bytes),
        content_type=r.content_type,
        object_name=r.object_name,
        captured_at=r.captured_at,
        captured_by=r.captured_by,
        retention_class=r.retention_class,
        redaction_state=r.redaction_state,
    )


def _approval(r: Any) -> Approval:
    command: Any = from_json(r.command, GatedCommand)  # type: ignore[arg-type]
    return Approval(
        approval_id=r.approval_id,
        command=command,
        intent=r.intent,
        requested_by=r.requested_by,
        request_id=r.request_id,
        correlation_id=r.correlation_id,
        decision_id=r.decision_id,
        requested_at=r.requested_at,
        expires_at=r.expires_at,
        status=r.status,
        resolved_by=r.resolved_by,
        resolved_at=r.resolved_at,
    )


def _decision(r: Any) -> DecisionRef:
    return DecisionRef(
        request_id=r.request_id,
        decision_id=r.decision_id,
        intent=r.intent,
        fingerprint=r.fingerprint,
        decision=r.decision,
        reason_code=r.reason_code,
        correlation_id=r.correlation_id,
        actor=r.actor,
        rule=r.rule,
        explanation=r.explanation,
        bundle_version=r.bundle_version,
        bundle_sha256=r.bundle_sha256,
        control_revision=int(r.control_revision),
        inputs=from_json(r.inputs, dict[str, InputValue]),
        parameters=from_json(r.parameters, dict[str, Any]),
        at=r.decided_at,
        timeline_seq=int(r.timeline_seq),
    )


def _entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        seq=int(r.seq),
        at=r.at,
        kind=r.kind,
        request_id=r.request_id,
        correlation_id=r.correlation_id,
        decision_id=r.decision_id,
    )


__all__ = ["TicketStore", "read"]
