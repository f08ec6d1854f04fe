"""Training tables: training jobs and the registry of trained agents.

Revision ID: 0300_training
Revises: 0001_kernel
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0300_training"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("training",)
depends_on: str | Sequence[str] | None = None

Utc = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("total_steps", sa.BigInteger(), nullable=False),
        sa.Column("episodes", sa.BigInteger(), nullable=False),
        sa.Column("mean_shots", sa.Float(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("epsilon", sa.Float(), nullable=True),
        sa.Column("steps_per_second", sa.Float(), nullable=True),
        sa.Column("eval_mean", sa.Float(), nullable=True),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("run_dir", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("started_at", Utc, nullable=True),
        sa.Column("updated_at", Utc, nullable=False),
        sa.Column("finished_at", Utc, nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_training_jobs")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_training_jobs_status"),
        ),
        sa.CheckConstraint(
            "attempt >= 0 AND attempt <= max_attempts", name=op.f("ck_training_jobs_attempt")
        ),
        comment=(
            "Training jobs: the full state as JSON in `state`, the columns a job list shows "
            "beside it; `version` is the actor's optimistic-concurrency version."
        ),
    )
    op.create_index("ix_training_jobs_status", "training_jobs", ["status", "created_at"])
    op.create_index("ix_training_jobs_created_at", "training_jobs", ["created_at"])
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ladder", sa.String(128), nullable=False),
        sa.Column("board", sa.Text(), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("mean_shots", sa.Float(), nullable=False),
        sa.Column("median_shots", sa.Float(), nullable=False),
        sa.Column("eval_games", sa.Integer(), nullable=False),
        sa.Column("evaluation", sa.Text(), nullable=False),
        sa.Column("registered_at", Utc, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agents")),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["training_jobs.job_id"],
            name=op.f("fk_agents_job_id_training_jobs"),
        ),
        sa.UniqueConstraint("job_id", name=op.f("uq_agents_job_id")),
        sa.CheckConstraint("kind IN ('dqn')", name=op.f("ck_agents_kind")),
        comment=(
            "Trained agents matches and ladders may seat, each registered by one completed job."
        ),
    )
    op.create_index("ix_agents_ladder", "agents", ["ladder", "mean_shots"])


def downgrade() -> None:
    op.drop_index("ix_agents_ladder", table_name="agents")
    op.drop_table("agents")
    op.drop_index("ix_training_jobs_created_at", table_name="training_jobs")
    op.drop_index("ix_training_jobs_status", table_name="training_jobs")
    op.drop_table("training_jobs")
