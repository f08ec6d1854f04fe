"""The match actor's relational store, root-row helpers the Battleship stores share, and queries.

Every Battleship store keeps its state in its own tables with the version on the root row.
``save`` first reads the stored versions of every changed key in one statement (``FOR
UPDATE`` on PostgreSQL; SQLite's writers are already serialised by ``BEGIN IMMEDIATE``) and
raises ``StaleState`` when one moved, then writes each table with one statement per table for
the whole batch. What ``load`` read in the same transaction is kept as a snapshot, so ``save``
writes only the child rows that changed.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Table,
    bindparam,
    cast,
    column,
    func,
    select,
    values,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.actor import Change, StaleState, Versioned
from actors.match.rules import MatchState, ShotRecord
from actors.match.tables import match_ships, matches, moves
from schemas.battleship import BoardSpec, Player, ShipPlacement, ladder_of

S = TypeVar("S")

_board_decoder = msgspec.json.Decoder(BoardSpec)


def encode_board(board: BoardSpec) -> str:
    """A board spec as the JSON text kept in ``board`` columns."""
    return msgspec.json.encode(board).decode()


def decode_board(text: str) -> BoardSpec:
    """The board spec of a ``board`` column."""
    return _board_decoder.decode(text)


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT supporting ``ON CONFLICT`` on the connection's backend."""
    return (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(table)


class Snapshots(Generic[S]):
    """States ``load`` read, per connection (hence per transaction), for ``save`` to diff against.

    A snapshot is used only when its version is the change's ``previous``; ``save`` has then
    just verified under lock that the stored row is still at that version, so the snapshot is
    exactly what the tables hold.
    """

    def __init__(self) -> None:
        self._by_conn: weakref.WeakKeyDictionary[AsyncConnection, dict[str, Versioned[S]]] = (
            weakref.WeakKeyDictionary()
        )

    def remember(self, conn: AsyncConnection, loaded: Mapping[str, Versioned[S]]) -> None:
        self._by_conn.setdefault(conn, {}).update(loaded)

    def base(self, conn: AsyncConnection, change: Change[S]) -> S | None:
        """The stored state ``change`` replaces, if this transaction loaded it."""
        if change.before is not None:
            return change.before
        seen = self._by_conn.get(conn, {}).get(change.key)
        if seen is not None and seen.version == change.previous:
            return seen.state
        return None

    def forget(self, conn: AsyncConnection, keys: Sequence[str]) -> None:
        seen = self._by_conn.get(conn)
        if seen:
            for key in keys:
                seen.pop(key, None)


async def write_roots(
    conn: AsyncConnection,
    actor: str,
    table: Table,
    key: Column[str],
    changes: Sequence[Change[Any]],
    rows: Sequence[dict[str, Any]],
) -> None:
    """Check every change's stored version, then insert new root rows and update the others.

    ``rows[i]`` is the full root row of ``changes[i]`` (key and version included). Raises
    ``StaleState`` naming every key whose stored version is not the change's ``previous``.
    """
    if conn.dialect.name == "postgresql":
        await _write_roots_postgres(conn, actor, table, key, changes, rows)
        return
    keys = [c.key for c in changes]
    query = select(key, table.c.version).where(key.in_(keys))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    stored = {k: int(v) for k, v in (await conn.execute(query)).all()}
    stale = [c.key for c in changes if stored.get(c.key, 0) != c.previous]
    if stale:
        raise StaleState(actor, stale)
    inserts = [r for c, r in zip(changes, rows, strict=True) if c.key not in stored]
    updates = [r for c, r in zip(changes, rows, strict=True) if c.key in stored]
    if inserts:
        # A concurrent writer may insert the same new key after the check above.
        done = await conn.execute(
            dialect_insert(conn, table).on_conflict_do_nothing().returning(key), inserts
        )
        written = {r[0] for r in done}
        lost = [r[key.name] for r in inserts if r[key.name] not in written]
        if lost:
            raise StaleState(actor, lost)
    if updates:
        params = [
            {**{k: v for k, v in r.items() if k != key.name}, "b_key": r[key.name]} for r in updates
        ]
        await conn.execute(table.update().where(key == bindparam("b_key")), params)


_PG_CHUNK = 500
"""Rows per UPDATE ... FROM (VALUES ...): stays far below PostgreSQL's 32767 bind parameters."""


async def _write_roots_postgres(
    conn: AsyncConnection,
    actor: str,
    table: Table,
    key: Column[str],
    changes: Sequence[Change[Any]],
    rows: Sequence[dict[str, Any]],
) -> None:
    """One version-checked ``UPDATE ... FROM (VALUES ...) RETURNING`` per chunk of existing
    entities and one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` for new ones: a row not
    returned was moved (or created) by someone else."""
    stale: list[str] = []
    updates = [(c, r) for c, r in zip(changes, rows, strict=True) if c.previous > 0]
    inserts = [r for c, r in zip(changes, rows, strict=True) if c.previous == 0]
    if updates:
        names = list(updates[0][1])
        columns = [column(n, table.c[n].type) for n in names]
        for start in range(0, len(updates), _PG_CHUNK):
            chunk = updates[start : start + _PG_CHUNK]
            data = values(*columns, column("b_previous", BigInteger), name="v").data(
                [(*(r[n] for n in names), c.previous) for c, r in chunk]
            )
            done = await conn.execute(
                table.update()
                .where(key == data.c[key.name], table.c.version == data.c.b_previous)
                # A column that is NULL in every row has no type in VALUES: cast each one.
                .values({n: cast(data.c[n], table.c[n].type) for n in names if n != key.name})
                .returning(key)
            )
            written = {r[0] for r in done}
            stale += [c.key for c, _ in chunk if c.key not in written]
    if inserts:
        done = await conn.execute(
            dialect_insert(conn, table).on_conflict_do_nothing().returning(key), inserts
        )
        written = {r[0] for r in done}
        stale += [r[key.name] for r in inserts if r[key.name] not in written]
    if stale:
        raise StaleState(actor, stale)


# ---------------------------------------------------------------- the match store

_SHIPS_ORDER = (match_ships.c.match_id, match_ships.c.seat, match_ships.c.position)


class MatchStore:
    """Keeps ``MatchState`` in ``matches``, ``match_ships`` and ``moves``."""

    def __init__(self) -> None:
        self._snapshots: Snapshots[MatchState] = Snapshots()

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[MatchState]]:
        if not keys:
            return {}
        keys = list(dict.fromkeys(keys))
        roots = (await conn.execute(select(matches).where(matches.c.match_id.in_(keys)))).all()
        if not roots:
            return {}
        found = [r.match_id for r in roots]
        fleets: dict[str, list[list[ShipPlacement]]] = {k: [[], []] for k in found}
        for r in await conn.execute(
            select(match_ships).where(match_ships.c.match_id.in_(found)).order_by(*_SHIPS_ORDER)
        ):
            fleets[r.match_id][r.seat].append(
                ShipPlacement(ship=r.ship, row=r.row, col=r.col, orientation=r.orientation)
            )
        shots: dict[str, list[ShotRecord]] = {k: [] for k in found}
        for r in await conn.execute(
            select(moves)
            .where(moves.c.match_id.in_(found))
            .order_by(moves.c.match_id, moves.c.number)
        ):
            shots[r.match_id].append(ShotRecord(r.seat, r.row, r.col, r.result, r.at))
        out: dict[str, Versioned[MatchState]] = {}
        for r in roots:
            state = MatchState(
                match_id=r.match_id,
                status=r.status,
                players=(
                    Player(kind=r.seat0_kind, id=r.seat0_id),
                    Player(kind=r.seat1_kind, id=r.seat1_id),
                ),
                room_id=r.room_id,
                rated=bool(r.rated),
                board=decode_board(r.board),
                seed=int(r.seed),
                first=int(r.first_seat),
                fleets=tuple(tuple(f) if f else None for f in fleets[r.match_id]),
                shots=tuple(shots[r.match_id]),
                turn=r.turn,
                winner=r.winner,
                reason=r.reason,
                chat_messages=int(r.chat_messages),
                created_at=r.created_at,
                started_at=r.started_at,
                finished_at=r.finished_at,
            )
            out[r.match_id] = Versioned(state, int(r.version))
        self._snapshots.remember(conn, out)
        return out

    async def save(
        self, conn: AsyncConnection, actor: str, changes: Sequence[Change[MatchState]]
    ) -> None:
        if not changes:
            return
        await write_roots(
            conn, actor, matches, matches.c.match_id, changes, [_match_row(c) for c in changes]
        )
        bases = {c.key: self._snapshots.base(conn, c) for c in changes}
        unknown = [k for k, b in bases.items() if b is None]
        placed, fired = await _stored_progress(conn, unknown)
        ship_rows: list[dict[str, Any]] = []
        move_rows: list[dict[str, Any]] = []
        for c in changes:
            base = bases[c.key]
            if base is not None:
                had_fleet = {s for s, f in enumerate(base.fleets) if f is not None}
                had_shots = len(base.shots)
            else:
                had_fleet, had_shots = placed.get(c.key, set()), fired.get(c.key, 0)
            for seat, fleet in enumerate(c.state.fleets):
                if fleet is not None and seat not in had_fleet:
                    ship_rows += [
                        {
                            "match_id": c.key,
                            "seat": seat,
                            "position": i,
                            "ship": p.ship,
                            "row": p.row,
                            "col": p.col,
                            "orientation": p.orientation,
                        }
                        for i, p in enumerate(fleet)
                    ]
            move_rows += [
                {
                    "match_id": c.key,
                    "number": n,
                    "seat": s.seat,
                    "row": s.row,
                    "col": s.col,
                    "result": s.result,
                    "at": s.at,
                }
                for n, s in enumerate(c.state.shots[had_shots:], start=had_shots + 1)
            ]
        if ship_rows:
            await conn.execute(match_ships.insert(), ship_rows)
        if move_rows:
            await conn.execute(moves.insert(), move_rows)
        self._snapshots.forget(conn, [c.key for c in changes])


