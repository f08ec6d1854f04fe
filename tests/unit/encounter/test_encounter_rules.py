"""Encounter rules: setup, initiative, start, turn steps, defeat, skip, end and every refusal."""

from __future__ import annotations

import pytest

from actors.encounter import rules
from schemas.encounter import (
    AbilityScores,
    AddCombatant,
    CombatantAdded,
    CombatantDefeated,
    CombatantRemoved,
    CreateEncounter,
    DefeatCombatant,
    EncounterCreated,
    EncounterEnded,
    EncounterStarted,
    EndEncounter,
    InitiativeRolled,
    InitiativeSet,
    NextTurn,
    RemoveCombatant,
    RollInitiative,
    SetInitiative,
    SkipCombatant,
    SkipScheduled,
    StartEncounter,
    TurnEnded,
    TurnEnding,
    TurnSkipped,
    TurnStarted,
)
from schemas.mastery import MasteryResolved, RequestProc
from tests.unit.encounter.support import (
    KEY,
    advance,
    apply,
    ctx,
    events_of,
    rejection_of,
    setup_encounter,
    started,
)


def created() -> rules.EncounterState:
    state, _ = apply(rules.initial_state(KEY), CreateEncounter(seed=42, campaign_id="camp-1"))
    return state


# Create


def test_create_opens_setup() -> None:
    state, events = apply(
        rules.initial_state(KEY), CreateEncounter(seed=42, campaign_id="camp-1", name="Ambush")
    )
    assert events == [EncounterCreated(seed=42, campaign_id="camp-1", name="Ambush")]
    assert (state.status, state.seed, state.campaign_id, state.name) == (
        "setup",
        42,
        "camp-1",
        "Ambush",
    )


def test_create_twice_is_a_conflict() -> None:
    r = rejection_of(rules.decide(created(), CreateEncounter(seed=1, campaign_id="c"), ctx()))
    assert (r.kind, r.code) == ("conflict", "already_exists")


@pytest.mark.parametrize(
    "command",
    [
        AddCombatant(combatant_id="a", name="A"),
        StartEncounter(),
        NextTurn(expected_step=0),
        EndEncounter(),
        RollInitiative(),
    ],
)
def test_commands_before_create_are_not_found(command: object) -> None:
    r = rejection_of(rules.decide(rules.initial_state(KEY), command, ctx()))  # type: ignore[arg-type]
    assert (r.kind, r.code) == ("not_found", "unknown_encounter")
    assert KEY in r.reason


# Combatants


def test_add_combatant_derives_dexterity_from_scores() -> None:
    state, events = apply(
        created(),
        AddCombatant(
            combatant_id="rogue",
            name="Rogue",
            abilities=AbilityScores(dexterity=18),
            character_ref="sheet-9",
            initiative_bonus=5,
        ),
    )
    (added,) = events
    assert isinstance(added, CombatantAdded)
    assert added.dexterity_modifier == 4
    assert added.abilities == AbilityScores(dexterity=18)
    c = state.combatant("rogue")
    assert c is not None
    assert (c.dexterity_modifier, c.initiative_bonus, c.character_ref) == (4, 5, "sheet-9")


def test_add_combatant_with_modifier_or_nothing() -> None:
    state, _ = apply(
        created(),
        AddCombatant(combatant_id="a", name="A", dexterity_modifier=-1),
        AddCombatant(combatant_id="b", name="B"),
        AddCombatant(
            combatant_id="c", name="C", abilities=AbilityScores(dexterity=14), dexterity_modifier=2
        ),
    )
    assert [c.dexterity_modifier for c in state.combatants] == [-1, 0, 2]


def test_add_combatant_with_disagreeing_modifier_is_invalid() -> None:
    command = AddCombatant(
        combatant_id="a", name="A", abilities=AbilityScores(dexterity=14), dexterity_modifier=4
    )
    r = rejection_of(rules.decide(created(), command, ctx()))
    assert (r.kind, r.code) == ("invalid", "modifier_mismatch")
    assert "Dexterity 14" in r.reason


