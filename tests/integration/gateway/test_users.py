"""Callers become user rows on first sight, once, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from actors.kernel.db import create_engine
from gateway.auth import Principal
from gateway.tables import gateway_users
from gateway.users import UserDirectory, user_id

pytestmark = pytest.mark.asyncio

ALICE = Principal(subject="alice", issuer="https://issuer.test/", tenant="acme")


async def test_a_caller_gets_one_row_and_a_stable_id(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        first, second = UserDirectory(engine), UserDirectory(engine)  # two replicas
        users = await asyncio.gather(*(d.ensure(ALICE) for d in (first, second) for _ in range(5)))
        assert {u.id for u in users} == {user_id("https://issuer.test/", "alice")}
        assert {u.first_seen_at for u in users} == {users[0].first_seen_at}
        assert users[0].tenant == "acme"
        async with engine.connect() as conn:
            rows = (await conn.execute(select(gateway_users))).all()
        assert len(rows) == 1
        assert (rows[0].subject, rows[0].issuer, rows[0].tenant) == (
            "alice",
            "https://issuer.test/",
            "acme",
        )
        # Another issuer's "alice" is another user; a later sight records a tenant change.
        other = await first.ensure(Principal(subject="alice", issuer="https://other.test/"))
        assert other.id != users[0].id
        assert other.tenant == "default"
        moved = await UserDirectory(engine).ensure(
            Principal(subject="alice", issuer="https://issuer.test/", tenant="globex")
        )
        assert (moved.id, moved.first_seen_at) == (users[0].id, users[0].first_seen_at)
        async with engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(gateway_users))).one()
            tenant = (
                await conn.execute(
                    select(gateway_users.c.tenant).where(gateway_users.c.id == users[0].id)
                )
            ).scalar_one()
        assert (count[0], tenant) == (2, "globex")
    finally:
        await engine.dispose()
