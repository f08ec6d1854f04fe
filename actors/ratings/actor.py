"""The ratings actor: one Elo ladder per board setup, moved by finished rated matches."""

from __future__ import annotations

from actors.kernel.actor import Actor
from actors.ratings import rules
from actors.ratings.rules import Ladder
from actors.ratings.store import RatingsStore

ACTOR: Actor[Ladder] = Actor(
    name="ratings",
    domain="ratings",
    state_type=Ladder,
    initial=rules.initial,
    decide=rules.decide,
    evolve=rules.evolve,
    store=RatingsStore(),
    commands=rules.COMMANDS,
    reactions=rules.REACTIONS,
    emits=rules.EMITS,
    key_of=rules.ladder_key,
    description="Elo ladders (key = ladder id) for users and agents, updated by rated matches.",
)

__all__ = ["ACTOR"]
