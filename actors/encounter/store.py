"""The encounter state store: ``EncounterState`` as encounters, combatants and initiative rows."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, and_, case, delete, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.encounter.rules import Combatant, EncounterState
from actors.encounter.tables import combatants, encounters, initiative
from actors.kernel.actor import Change, StaleState, Versioned

Row = dict[str, Any]

CACHE_SIZE = 4096
"""Loaded states remembered per (encounter, version), so a save writes only changed rows."""


def _insert(conn: AsyncConnection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _combatant_row(key: str, position: int, c: Combatant) -> Row:
    return {
        "encounter_id": key,
        "combatant_id": c.combatant_id,
        "position": position,
        "name": c.name,
        "dexterity_modifier": c.dexterity_modifier,
        "initiative_bonus": c.initiative_bonus,
        "defeated": c.defeated,
        "skip_next": c.skip_next,
        "character_ref": c.character_ref,
    }


def combatant_rows(state: EncounterState) -> dict[str, Row]:
    """The combatants rows ``state`` maps to, by combatant id."""
    key = state.encounter_id
    return {c.combatant_id: _combatant_row(key, i, c) for i, c in enumerate(state.combatants)}


def initiative_rows(state: EncounterState) -> dict[str, Row]:
    """The initiative rows ``state`` maps to (placed combatants only), by combatant id."""
    return {
        c.combatant_id: {
            "encounter_id": state.encounter_id,
            "combatant_id": c.combatant_id,
            "value": c.initiative,
        }
        for c in state.combatants
        if c.initiative is not None
    }


def _encounter_values(state: EncounterState, version: int, now: datetime) -> Row:
    if state.status == "new":
        raise ValueError(f"encounter {state.encounter_id} was never created; nothing to store")
    return {
        "version": version,
        "status": state.status,
        "seed": state.seed,
        "campaign_id": state.campaign_id,
        "name": state.name,
        "draws": state.draws,
        "step": state.step,
        "round": state.round,
        "active_combatant_id": state.active_id,
        "ending": state.ending,
        "updated_at": now,
    }


class EncounterStore:
    """Loads and saves encounters as relational rows, with the version on the encounters row.

    ``save`` writes the encounters row first, fenced on the version it was loaded at
    (``StaleState`` otherwise), then only the combatant and initiative rows that differ
    from the state loaded at that version (all of them when it is not remembered).
    """

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._cache: OrderedDict[tuple[str, int], EncounterState] = OrderedDict()
        self._cache_size = cache_size

    def _remember(self, key: str, version: int, state: EncounterState) -> None:
        self._cache[(key, version)] = state
        self._cache.move_to_end((key, version))
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _recall(self, key: str, version: int) -> EncounterState | None:
        return self._cache.get((key, version))

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[EncounterState]]:
        if not keys:
            return {}
        wanted = list(dict.fromkeys(keys))
        heads = {
            r.encounter_id: r
            for r in await conn.execute(
                select(encounters).where(encounters.c.encounter_id.in_(wanted))
            )
        }
        if not heads:
            return {}
        rows = await conn.execute(
            select(combatants, initiative.c.value.label("initiative"))
            .select_from(
                combatants.outerjoin(
                    initiative,
                    and_(
                        initiative.c.encounter_id == combatants.c.encounter_id,
                        initiative.c.combatant_id == combatants.c.combatant_id,
                    ),
                )
            )
            .where(combatants.c.encounter_id.in_(list(heads)))
            .order_by(combatants.c.encounter_id, combatants.c.position)
        )
        roster: dict[str, list[Combatant]] = {k: [] for k in heads}
        for r in rows:
            roster[r.encounter_id].append(
                Combatant(
                    combatant_id=r.combatant_id,
                    name=r.name,
                    dexterity_modifier=r.dexterity_modifier,
                    initiative_bonus=r.initiative_bonus,
                    initiative=r.initiative,
                    defeated=bool(r.defeated),
                    skip_next=bool(r.skip_next),
                    character_ref=r.character_ref,
                )
            )
        out: dict[str, Versioned[EncounterState]] = {}
        for key, h in heads.items():
            state = EncounterState(
                encounter_id=key,
                status=h.status,
                seed=int(h.seed),
                campaign_id=h.campaign_id,
                name=h.name,
                draws=h.draws,
                combatants=tuple(roster[key]),
                step=h.step,
                round=h.round,
                active_id=h.active_combatant_id,
                ending=bool(h.ending),
            )
            version = int(h.version)
            self._remember(key, version, state)
            out[key] = Versioned(state, version)
        return out

    async def save(
        self, conn: AsyncConnection, actor: str, changes: Sequence[Change[EncounterState]]
    ) -> None:
        if not changes:
            return
        now = datetime.now(UTC)
        stale = [c.key for c in changes if not await self._save_head(conn, c, now)]
        if stale:
            # The transaction is rolled back: no child row of this batch may be kept.
            raise StaleState(actor, stale)
        for c in changes:
            # Only states read back from the database are remembered, never ones written in
            # a transaction that may still roll back: the runtime saves what it loaded in the
            # same transaction, so the state at ``previous`` is the one it just loaded.
            base = c.before if c.before is not None else self._recall(c.key, c.previous)
            await self._save_children(conn, c.key, c.state, base if c.previous else None)

    async def _save_head(
        self, conn: AsyncConnection, c: Change[EncounterState], now: datetime
    ) -> bool:
        values = _encounter_values(c.state, c.version, now)
        # ending_since is not part of the state: it dates the current ending phase for the
        # stuck-step check, so it is set when ending starts and kept while it lasts.
        if c.previous == 0:
            stmt = (
                _insert(conn)(encounters)
                .values(
                    encounter_id=c.key,
                    created_at=now,
                    ending_since=now if c.state.ending else None,
                    **values,
                )
                .on_conflict_do_nothing()
                .returning(encounters.c.encounter_id)
            )
        else:
            ending_since: Any = None
            if c.state.ending:
                ending_since = case(
                    (
                        and_(encounters.c.ending, encounters.c.step == c.state.step),
                        encounters.c.ending_since,
                    ),
                    else_=literal(now, DateTime(timezone=True)),
                )
            stmt = (
                update(encounters)
                .where(
                    encounters.c.encounter_id == c.key,
                    encounters.c.version == c.previous,
                )
                .values(ending_since=ending_since, **values)
                .returning(encounters.c.encounter_id)
            )
        done = await conn.execute(stmt)
        return done.first() is not None

    async def _save_children(
        self,
        conn: AsyncConnection,
        key: str,
        state: EncounterState,
        base: EncounterState | None,
    ) -> None:
        want = combatant_rows(state)
        want_init = initiative_rows(state)
        if base is None:
            # Not remembered (another process wrote it, or it is new): rewrite every row.
            stale_rows = delete(combatants).where(combatants.c.encounter_id == key)
            if want:
                stale_rows = stale_rows.where(combatants.c.combatant_id.notin_(list(want)))
            await conn.execute(stale_rows)
            unplaced = delete(initiative).where(initiative.c.encounter_id == key)
            if want_init:
                unplaced = unplaced.where(initiative.c.combatant_id.notin_(list(want_init)))
            await conn.execute(unplaced)
            changed = list(want.values())
            changed_init = list(want_init.values())
            gone_init: list[str] = []
        else:
            had = combatant_rows(base)
            had_init = initiative_rows(base)
            gone = [cid for cid in had if cid not in want]
            if gone:
                await conn.execute(
                    delete(combatants).where(
                        combatants.c.encounter_id == key, combatants.c.combatant_id.in_(gone)
                    )
                )
            changed = [row for cid, row in want.items() if had.get(cid) != row]
            changed_init = [row for cid, row in want_init.items() if had_init.get(cid) != row]
            gone_init = [cid for cid in had_init if cid not in want_init and cid in want]
        if changed:
            await self._upsert(conn, combatants, changed, ["encounter_id", "combatant_id"])
        if gone_init:
            await conn.execute(
                delete(initiative).where(
                    initiative.c.encounter_id == key, initiative.c.combatant_id.in_(gone_init)
                )
            )
        if changed_init:
            await self._upsert(conn, initiative, changed_init, ["encounter_id", "combatant_id"])

    @staticmethod
    async def _upsert(conn: AsyncConnection, table: Any, rows: list[Row], keys: list[str]) -> None:
        stmt = _insert(conn)(table)
        updated = {name: stmt.excluded[name] for name in rows[0] if name not in keys}
        # Conflicting on the key columns of uq_initiative_encounter_id_combatant_id keeps
        # one initiative row per combatant: a correction updates it in place.
        await conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updated), rows)


__all__ = ["EncounterStore", "combatant_rows", "initiative_rows"]
