"""The wiring of the three turn-step actors: subjects, reactions, the flag gate, the store rows."""

from __future__ import annotations

from actors.effects.actor import ACTOR as EFFECTS
from actors.encounter import rules
from actors.encounter.actor import ACTOR as ENCOUNTER
from actors.encounter.actor import make_actor
from actors.encounter.flagstore import FlagHolder
from actors.encounter.store import combatant_rows, initiative_rows
from actors.mastery.actor import ACTOR as MASTERY
from schemas.base import Rejection, domain_of
from schemas.effects import EFFECTS_EVENTS, ExpirationsResolved
from schemas.encounter import (
    ENCOUNTER_EVENTS,
    CreateEncounter,
    EncounterEnded,
    EndEncounter,
    NextTurn,
    TurnEnding,
)
from schemas.flags import COMBAT, FeatureFlag
from schemas.mastery import MASTERY_EVENTS, MasteryResolved
from tests.unit.encounter.support import KEY, ctx, started


def test_each_actor_reacts_to_the_previous_link_of_the_step() -> None:
    assert ENCOUNTER.reactions == (MasteryResolved,)
    assert set(EFFECTS.reactions) == {TurnEnding, EncounterEnded}
    assert set(MASTERY.reactions) == {ExpirationsResolved, EncounterEnded}
    for actor, emitted in (
        (ENCOUNTER, ENCOUNTER_EVENTS),
        (EFFECTS, EFFECTS_EVENTS),
        (MASTERY, MASTERY_EVENTS),
    ):
        assert tuple(actor.emits) == emitted
        assert {domain_of(e) for e in actor.emits} == {actor.domain}
        assert {domain_of(c) for c in actor.commands} == {actor.domain}
        assert actor.name == actor.domain


def test_the_flag_gates_commands_but_never_a_step_already_ending() -> None:
    holder = FlagHolder(COMBAT)
    actor = make_actor(holder)
    state = started()
    ending = actor.decide(state, NextTurn(expected_step=1), ctx())
    assert not isinstance(ending, Rejection)
    state = rules.fold(state, list(ending))  # type: ignore[arg-type]
    holder.set(FeatureFlag(name=COMBAT, enabled=True, kill_switch=True, note="outage"), 1)
    refused = actor.decide(state, CreateEncounter(seed=1, campaign_id="camp-1"), ctx())
    assert isinstance(refused, Rejection)
    assert refused.code == "combat_disabled"
    assert "kill switch is on (outage)" in refused.reason
    finished = actor.decide(state, MasteryResolved(step=1), ctx())
    assert not isinstance(finished, Rejection)
    assert [type(e).__name__ for e in finished] == ["TurnEnded", "TurnStarted"]
    state = rules.fold(state, list(finished))  # type: ignore[arg-type]
    assert not isinstance(actor.decide(state, EndEncounter(), ctx()), Rejection)


def test_each_actor_has_its_own_flag_holder() -> None:
    first, second = make_actor(), make_actor()
    assert first.extra["flags"] is not second.extra["flags"]
    assert isinstance(ENCOUNTER.extra["flags"], FlagHolder)


def test_rows_follow_the_state() -> None:
    state = started()
    rows = combatant_rows(state)
    assert [r["position"] for r in rows.values()] == [0, 1, 2]
    assert all(r["encounter_id"] == KEY for r in rows.values())
    assert {cid: r["value"] for cid, r in initiative_rows(state).items()} == {
        "a": 15,
        "b": 12,
        "c": 8,
    }