def test_duplicate_combatant_is_a_conflict() -> None:
    state, _ = apply(created(), AddCombatant(combatant_id="a", name="A"))
    r = rejection_of(rules.decide(state, AddCombatant(combatant_id="a", name="A2"), ctx()))
    assert (r.kind, r.code) == ("conflict", "duplicate_combatant")


def test_combatant_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MAX_COMBATANTS", 2)
    state, _ = apply(
        created(),
        AddCombatant(combatant_id="a", name="A"),
        AddCombatant(combatant_id="b", name="B"),
    )
    r = rejection_of(rules.decide(state, AddCombatant(combatant_id="c", name="C"), ctx()))
    assert (r.kind, r.code) == ("invalid", "too_many_combatants")


def test_remove_combatant_in_setup() -> None:
    state, events = apply(
        created(), AddCombatant(combatant_id="a", name="A"), RemoveCombatant(combatant_id="a")
    )
    assert events[-1] == CombatantRemoved(combatant_id="a")
    assert state.combatants == ()


def test_remove_unknown_combatant_is_not_found() -> None:
    r = rejection_of(rules.decide(created(), RemoveCombatant(combatant_id="x"), ctx()))
    assert (r.kind, r.code) == ("not_found", "unknown_combatant")


def test_remove_during_combat_points_to_defeat() -> None:
    r = rejection_of(rules.decide(started(), RemoveCombatant(combatant_id="b"), ctx()))
    assert (r.kind, r.code) == ("conflict", "not_in_setup")
    assert "defeat_combatant" in r.reason


# Initiative


def test_roll_initiative_for_all_records_each_seeded_roll() -> None:
    state, _ = apply(
        created(),
        AddCombatant(combatant_id="a", name="A", dexterity_modifier=3),
        AddCombatant(combatant_id="b", name="B", dexterity_modifier=1, initiative_bonus=2),
    )
    state, events = apply(state, RollInitiative())
    assert [type(e) for e in events] == [InitiativeRolled, InitiativeRolled]
    first, second = events
    assert isinstance(first, InitiativeRolled)
    assert isinstance(second, InitiativeRolled)
    assert (first.draw, second.draw) == (0, 1)
    assert first.roll.total == first.roll.natural + 3
    assert second.roll.modifier == 3
    assert state.draws == 2
    combatant = state.combatant("a")
    assert combatant is not None
    assert combatant.initiative == first.roll.total


def test_rolls_replay_identically_from_seed_and_counter() -> None:
    base, _ = apply(
        created(),
        AddCombatant(combatant_id="a", name="A", dexterity_modifier=2),
        AddCombatant(combatant_id="b", name="B"),
    )
    first = events_of(rules.decide(base, RollInitiative(advantage="advantage"), ctx()))
    second = events_of(rules.decide(base, RollInitiative(advantage="advantage"), ctx()))
    assert first == second
    for event in first:
        assert isinstance(event, InitiativeRolled)
        assert len(event.roll.dice) == 2
        assert event.roll.natural == max(event.roll.dice)


def test_roll_initiative_for_one_then_the_rest() -> None:
    state, _ = apply(
        created(),
        AddCombatant(combatant_id="a", name="A"),
        AddCombatant(combatant_id="b", name="B"),
    )
    state, events = apply(state, RollInitiative(combatant_id="b"))
    assert [e.combatant_id for e in events if isinstance(e, InitiativeRolled)] == ["b"]
    state, events = apply(state, RollInitiative())
    assert [e.combatant_id for e in events if isinstance(e, InitiativeRolled)] == ["a"]
    assert [e.draw for e in events if isinstance(e, InitiativeRolled)] == [1]


def test_one_initiative_per_combatant() -> None:
    state = setup_encounter()
    r = rejection_of(rules.decide(state, RollInitiative(combatant_id="a"), ctx()))
    assert (r.kind, r.code) == ("conflict", "initiative_exists")
    r = rejection_of(rules.decide(state, RollInitiative(), ctx()))
    assert (r.kind, r.code) == ("conflict", "initiative_complete")
    r = rejection_of(rules.decide(created(), RollInitiative(), ctx()))
    assert r.code == "initiative_complete"
    assert "no combatants" in r.reason
    r = rejection_of(rules.decide(state, RollInitiative(combatant_id="zz"), ctx()))
    assert r.code == "unknown_combatant"


