"""Alembic from code: ``troupe migrate`` and the tests upgrade any URL to head."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations
from actors.kernel.db import create_engine

SCRIPT_LOCATION = str(Path(migrations.__file__).parent)


def config(url: str) -> Config:
    """An alembic Config for ``url`` using Troupe's migration scripts, wherever it runs from."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (blocking; run it in a thread from async code).

    Each domain's tables are a branch off the kernel revision, so "heads"
    (every branch's head) is what "latest" means.
    """
    command.upgrade(config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(config(url), revision)


def heads() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(config("sqlite://")).get_heads())


def current(url: str) -> tuple[str, ...]:
    """The revisions a database is at (empty before the first migration); blocking."""

    async def run() -> tuple[str, ...]:
        engine = create_engine(url, write=False)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: tuple(MigrationContext.configure(c).get_current_heads())
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())
