"""The workflow actor's tables: one run per ticket, the evidence it noted, its proposals."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

runs = Table(
    "workflow_runs",
    metadata,
    Column("ticket_id", String(128), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("region", String(128), nullable=False),
    Column("incident_template", String(64), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("contact", Text, nullable=True),
    Column("made", Integer, nullable=False),
    Column("suppressed", Integer, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    CheckConstraint("stage IN ('idle', 'active', 'completed')", name="stage"),
    comment=(
        "One row per ticket the workflow follows (key = ticket id), written by the workflow "
        "actor; version is its optimistic-concurrency counter. contact is JSON."
    ),
)
Index("ix_workflow_runs_tenant_stage", runs.c.tenant, runs.c.stage)

noted = Table(
    "workflow_evidence",
    metadata,
    Column("ticket_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("evidence_id", String(128), nullable=False),
    Column("kind", String(64), nullable=False),
    PrimaryKeyConstraint("ticket_id", "seq"),
    comment="Evidence the workflow saw attached, in order (it proposes a closeout from these).",
)

proposals = Table(
    "workflow_proposals",
    metadata,
    Column("ticket_id", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("proposal_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("suppressed", Boolean, nullable=False),
    Column("trigger_id", String(300), nullable=False),
    Column("trigger_type", String(100), nullable=False),
    Column("correlation_id", String(300), nullable=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("summary", Text, nullable=False),
    Column("suggested", Text, nullable=True),
    Column("not_before", UtcTimestamp, nullable=True),
    Column("reason_code", String(100), nullable=False),
    Column("scope_kind", String(16), nullable=True),
    Column("scope_id", String(128), nullable=True),
    PrimaryKeyConstraint("ticket_id", "seq"),
    UniqueConstraint("ticket_id", "proposal_id"),
    CheckConstraint(
        "kind IN ('find_technician', 'confirm_visit', 'notify_customer', "
        "'retry_after_quiet_hours', 'expire_approval', 'close_out')",
        name="kind",
    ),
    comment=(
        "What the workflow proposed (shadow mode: never sent) or the kill switch suppressed; "
        "suggested is the command it would send, as JSON."
    ),
)
Index("ix_workflow_proposals_tenant_at", proposals.c.tenant, proposals.c.at)

__all__ = ["noted", "proposals", "runs"]
