"""The effects actor: timed effects per encounter, expired when the encounter's steps end."""

from __future__ import annotations

import logging

from actors.effects import rules
from actors.encounter import metrics
from actors.kernel.actor import Actor
from actors.kernel.store import JsonStateStore
from schemas.base import Command, Context, Decision, Event
from schemas.effects import EFFECTS_COMMANDS, EFFECTS_EVENTS
from schemas.encounter import EncounterEnded, TurnEnding

log = logging.getLogger("troupe.effects")


def decide(state: rules.EffectsState, message: Command | Event, ctx: Context) -> Decision:
    """``rules.decide``, observed for metrics and logs."""
    decision = rules.decide(state, message, ctx)
    try:
        metrics.observe_effects(message, ctx, decision)
    except Exception:
        log.exception("recording effects metrics failed")
    return decision


# One JSON document per encounter: the actor always reads and writes an encounter's effects
# whole, nobody queries them by column, and audit compares the same JSON it folds.
ACTOR: Actor[rules.EffectsState] = Actor(
    name="effects",
    domain="effects",
    state_type=rules.EffectsState,
    initial=rules.initial_state,
    decide=decide,
    evolve=rules.evolve,
    store=JsonStateStore(rules.EffectsState),
    commands=EFFECTS_COMMANDS,
    reactions=(TurnEnding, EncounterEnded),
    emits=EFFECTS_EVENTS,
    description=(
        "Effects: apply/remove; on TurnEnding(step) emits EffectExpired for each effect due "
        "and ExpirationsResolved(step); closes with the encounter."
    ),
)
