"""Gateway tables: the users seen by the HTTP gateway.

Revision ID: 0500_gateway
Revises: 0001_kernel
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0500_gateway"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("gateway",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_users")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_gateway_users_issuer_subject")),
        comment=(
            "Callers the gateway has seen: a token's (issuer, subject) mapped to a stable "
            "internal id."
        ),
    )


def downgrade() -> None:
    op.drop_table("gateway_users")
