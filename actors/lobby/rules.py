"""Pure rules of the lobby: rooms that players create, join and leave, and that host a match."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from actors.battleship.errors import InvalidRules
from actors.battleship.specs import acting_as, rules_of
from schemas.base import Command, Context, Decision, Event, Message, Rejection
from schemas.battleship import (
    STANDARD_BOARD,
    BoardSpec,
    CloseRoom,
    CreateRoom,
    JoinRoom,
    LeaveRoom,
    MatchCreated,
    MatchFinished,
    RoomClosed,
    RoomCreated,
    RoomUpdated,
)
from schemas.subjects import parse

NO_ROOM = "_no_room"
"""The key ``room_of`` gives a match event without a room; ``decide`` ignores it."""

Status = Literal["absent", "open", "full", "in_match", "closed"]


class Room(msgspec.Struct, frozen=True, kw_only=True):
    """One room: settings, members (host first), and the match it is hosting."""

    room_id: str
    status: Status = "absent"
    name: str = ""
    host: str = ""
    capacity: int = 2
    members: tuple[str, ...] = ()
    rated: bool = True
    board: BoardSpec = STANDARD_BOARD
    close_after_match: bool = False
    match_id: str | None = None
    match_players: tuple[str, ...] = ()
    matches_played: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


def initial(key: str) -> Room:
    """A room never seen before."""
    return Room(room_id=key)


def room_of(message: Message, ctx: Context) -> str:
    """The key of the room a match event is about (``NO_ROOM`` for matches outside rooms)."""
    if isinstance(message, MatchCreated | MatchFinished):
        return message.room_id or NO_ROOM
    return ctx.key


COMMANDS = (CreateRoom, JoinRoom, LeaveRoom, CloseRoom)
REACTIONS = (MatchCreated, MatchFinished)
EMITS = (RoomCreated, RoomUpdated, RoomClosed)


def decide(state: Room, message: Command | Event, ctx: Context) -> Decision:
    """The events a lobby command or match event causes, or a rejection."""
    match message:
        case CreateRoom():
            return _create(state, message, ctx)
        case JoinRoom():
            return _join(state, message, ctx)
        case LeaveRoom():
            return _leave(state, message, ctx)
        case CloseRoom():
            return _close(state, message, ctx)
        case MatchCreated():
            return _match_created(state, message, ctx)
        case MatchFinished():
            return _match_finished(state, ctx)
        case _:
            return Rejection(
                code="unsupported_message",
                reason=f"the lobby does not handle {type(message).__name__}",
            )


def evolve(state: Room, event: Event) -> Room:
    """Apply one lobby event."""
    match event:
        case RoomCreated():
            return Room(
                room_id=state.room_id,
                status=event.status,
                name=event.name,
                host=event.host,
                capacity=event.capacity,
                members=event.members,
                rated=event.rated,
                board=event.board,
                close_after_match=event.close_after_match,
                created_at=event.at,
                updated_at=event.at,
            )
        case RoomUpdated():
            started, ended = event.change == "match_started", event.change == "match_ended"
            return msgspec.structs.replace(
                state,
                status=event.status,
                host=event.host,
                members=event.members,
                match_id=event.match_id if started else None if ended else state.match_id,
                match_players=event.players if started else () if ended else state.match_players,
                matches_played=state.matches_played + ended,
                updated_at=event.at,
            )
        case RoomClosed():
            ended = event.reason == "match_ended"
            members = state.members
            if event.reason == "empty":
                members = tuple(m for m in members if m != event.user)
            return msgspec.structs.replace(
                state,
                status="closed",
                members=members,
                match_id=None if ended else state.match_id,
                match_players=() if ended else state.match_players,
                matches_played=state.matches_played + ended,
                updated_at=event.at,
            )
        case _:
            return state


def _missing(state: Room, ctx: Context) -> Rejection | None:
    if state.status == "absent":
        return Rejection(
            code="room_not_found", reason=f"there is no room {state.room_id}", kind="not_found"
        )
    if state.status == "closed":
        return Rejection(
            code="room_closed", reason=f"room {state.name!r} is closed", kind="conflict"
        )
    return None


def _status_for(members: int, capacity: int) -> Literal["open", "full"]:
    return "full" if members >= capacity else "open"


def _create(state: Room, cmd: CreateRoom, ctx: Context) -> Decision:
    if refused := acting_as(ctx, cmd.host):
        return refused
    if state.status != "absent":
        return Rejection(
            code="room_exists", reason=f"room {state.room_id} already exists", kind="conflict"
        )
    try:
        rules_of(cmd.board)
    except InvalidRules as exc:
        return Rejection(code=exc.code, reason=str(exc))
    return [
        RoomCreated(
            name=cmd.name,
            host=cmd.host,
            capacity=cmd.capacity,
            rated=cmd.rated,
            board=cmd.board,
            close_after_match=cmd.close_after_match,
            members=(cmd.host,),
            status=_status_for(1, cmd.capacity),
            at=ctx.received_at,
        )
    ]


def _join(state: Room, cmd: JoinRoom, ctx: Context) -> Decision:
    if refused := acting_as(ctx, cmd.user) or _missing(state, ctx):
        return refused
    if cmd.user in state.members:
        return Rejection(
            code="already_member",
            reason=f"{cmd.user} is already in room {state.name!r}",
            kind="conflict",
        )
    if state.status == "in_match":
        return Rejection(
            code="room_in_match",
            reason=f"room {state.name!r} is playing a match; join when it ends",
            kind="conflict",
        )
    if state.status == "full":
        return Rejection(
            code="room_full",
            reason=f"room {state.name!r} is full ({len(state.members)}/{state.capacity})",
            kind="conflict",
        )
    members = (*state.members, cmd.user)
    return [
        RoomUpdated(
            change="joined",
            user=cmd.user,
            host=state.host,
            members=members,
            status=_status_for(len(members), state.capacity),
            at=ctx.received_at,
        )
    ]


def _leave(state: Room, cmd: LeaveRoom, ctx: Context) -> Decision:
    if refused := acting_as(ctx, cmd.user) or _missing(state, ctx):
        return refused
    if cmd.user not in state.members:
        return Rejection(
            code="not_a_member",
            reason=f"{cmd.user} is not in room {state.name!r}",
            kind="not_found",
        )
    if state.status == "in_match" and cmd.user in state.match_players:
        return Rejection(
            code="playing_match",
            reason=f"{cmd.user} is playing match {state.match_id}; resign it before leaving",
            kind="conflict",
        )
    members = tuple(m for m in state.members if m != cmd.user)
    if not members:
        return [RoomClosed(reason="empty", user=cmd.user, at=ctx.received_at)]
    return [
        RoomUpdated(
            change="left",
            user=cmd.user,
            host=members[0] if cmd.user == state.host else state.host,
            members=members,
            status="in_match" if state.status == "in_match" else "open",
            at=ctx.received_at,
        )
    ]


def _close(state: Room, cmd: CloseRoom, ctx: Context) -> Decision:
    if refused := acting_as(ctx, cmd.user) or _missing(state, ctx):
        return refused
    if cmd.user != state.host:
        return Rejection(
            code="not_host",
            reason=f"only the host ({state.host}) can close room {state.name!r}",
            kind="forbidden",
        )
    if state.status == "in_match":
        return Rejection(
            code="room_in_match",
            reason=f"room {state.name!r} is playing match {state.match_id}; close it afterwards",
            kind="conflict",
        )
    return [RoomClosed(reason="host_closed", user=cmd.user, at=ctx.received_at)]


def _match_id(ctx: Context) -> str:
    # A reaction's context names the event's own subject, whose key is the match id.
    return parse(ctx.subject).key


def _match_created(state: Room, event: MatchCreated, ctx: Context) -> Decision:
    users = tuple(p.id for p in event.players if p.kind == "user")
    # Only a full room whose members are the players can start; anything else is a match
    # created outside this room's flow, which the room does not follow.
    if state.status != "full" or not set(users) <= set(state.members):
        return []
    return [
        RoomUpdated(
            change="match_started",
            match_id=_match_id(ctx),
            players=users,
            host=state.host,
            members=state.members,
            status="in_match",
            at=ctx.received_at,
        )
    ]


def _match_finished(state: Room, ctx: Context) -> Decision:
    match_id = _match_id(ctx)
    if state.status != "in_match" or state.match_id != match_id:
        return []
    if state.close_after_match:
        return [RoomClosed(reason="match_ended", match_id=match_id, at=ctx.received_at)]
    return [
        RoomUpdated(
            change="match_ended",
            match_id=match_id,
            host=state.host,
            members=state.members,
            status=_status_for(len(state.members), state.capacity),
            at=ctx.received_at,
        )
    ]


__all__ = [
    "COMMANDS",
    "EMITS",
    "NO_ROOM",
    "REACTIONS",
    "Room",
    "decide",
    "evolve",
    "initial",
    "room_of",
]
