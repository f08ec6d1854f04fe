"""Kernel tables: consumer ledger, consumer positions, outbox, JSON actor state.

Revision ID: 0001_kernel
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_kernel"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consumer_ledger",
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("stream", sa.String(100), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id", name=op.f("pk_consumer_ledger")),
        comment="One row per message a consumer applied: the exactly-once guard.",
    )
    op.create_table(
        "consumer_position",
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("stream", sa.String(100), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("epoch", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "stream", name=op.f("pk_consumer_position")),
        comment=(
            "Last stream sequence a consumer handled, committed with its effects; "
            "epoch fences out a superseded instance."
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(300), nullable=False),
        sa.Column("producer", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("entity_key", sa.String(128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stream", sa.String(100), nullable=True),
        sa.Column("stream_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        comment=(
            "Messages written in the same transaction as the state change, published after commit."
        ),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["producer", "id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])
    op.create_index("ix_outbox_stream_seq", "outbox", ["stream", "stream_seq"])
    op.create_table(
        "actor_state",
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("actor", "key", name=op.f("pk_actor_state")),
        comment="Entity state as JSON, for actors that keep no tables of their own.",
    )


def downgrade() -> None:
    op.drop_table("actor_state")
    op.drop_index("ix_outbox_stream_seq", table_name="outbox")
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("consumer_position")
    op.drop_table("consumer_ledger")
