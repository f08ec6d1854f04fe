"""A match's full replay from the event stream, redacted for whoever may not see hidden fleets yet.

Every move of a match is an event on ``evt.match.<id>.<name>``, so reading that history in
stream order and folding it rebuilds the match. Until the match finishes, ``MatchCreated.seed``
(it determines agent fleets and shots) and each ``FleetPlaced.ships`` are secret: a player sees
only their own fleet, anyone else sees neither. Once ``match.finished`` is in the stream
everything is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Union

import msgspec
from nats.js import JetStreamContext

from actors.kernel import history
from actors.kernel.bus import EVENTS
from actors.match import rules
from actors.match.rules import MatchState
from schemas.base import Event
from schemas.battleship import FleetPlaced, MatchCreated, MatchFinished
from schemas.headers import Header
from schemas.subjects import check_key

PRODUCER = "match"
HIDDEN_SEED = 0
"""The seed shown in a redacted ``MatchCreated``."""

_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[rules.EMITS])  # noqa: UP007


class ReplayEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event of the replay, where the stream stored it."""

    seq: int
    """Stream sequence: the replay's order."""
    time: datetime
    """When JetStream stored it."""
    id: str | None
    event: Event
    """The typed event (``type`` on the wire names it, e.g. ``match.shot_fired.v1``)."""


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    """A match as its event stream tells it, and the state those events fold into."""

    match_id: str
    viewer: str | None
    """The user the replay was redacted for (None: a spectator, or unredacted)."""
    finished: bool
    redacted: bool
    """True when something was hidden: an unfinished match seen by anyone but the server."""
    events: list[ReplayEvent]
    state: MatchState
    """The fold of ``events`` as shown: a hidden fleet is an empty tuple, a hidden seed 0."""
    unknown: int = 0
    """Stored events of a type this version cannot read (newer producers); left out."""


def seats_of(events: Iterable[Event], viewer: str | None) -> set[int]:
    """The seats ``viewer`` plays as a user in the match the events describe."""
    for event in events:
        if isinstance(event, MatchCreated):
            return {s for s, p in enumerate(event.players) if p.kind == "user" and p.id == viewer}
    return set()


def redact(event: Event, seats: set[int], finished: bool) -> Event:
    """``event`` as seen by a viewer sitting in ``seats`` (empty for spectators).

    Nothing is hidden once the match is finished. Before that the seed is hidden from
    everyone and a fleet from everyone but its owner. Other events are public as they are.
    """
    if finished:
        return event
    if isinstance(event, MatchCreated):
        return msgspec.structs.replace(event, seed=HIDDEN_SEED)
    if isinstance(event, FleetPlaced) and event.seat not in seats:
        return msgspec.structs.replace(event, ships=())
    return event


def redact_all(events: Sequence[ReplayEvent], viewer: str | None) -> tuple[list[ReplayEvent], bool]:
    """Every event redacted for ``viewer``; also whether the match is finished."""
    plain = [e.event for e in events]
    finished = any(isinstance(e, MatchFinished) for e in plain)
    seats = seats_of(plain, viewer)
    return [
        msgspec.structs.replace(e, event=redact(e.event, seats, finished)) for e in events
    ], finished


async def read_events(js: JetStreamContext, match_id: str) -> tuple[list[ReplayEvent], int]:
    """The match actor's events about ``match_id`` in stream order, each once, and the number of
    stored events whose type could not be read."""
    check_key(match_id)
    seen: set[str] = set()
    out: list[ReplayEvent] = []
    unknown = 0
    async for record in history.read(js, EVENTS, f"evt.match.{match_id}.>"):
        if record.headers.get(Header.PRODUCER, PRODUCER) != PRODUCER:
            continue
        if record.id is not None:
            if record.id in seen:
                continue  # republished outside JetStream's duplicate window
            seen.add(record.id)
        try:
            event: Event = _decoder.decode(record.data)
        except msgspec.ValidationError:
            unknown += 1
            continue
        out.append(ReplayEvent(seq=record.seq, time=record.time, id=record.id, event=event))
    return out, unknown


async def replay(
    js: JetStreamContext, match_id: str, *, viewer: str | None = None, reveal: bool = False
) -> Replay:
    """The replay of ``match_id`` for ``viewer`` (a user id; None for a spectator).

    ``reveal=True`` skips redaction, for trusted callers (operators, audits). A match with no
    events gives an empty replay whose state is ``new``.
    """
    events, unknown = await read_events(js, match_id)
    finished = any(isinstance(e.event, MatchFinished) for e in events)
    shown = events
    if not reveal:
        shown, finished = redact_all(events, viewer)
    state = rules.replay([e.event for e in shown], match_id)
    return Replay(
        match_id=match_id,
        viewer=None if reveal else viewer,
        finished=finished,
        redacted=not reveal and not finished and bool(events),
        events=shown,
        state=state,
        unknown=unknown,
    )


__all__ = [
    "HIDDEN_SEED",
    "Replay",
    "ReplayEvent",
    "read_events",
    "redact",
    "redact_all",
    "replay",
    "seats_of",
]
