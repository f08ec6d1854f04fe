"""The training migration creates exactly the modelled tables, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from actors.kernel.db import create_engine
from actors.training.tables import agents, training_jobs

pytestmark = pytest.mark.asyncio

OURS = {"training_jobs", "agents"}


def _diff(conn: Connection) -> list[Any]:
    mine = MetaData(naming_convention=training_jobs.metadata.naming_convention)
    for table in (training_jobs, agents):
        table.to_metadata(mine)
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return [d for d in compare_metadata(context, mine) if _table_of(d) in OURS]


def _table_of(diff: Any) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if isinstance(part, str) and part in OURS:
            return part
        if name in OURS:
            return str(name)
    return None


async def test_migrated_tables_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url, write=False)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert names >= OURS
            assert await conn.run_sync(_diff) == []
            checks = await conn.run_sync(
                lambda c: {ck["name"] for ck in inspect(c).get_check_constraints("training_jobs")}
            )
            assert checks == {"ck_training_jobs_status", "ck_training_jobs_attempt"}
    finally:
        await engine.dispose()
