"""The ratings' relational store (``ladders`` and ``ratings``) and the ladder queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.actor import Change, Versioned
from actors.match.store import Snapshots, dialect_insert, write_roots
from actors.ratings.rules import Entry, Ladder, entry_key
from actors.ratings.tables import ladders, ratings
from schemas.battleship import Player

_ENTRY_COLUMNS = ("rating", "games", "wins", "losses", "streak", "peak", "last_played")


class RatingsStore:
    """Keeps ``Ladder`` in ``ladders`` (root row, with the version) and a ``ratings`` row per entry.

    ``save`` upserts only the entries that differ from what the same transaction loaded, so a
    rated match writes two rating rows however long the ladder is.
    """

    def __init__(self) -> None:
        self._snapshots: Snapshots[Ladder] = Snapshots()

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[Ladder]]:
        if not keys:
            return {}
        keys = list(dict.fromkeys(keys))
        roots = (await conn.execute(select(ladders).where(ladders.c.ladder_id.in_(keys)))).all()
        if not roots:
            return {}
        entries = await _entries(conn, [r.ladder_id for r in roots])
        out = {
            r.ladder_id: Versioned(
                Ladder(
                    ladder_id=r.ladder_id,
                    entries=entries.get(r.ladder_id, {}),
                    rated_matches=int(r.rated_matches),
                    updated_at=r.updated_at,
                ),
                int(r.version),
            )
            for r in roots
        }
        self._snapshots.remember(conn, out)
        return out

    async def save(
        self, conn: AsyncConnection, actor: str, changes: Sequence[Change[Ladder]]
    ) -> None:
        if not changes:
            return
        rows = []
        for c in changes:
            if c.state.updated_at is None:
                raise ValueError(f"ladder {c.key} has no events; there is nothing to store")
            rows.append(
                {
                    "ladder_id": c.key,
                    "version": c.version,
                    "rated_matches": c.state.rated_matches,
                    "updated_at": c.state.updated_at,
                }
            )
        await write_roots(conn, actor, ladders, ladders.c.ladder_id, changes, rows)
        bases = {c.key: self._snapshots.base(conn, c) for c in changes}
        unknown = [k for k, b in bases.items() if b is None]
        stored = await _entries(conn, unknown) if unknown else {}
        upserts: list[dict[str, Any]] = []
        for c in changes:
            base = bases[c.key]
            before = base.entries if base is not None else stored.get(c.key, {})
            upserts += [
                _entry_row(c.key, entry)
                for key, entry in c.state.entries.items()
                if before.get(key) != entry
            ]
        if upserts:
            insert = dialect_insert(conn, ratings)
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[
                        ratings.c.ladder_id,
                        ratings.c.player_kind,
                        ratings.c.player_id,
                    ],
                    set_={name: insert.excluded[name] for name in _ENTRY_COLUMNS},
                ),
                upserts,
            )
        self._snapshots.forget(conn, [c.key for c in changes])


def _entry_row(ladder_id: str, entry: Entry) -> dict[str, Any]:
    return {
        "ladder_id": ladder_id,
        "player_kind": entry.player.kind,
        "player_id": entry.player.id,
        "rating": entry.rating,
        "games": entry.games,
        "wins": entry.wins,
        "losses": entry.losses,
        "streak": entry.streak,
        "peak": entry.peak,
        "last_played": entry.last_played,
    }


def _entry_of(r: Any) -> Entry:
    return Entry(
        player=Player(kind=r.player_kind, id=r.player_id),
        rating=float(r.rating),
        games=int(r.games),
        wins=int(r.wins),
        losses=int(r.losses),
        streak=int(r.streak),
        peak=float(r.peak),
        last_played=r.last_played,
    )


async def _entries(conn: AsyncConnection, ladder_ids: Sequence[str]) -> dict[str, dict[str, Entry]]:
    out: dict[str, dict[str, Entry]] = {}
    for r in await conn.execute(
        select(ratings)
        .where(ratings.c.ladder_id.in_(list(ladder_ids)))
        .order_by(ratings.c.ladder_id, ratings.c.player_kind, ratings.c.player_id)
    ):
        entry = _entry_of(r)
        out.setdefault(r.ladder_id, {})[entry_key(entry.player)] = entry
    return out


# ---------------------------------------------------------------- queries


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """One row of a ladder: a player's rank (1 = best), rating and record."""

    rank: int
    player: Player
    rating: float
    games: int
    wins: int
    losses: int
    streak: int
    peak: float
    last_played: datetime | None