def test_set_initiative_overrides_in_setup_only() -> None:
    state, events = apply(setup_encounter(), SetInitiative(combatant_id="a", value=3))
    assert events == [InitiativeSet(combatant_id="a", value=3, previous=15)]
    r = rejection_of(rules.decide(started(), SetInitiative(combatant_id="a", value=3), ctx()))
    assert (r.kind, r.code) == ("conflict", "initiative_exists")
    r = rejection_of(rules.decide(state, SetInitiative(combatant_id="zz", value=3), ctx()))
    assert r.code == "unknown_combatant"


def test_order_is_total_then_dexterity_then_tiebreak() -> None:
    state = setup_encounter(
        (("slow", 5, 4), ("fast", 20, 0), ("tie_low_dex", 12, 1), ("tie_high_dex", 12, 3))
    )
    assert rules.initiative_order(state) == ("fast", "tie_high_dex", "tie_low_dex", "slow")


def test_full_ties_break_by_seeded_hash_not_by_join_order() -> None:
    forward = setup_encounter((("x", 10, 1), ("y", 10, 1), ("z", 10, 1)), seed=3)
    backward = setup_encounter((("z", 10, 1), ("y", 10, 1), ("x", 10, 1)), seed=3)
    assert rules.initiative_order(forward) == rules.initiative_order(backward)
    expected = tuple(sorted("xyz", key=lambda c: rules.tiebreak(3, c)))
    assert rules.initiative_order(forward) == expected


# Start


def test_start_activates_the_first_in_order() -> None:
    state, events = apply(setup_encounter(), StartEncounter())
    assert events == [
        EncounterStarted(order=("a", "b", "c")),
        TurnStarted(step=1, round=1, combatant_id="a"),
    ]
    assert (state.status, state.step, state.round, state.active_id) == ("active", 1, 1, "a")


def test_start_needs_combatants_with_initiative() -> None:
    r = rejection_of(rules.decide(created(), StartEncounter(), ctx()))
    assert (r.kind, r.code) == ("invalid", "no_combatants")
    state, _ = apply(setup_encounter(), AddCombatant(combatant_id="late", name="Late"))
    r = rejection_of(rules.decide(state, StartEncounter(), ctx()))
    assert (r.kind, r.code) == ("conflict", "initiative_missing")
    assert r.details["combatant_ids"] == ["late"]


def test_start_twice_is_a_conflict() -> None:
    r = rejection_of(rules.decide(started(), StartEncounter(), ctx()))
    assert (r.kind, r.code) == ("conflict", "not_in_setup")


def test_surprised_combatants_skip_the_first_round() -> None:
    state, _ = apply(setup_encounter(), SkipCombatant(combatant_id="a"))
    state, events = apply(state, StartEncounter())
    assert events[1:] == [
        TurnSkipped(combatant_id="a", round=1),
        TurnStarted(step=1, round=1, combatant_id="b"),
    ]
    a = state.combatant("a")
    assert a is not None
    assert not a.skip_next


# The turn step


def test_next_turn_starts_the_ending_of_the_current_step() -> None:
    state, events = apply(started(), NextTurn(expected_step=1))
    assert events == [TurnEnding(step=1, round=1, combatant_id="a")]
    assert state.ending
    assert state.active_id == "a"


def test_mastery_resolved_ends_the_step_and_starts_the_next() -> None:
    state, _ = apply(started(), NextTurn(expected_step=1))
    state, events = apply(state, MasteryResolved(step=1))
    assert events == [
        TurnEnded(step=1, round=1, combatant_id="a"),
        TurnStarted(step=2, round=1, combatant_id="b"),
    ]
    assert (state.step, state.active_id, state.ending) == (2, "b", False)


