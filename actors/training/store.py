"""The training actor's store: jobs in ``training_jobs``; a completed job registers its agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.actor import Change, StaleState, Versioned
from actors.training.rules import JobState, board_spec
from actors.training.tables import agents, training_jobs
from schemas.battleship import ladder_of

_decoder = msgspec.json.Decoder(JobState)
_encoder = msgspec.json.Encoder()


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(table)


def job_row(state: JobState, version: int) -> dict[str, Any]:
    """The ``training_jobs`` row of a job: the JSON state plus the columns lists filter on."""
    m = state.metrics
    assert state.created_at is not None
    assert state.updated_at is not None
    return {
        "job_id": state.job_id,
        "version": version,
        "status": state.status,
        "name": state.name,
        "requested_by": state.requested_by,
        "attempt": state.attempt,
        "max_attempts": state.max_attempts,
        "step": m.step if m else 0,
        "total_steps": state.config.total_steps,
        "episodes": m.episodes if m else 0,
        "mean_shots": m.mean_shots if m else None,
        "loss": m.loss if m else None,
        "epsilon": m.epsilon if m else None,
        "steps_per_second": m.steps_per_second if m else None,
        "eval_mean": m.eval_mean if m else None,
        "checkpoint": state.checkpoint,
        "run_dir": state.run_dir,
        "reason": state.reason,
        "state": _encoder.encode(state).decode(),
        "created_at": state.created_at,
        "started_at": state.started_at,
        "updated_at": state.updated_at,
        "finished_at": state.finished_at,
    }


def agent_row(state: JobState) -> dict[str, Any]:
    """The ``agents`` row a completed job registers."""
    report = state.evaluation
    assert report is not None
    assert state.model_path is not None
    assert state.model_sha256 is not None
    assert state.finished_at is not None
    board = board_spec(state.config)
    return {
        "agent_id": state.agent_id,
        "job_id": state.job_id,
        "kind": "dqn",
        "name": state.name,
        "ladder": ladder_of(board),
        "board": _encoder.encode(board).decode(),
        "model_path": state.model_path,
        "model_sha256": state.model_sha256,
        "mean_shots": report.agent.mean,
        "median_shots": report.agent.median,
        "eval_games": report.games,
        "evaluation": _encoder.encode(report).decode(),
        "registered_at": state.finished_at,
    }


class JobStore:
    """Loads and saves ``JobState``; the version lives on the ``training_jobs`` row."""

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[JobState]]:
        if not keys:
            return {}
        rows = await conn.execute(
            select(training_jobs.c.job_id, training_jobs.c.version, training_jobs.c.state).where(
                training_jobs.c.job_id.in_(list(dict.fromkeys(keys)))
            )
        )
        return {r.job_id: Versioned(_decoder.decode(r.state), int(r.version)) for r in rows}

    async def save(
        self, conn: AsyncConnection, actor: str, changes: Sequence[Change[JobState]]
    ) -> None:
        if not changes:
            return
        keys = [c.key for c in changes]
        query = select(training_jobs.c.job_id, training_jobs.c.version).where(
            training_jobs.c.job_id.in_(keys)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        stored = {k: int(v) for k, v in (await conn.execute(query)).all()}
        stale = [c.key for c in changes if stored.get(c.key, 0) != c.previous]
        if stale:
            raise StaleState(actor, stale)
        inserts = [job_row(c.state, c.version) for c in changes if c.key not in stored]
        updates = [job_row(c.state, c.version) for c in changes if c.key in stored]
        if inserts:
            done = await conn.execute(
                _insert(conn, training_jobs)
                .on_conflict_do_nothing()
                .returning(training_jobs.c.job_id),
                inserts,
            )
            written = {r[0] for r in done}
            lost = [r["job_id"] for r in inserts if r["job_id"] not in written]
            if lost:
                raise StaleState(actor, lost)
        if updates:
            params = [
                {**{k: v for k, v in r.items() if k != "job_id"}, "b_job_id": r["job_id"]}
                for r in updates
            ]
            await conn.execute(
                training_jobs.update().where(training_jobs.c.job_id == bindparam("b_job_id")),
                params,
            )
        registered = [agent_row(c.state) for c in changes if c.state.status == "completed"]
        if registered:
            # A completed job never changes again; re-saving it must not fail on its agent.
            await conn.execute(_insert(conn, agents).on_conflict_do_nothing(), registered)
