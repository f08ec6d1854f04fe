"""The policy actor's tables: tenant controls, bundles, activation attempts, paused scopes."""

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
)

from actors.dispatch.sql import UtcTimestamp
from actors.kernel.db import metadata

controls = Table(
    "policy_controls",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("refusals", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("active_version", String(64), nullable=True),
    Column("active_sha256", String(64), nullable=True),
    Column("activated_at", UtcTimestamp, nullable=True),
    Column("activated_by", String(200), nullable=True),
    Column("updated_at", UtcTimestamp, nullable=False),
    CheckConstraint(
        "(active_sha256 IS NULL) = (active_version IS NULL) "
        "AND (active_sha256 IS NULL) = (activated_at IS NULL)",
        name="active",
    ),
    comment=(
        "One row per tenant (key = tenant), written by the policy actor: the one active bundle "
        "and the control revision every ticket decision records. version is the "
        "optimistic-concurrency counter."
    ),
)

bundles = Table(
    "policy_bundles",
    metadata,
    Column("tenant", String(128), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("files", Text, nullable=False),
    Column("kept_rank", Integer, nullable=True),
    PrimaryKeyConstraint("tenant", "sha256"),
    comment=(
        "Every bundle a tenant activated (files as JSON, path -> base64), so each decision's "
        "bundle_sha256 can be reproduced; kept_rank orders the ones kept for rollback "
        "(0 = most recent), NULL once dropped from that list."
    ),
)
Index("ix_policy_bundles_tenant_version", bundles.c.tenant, bundles.c.version)

activations = Table(
    "policy_activations",
    metadata,
    Column("tenant", String(128), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("expected_sha256", String(64), nullable=False),
    Column("version", String(64), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("previous_version", String(64), nullable=True),
    Column("previous_sha256", String(64), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("tenant", "seq"),
    CheckConstraint("outcome IN ('activated', 'refused')", name="outcome"),
    CheckConstraint(
        "(outcome = 'activated' AND sha256 IS NOT NULL AND error_code IS NULL) "
        "OR (outcome = 'refused' AND error_code IS NOT NULL)",
        name="outcome_fields",
    ),
    comment=(
        "Every bundle activation attempt of a tenant, refused ones included: the audit of "
        "which bundle was made active, when, by whom and why."
    ),
)
Index("ix_policy_activations_at", activations.c.at)

pauses = Table(
    "autonomy_pauses",
    metadata,
    Column("tenant", String(128), nullable=False),
    Column("scope_kind", String(16), nullable=False),
    Column("scope_id", String(128), nullable=False),
    Column("paused_by", String(200), nullable=False),
    Column("paused_at", UtcTimestamp, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("revision", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant", "scope_kind", "scope_id"),
    CheckConstraint("scope_kind IN ('tenant', 'region', 'ticket')", name="scope_kind"),
    CheckConstraint("(scope_kind = 'tenant') = (scope_id = '')", name="scope_id"),
    comment=(
        "Paused scopes in force (the kill switch); scope_id is '' for the whole tenant. A "
        "resume deletes the row; both are events on evt.policy.<tenant>.>."
    ),
)

__all__ = ["activations", "bundles", "controls", "pauses"]
