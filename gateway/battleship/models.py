"""Request bodies and response views of the Battleship HTTP routes (msgspec: the documented schema).

Every body field ``player`` names who acts and is honoured only while authentication is
off (local play on one machine); with a token the acting player is always the token's
subject, and a ``player`` naming anyone else is refused with 403 ``wrong_principal``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from actors.lobby.store import RoomSummary
from actors.match.store import MatchSummary
from actors.ratings.store import LadderInfo, Standing
from schemas.base import Key, Name
from schemas.battleship import (
    STANDARD_BOARD,
    BoardSpec,
    Capacity,
    ChatPosted,
    ChatText,
    Coordinate,
    FleetPlaced,
    MatchCreated,
    MatchFinished,
    MatchStarted,
    Player,
    RoomClosed,
    RoomCreated,
    RoomUpdated,
    Seat,
    Seed,
    ShipPlacement,
    ShotFired,
)

__all__ = [
    "AgentInfo",
    "AgentPage",
    "CellName",
    "ChatBody",
    "FleetBody",
    "LadderPage",
    "LobbyEvent",
    "MatchEvent",
    "MatchPage",
    "MatchView",
    "NewMatch",
    "NewRoom",
    "PlayerBody",
    "ReplayBody",
    "ReplayEntry",
    "RoomDetail",
    "RoomMatch",
    "RoomPage",
    "SeatView",
    "ShotBody",
    "ShotView",
    "StandingsPage",
]

MatchEvent = MatchCreated | FleetPlaced | MatchStarted | ShotFired | MatchFinished | ChatPosted
"""Every event of a match, discriminated by ``type`` (``match.shot_fired.v1``, ...)."""
LobbyEvent = RoomCreated | RoomUpdated | RoomClosed
"""Every event of a room, discriminated by ``type`` (``lobby.room_updated.v1``, ...)."""

CellName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z](?:[1-9]|1[0-9]|2[0-6])$",
        description="A cell by name: row letter then 1-based column, e.g. `B7`.",
    ),
]
ActingPlayer = Annotated[
    Key,
    Meta(
        description=(
            "Who acts. Only with authentication off (local play); with a token the acting "
            "player is the token's subject and naming anyone else is a 403."
        )
    ),
]


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Inbound bodies refuse unknown fields, as commands do."""


# ---------------------------------------------------------------- request bodies


class PlayerBody(_Body, frozen=True):
    """A body that only names who acts (join, leave, close, resign); may be omitted."""

    player: ActingPlayer | None = None


class NewRoom(_Body, frozen=True):
    """Open a room with the caller as host."""

    name: Name
    capacity: Capacity = 2
    rated: bool = True
    board: BoardSpec = STANDARD_BOARD
    close_after_match: bool = False
    room_id: Key | None = None
    """The room's id; derived from the Idempotency-Key when absent (retries get the same id)."""
    player: ActingPlayer | None = None


class RoomMatch(_Body, frozen=True):
    """Start the match of a full room; the caller must be a member."""

    players: tuple[Key, Key] | None = None
    """The two members who play, in seat order; the first two members when absent."""
    match_id: Key | None = None
    seed: Seed | None = None
    first: Seat | None = None
    player: ActingPlayer | None = None


class NewMatch(_Body, frozen=True):
    """Start a match outside any room: against an agent (``opponent``) or with explicit seats.

    Give ``opponent`` to play it yourself (you take seat 0), or ``players`` for both seats.
    With a token, the only user a match may seat is the caller (other people join through
    rooms); agents may fill any seat. Rated matches take neither ``seed`` nor ``first`` from
    a signed-in caller: the seed decides the agent's fleet and shots.
    """

    opponent: Player | None = None
    players: tuple[Player, Player] | None = None
    match_id: Key | None = None
    """The match's id; derived from the Idempotency-Key when absent."""
    rated: bool = True
    board: BoardSpec = STANDARD_BOARD
    seed: Seed | None = None
    first: Seat | None = None
    player: ActingPlayer | None = None


class FleetBody(_Body, frozen=True):
    """Place your fleet: explicit ``ships``, or at random when they are omitted."""

    ships: tuple[ShipPlacement, ...] | None = None
    seed: Seed | None = None
    player: ActingPlayer | None = None


