"""Builders shared by the encounter tests: contexts, and running commands through decide/evolve."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import count

from actors.encounter import rules
from schemas.base import Command, Context, Decision, Event, Rejection
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    NextTurn,
    SetInitiative,
    StartEncounter,
)
from schemas.flags import FlagVerdict
from schemas.mastery import MasteryResolved

KEY = "enc-1"
WHEN = datetime(2025, 1, 1, tzinfo=UTC)
_ids = count(1)


def ctx(key: str = KEY, message_id: str | None = None) -> Context:
    """A context as the runtime would pass it."""
    mid = message_id or f"msg-{next(_ids)}"
    return Context(key=key, message_id=mid, subject="test", received_at=WHEN, correlation_id=mid)


def events_of(decision: Decision) -> list[Event]:
    """The events of a decision, failing the test on a rejection."""
    assert not isinstance(decision, Rejection), decision
    return [e for e in decision if isinstance(e, Event)]


def rejection_of(decision: Decision) -> Rejection:
    """The rejection of a decision, failing the test if events were emitted."""
    assert isinstance(decision, Rejection), decision
    return decision


def apply(
    state: rules.EncounterState,
    *commands: Command | Event,
    combat: FlagVerdict | None = None,
) -> tuple[rules.EncounterState, list[Event]]:
    """Decide and fold each message in turn; every one must be accepted."""
    emitted: list[Event] = []
    for message in commands:
        if combat is None:
            decision = rules.decide(state, message, ctx())
        else:
            decision = rules.decide(state, message, ctx(), combat=combat)
        new = events_of(decision)
        state = rules.fold(state, new)
        emitted.extend(new)
    return state, emitted


def setup_encounter(
    initiatives: Sequence[tuple[str, int, int]] = (("a", 15, 2), ("b", 12, 1), ("c", 8, 0)),
    seed: int = 7,
) -> rules.EncounterState:
    """An encounter in setup whose combatants (id, initiative, Dexterity modifier) are placed."""
    state, _ = apply(rules.initial_state(KEY), CreateEncounter(seed=seed, campaign_id="camp-1"))
    for cid, initiative, dex in initiatives:
        state, _ = apply(
            state,
            AddCombatant(combatant_id=cid, name=cid.upper(), dexterity_modifier=dex),
            SetInitiative(combatant_id=cid, value=initiative),
        )
    return state


def started(
    initiatives: Sequence[tuple[str, int, int]] = (("a", 15, 2), ("b", 12, 1), ("c", 8, 0)),
) -> rules.EncounterState:
    """An active encounter at step 1."""
    state, _ = apply(setup_encounter(initiatives), StartEncounter())
    return state


def advance(state: rules.EncounterState) -> tuple[rules.EncounterState, list[Event]]:
    """End the current step as if effects and mastery resolved it with nothing to report."""
    step = state.step
    return apply(state, NextTurn(expected_step=step), MasteryResolved(step=step))