def _match_row(change: Change[MatchState]) -> dict[str, Any]:
    s = change.state
    if len(s.players) != 2 or s.created_at is None or s.status == "new":
        raise ValueError(f"match {change.key} has not been created; there is nothing to store")
    return {
        "match_id": change.key,
        "version": change.version,
        "status": s.status,
        "seat0_kind": s.players[0].kind,
        "seat0_id": s.players[0].id,
        "seat1_kind": s.players[1].kind,
        "seat1_id": s.players[1].id,
        "room_id": s.room_id,
        "rated": s.rated,
        "board": encode_board(s.board),
        "ladder": ladder_of(s.board),
        "seed": s.seed,
        "first_seat": s.first,
        "turn": s.turn,
        "winner": s.winner,
        "reason": s.reason,
        "shots_fired": len(s.shots),
        "chat_messages": s.chat_messages,
        "created_at": s.created_at,
        "started_at": s.started_at,
        "finished_at": s.finished_at,
    }


async def _stored_progress(
    conn: AsyncConnection, keys: Sequence[str]
) -> tuple[dict[str, set[int]], dict[str, int]]:
    """Seats with a stored fleet and the number of stored moves, per match."""
    if not keys:
        return {}, {}
    placed: dict[str, set[int]] = {}
    for match_id, seat in await conn.execute(
        select(match_ships.c.match_id, match_ships.c.seat)
        .where(match_ships.c.match_id.in_(keys))
        .distinct()
    ):
        placed.setdefault(match_id, set()).add(int(seat))
    fired = {
        match_id: int(n)
        for match_id, n in await conn.execute(
            select(moves.c.match_id, func.max(moves.c.number))
            .where(moves.c.match_id.in_(keys))
            .group_by(moves.c.match_id)
        )
    }
    return placed, fired


