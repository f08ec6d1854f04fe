"""The policy state store: ``TenantControl`` as a control row, bundles, attempts and pauses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.dispatch import metrics
from actors.dispatch.control import scope_of
from actors.dispatch.sql import Row, from_json, insert_for, to_json
from actors.dispatch.storebase import RowStore, read_rows
from actors.kernel.actor import Change, Versioned
from actors.policy.tables import activations, bundles, controls, pauses
from schemas.dispatch.policy import (
    ACTIVATIONS_KEPT,
    ActivationRecord,
    ActiveBundle,
    KnownBundle,
    PausedScope,
    TenantControl,
)


def _root(state: TenantControl, version: int, now: datetime) -> Row:
    active = state.active
    return {
        "tenant": state.tenant,
        "version": version,
        "revision": state.revision,
        "refusals": state.refusals,
        "attempts": state.attempts,
        "active_version": None if active is None else active.version,
        "active_sha256": None if active is None else active.sha256,
        "activated_at": None if active is None else active.activated_at,
        "activated_by": None if active is None else active.activated_by,
        "updated_at": now,
    }


def _pause_row(tenant: str, pause: PausedScope) -> Row:
    return {
        "tenant": tenant,
        "scope_kind": pause.scope.kind,
        "scope_id": pause.scope.id or "",
        "paused_by": pause.paused_by,
        "paused_at": pause.paused_at,
        "reason": pause.reason,
        "revision": pause.revision,
    }


def _activation_row(tenant: str, record: ActivationRecord) -> Row:
    return {
        "tenant": tenant,
        "seq": record.seq,
        "outcome": record.outcome,
        "actor": record.actor,
        "reason": record.reason,
        "at": record.at,
        "expected_sha256": record.expected_sha256,
        "version": record.version,
        "sha256": record.sha256,
        "previous_version": record.previous_version,
        "previous_sha256": record.previous_sha256,
        "error_code": record.error_code,
        "error": record.error,
    }


class PolicyStore(RowStore[TenantControl]):
    """Loads and saves tenant controls as rows, fenced on the control row's version."""

    def __init__(self, memory: int = 1024) -> None:
        super().__init__(controls.c.tenant, memory)

    def blank(self, key: str) -> TenantControl:
        return TenantControl(tenant=key)

    def root(self, state: TenantControl, version: int, now: datetime) -> Row:
        return _root(state, version, now)

    async def assemble(
        self, conn: AsyncConnection, heads: Mapping[str, Any]
    ) -> dict[str, Versioned[TenantControl]]:
        return await _assemble(conn, heads)

    async def write_children(
        self,
        conn: AsyncConnection,
        changes: Sequence[Change[TenantControl]],
        befores: Mapping[str, TenantControl],
    ) -> None:
        counter = metrics.get()
        for c in changes:
            before = befores[c.key]
            await _save_bundles(conn, c.key, before.known, c.state.known)
            await _save_pauses(conn, c.key, before.paused, c.state.paused)
            new = [r for r in c.state.activations if r.seq > before.attempts]
            if new:
                await conn.execute(activations.insert(), [_activation_row(c.key, r) for r in new])
                for record in new:
                    counter.activation(record.outcome)


async def _save_bundles(
    conn: AsyncConnection,
    tenant: str,
    before: Sequence[KnownBundle],
    after: Sequence[KnownBundle],
) -> None:
    if [b.sha256 for b in before] == [b.sha256 for b in after]:
        return
    # Rows are never deleted: a decision's bundle_sha256 must stay reproducible after the
    # bundle drops out of the rollback list; kept_rank only says which ones are in it.
    await conn.execute(
        update(bundles)
        .where(bundles.c.tenant == tenant, bundles.c.kept_rank.is_not(None))
        .values(kept_rank=None)
    )
    present = {
        r[0]
        for r in await conn.execute(
            select(bundles.c.sha256).where(
                bundles.c.tenant == tenant, bundles.c.sha256.in_([b.sha256 for b in after])
            )
        )
    }
    fresh = [
        {
            "tenant": tenant,
            "sha256": b.sha256,
            "version": b.version,
            "created_at": b.created_at,
            "files": to_json(b.files),
            "kept_rank": rank,
        }
        for rank, b in enumerate(after)
        if b.sha256 not in present
    ]
    if fresh:
        await conn.execute(insert_for(conn)(bundles), fresh)
    ranks = [
        {"b_tenant": tenant, "b_sha256": b.sha256, "b_rank": rank}
        for rank, b in enumerate(after)
        if b.sha256 in present
    ]
    if ranks:
        await conn.execute(
            update(bundles)
            .where(bundles.c.tenant == bindparam("b_tenant"))
            .where(bundles.c.sha256 == bindparam("b_sha256"))
            .values(kept_rank=bindparam("b_rank")),
            ranks,
        )