def test_rounds_wrap_after_the_last_combatant() -> None:
    state = started()
    seen = []
    for _ in range(4):
        state, events = advance(state)
        started_event = events[-1]
        assert isinstance(started_event, TurnStarted)
        seen.append((started_event.step, started_event.round, started_event.combatant_id))
    assert seen == [(2, 1, "b"), (3, 1, "c"), (4, 2, "a"), (5, 2, "b")]


def test_stale_next_turn_names_both_steps() -> None:
    state = started()
    for _ in range(7):
        state, _ = advance(state)
    assert state.step == 8
    r = rejection_of(rules.decide(state, NextTurn(expected_step=7), ctx()))
    assert (r.kind, r.code) == ("conflict", "stale_step")
    assert r.reason == "next_turn expected step 7, the encounter is at step 8"
    assert r.details == {"expected_step": 7, "step": 8}


def test_next_turn_while_ending_is_a_conflict_naming_the_step() -> None:
    state, _ = apply(started(), NextTurn(expected_step=1))
    for expected in (1, 2):
        r = rejection_of(rules.decide(state, NextTurn(expected_step=expected), ctx()))
        assert (r.kind, r.code) == ("conflict", "turn_ending")
        assert "step 1 " in r.reason
        assert r.details["step"] == 1


def test_next_turn_outside_combat() -> None:
    r = rejection_of(rules.decide(setup_encounter(), NextTurn(expected_step=0), ctx()))
    assert (r.kind, r.code) == ("conflict", "not_active")


@pytest.mark.parametrize("step", [0, 2, 5])
def test_mastery_resolved_for_another_step_is_ignored(step: int) -> None:
    state, _ = apply(started(), NextTurn(expected_step=1))
    assert rules.decide(state, MasteryResolved(step=step), ctx()) == []


def test_mastery_resolved_when_not_ending_is_ignored() -> None:
    assert rules.decide(started(), MasteryResolved(step=1), ctx()) == []
    assert rules.decide(setup_encounter(), MasteryResolved(step=0), ctx()) == []


def test_unrelated_events_are_ignored() -> None:
    assert rules.decide(started(), TurnEnding(step=1, round=1, combatant_id="a"), ctx()) == []


# Defeat and skip


def test_defeated_combatants_are_passed_over() -> None:
    state, events = apply(started(), DefeatCombatant(combatant_id="b"))
    assert events == [CombatantDefeated(combatant_id="b", step=1)]
    state, events = advance(state)
    assert events[-1] == TurnStarted(step=2, round=1, combatant_id="c")
    state, events = advance(state)
    assert events[-1] == TurnStarted(step=3, round=2, combatant_id="a")


def test_defeat_refusals() -> None:
    r = rejection_of(rules.decide(setup_encounter(), DefeatCombatant(combatant_id="a"), ctx()))
    assert (r.kind, r.code) == ("conflict", "not_active")
    state, _ = apply(started(), DefeatCombatant(combatant_id="b"))
    r = rejection_of(rules.decide(state, DefeatCombatant(combatant_id="b"), ctx()))
    assert (r.kind, r.code) == ("conflict", "already_defeated")
    r = rejection_of(rules.decide(state, DefeatCombatant(combatant_id="nope"), ctx()))
    assert r.code == "unknown_combatant"


def test_active_combatant_defeated_mid_turn_still_ends_the_step() -> None:
    state, _ = apply(started(), DefeatCombatant(combatant_id="a"))
    assert state.active_id == "a"
    state, events = advance(state)
    assert events[-1] == TurnStarted(step=2, round=1, combatant_id="b")


def test_encounter_ends_itself_when_no_one_can_act() -> None:
    state = started((("a", 10, 0), ("b", 5, 0)))
    state, _ = apply(state, DefeatCombatant(combatant_id="a"), DefeatCombatant(combatant_id="b"))
    state, events = advance(state)
    assert events[-2:] == [
        TurnEnded(step=1, round=1, combatant_id="a"),
        EncounterEnded(step=1, round=1, reason="all_defeated", from_status="active"),
    ]
    assert (state.status, state.active_id) == ("ended", None)


