"""Commands and events of the Battleship lobby, match and ratings actors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from schemas.base import Command, Event, Key, Name

Side = Annotated[int, Meta(ge=1, le=26, description="Rows or columns of the board.")]
Coordinate = Annotated[int, Meta(ge=0, le=25, description="0-based row or column.")]
ShipLength = Annotated[int, Meta(ge=1, le=26)]
ShipName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="A ship type.")]
Seat = Annotated[int, Meta(ge=0, le=1, description="0 or 1, the order players were listed in.")]
Capacity = Annotated[int, Meta(ge=2, le=16, description="Most members a room holds.")]
Seed = Annotated[int, Meta(ge=0, le=2**63 - 1)]
ChatText = Annotated[str, Meta(min_length=1, max_length=500)]
Orientation = Literal["horizontal", "vertical"]
PlayerKind = Literal["user", "agent"]
ShotResult = Literal["miss", "hit", "sunk"]
RoomStatus = Literal["open", "full", "in_match", "closed"]


class ShipSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A ship type of the fleet."""

    name: ShipName
    length: ShipLength


STANDARD_FLEET: tuple[ShipSpec, ...] = (
    ShipSpec(name="carrier", length=5),
    ShipSpec(name="battleship", length=4),
    ShipSpec(name="cruiser", length=3),
    ShipSpec(name="submarine", length=3),
    ShipSpec(name="destroyer", length=2),
)


class BoardSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The setup of a game: board size, fleet and the optional no-touch rule."""

    height: Side = 10
    width: Side = 10
    fleet: tuple[ShipSpec, ...] = STANDARD_FLEET
    no_touch: bool = False


STANDARD_BOARD = BoardSpec()


def ladder_of(board: BoardSpec) -> str:
    """The ladder (ratings key) a match on ``board`` counts for: one ladder per setup.

    ``standard`` for the classic 10x10 game, otherwise e.g. ``6x6_3-2`` (``_nt`` appended
    under the no-touch rule), so ratings earned on different setups never mix.
    """
    if board == STANDARD_BOARD:
        return "standard"
    lengths = "-".join(str(s.length) for s in board.fleet)
    return f"{board.height}x{board.width}_{lengths}" + ("_nt" if board.no_touch else "")


class ShipPlacement(msgspec.Struct, frozen=True, kw_only=True):
    """Where one ship lies: its top or left cell and its orientation."""

    ship: ShipName
    row: Coordinate
    col: Coordinate
    orientation: Orientation = "horizontal"


class Player(msgspec.Struct, frozen=True, kw_only=True):
    """A match participant: a user, or an agent (a baseline player name or a trained agent id)."""

    kind: PlayerKind
    id: Key


# ---------------------------------------------------------------- lobby (key = room id)


class CreateRoom(Command, frozen=True, tag="lobby.create.v1"):
    """Open a room; ``host`` is its first member."""

    name: Name
    host: Key
    capacity: Capacity = 2
    rated: bool = True
    board: BoardSpec = STANDARD_BOARD
    close_after_match: bool = False
    """Close the room when its match ends instead of reopening it for a rematch."""


class JoinRoom(Command, frozen=True, tag="lobby.join.v1"):
    """Join an open room."""

    user: Key


class LeaveRoom(Command, frozen=True, tag="lobby.leave.v1"):
    """Leave a room; the next member becomes host, and the last one out closes it."""

    user: Key


class CloseRoom(Command, frozen=True, tag="lobby.close.v1"):
    """Close a room (host only, not during a match)."""

    user: Key


class RoomCreated(Event, frozen=True, tag="lobby.room_created.v1"):
    """A room was opened."""

    name: str
    host: str
    capacity: int
    rated: bool
    board: BoardSpec
    close_after_match: bool
    members: tuple[str, ...]
    status: RoomStatus
    at: datetime


class RoomUpdated(Event, frozen=True, tag="lobby.room_updated.v1"):
    """A room changed; carries the resulting members, host and status."""

    change: Literal["joined", "left", "match_started", "match_ended"]
    host: str
    members: tuple[str, ...]
    status: RoomStatus
    at: datetime
    user: str | None = None
    match_id: str | None = None
    players: tuple[str, ...] = ()
    """The members playing the match (``match_started`` only)."""


class RoomClosed(Event, frozen=True, tag="lobby.room_closed.v1"):
    """A room was closed for good."""

    reason: Literal["host_closed", "empty", "match_ended"]
    at: datetime
    user: str | None = None
    match_id: str | None = None


# ---------------------------------------------------------------- match (key = match id)


class CreateMatch(Command, frozen=True, tag="match.create.v1"):
    """Start a match between two players (users or agents).

    ``seed`` drives every random choice of the match (who fires first when ``first`` is not
    given, agent fleets, agent shots); when absent it is derived from the command's message id.
    """

    players: tuple[Player, Player]
    room_id: Key | None = None
    rated: bool = True
    board: BoardSpec = STANDARD_BOARD
    seed: Seed | None = None
    first: Seat | None = None


class PlaceFleet(Command, frozen=True, tag="match.place_fleet.v1"):
    """Place the player's fleet: explicit ``ships``, or at random when ``ships`` is omitted."""

    player: Key
    ships: tuple[ShipPlacement, ...] | None = None
    seed: Seed | None = None
    """Seed of the random placement; derived from the match and message when absent."""


