"""The gateway's migration builds exactly the tables gateway/tables.py declares."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from actors.kernel.db import create_engine
from gateway.tables import gateway_users

pytestmark = pytest.mark.asyncio


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    only = MetaData(naming_convention=gateway_users.metadata.naming_convention)
    gateway_users.to_metadata(only)
    return [
        diff
        for diff in compare_metadata(context, only)
        # Other branches' tables exist in the database but not in this metadata.
        if not (diff[0] == "remove_table" and diff[1].name != "gateway_users")
        and not (diff[0] in ("remove_index", "remove_column") and "gateway_users" not in str(diff))
    ]


def _constraints(conn: Connection) -> dict[str, Any]:
    inspector = inspect(conn)
    return {
        "pk": inspector.get_pk_constraint("gateway_users"),
        "unique": inspector.get_unique_constraints("gateway_users"),
        "columns": [
            (c["name"], str(c["type"]), c["nullable"])
            for c in inspector.get_columns("gateway_users")
        ],
    }


async def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = create_engine(database_url, write=False)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
            found = await conn.run_sync(_constraints)
    finally:
        await engine.dispose()
    assert differences == []
    assert found["pk"]["name"] == "pk_gateway_users"
    assert found["pk"]["constrained_columns"] == ["id"]
    assert [(u["name"], u["column_names"]) for u in found["unique"]] == [
        ("uq_gateway_users_issuer_subject", ["issuer", "subject"])
    ]
    assert [name for name, _, _ in found["columns"]] == [
        "id",
        "issuer",
        "subject",
        "tenant",
        "first_seen_at",
        "last_seen_at",
    ]
