"""One alembic history for every actor's tables: up and down on both backends, as modelled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from actors import registry
from actors.kernel import migrate
from actors.kernel.db import create_engine, metadata
from tests.support.databases import PostgresTemplate


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    template: PostgresTemplate = request.getfixturevalue("postgres_template")
    url = template.empty()
    try:
        yield url
    finally:
        template.drop(url)


def _inspect(url: str, fn: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url, write=False)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[Any]:
    registry.import_table_modules()
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_upgrade_matches_the_models_and_downgrade_removes_everything(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert set(migrate.current(empty_url)) == set(migrate.heads())
    assert _inspect(empty_url, _diff) == []
    registry.import_table_modules()
    assert _inspect(empty_url, _tables) >= set(metadata.tables)

    migrate.downgrade(empty_url, "base")
    assert migrate.current(empty_url) == ()
    assert _inspect(empty_url, _tables) <= {"alembic_version"}

    migrate.upgrade(empty_url)  # and back up again from nothing
    assert _inspect(empty_url, _diff) == []


def test_every_domain_branch_starts_at_the_kernel() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.config("sqlite://"))
    for head in script.get_heads():
        chain = list(script.iterate_revisions(head, "base"))
        assert chain[-1].revision == "0001_kernel", f"{head} does not descend from the kernel"
