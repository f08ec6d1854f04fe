"""The lobby actor: rooms keyed by room id, following the matches they host."""

from __future__ import annotations

from actors.kernel.actor import Actor
from actors.lobby import rules
from actors.lobby.rules import Room
from actors.lobby.store import LobbyStore

ACTOR: Actor[Room] = Actor(
    name="lobby",
    domain="lobby",
    state_type=Room,
    initial=rules.initial,
    decide=rules.decide,
    evolve=rules.evolve,
    store=LobbyStore(),
    commands=rules.COMMANDS,
    reactions=rules.REACTIONS,
    emits=rules.EMITS,
    key_of=rules.room_of,
    description=(
        "Battleship rooms: create, join, leave, close; open -> full -> in_match -> closed, "
        "moved by the matches the room hosts."
    ),
)

__all__ = ["ACTOR"]
