"""Dispatch tables: tickets and their records, tenant policy controls, workflow proposals.

Revision ID: 0400_dispatch
Revises: 0001_kernel
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0400_dispatch"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("dispatch",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "autonomy_pauses",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=128), nullable=False),
        sa.Column("paused_by", sa.String(length=200), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(scope_kind = 'tenant') = (scope_id = '')", name=op.f("ck_autonomy_pauses_scope_id")
        ),
        sa.CheckConstraint(
            "scope_kind IN ('tenant', 'region', 'ticket')",
            name=op.f("ck_autonomy_pauses_scope_kind"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant", "scope_kind", "scope_id", name=op.f("pk_autonomy_pauses")
        ),
        comment=(
            "Paused scopes in force (the kill switch); scope_id is '' for the whole tenant. A "
            "resume deletes the row; both are events on evt.policy.<tenant>.>."
        ),
    )
    op.create_table(
        "dispatch_decisions",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=300), nullable=False),
        sa.Column("correlation_id", sa.String(length=300), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reason_code", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("bundle_version", sa.String(length=64), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("control_revision", sa.BigInteger(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timeline_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "decision IN ('ALLOW', 'DENY', 'REQUIRE_APPROVAL')",
            name=op.f("ck_dispatch_decisions_decision"),
        ),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name=op.f("pk_dispatch_decisions")),
        sa.UniqueConstraint(
            "tenant", "decision_id", name=op.f("uq_dispatch_decisions_tenant_decision_id")
        ),
        sa.UniqueConstraint(
            "tenant", "request_id", name=op.f("uq_dispatch_decisions_tenant_request_id")
        ),
        comment=(
            "The decision record: one row per attempted ticket command, denied ones included, "
            "with the bundle hash it was made under (empty when no bundle was active). inputs "
            "and parameters are JSON; timeline_seq is the ticket_timeline line that links to it."
        ),
    )
    op.create_index(
        "ix_dispatch_decisions_bundle_sha256", "dispatch_decisions", ["bundle_sha256"], unique=False
    )
    op.create_index(
        "ix_dispatch_decisions_tenant_decided_at",
        "dispatch_decisions",
        ["tenant", "decided_at"],
        unique=False,
    )
    op.create_table(
        "dispatch_tickets",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("incident_template", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("site", sa.Text(), nullable=True),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("required_skills", sa.Text(), nullable=False),
        sa.Column("nte_cents", sa.BigInteger(), nullable=True),
        sa.Column("nte_currency", sa.String(length=3), nullable=True),
        sa.Column("resolution", sa.String(length=200), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "priority IN ('low', 'normal', 'high', 'emergency')",
            name=op.f("ck_dispatch_tickets_priority"),
        ),
        sa.CheckConstraint(
            "status IN ('absent', 'open', 'scheduling', 'scheduled', 'closed')",
            name=op.f("ck_dispatch_tickets_status"),
        ),
        sa.CheckConstraint(
            "(nte_cents IS NULL) = (nte_currency IS NULL)", name=op.f("ck_dispatch_tickets_nte")
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_dispatch_tickets")),
        comment=(
            "One row per ticket (key = ticket id), written by the tickets actor; version is its "
            "optimistic-concurrency counter. site and contact are JSON. A ticket whose creation "
            "was refused has status 'absent' and keeps its decisions."
        ),
    )
    op.create_index(
        "ix_dispatch_tickets_tenant_status", "dispatch_tickets", ["tenant", "status"], unique=False
    )
    op.create_table(
        "policy_activations",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("previous_version", sa.String(length=64), nullable=True),
        sa.Column("previous_sha256", sa.String(length=64), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            (
                "(outcome = 'activated' AND sha256 IS NOT NULL AND error_code IS NULL) OR "
                "(outcome = 'refused' AND error_code IS NOT NULL)"
            ),
            name=op.f("ck_policy_activations_outcome_fields"),
        ),
        sa.CheckConstraint(
            "outcome IN ('activated', 'refused')", name=op.f("ck_policy_activations_outcome")
        ),
        sa.PrimaryKeyConstraint("tenant", "seq", name=op.f("pk_policy_activations")),
        comment=(
            "Every bundle activation attempt of a tenant, refused ones included: the audit of "
            "which bundle was made active, when, by whom and why."
        ),
    )
    op.create_index("ix_policy_activations_at", "policy_activations", ["at"], unique=False)
    op.create_table(
        "policy_bundles",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("kept_rank", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "sha256", name=op.f("pk_policy_bundles")),
        comment=(
            "Every bundle a tenant activated (files as JSON, path -> base64), so each decision's "
            "bundle_sha256 can be reproduced; kept_rank orders the ones kept for rollback (0 = "
            "most recent), NULL once dropped from that list."
        ),
    )
    op.create_index(
        "ix_policy_bundles_tenant_version", "policy_bundles", ["tenant", "version"], unique=False
    )
    op.create_table(
        "policy_controls",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("active_version", sa.String(length=64), nullable=True),
        sa.Column("active_sha256", sa.String(length=64), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            (
                "(active_sha256 IS NULL) = (active_version IS NULL) AND (active_sha256 IS NULL) "
                "= (activated_at IS NULL)"
            ),
            name=op.f("ck_policy_controls_active"),
        ),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_policy_controls")),
        comment=(
            "One row per tenant (key = tenant), written by the policy actor: the one active "
            "bundle and the control revision every ticket decision records. version is the "
            "optimistic-concurrency counter."
        ),
    )
    op.create_table(
        "ticket_approvals",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=300), nullable=False),
        sa.Column("correlation_id", sa.String(length=300), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'expired')",
            name=op.f("ck_ticket_approvals_status"),
        ),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name=op.f("pk_ticket_approvals")),
        sa.UniqueConstraint(
            "tenant", "approval_id", name=op.f("uq_ticket_approvals_tenant_approval_id")
        ),
        comment=(
            "Commands held for approval (command is the held command as JSON) and what became of "
            "them; decision_id links the hold to its REQUIRE_APPROVAL decision."
        ),
    )
    op.create_index(
        "ix_ticket_approvals_status_expires_at",
        "ticket_approvals",
        ["status", "expires_at"],
        unique=False,
    )
    op.create_table(
        "ticket_evidence",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("evidence_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("object_name", sa.String(length=1024), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("captured_by", sa.String(length=200), nullable=False),
        sa.Column("retention_class", sa.String(length=16), nullable=False),
        sa.Column("redaction_state", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "redaction_state IN ('none', 'pending', 'redacted')",
            name=op.f("ck_ticket_evidence_redaction_state"),
        ),
        sa.CheckConstraint(
            "retention_class IN ('standard', 'legal_hold', 'short')",
            name=op.f("ck_ticket_evidence_retention_class"),
        ),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name=op.f("pk_ticket_evidence")),
        sa.UniqueConstraint(
            "ticket_id", "evidence_id", name=op.f("uq_ticket_evidence_ticket_id_evidence_id")
        ),
        comment="Immutable evidence records linked to a ticket, in the order they were attached.",
    )
    op.create_index(
        "ix_ticket_evidence_tenant_kind", "ticket_evidence", ["tenant", "kind"], unique=False
    )
    op.create_table(
        "ticket_timeline",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=300), nullable=False),
        sa.Column("correlation_id", sa.String(length=300), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name=op.f("pk_ticket_timeline")),
        comment=(
            "One line per ticket event, in order: every line links to the request, the "
            "correlation and the decision (dispatch_decisions.decision_id) behind it."
        ),
    )
    op.create_index(
        "ix_ticket_timeline_decision_id", "ticket_timeline", ["decision_id"], unique=False
    )
    op.create_index(
        "ix_ticket_timeline_tenant_at", "ticket_timeline", ["tenant", "at"], unique=False
    )
    op.create_table(
        "ticket_visits",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("visit_id", sa.String(length=128), nullable=False),
        sa.Column("technician_id", sa.String(length=128), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "status IN ('proposed', 'confirmed', 'superseded')",
            name=op.f("ck_ticket_visits_status"),
        ),
        sa.CheckConstraint("window_end > window_start", name=op.f("ck_ticket_visits_window")),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name=op.f("pk_ticket_visits")),
        sa.UniqueConstraint(
            "ticket_id", "visit_id", name=op.f("uq_ticket_visits_ticket_id_visit_id")
        ),
        comment="Visits proposed for a ticket, in order, with their current status.",
    )
    op.create_index(
        "ix_ticket_visits_tenant_technician",
        "ticket_visits",
        ["tenant", "technician_id"],
        unique=False,
    )
    op.create_table(
        "workflow_evidence",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("evidence_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name=op.f("pk_workflow_evidence")),
        comment="Evidence the workflow saw attached, in order (it proposes a closeout from these).",
    )
    op.create_table(
        "workflow_proposals",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("proposal_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("trigger_id", sa.String(length=300), nullable=False),
        sa.Column("trigger_type", sa.String(length=100), nullable=False),
        sa.Column("correlation_id", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("suggested", sa.Text(), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason_code", sa.String(length=100), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=True),
        sa.Column("scope_id", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            (
                "kind IN ('find_technician', 'confirm_visit', 'notify_customer', "
                "'retry_after_quiet_hours', 'expire_approval', 'close_out')"
            ),
            name=op.f("ck_workflow_proposals_kind"),
        ),
        sa.PrimaryKeyConstraint("ticket_id", "seq", name=op.f("pk_workflow_proposals")),
        sa.UniqueConstraint(
            "ticket_id", "proposal_id", name=op.f("uq_workflow_proposals_ticket_id_proposal_id")
        ),
        comment=(
            "What the workflow proposed (shadow mode: never sent) or the kill switch suppressed; "
            "suggested is the command it would send, as JSON."
        ),
    )
    op.create_index(
        "ix_workflow_proposals_tenant_at", "workflow_proposals", ["tenant", "at"], unique=False
    )
    op.create_table(
        "workflow_runs",
        sa.Column("ticket_id", sa.String(length=128), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("incident_template", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("made", sa.Integer(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "stage IN ('idle', 'active', 'completed')", name=op.f("ck_workflow_runs_stage")
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_workflow_runs")),
        comment=(
            "One row per ticket the workflow follows (key = ticket id), written by the workflow "
            "actor; version is its optimistic-concurrency counter. contact is JSON."
        ),
    )
    op.create_index(
        "ix_workflow_runs_tenant_stage", "workflow_runs", ["tenant", "stage"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_runs_tenant_stage", table_name="workflow_runs")
    op.drop_table("workflow_runs")
    op.drop_index("ix_workflow_proposals_tenant_at", table_name="workflow_proposals")
    op.drop_table("workflow_proposals")
    op.drop_table("workflow_evidence")
    op.drop_index("ix_ticket_visits_tenant_technician", table_name="ticket_visits")
    op.drop_table("ticket_visits")
    op.drop_index("ix_ticket_timeline_decision_id", table_name="ticket_timeline")
    op.drop_index("ix_ticket_timeline_tenant_at", table_name="ticket_timeline")
    op.drop_table("ticket_timeline")
    op.drop_index("ix_ticket_evidence_tenant_kind", table_name="ticket_evidence")
    op.drop_table("ticket_evidence")
    op.drop_index("ix_ticket_approvals_status_expires_at", table_name="ticket_approvals")
    op.drop_table("ticket_approvals")
    op.drop_table("policy_controls")
    op.drop_index("ix_policy_bundles_tenant_version", table_name="policy_bundles")
    op.drop_table("policy_bundles")
    op.drop_index("ix_policy_activations_at", table_name="policy_activations")
    op.drop_table("policy_activations")
    op.drop_index("ix_dispatch_tickets_tenant_status", table_name="dispatch_tickets")
    op.drop_table("dispatch_tickets")
    op.drop_index("ix_dispatch_decisions_bundle_sha256", table_name="dispatch_decisions")
    op.drop_index("ix_dispatch_decisions_tenant_decided_at", table_name="dispatch_decisions")
    op.drop_table("dispatch_decisions")
    op.drop_table("autonomy_pauses")
