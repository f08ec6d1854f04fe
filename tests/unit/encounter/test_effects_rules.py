"""Effects rules: the expiry step, attribution on expiry, removal, closing, and refusals."""

from __future__ import annotations

import pytest

from actors.effects import rules
from schemas.effects import (
    ApplyEffect,
    EffectApplied,
    EffectExpired,
    EffectRemoved,
    EffectsClosed,
    Expiration,
    ExpirationsResolved,
    RemoveEffect,
)
from schemas.encounter import EncounterEnded, StartEncounter, TurnEnding, TurnStarted
from schemas.mastery import MasteryResolved
from tests.unit.encounter.support import KEY, ctx, events_of, rejection_of


def run(state: rules.EffectsState, *messages: object) -> tuple[rules.EffectsState, list[object]]:
    emitted: list[object] = []
    for message in messages:
        events = events_of(rules.decide(state, message, ctx()))  # type: ignore[arg-type]
        state = rules.fold(state, events)
        emitted.extend(events)
    return state, emitted


def apply_cmd(instance_id: str, duration: int, kind: str = "BUFF", placed_by: str = "a") -> object:
    return ApplyEffect(
        instance_id=instance_id,
        owner="b",
        placed_by=placed_by,
        kind=kind,  # type: ignore[arg-type]
        name=f"effect {instance_id}",
        duration=duration,
    )


def ending(step: int) -> TurnEnding:
    return TurnEnding(step=step, round=1, combatant_id="a")


def test_apply_records_start_and_expiry_steps() -> None:
    state, events = run(rules.initial_state(KEY), apply_cmd("e1", 3))
    assert events == [
        EffectApplied(
            instance_id="e1",
            owner="b",
            placed_by="a",
            kind="BUFF",
            name="effect e1",
            duration=3,
            applied_step=1,
            expires_at_step=3,
        )
    ]
    assert state.effect("e1") is not None


@pytest.mark.parametrize(("applied", "duration", "expires"), [(1, 1, 1), (4, 1, 4), (4, 3, 6)])
def test_expiry_step_counts_the_current_step(applied: int, duration: int, expires: int) -> None:
    assert rules.expires_at(applied, duration) == expires


def test_effect_expires_when_its_last_step_ends() -> None:
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 2))
    state, events = run(state, ending(1))
    assert events == [ExpirationsResolved(step=1, count=0)]
    state, events = run(state, ending(2))
    assert events == [
        EffectExpired(
            instance_id="e1",
            owner="b",
            placed_by="a",
            kind="BUFF",
            name="effect e1",
            step=2,
            applied_step=1,
            duration=2,
        ),
        ExpirationsResolved(
            step=2,
            count=1,
            expirations=(
                Expiration(
                    instance_id="e1", owner="b", placed_by="a", kind="BUFF", name="effect e1"
                ),
            ),
        ),
    ]
    assert state.effects == ()
    assert state.resolved_through == 2


def test_apply_after_a_step_ended_starts_in_the_next_step() -> None:
    state, _ = run(rules.initial_state(KEY), ending(1), ending(2))
    assert state.current_step == 3
    _, events = run(state, apply_cmd("e1", 1))
    (applied,) = events
    assert isinstance(applied, EffectApplied)
    assert (applied.applied_step, applied.expires_at_step) == (3, 3)


def test_expirations_keep_application_order() -> None:
    state, _ = run(
        rules.initial_state(KEY),
        apply_cmd("late", 1),
        apply_cmd("debuff", 1, kind="DEBUFF"),
        apply_cmd("other", 1, placed_by="c"),
        apply_cmd("stays", 2),
    )
    _, events = run(state, ending(1))
    resolved = events[-1]
    assert isinstance(resolved, ExpirationsResolved)
    assert [e.instance_id for e in resolved.expirations] == ["late", "debuff", "other"]
    assert [e.instance_id for e in events[:-1] if isinstance(e, EffectExpired)] == [
        "late",
        "debuff",
        "other",
    ]


def test_a_redelivered_turn_ending_expires_nothing_twice() -> None:
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 1), ending(1))
    assert rules.decide(state, ending(1), ctx()) == []


def test_a_skipped_step_still_expires_overdue_effects() -> None:
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 1))
    _, events = run(state, ending(3))
    assert [type(e) for e in events] == [EffectExpired, ExpirationsResolved]


def test_instance_ids_are_never_reused() -> None:
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 1))
    r = rejection_of(rules.decide(state, apply_cmd("e1", 1), ctx()))  # type: ignore[arg-type]
    assert (r.kind, r.code) == ("conflict", "duplicate_instance")
    state, _ = run(state, ending(1))
    r = rejection_of(rules.decide(state, apply_cmd("e1", 1), ctx()))  # type: ignore[arg-type]
    assert r.code == "duplicate_instance"


def test_effect_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MAX_ACTIVE_EFFECTS", 1)
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 5))
    r = rejection_of(rules.decide(state, apply_cmd("e2", 5), ctx()))  # type: ignore[arg-type]
    assert (r.kind, r.code) == ("invalid", "too_many_effects")


def test_remove_ends_an_effect_without_an_expiration() -> None:
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 3))
    state, events = run(state, RemoveEffect(instance_id="e1", note="dispelled"))
    assert events == [
        EffectRemoved(
            instance_id="e1",
            owner="b",
            placed_by="a",
            kind="BUFF",
            name="effect e1",
            reason="removed",
            note="dispelled",
        )
    ]
    _, events = run(state, ending(1), ending(2), ending(3))
    assert not [e for e in events if isinstance(e, EffectExpired)]


def test_remove_refusals() -> None:
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 1), ending(1))
    r = rejection_of(rules.decide(state, RemoveEffect(instance_id="e1"), ctx()))
    assert (r.kind, r.code) == ("conflict", "effect_gone")
    r = rejection_of(rules.decide(state, RemoveEffect(instance_id="nope"), ctx()))
    assert (r.kind, r.code) == ("not_found", "unknown_effect")


def test_encounter_end_removes_everything_and_closes() -> None:
    state, _ = run(rules.initial_state(KEY), apply_cmd("e1", 4), apply_cmd("e2", 4), ending(1))
    end = EncounterEnded(step=1, round=1, reason="ended", from_status="active")
    state, events = run(state, end)
    assert [type(e) for e in events] == [EffectRemoved, EffectRemoved, EffectsClosed]
    assert all(e.reason == "encounter_ended" for e in events if isinstance(e, EffectRemoved))
    assert events[-1] == EffectsClosed(resolved_through=1, removed=2)
    assert state.closed
    assert rules.decide(state, end, ctx()) == []
    assert rules.decide(state, ending(2), ctx()) == []
    for command in (apply_cmd("e3", 1), RemoveEffect(instance_id="e1")):
        r = rejection_of(rules.decide(state, command, ctx()))  # type: ignore[arg-type]
        assert (r.kind, r.code) == ("conflict", "encounter_ended")


def test_other_messages_are_ignored_or_refused() -> None:
    state = rules.initial_state(KEY)
    assert rules.decide(state, TurnStarted(step=1, round=1, combatant_id="a"), ctx()) == []
    assert rules.evolve(state, MasteryResolved(step=1)) == state
    r = rejection_of(rules.decide(state, StartEncounter(), ctx()))
    assert r.code == "unsupported_message"
