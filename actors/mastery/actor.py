"""The mastery actor: proc requests checked against the expirations of their step."""

from __future__ import annotations

import logging

from actors.encounter import metrics
from actors.kernel.actor import Actor
from actors.kernel.store import JsonStateStore
from actors.mastery import rules
from schemas.base import Command, Context, Decision, Event
from schemas.effects import ExpirationsResolved
from schemas.encounter import EncounterEnded
from schemas.mastery import MASTERY_COMMANDS, MASTERY_EVENTS

log = logging.getLogger("troupe.mastery")


def decide(state: rules.MasteryState, message: Command | Event, ctx: Context) -> Decision:
    """``rules.decide``, observed for metrics and logs."""
    decision = rules.decide(state, message, ctx)
    try:
        metrics.observe_mastery(message, ctx, decision)
    except Exception:
        log.exception("recording mastery metrics failed")
    return decision


# One JSON document per encounter, like effects: pending requests are read and written whole.
ACTOR: Actor[rules.MasteryState] = Actor(
    name="mastery",
    domain="mastery",
    state_type=rules.MasteryState,
    initial=rules.initial_state,
    decide=decide,
    evolve=rules.evolve,
    store=JsonStateStore(rules.MasteryState),
    commands=MASTERY_COMMANDS,
    reactions=(ExpirationsResolved, EncounterEnded),
    emits=MASTERY_EVENTS,
    description=(
        "Masteries: request_proc; on ExpirationsResolved(step) emits MasteryProc x count or "
        "ProcRequestRejected per request, then MasteryResolved(step)."
    ),
)