class Fire(Command, frozen=True, tag="match.fire.v1"):
    """Fire at the opponent's cell (row, col)."""

    player: Key
    row: Coordinate
    col: Coordinate


class Resign(Command, frozen=True, tag="match.resign.v1"):
    """Concede the match."""

    player: Key


class Chat(Command, frozen=True, tag="match.chat.v1"):
    """Say something to the other player."""

    player: Key
    text: ChatText


class MatchCreated(Event, frozen=True, tag="match.created.v1"):
    """A match was set up; fleets are placed next."""

    players: tuple[Player, Player]
    rated: bool
    board: BoardSpec
    seed: int
    """Secret until the match ends: it determines agent fleets and shots."""
    first: int
    at: datetime
    room_id: str | None = None


class FleetPlaced(Event, frozen=True, tag="match.fleet_placed.v1"):
    """A player's fleet is on the board.

    ``ships`` is secret from the opponent until the match ends; whoever streams match events
    to players must strip it.
    """

    seat: int
    player: str
    ships: tuple[ShipPlacement, ...]
    random: bool
    at: datetime


class MatchStarted(Event, frozen=True, tag="match.started.v1"):
    """Both fleets are placed; ``turn`` fires first."""

    turn: int
    at: datetime


class ShotFired(Event, frozen=True, tag="match.shot_fired.v1"):
    """A shot and its result; ``ship`` is named when the shot sinks it."""

    seat: int
    player: str
    number: int
    """1-based count of shots in the match."""
    row: int
    col: int
    cell: str
    """The cell's name, e.g. ``B7`` (row letter, 1-based column)."""
    result: ShotResult
    at: datetime
    ship: str | None = None
    sunk_cells: tuple[tuple[int, int], ...] = ()
    next_turn: int | None = None
    """The seat to fire next, or None when this shot won the match."""
    by_agent: bool = False


class MatchFinished(Event, frozen=True, tag="match.finished.v1"):
    """The match is over."""

    winner: Player
    loser: Player
    winner_seat: int
    reason: Literal["fleet_sunk", "resigned"]
    rated: bool
    ladder: str
    shots: tuple[int, int]
    """Shots fired by seat 0 and seat 1."""
    at: datetime
    room_id: str | None = None
    created_at: datetime | None = None
    """When the match was created, so the match's length is known from this event alone."""
    started_at: datetime | None = None
    """When the battle started (None when a player resigned during placement)."""


class ChatPosted(Event, frozen=True, tag="match.chat_posted.v1"):
    """A chat message in the match."""

    seat: int
    player: str
    text: str
    at: datetime


# ---------------------------------------------------------------- ratings (key = ladder id)


class Enroll(Command, frozen=True, tag="ratings.enroll.v1"):
    """Put a user or agent on the ladder before its first rated match."""

    player: Player


class PlayerEnrolled(Event, frozen=True, tag="ratings.player_enrolled.v1"):
    """A player joined the ladder at the initial rating."""

    player: Player
    rating: float
    at: datetime


class RatingChange(msgspec.Struct, frozen=True, kw_only=True):
    """One player's ladder entry after a rated match."""

    player: Player
    result: Literal["win", "loss"]
    before: float
    after: float
    games: int
    wins: int
    losses: int
    streak: int
    """Current streak: +n after n wins in a row, -n after n losses in a row."""


class MatchRated(Event, frozen=True, tag="ratings.match_rated.v1"):
    """A finished rated match moved both players' Elo ratings."""

    match_id: str
    changes: tuple[RatingChange, RatingChange]
    """Winner first."""
    at: datetime


LOBBY_COMMANDS = (CreateRoom, JoinRoom, LeaveRoom, CloseRoom)
LOBBY_EVENTS = (RoomCreated, RoomUpdated, RoomClosed)
MATCH_COMMANDS = (CreateMatch, PlaceFleet, Fire, Resign, Chat)
MATCH_EVENTS = (MatchCreated, FleetPlaced, MatchStarted, ShotFired, MatchFinished, ChatPosted)
RATINGS_COMMANDS = (Enroll,)
RATINGS_EVENTS = (PlayerEnrolled, MatchRated)
