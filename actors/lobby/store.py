"""The lobby's relational store (``rooms`` and ``room_members``) and the room list query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.actor import Change, Versioned
from actors.lobby.rules import Room
from actors.lobby.tables import room_members, rooms
from actors.match.store import decode_board, encode_board, write_roots
from schemas.battleship import BoardSpec, ladder_of

LISTED = ("open", "full", "in_match")
"""Statuses the room list shows by default: every room that is not closed."""


class LobbyStore:
    """Keeps ``Room`` in ``rooms`` (root row with the version) and ``room_members``."""

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[Room]]:
        if not keys:
            return {}
        keys = list(dict.fromkeys(keys))
        roots = (await conn.execute(select(rooms).where(rooms.c.room_id.in_(keys)))).all()
        if not roots:
            return {}
        members = await _members(conn, [r.room_id for r in roots])
        out: dict[str, Versioned[Room]] = {}
        for r in roots:
            listed = members.get(r.room_id, [])
            playing = sorted((seat, user) for user, seat in listed if seat is not None)
            room = Room(
                room_id=r.room_id,
                status=r.status,
                name=r.name,
                host=r.host,
                capacity=int(r.capacity),
                members=tuple(user for user, _ in listed),
                rated=bool(r.rated),
                board=decode_board(r.board),
                close_after_match=bool(r.close_after_match),
                match_id=r.match_id,
                match_players=tuple(user for _, user in playing),
                matches_played=int(r.matches_played),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            out[r.room_id] = Versioned(room, int(r.version))
        return out

    async def save(
        self, conn: AsyncConnection, actor: str, changes: Sequence[Change[Room]]
    ) -> None:
        if not changes:
            return
        await write_roots(
            conn, actor, rooms, rooms.c.room_id, changes, [_room_row(c) for c in changes]
        )
        # Rooms hold at most 16 members: rewriting a changed room's list is cheaper than a diff.
        await conn.execute(
            room_members.delete().where(room_members.c.room_id.in_([c.key for c in changes]))
        )
        rows = [row for c in changes for row in _member_rows(c.key, c.state)]
        if rows:
            await conn.execute(room_members.insert(), rows)


def _room_row(change: Change[Room]) -> dict[str, Any]:
    s = change.state
    if s.status == "absent" or s.created_at is None or s.updated_at is None:
        raise ValueError(f"room {change.key} has not been created; there is nothing to store")
    return {
        "room_id": change.key,
        "version": change.version,
        "status": s.status,
        "name": s.name,
        "host": s.host,
        "capacity": s.capacity,
        "rated": s.rated,
        "board": encode_board(s.board),
        "ladder": ladder_of(s.board),
        "close_after_match": s.close_after_match,
        "match_id": s.match_id,
        "matches_played": s.matches_played,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def _member_rows(room_id: str, room: Room) -> list[dict[str, Any]]:
    seats = {user: seat for seat, user in enumerate(room.match_players)}
    outsiders = set(seats) - set(room.members)
    if outsiders:
        # The rules keep players in the room until their match ends; anything else is a bug.
        raise ValueError(
            f"room {room_id}: match players {', '.join(sorted(outsiders))} are not members"
        )
    return [
        {"room_id": room_id, "position": i, "user_id": user, "match_seat": seats.get(user)}
        for i, user in enumerate(room.members)
    ]


async def _members(
    conn: AsyncConnection, room_ids: Sequence[str]
) -> dict[str, list[tuple[str, int | None]]]:
    out: dict[str, list[tuple[str, int | None]]] = {}
    for r in await conn.execute(
        select(room_members.c.room_id, room_members.c.user_id, room_members.c.match_seat)
        .where(room_members.c.room_id.in_(list(room_ids)))
        .order_by(room_members.c.room_id, room_members.c.position)
    ):
        out.setdefault(r.room_id, []).append((r.user_id, r.match_seat))
    return out


# ---------------------------------------------------------------- queries


class RoomSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the lobby list."""

    room_id: str
    name: str
    status: str
    host: str
    capacity: int
    members: tuple[str, ...]
    rated: bool
    board: BoardSpec
    ladder: str
    match_id: str | None
    matches_played: int
    created_at: datetime
    updated_at: datetime


async def list_rooms(
    conn: AsyncConnection,
    *,
    status: Sequence[str] = LISTED,
    member: str | None = None,
    limit: int = 50,
    created_before: datetime | None = None,
) -> list[RoomSummary]:
    """Rooms newest first: by status (every room but closed ones by default), optionally only
    those ``member`` is in; page with ``created_before`` (the last row's ``created_at``)."""
    query = select(rooms).where(rooms.c.status.in_(list(status)))
    if member is not None:
        query = query.where(
            rooms.c.room_id.in_(
                select(room_members.c.room_id).where(room_members.c.user_id == member)
            )
        )
    if created_before is not None:
        query = query.where(rooms.c.created_at < created_before)
    query = query.order_by(rooms.c.created_at.desc(), rooms.c.room_id).limit(limit)
    roots = (await conn.execute(query)).all()
    members = await _members(conn, [r.room_id for r in roots]) if roots else {}
    return [
        RoomSummary(
            room_id=r.room_id,
            name=r.name,
            status=r.status,
            host=r.host,
            capacity=int(r.capacity),
            members=tuple(user for user, _ in members.get(r.room_id, [])),
            rated=bool(r.rated),
            board=decode_board(r.board),
            ladder=r.ladder,
            match_id=r.match_id,
            matches_played=int(r.matches_played),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in roots
    ]


__all__ = ["LISTED", "LobbyStore", "RoomSummary", "list_rooms"]
