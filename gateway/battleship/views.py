"""Matches as one viewer may see them: the state view, replays and command outcomes, redacted.

The single redaction rule is ``actors.match.replay.redact``: until a match is over its
seed is hidden from everyone and each fleet from everyone but its owner. Everything a
Battleship route or socket hands out passes through it, command outcomes included (the
outcome of creating a match against an agent carries the agent's fleet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

import msgspec

from actors.battleship.engine import Mark, layout
from actors.battleship.errors import cell_name
from actors.battleship.specs import placements_of, rules_of
from actors.match.replay import Replay, redact
from actors.match.rules import MatchState, game_of
from gateway.battleship.models import (
    MatchEvent,
    MatchView,
    ReplayBody,
    ReplayEntry,
    SeatView,
    ShotView,
)
from schemas.base import Event
from schemas.battleship import FleetPlaced, MatchCreated, Player, ladder_of

__all__ = [
    "grid_of",
    "match_view",
    "redact_outcome",
    "replay_body",
    "seats_of",
]

_GLYPHS: Final = {Mark.UNKNOWN: ".", Mark.MISS: "o", Mark.HIT: "X", Mark.SUNK: "#"}
_SECRET_TYPES: Final = frozenset({"match.created.v1", "match.fleet_placed.v1"})
_FINISHED_TYPE: Final = "match.finished.v1"
_EVENT: msgspec.json.Decoder[MatchEvent] = msgspec.json.Decoder(MatchEvent)
_ENCODER = msgspec.json.Encoder()


def seats_of(players: Sequence[Player], viewer: str | None) -> set[int]:
    """The seats ``viewer`` plays as a user (empty for spectators and agents' ids)."""
    if viewer is None:
        return set()
    return {s for s, p in enumerate(players) if p.kind == "user" and p.id == viewer}


def grid_of(height: int, width: int, marks: bytes | None, ships: set[int]) -> list[str]:
    """Rows of glyphs: ``.`` unknown, ``o`` miss, ``X`` hit, ``#`` sunk, ``S`` unhit ship cell."""
    rows = []
    for r in range(height):
        row = []
        for c in range(width):
            i = r * width + c
            glyph = _GLYPHS[Mark(marks[i])] if marks is not None else "."
            if glyph == "." and i in ships:
                glyph = "S"
            row.append(glyph)
        rows.append("".join(row))
    return rows


def match_view(state: MatchState, version: int, viewer: str | None) -> MatchView:
    """``state`` (the actor's, unredacted) as ``viewer`` may see it (None: a spectator)."""
    if state.status == "new":
        raise ValueError(f"match {state.match_id} has not been created")
    rules = rules_of(state.board)
    game = game_of(state)
    finished = state.status == "finished"
    mine = seats_of(state.players, viewer)
    fired = [0, 0]
    for shot in state.shots:
        fired[shot.seat] += 1
    seats = []
    for seat, player in enumerate(state.players):
        fleet = state.fleets[seat]
        shown = fleet is not None and (finished or seat in mine)
        board = game.board(seat)
        ships: set[int] = set()
        if shown and fleet is not None:
            ships = {c for cells in layout(rules, placements_of(fleet)) for c in cells}
        seats.append(
            SeatView(
                seat=seat,
                player=player,
                placed=fleet is not None,
                fleet=fleet if shown else None,
                grid=grid_of(
                    rules.height, rules.width, board.marks if board is not None else None, ships
                ),
                sunk=[s.name for s in board.sunk()] if board is not None else [],
                afloat=len(board.afloat()) if board is not None else len(rules.fleet),
                shots_fired=fired[seat],
            )
        )
    shots = [
        ShotView(
            number=i + 1,
            seat=s.seat,
            row=s.row,
            col=s.col,
            cell=cell_name(s.row, s.col),
            result=s.result,
            at=s.at,
        )
        for i, s in enumerate(state.shots)
    ]
    status = state.status
    return MatchView(
        match_id=state.match_id,
        version=version,
        status=status,
        room_id=state.room_id,
        rated=state.rated,
        board=state.board,
        ladder=ladder_of(state.board),
        first=state.first,
        turn=state.turn,
        winner=state.winner,
        reason=state.reason,
        you=min(mine) if mine else None,
        your_turn=status == "in_progress" and state.turn in mine,
        seed=state.seed if finished else None,
        seats=seats,
        shots=shots,
        chat_messages=state.chat_messages,
        created_at=state.created_at,
        started_at=state.started_at,
        finished_at=state.finished_at,
    )


def replay_body(replay: Replay) -> ReplayBody:
    """A replay (already redacted by ``actors.match.replay``) as the route answers it."""
    entries = [
        ReplayEntry(seq=e.seq, time=e.time, id=e.id, event=_typed(e.event)) for e in replay.events
    ]
    return ReplayBody(
        match_id=replay.match_id,
        viewer=replay.viewer,
        finished=replay.finished,
        redacted=replay.redacted,
        events=entries,
        unknown=replay.unknown,
    )


def _typed(event: Event) -> MatchEvent:
    # The replay decodes with the match actor's event union, the members of MatchEvent.
    return cast(MatchEvent, event)


def redact_outcome(body: bytes, viewer: str | None) -> bytes:
    """A command outcome (``CommandResult`` JSON) with the events ``viewer`` may not see redacted.

    The seats are those ``viewer`` holds in the outcome's own ``match.created`` when it has
    one; otherwise the only fleet an outcome can carry is the sender's own placement.
    """
    try:
        document: dict[str, Any] = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body
    events = document.get("events")
    if not isinstance(events, list):
        return body
    types = {e.get("type") for e in events if isinstance(e, dict)}
    if not types & _SECRET_TYPES or _FINISHED_TYPE in types:
        return body
    decoded: list[tuple[dict[str, Any], MatchEvent]] = []
    for entry in events:
        if isinstance(entry, dict) and entry.get("type") in _SECRET_TYPES:
            decoded.append((entry, _EVENT.decode(_ENCODER.encode(entry.get("data")))))
    created = next((e for _, e in decoded if isinstance(e, MatchCreated)), None)
    for entry, event in decoded:
        if created is not None:
            seats = seats_of(created.players, viewer)
        elif isinstance(event, FleetPlaced) and event.player == viewer:
            seats = {event.seat}
        else:
            seats = set()
        entry["data"] = msgspec.to_builtins(redact(event, seats, False))
    return _ENCODER.encode(document)
