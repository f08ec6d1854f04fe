"""The tickets actor's tables: tickets, timeline, decision records, visits, evidence, holds."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from actors.dispatch.sql import UtcTimestamp
from actors.kernel.db import metadata

tickets = Table(
    "dispatch_tickets",
    metadata,
    Column("ticket_id", String(128), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("region", String(128), nullable=False),
    Column("incident_template", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("site", Text, nullable=True),
    Column("contact", Text, nullable=True),
    Column("required_skills", Text, nullable=False),
    Column("nte_cents", BigInteger, nullable=True),
    Column("nte_currency", String(3), nullable=True),
    Column("resolution", String(200), nullable=False),
    Column("closed_at", UtcTimestamp, nullable=True),
    Column("updated_at", UtcTimestamp, nullable=False),
    CheckConstraint(
        "status IN ('absent', 'open', 'scheduling', 'scheduled', 'closed')", name="status"
    ),
    CheckConstraint("priority IN ('low', 'normal', 'high', 'emergency')", name="priority"),
    CheckConstraint("(nte_cents IS NULL) = (nte_currency IS NULL)", name="nte"),
    comment=(
        "One row per ticket (key = ticket id), written by the tickets actor; version is its "
        "optimistic-concurrency counter. site and contact are JSON. A ticket whose creation "
        "was refused has status 'absent' and keeps its decisions."
    ),
)
Index("ix_dispatch_tickets_tenant_status", tickets.c.tenant, tickets.c.status)

timeline = Table(
    "ticket_timeline",
    metadata,
    Column("ticket_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("request_id", String(300), nullable=False),
    Column("correlation_id", String(300), nullable=False),
    Column("decision_id", String(64), nullable=False),
    PrimaryKeyConstraint("ticket_id", "seq"),
    comment=(
        "One line per ticket event, in order: every line links to the request, the correlation "
        "and the decision (dispatch_decisions.decision_id) behind it."
    ),
)
Index("ix_ticket_timeline_tenant_at", timeline.c.tenant, timeline.c.at)
Index("ix_ticket_timeline_decision_id", timeline.c.decision_id)

decisions = Table(
    "dispatch_decisions",
    metadata,
    Column("ticket_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("decision_id", String(64), nullable=False),
    Column("request_id", String(300), nullable=False),
    Column("correlation_id", String(300), nullable=False),
    Column("intent", String(64), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("decision", String(20), nullable=False),
    Column("reason_code", String(100), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("explanation", Text, nullable=False),
    Column("bundle_version", String(64), nullable=False),
    Column("bundle_sha256", String(64), nullable=False),
    Column("control_revision", BigInteger, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("decided_at", UtcTimestamp, nullable=False),
    Column("timeline_seq", Integer, nullable=False),
    PrimaryKeyConstraint("ticket_id", "seq"),
    UniqueConstraint("tenant", "decision_id"),
    UniqueConstraint("tenant", "request_id"),
    CheckConstraint("decision IN ('ALLOW', 'DENY', 'REQUIRE_APPROVAL')", name="decision"),
    comment=(
        "The decision record: one row per attempted ticket command, denied ones included, with "
        "the bundle hash it was made under (empty when no bundle was active). inputs and "
        "parameters are JSON; timeline_seq is the ticket_timeline line that links to it."
    ),
)
Index("ix_dispatch_decisions_tenant_decided_at", decisions.c.tenant, decisions.c.decided_at)
Index("ix_dispatch_decisions_bundle_sha256", decisions.c.bundle_sha256)

visits = Table(
    "ticket_visits",
    metadata,
    Column("ticket_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("visit_id", String(128), nullable=False),
    Column("technician_id", String(128), nullable=False),
    Column("window_start", UtcTimestamp, nullable=False),
    Column("window_end", UtcTimestamp, nullable=False),
    Column("status", String(16), nullable=False),
    PrimaryKeyConstraint("ticket_id", "seq"),
    UniqueConstraint("ticket_id", "visit_id"),
    CheckConstraint("status IN ('proposed', 'confirmed', 'superseded')", name="status"),
    CheckConstraint("window_end > window_start", name="window"),
    comment="Visits proposed for a ticket, in order, with their current status.",
)
Index("ix_ticket_visits_tenant_technician", visits.c.tenant, visits.c.technician_id)

evidence = Table(
    "ticket_evidence",
    metadata,
    Column("ticket_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("evidence_id", String(128), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("object_name", String(1024), nullable=False),
    Column("captured_at", UtcTimestamp, nullable=False),
    Column("captured_by", String(200), nullable=False),
    Column("retention_class", String(16), nullable=False),
    Column("redaction_state", String(16), nullable=False),
    PrimaryKeyConstraint("ticket_id", "seq"),
    UniqueConstraint("ticket_id", "evidence_id"),
    CheckConstraint(
        "retention_class IN ('standard', 'legal_hold', 'short')", name="retention_class"
    ),
    CheckConstraint("redaction_state IN ('none', 'pending', 'redacted')", name="redaction_state"),
    comment="Immutable evidence records linked to a ticket, in the order they were attached.",
)
Index("ix_ticket_evidence_tenant_kind", evidence.c.tenant, evidence.c.kind)

approvals = Table(
    "ticket_approvals",
    metadata,
    Column("ticket_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("approval_id", String(64), nullable=False),
    Column("intent", String(64), nullable=False),
    Column("command", Text, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("request_id", String(300), nullable=False),
    Column("correlation_id", String(300), nullable=False),
    Column("decision_id", String(64), nullable=False),
    Column("requested_at", UtcTimestamp, nullable=False),
    Column("expires_at", UtcTimestamp, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolved_by", String(200), nullable=True),
    Column("resolved_at", UtcTimestamp, nullable=True),
    PrimaryKeyConstraint("ticket_id", "seq"),
    UniqueConstraint("tenant", "approval_id"),
    CheckConstraint("status IN ('pending', 'approved', 'rejected', 'expired')", name="status"),
    comment=(
        "Commands held for approval (command is the held command as JSON) and what became of "
        "them; decision_id links the hold to its REQUIRE_APPROVAL decision."
    ),
)
# The expiry scheduler and the stuck-approvals runbook: pending holds by deadline.
Index("ix_ticket_approvals_status_expires_at", approvals.c.status, approvals.c.expires_at)

__all__ = ["approvals", "decisions", "evidence", "tickets", "timeline", "visits"]
