"""The training actor's tables: one row per job, and the registry of trained agents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from actors.kernel.db import metadata


class Utc(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends (SQLite keeps no zone: it is restored)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


training_jobs = Table(
    "training_jobs",
    metadata,
    Column("job_id", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("requested_by", String(128), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("total_steps", BigInteger, nullable=False),
    Column("episodes", BigInteger, nullable=False),
    Column("mean_shots", Float, nullable=True),
    Column("loss", Float, nullable=True),
    Column("epsilon", Float, nullable=True),
    Column("steps_per_second", Float, nullable=True),
    Column("eval_mean", Float, nullable=True),
    Column("checkpoint", Text, nullable=True),
    Column("run_dir", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("state", Text, nullable=False),
    Column("created_at", Utc, nullable=False),
    Column("started_at", Utc, nullable=True),
    Column("updated_at", Utc, nullable=False),
    Column("finished_at", Utc, nullable=True),
    CheckConstraint(
        "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')", name="status"
    ),
    CheckConstraint("attempt >= 0 AND attempt <= max_attempts", name="attempt"),
    comment=(
        "Training jobs: the full state as JSON in `state`, the columns a job list shows "
        "beside it; `version` is the actor's optimistic-concurrency version."
    ),
)

# The supervisor polls the active jobs; lists filter by status and sort by creation.
Index("ix_training_jobs_status", training_jobs.c.status, training_jobs.c.created_at)
Index("ix_training_jobs_created_at", training_jobs.c.created_at)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column(
        "job_id",
        String(128),
        ForeignKey("training_jobs.job_id"),
        nullable=False,
        unique=True,
    ),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("ladder", String(128), nullable=False),
    Column("board", Text, nullable=False),
    Column("model_path", Text, nullable=False),
    Column("model_sha256", String(64), nullable=False),
    Column("mean_shots", Float, nullable=False),
    Column("median_shots", Float, nullable=False),
    Column("eval_games", Integer, nullable=False),
    Column("evaluation", Text, nullable=False),
    Column("registered_at", Utc, nullable=False),
    CheckConstraint("kind IN ('dqn')", name="kind"),
    comment="Trained agents matches and ladders may seat, each registered by one completed job.",
)

Index("ix_agents_ladder", agents.c.ladder, agents.c.mean_shots)
