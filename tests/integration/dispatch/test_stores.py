"""The dispatch row stores when a save's previous state is not remembered by the saving store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel.actor import Change
from actors.kernel.db import create_engine, transaction
from actors.policy.store import PolicyStore
from actors.policy.tables import activations
from schemas.dispatch.policy import ActivationRecord, TenantControl
from tests.unit.dispatch.builders import MONDAY_10_CDT, TENANT

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    e = create_engine(database_url)
    try:
        yield e
    finally:
        await e.dispose()


def _refusal(seq: int) -> ActivationRecord:
    return ActivationRecord(
        seq=seq,
        outcome="refused",
        actor="user:admin",
        reason=f"attempt {seq}",
        at=MONDAY_10_CDT,
        expected_sha256=f"{seq:064x}",
        error_code="unknown_bundle",
        error="no such bundle",
    )


async def test_a_policy_save_by_another_store_keeps_every_activation(engine: AsyncEngine) -> None:
    first = TenantControl(tenant=TENANT, refusals=1, attempts=1, activations=(_refusal(1),))
    second = TenantControl(
        tenant=TENANT, refusals=2, attempts=2, activations=(_refusal(1), _refusal(2))
    )
    async with transaction(engine) as conn:
        await PolicyStore().save(conn, "policy", [Change(TENANT, first, 1, 0)])
    # A store that never saw version 1 reads it from the rows, before rewriting the control row.
    async with transaction(engine) as conn:
        await PolicyStore().save(conn, "policy", [Change(TENANT, second, 2, 1)])
    async with engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(activations))).scalar_one()
        loaded = await PolicyStore().load(conn, "policy", [TENANT])
    assert rows == 2
    assert loaded[TENANT].version == 2
    assert loaded[TENANT].state == second