# ---------------------------------------------------------------- queries


class MatchSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a match list (no fleets, no seed: safe to show anyone)."""

    match_id: str
    status: str
    players: tuple[Player, Player]
    room_id: str | None
    rated: bool
    ladder: str
    turn: int | None
    winner: int | None
    reason: str | None
    shots_fired: int
    created_at: datetime
    finished_at: datetime | None


async def matches_of(
    conn: AsyncConnection,
    player_id: str,
    *,
    kind: str | None = None,
    status: Sequence[str] | None = None,
    limit: int = 50,
) -> list[MatchSummary]:
    """The newest matches ``player_id`` plays in either seat (optionally of one kind/status)."""
    seat0 = matches.c.seat0_id == player_id
    seat1 = matches.c.seat1_id == player_id
    if kind is not None:
        seat0 = seat0 & (matches.c.seat0_kind == kind)
        seat1 = seat1 & (matches.c.seat1_kind == kind)
    query = select(matches).where(seat0 | seat1)
    if status:
        query = query.where(matches.c.status.in_(list(status)))
    query = query.order_by(matches.c.created_at.desc(), matches.c.match_id).limit(limit)
    return [
        MatchSummary(
            match_id=r.match_id,
            status=r.status,
            players=(
                Player(kind=r.seat0_kind, id=r.seat0_id),
                Player(kind=r.seat1_kind, id=r.seat1_id),
            ),
            room_id=r.room_id,
            rated=bool(r.rated),
            ladder=r.ladder,
            turn=r.turn,
            winner=r.winner,
            reason=r.reason,
            shots_fired=int(r.shots_fired),
            created_at=r.created_at,
            finished_at=r.finished_at,
        )
        for r in await conn.execute(query)
    ]


__all__ = [
    "MatchStore",
    "MatchSummary",
    "Snapshots",
    "decode_board",
    "dialect_insert",
    "encode_board",
    "matches_of",
    "write_roots",
]