class ShotBody(_Body, frozen=True):
    """Fire at a cell: ``row`` and ``col`` (0-based), or ``cell`` by name (``B7``)."""

    row: Coordinate | None = None
    col: Coordinate | None = None
    cell: CellName | None = None
    player: ActingPlayer | None = None


class ChatBody(_Body, frozen=True):
    """Say something in the match (players only)."""

    text: ChatText
    player: ActingPlayer | None = None


# ---------------------------------------------------------------- views


class RoomPage(msgspec.Struct, frozen=True, kw_only=True):
    """Rooms newest first; ask again with ``before=next_before`` for older ones."""

    items: list[RoomSummary]
    next_before: datetime | None = None


class RoomDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A room as the lobby actor holds it now (``version`` is also the ETag)."""

    room_id: str
    version: int
    status: str
    name: str
    host: str
    capacity: int
    members: tuple[str, ...]
    rated: bool
    board: BoardSpec
    ladder: str
    close_after_match: bool
    match_id: str | None
    match_players: tuple[str, ...]
    matches_played: int
    created_at: datetime | None
    updated_at: datetime | None


class ShotView(msgspec.Struct, frozen=True, kw_only=True):
    """One shot of the match, in order."""

    number: int
    seat: int
    row: int
    col: int
    cell: str
    result: Literal["miss", "hit", "sunk"]
    at: datetime | None


class SeatView(msgspec.Struct, frozen=True, kw_only=True):
    """One seat and its waters, as far as the viewer may see them.

    ``grid`` has one string per row: ``.`` not fired at, ``o`` miss, ``X`` hit, ``#`` a cell
    of a sunk ship, ``S`` an unhit ship cell (only where ``fleet`` is shown).
    """

    seat: int
    player: Player
    placed: bool
    fleet: tuple[ShipPlacement, ...] | None
    """The ships: shown to their owner, to everyone once the match is over; else null."""
    grid: list[str]
    sunk: list[str]
    """Ships of this seat sunk so far, in fleet order."""
    afloat: int
    shots_fired: int


class MatchView(msgspec.Struct, frozen=True, kw_only=True):
    """A match as one viewer may see it: hidden fleets and the seed stay null until the end."""

    match_id: str
    version: int
    status: Literal["placing", "in_progress", "finished"]
    room_id: str | None
    rated: bool
    board: BoardSpec
    ladder: str
    first: int
    turn: int | None
    winner: int | None
    reason: str | None
    you: int | None
    """The viewer's seat (null for spectators)."""
    your_turn: bool
    seed: int | None
    seats: list[SeatView]
    shots: list[ShotView]
    chat_messages: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class MatchPage(msgspec.Struct, frozen=True, kw_only=True):
    """A player's matches, newest first (no fleets, no seeds)."""

    player: str
    items: list[MatchSummary]


class ReplayEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One stored match event; ``seq`` is its EVENTS stream sequence."""

    seq: int
    time: datetime
    id: str | None
    event: MatchEvent


class ReplayBody(msgspec.Struct, frozen=True, kw_only=True):
    """A match's events in stream order, redacted for the viewer until the match is over."""

    match_id: str
    viewer: str | None
    finished: bool
    redacted: bool
    """True when something was hidden (an unfinished match)."""
    events: list[ReplayEntry]
    unknown: int = 0
    """Stored events of a type this gateway cannot read (newer producers), left out."""


class AgentInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A player that can sit in an agent seat: a built-in baseline or a trained agent."""

    id: str
    source: Literal["baseline", "trained"]
    name: str
    description: str
    ladder: str | None = None
    """The board setup a trained agent was trained for (baselines play any)."""
    mean_shots: float | None = None
    median_shots: float | None = None
    eval_games: int | None = None
    registered_at: datetime | None = None


class AgentPage(msgspec.Struct, frozen=True, kw_only=True):
    """Every agent a match may seat: baselines first, then trained agents by mean shots."""

    items: list[AgentInfo]


class LadderPage(msgspec.Struct, frozen=True, kw_only=True):
    """Every ladder (one per board setup), busiest first."""

    items: list[LadderInfo]


class StandingsPage(msgspec.Struct, frozen=True, kw_only=True):
    """A ladder best first; ask again with ``offset=next_offset`` for more."""

    ladder_id: str
    items: list[Standing]
    next_offset: int | None = None