def test_last_one_standing_keeps_taking_turns() -> None:
    state = started((("a", 10, 0), ("b", 5, 0)))
    state, _ = apply(state, DefeatCombatant(combatant_id="b"))
    state, events = advance(state)
    assert events[-1] == TurnStarted(step=2, round=2, combatant_id="a")


def test_skip_passes_over_one_turn_only() -> None:
    state, events = apply(started(), SkipCombatant(combatant_id="b"))
    assert events == [SkipScheduled(combatant_id="b")]
    state, events = advance(state)
    assert events[2:] == [
        TurnSkipped(combatant_id="b", round=1),
        TurnStarted(step=2, round=1, combatant_id="c"),
    ]
    for _ in range(2):
        state, events = advance(state)
    assert events[-1] == TurnStarted(step=4, round=2, combatant_id="b")


def test_skipping_everyone_else_gives_the_turn_back() -> None:
    state = started((("a", 10, 0), ("b", 5, 0)))
    state, _ = apply(state, SkipCombatant(combatant_id="b"))
    state, events = advance(state)
    assert events[2:] == [
        TurnSkipped(combatant_id="b", round=1),
        TurnStarted(step=2, round=2, combatant_id="a"),
    ]


def test_skip_refusals() -> None:
    state, _ = apply(started(), SkipCombatant(combatant_id="b"))
    r = rejection_of(rules.decide(state, SkipCombatant(combatant_id="b"), ctx()))
    assert (r.kind, r.code) == ("conflict", "skip_pending")
    state, _ = apply(state, DefeatCombatant(combatant_id="c"))
    r = rejection_of(rules.decide(state, SkipCombatant(combatant_id="c"), ctx()))
    assert (r.kind, r.code) == ("conflict", "combatant_defeated")
    r = rejection_of(rules.decide(state, SkipCombatant(combatant_id="q"), ctx()))
    assert r.code == "unknown_combatant"


# Joining mid-combat


def test_a_combatant_joining_mid_combat_waits_for_initiative() -> None:
    state, _ = apply(started(), AddCombatant(combatant_id="d", name="D"))
    assert rules.initiative_order(state) == ("a", "b", "c")
    state, _ = apply(state, SetInitiative(combatant_id="d", value=30))
    assert rules.initiative_order(state) == ("d", "a", "b", "c")
    # d sorts before the active combatant, so it first acts when the round wraps.
    for expected in ("b", "c", "d", "a"):
        state, events = advance(state)
        last = events[-1]
        assert isinstance(last, TurnStarted)
        assert last.combatant_id == expected


# End


def test_end_from_active_and_from_setup() -> None:
    state, events = apply(started(), EndEncounter(note="fled"))
    assert events == [
        EncounterEnded(step=1, round=1, reason="ended", from_status="active", note="fled")
    ]
    assert state.status == "ended"
    _, events = apply(setup_encounter(), EndEncounter())
    assert events == [EncounterEnded(step=0, round=0, reason="ended", from_status="setup")]


def test_end_while_a_step_is_ending_is_a_conflict() -> None:
    state, _ = apply(started(), NextTurn(expected_step=1))
    r = rejection_of(rules.decide(state, EndEncounter(), ctx()))
    assert (r.kind, r.code) == ("conflict", "turn_ending")


@pytest.mark.parametrize(
    "command",
    [
        EndEncounter(),
        NextTurn(expected_step=1),
        AddCombatant(combatant_id="z", name="Z"),
        SkipCombatant(combatant_id="a"),
    ],
)
def test_nothing_happens_after_the_end(command: object) -> None:
    state, _ = apply(started(), EndEncounter())
    r = rejection_of(rules.decide(state, command, ctx()))  # type: ignore[arg-type]
    assert (r.kind, r.code) == ("conflict", "encounter_ended")


def test_commands_of_other_domains_are_refused() -> None:
    r = rejection_of(
        rules.decide(started(), RequestProc(holder="a", mastery="m", count=1, step=1), ctx())
    )
    assert (r.kind, r.code) == ("invalid", "unsupported_message")


def test_events_of_other_kinds_leave_state_alone() -> None:
    state = started()
    assert rules.evolve(state, MasteryResolved(step=1)) == state
