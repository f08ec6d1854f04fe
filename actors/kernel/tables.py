"""The kernel's tables: consumer ledger, positions (with the fencing epoch), outbox, JSON state."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from actors.kernel.db import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")

consumer_ledger = Table(
    "consumer_ledger",
    metadata,
    Column("consumer", String(200), nullable=False),
    Column("message_id", String(300), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("stream_seq", BigInteger, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("consumer", "message_id"),
    comment="One row per message a consumer applied: the exactly-once guard.",
)

consumer_position = Table(
    "consumer_position",
    metadata,
    Column("consumer", String(200), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("last_seq", BigInteger, nullable=False, server_default=text("0")),
    Column("epoch", Integer, nullable=False, server_default=text("0")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("consumer", "stream"),
    comment=(
        "Last stream sequence a consumer handled, committed with its effects; "
        "epoch fences out a superseded instance."
    ),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(300), nullable=False, unique=True),
    Column("producer", String(200), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("entity_key", String(128), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("stream", String(100), nullable=True),
    Column("stream_seq", BigInteger, nullable=True),
    comment="Messages written in the same transaction as the state change, published after commit.",
)

# The relay and the writer's own flush read only unsent rows, in id order per producer.
Index(
    "ix_outbox_unsent",
    outbox.c.producer,
    outbox.c.id,
    postgresql_where=outbox.c.published_at.is_(None),
    sqlite_where=outbox.c.published_at.is_(None),
)
Index("ix_outbox_published_at", outbox.c.published_at)
# /status compares the highest sequence recorded per stream with the stream's last sequence.
Index("ix_outbox_stream_seq", outbox.c.stream, outbox.c.stream_seq)

actor_state = Table(
    "actor_state",
    metadata,
    Column("actor", String(200), nullable=False),
    Column("key", String(128), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("actor", "key"),
    comment="Entity state as JSON, for actors that keep no tables of their own.",
)
