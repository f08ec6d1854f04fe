"""Read-side queries over the training tables: job lists and the agent registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.training.tables import agents, training_jobs
from schemas.training import JobStatus


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    """One job as a list shows it: status and latest metrics."""

    job_id: str
    name: str
    status: JobStatus
    attempt: int
    max_attempts: int
    step: int
    total_steps: int
    episodes: int
    mean_shots: float | None
    eval_mean: float | None
    loss: float | None
    epsilon: float | None
    steps_per_second: float | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class AgentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One registered agent."""

    agent_id: str
    job_id: str
    name: str
    ladder: str
    mean_shots: float
    median_shots: float
    eval_games: int
    model_path: str
    registered_at: datetime


_JOB_COLUMNS = [training_jobs.c[name] for name in JobRow.__struct_fields__]
_AGENT_COLUMNS = [agents.c[name] for name in AgentRow.__struct_fields__]


async def list_jobs(
    engine: AsyncEngine, *, status: JobStatus | None = None, limit: int = 100
) -> list[JobRow]:
    """Jobs, newest first (optionally of one status)."""
    query = select(*_JOB_COLUMNS).order_by(
        training_jobs.c.created_at.desc(), training_jobs.c.job_id
    )
    if status is not None:
        query = query.where(training_jobs.c.status == status)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit))).all()
    return [msgspec.convert(_plain(r._asdict()), JobRow) for r in rows]


async def get_job(engine: AsyncEngine, job_id: str) -> JobRow | None:
    """One job with its latest metrics, or None."""
    query = select(*_JOB_COLUMNS).where(training_jobs.c.job_id == job_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else msgspec.convert(_plain(row._asdict()), JobRow)


async def list_agents(engine: AsyncEngine, *, ladder: str | None = None) -> list[AgentRow]:
    """Registered agents, best mean shots-to-win first (optionally on one ladder)."""
    query = select(*_AGENT_COLUMNS).order_by(agents.c.mean_shots, agents.c.agent_id)
    if ladder is not None:
        query = query.where(agents.c.ladder == ladder)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [msgspec.convert(_plain(r._asdict()), AgentRow) for r in rows]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    # Column labels are SQLAlchemy's str subclass; msgspec wants plain str keys.
    return {str(k): v for k, v in row.items()}
