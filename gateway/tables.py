"""The gateway's tables: one row per authenticated caller, created the first time it is seen."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, PrimaryKeyConstraint, String, Table, UniqueConstraint

from actors.kernel.db import metadata

gateway_users = Table(
    "gateway_users",
    metadata,
    Column("id", String(36), nullable=False),
    Column("issuer", String(512), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("tenant", String(128), nullable=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("issuer", "subject"),
    comment=(
        "Callers the gateway has seen: a token's (issuer, subject) mapped to a stable internal id."
    ),
)