async def _save_pauses(
    conn: AsyncConnection,
    tenant: str,
    before: Sequence[PausedScope],
    after: Sequence[PausedScope],
) -> None:
    old = {p.scope: p for p in before}
    new = {p.scope: p for p in after}
    for scope in [s for s, p in old.items() if new.get(s) != p]:
        await conn.execute(
            delete(pauses).where(
                pauses.c.tenant == tenant,
                pauses.c.scope_kind == scope.kind,
                pauses.c.scope_id == (scope.id or ""),
            )
        )
    added = [_pause_row(tenant, p) for p in after if old.get(p.scope) != p]
    if added:
        await conn.execute(pauses.insert(), added)


async def read(
    conn: AsyncConnection, tenants: Sequence[str]
) -> dict[str, Versioned[TenantControl]]:
    """Tenant controls as stored (tenants without a row are left out)."""
    return await read_rows(conn, controls.c.tenant, tenants, _assemble)


async def _assemble(
    conn: AsyncConnection, heads: Mapping[str, Any]
) -> dict[str, Versioned[TenantControl]]:
    ids = list(heads)
    known: dict[str, list[KnownBundle]] = {t: [] for t in ids}
    for r in await conn.execute(
        select(bundles)
        .where(bundles.c.tenant.in_(ids), bundles.c.kept_rank.is_not(None))
        .order_by(bundles.c.tenant, bundles.c.kept_rank)
    ):
        known[r.tenant].append(
            KnownBundle(
                version=r.version,
                sha256=r.sha256,
                created_at=r.created_at,
                files=from_json(r.files, dict[str, bytes]),
            )
        )
    paused: dict[str, list[PausedScope]] = {t: [] for t in ids}
    for r in await conn.execute(
        select(pauses).where(pauses.c.tenant.in_(ids)).order_by(pauses.c.tenant, pauses.c.revision)
    ):
        paused[r.tenant].append(
            PausedScope(
                scope=scope_of(r.scope_kind, r.scope_id),
                paused_by=r.paused_by,
                paused_at=r.paused_at,
                reason=r.reason,
                revision=int(r.revision),
            )
        )
    out: dict[str, Versioned[TenantControl]] = {}
    for tenant, h in heads.items():
        floor = int(h.attempts) - ACTIVATIONS_KEPT
        records = [
            _activation(r)
            for r in await conn.execute(
                select(activations)
                .where(activations.c.tenant == tenant, activations.c.seq > floor)
                .order_by(activations.c.seq)
            )
        ]
        active = (
            None
            if h.active_sha256 is None
            else ActiveBundle(
                version=h.active_version,
                sha256=h.active_sha256,
                activated_at=h.activated_at,
                activated_by=h.activated_by or "",
            )
        )
        state = TenantControl(
            tenant=tenant,
            active=active,
            known=tuple(known[tenant]),
            paused=tuple(paused[tenant]),
            revision=int(h.revision),
            refusals=int(h.refusals),
            attempts=int(h.attempts),
            activations=tuple(records),
        )
        out[tenant] = Versioned(state, int(h.version))
    return out


def _activation(r: Any) -> ActivationRecord:
    return ActivationRecord(
        seq=int(r.seq),
        outcome=r.outcome,
        actor=r.actor,
        reason=r.reason,
        at=r.at,
        expected_sha256=r.expected_sha256,
        version=r.version,
        sha256=r.sha256,
        previous_version=r.previous_version,
        previous_sha256=r.previous_sha256,
        error_code=r.error_code,
        error=r.error,
    )


__all__ = ["PolicyStore", "read"]
