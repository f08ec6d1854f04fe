"""The JSON text frames of ``/v1/ws/lobby`` and ``/v1/ws/matches/{id}``, discriminated by ``type``.

Server frames carry the EVENTS stream sequence (``seq``) of what they deliver; a client
that reconnects with ``last_seq`` (the last ``seq`` it processed) continues after it,
missing nothing and seeing nothing twice. Client frames (match socket only) are moves
and chat; each may carry a ``ref`` that names it: its answer repeats the ``ref``, and
sending the same ``ref`` again retries the same command rather than making a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from actors.lobby.store import RoomSummary
from gateway.battleship.models import CellName, LobbyEvent, MatchEvent
from schemas.base import RejectionKind
from schemas.battleship import ChatText, Coordinate, Seed, ShipPlacement

__all__ = [
    "CaughtUp",
    "ChatFrame",
    "ClientFrame",
    "CommandAck",
    "CommandRefused",
    "FireFrame",
    "Heartbeat",
    "LobbyEventFrame",
    "LobbyFrame",
    "LobbyReady",
    "MatchEventFrame",
    "MatchFrame",
    "MatchReady",
    "PlaceFleetFrame",
    "ResignFrame",
    "Reveal",
    "SocketError",
]

Ref = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[!-~]+$",
        description="The client's name for a command (visible ASCII): answers repeat it.",
    ),
]


class _Frame(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Frames are tagged objects: ``type`` names the frame and its version."""


# ---------------------------------------------------------------- both sockets


class CaughtUp(_Frame, frozen=True, tag="battleship.caught_up.v1"):
    """Everything stored up to ``seq`` was delivered; what follows is live."""

    seq: int


class Heartbeat(_Frame, frozen=True, tag="battleship.heartbeat.v1"):
    """A quiet socket is still alive; ``seq`` is the last sequence handled."""

    seq: int


class SocketError(_Frame, frozen=True, tag="battleship.socket_error.v1"):
    """The last frame before the server closes the socket (1008: fix the request; 1011: retry)."""

    code: str
    detail: str


# ---------------------------------------------------------------- /v1/ws/lobby


class LobbyReady(_Frame, frozen=True, tag="battleship.lobby_ready.v1"):
    """First lobby frame. ``rooms`` is a snapshot of the room list when the client did not
    resume (every room not closed, as of ``last_seq``); null on a resume."""

    from_seq: int
    last_seq: int
    rooms: list[RoomSummary] | None = None


class LobbyEventFrame(_Frame, frozen=True, tag="battleship.lobby_event.v1"):
    """A room was created, changed or closed; ``event`` carries the resulting members and status."""

    seq: int
    time: datetime
    id: str | None
    room_id: str
    event: LobbyEvent


LobbyFrame = LobbyReady | LobbyEventFrame | CaughtUp | Heartbeat | SocketError
"""Every frame the lobby socket sends."""


# ---------------------------------------------------------------- /v1/ws/matches/{id}


class Reveal(msgspec.Struct, frozen=True, kw_only=True):
    """The secrets of a finished match: its seed and both fleets."""

    seed: int
    fleets: tuple[tuple[ShipPlacement, ...] | None, tuple[ShipPlacement, ...] | None]


class MatchReady(_Frame, frozen=True, tag="battleship.match_ready.v1"):
    """First match frame: who the socket acts as and where it starts.

    ``player`` is the token's subject (or ``?player=`` with authentication off); a player
    without a seat in the match is a spectator: it watches, and its moves are refused.
    """

    match_id: str
    player: str
    from_seq: int
    last_seq: int
    """The EVENTS stream's last sequence when the socket opened."""


class MatchEventFrame(_Frame, frozen=True, tag="battleship.match_event.v1"):
    """One match event (a turn, a chat line, ...), redacted for this viewer.

    Before the match is over, ``match.created`` shows seed 0 and ``match.fleet_placed`` an
    empty ``ships`` for every seat but the viewer's; the ``match.finished`` frame carries
    ``reveal`` with the real seed and both fleets.
    """

    seq: int
    time: datetime
    id: str | None
    event: MatchEvent
    reveal: Reveal | None = None


class CommandAck(_Frame, frozen=True, tag="battleship.command_ack.v1"):
    """A client command was applied (or stored, ``pending``, when its outcome is late).

    Its events arrive as ``match_event`` frames like everyone else's.
    """

    ref: str | None
    command_id: str
    status: Literal["applied", "pending"]
    version: int | None = None


class CommandRefused(_Frame, frozen=True, tag="battleship.command_refused.v1"):
    """A client frame was refused; nothing changed. ``status`` is the HTTP status it maps to."""

    ref: str | None
    code: str
    detail: str
    kind: RejectionKind
    status: int
    command_id: str | None = None


MatchFrame = (
    MatchReady | MatchEventFrame | CaughtUp | Heartbeat | CommandAck | CommandRefused | SocketError
)
"""Every frame the match socket sends."""


class _ClientFrame(_Frame, frozen=True, forbid_unknown_fields=True):
    """Client frames refuse unknown fields, as commands do."""

    ref: Ref | None = None


class FireFrame(_ClientFrame, frozen=True, tag="battleship.fire.v1"):
    """Fire at ``row``/``col`` (0-based) or at ``cell`` (``B7``); only on your turn."""

    row: Coordinate | None = None
    col: Coordinate | None = None
    cell: CellName | None = None


class PlaceFleetFrame(_ClientFrame, frozen=True, tag="battleship.place_fleet.v1"):
    """Place your fleet: explicit ``ships``, or at random when omitted."""

    ships: tuple[ShipPlacement, ...] | None = None
    seed: Seed | None = None


class ChatFrame(_ClientFrame, frozen=True, kw_only=True, tag="battleship.chat.v1"):
    """Say something to the other player."""

    text: ChatText


class ResignFrame(_ClientFrame, frozen=True, tag="battleship.resign.v1"):
    """Concede the match."""


ClientFrame = FireFrame | PlaceFleetFrame | ChatFrame | ResignFrame
"""Every frame a client may send on the match socket."""