def _order() -> tuple[Any, ...]:
    # The same order as ``rules.standings``: rating, then more games, then kind and id.
    return (
        ratings.c.rating.desc(),
        ratings.c.games.desc(),
        ratings.c.player_kind,
        ratings.c.player_id,
    )


async def ladder(
    conn: AsyncConnection,
    ladder_id: str = "standard",
    *,
    kind: Literal["user", "agent"] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Standing]:
    """A ladder best first (users and agents, or one kind); ranks count from ``offset + 1``."""
    query = select(ratings).where(ratings.c.ladder_id == ladder_id)
    if kind is not None:
        query = query.where(ratings.c.player_kind == kind)
    query = query.order_by(*_order()).limit(limit).offset(offset)
    rows = (await conn.execute(query)).all()
    return [_standing(offset + i + 1, r) for i, r in enumerate(rows)]


async def standing(conn: AsyncConnection, ladder_id: str, player: Player) -> Standing | None:
    """One player's standing with its rank among everyone on the ladder, or None."""
    row = (
        await conn.execute(
            select(ratings).where(
                ratings.c.ladder_id == ladder_id,
                ratings.c.player_kind == player.kind,
                ratings.c.player_id == player.id,
            )
        )
    ).first()
    if row is None:
        return None
    ahead = select(func.count()).where(
        ratings.c.ladder_id == ladder_id,
        (ratings.c.rating > row.rating)
        | ((ratings.c.rating == row.rating) & (ratings.c.games > row.games))
        | (
            (ratings.c.rating == row.rating)
            & (ratings.c.games == row.games)
            & (
                (ratings.c.player_kind < row.player_kind)
                | (
                    (ratings.c.player_kind == row.player_kind)
                    & (ratings.c.player_id < row.player_id)
                )
            )
        ),
    )
    rank = int((await conn.execute(ahead)).scalar_one()) + 1
    return _standing(rank, row)


class LadderInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A ladder and its size."""

    ladder_id: str
    players: int
    rated_matches: int
    updated_at: datetime


async def list_ladders(conn: AsyncConnection) -> list[LadderInfo]:
    """Every ladder with its number of players, busiest first."""
    players = (
        select(ratings.c.ladder_id, func.count().label("players"))
        .group_by(ratings.c.ladder_id)
        .subquery()
    )
    query = (
        select(ladders, func.coalesce(players.c.players, 0).label("players"))
        .outerjoin(players, players.c.ladder_id == ladders.c.ladder_id)
        .order_by(ladders.c.rated_matches.desc(), ladders.c.ladder_id)
    )
    return [
        LadderInfo(
            ladder_id=r.ladder_id,
            players=int(r.players),
            rated_matches=int(r.rated_matches),
            updated_at=r.updated_at,
        )
        for r in await conn.execute(query)
    ]


def _standing(rank: int, r: Any) -> Standing:
    entry = _entry_of(r)
    return Standing(
        rank=rank,
        player=entry.player,
        rating=entry.rating,
        games=entry.games,
        wins=entry.wins,
        losses=entry.losses,
        streak=entry.streak,
        peak=entry.peak,
        last_played=entry.last_played,
    )


__all__ = ["LadderInfo", "RatingsStore", "Standing", "ladder", "list_ladders", "standing"]
