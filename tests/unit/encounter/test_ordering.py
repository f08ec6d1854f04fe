"""The order checker: a correct step passes, and each kind of misordering is caught."""

from __future__ import annotations

from actors.encounter.ordering import check_turn_order
from schemas.base import Event
from schemas.effects import EffectExpired, Expiration, ExpirationsResolved
from schemas.encounter import EncounterStarted, TurnEnded, TurnEnding, TurnStarted
from schemas.mastery import MasteryProc, MasteryResolved, ProcRequestRejected


def expired(step: int, instance_id: str = "e1") -> EffectExpired:
    return EffectExpired(
        instance_id=instance_id,
        owner="b",
        placed_by="a",
        kind="BUFF",
        name="Bless",
        step=step,
        applied_step=1,
        duration=step,
    )


def expirations(step: int, *ids: str) -> ExpirationsResolved:
    return ExpirationsResolved(
        step=step,
        count=len(ids),
        expirations=tuple(
            Expiration(instance_id=i, owner="b", placed_by="a", kind="BUFF", name="Bless")
            for i in ids
        ),
    )


def proc(step: int, instance_id: str = "e1") -> MasteryProc:
    return MasteryProc(
        request_id="r1",
        holder="a",
        mastery="rapid_response",
        step=step,
        instance_id=instance_id,
        owner="b",
        effect_name="Bless",
        ordinal=1,
        count=1,
    )


def good_log() -> list[Event]:
    return [
        EncounterStarted(order=("a", "b")),
        TurnStarted(step=1, round=1, combatant_id="a"),
        TurnEnding(step=1, round=1, combatant_id="a"),
        expired(1),
        expirations(1, "e1"),
        proc(1),
        MasteryResolved(step=1, procs=1),
        TurnEnded(step=1, round=1, combatant_id="a"),
        TurnStarted(step=2, round=1, combatant_id="b"),
        TurnEnding(step=2, round=1, combatant_id="b"),
        expirations(2),
        MasteryResolved(step=2),
        TurnEnded(step=2, round=1, combatant_id="b"),
        TurnStarted(step=3, round=2, combatant_id="a"),
    ]


def codes(events: list[Event], sequence: list[int] | None = None) -> list[str]:
    return [v.code for v in check_turn_order(events, sequence)]


def test_a_well_ordered_log_passes() -> None:
    log = good_log()
    assert check_turn_order(log, list(range(1, len(log) + 1))) == []


def test_proc_before_its_expiration_fails() -> None:
    log = good_log()
    log[3], log[5] = log[5], log[3]
    assert "proc_without_expiration" in codes(log)
    assert "proc_before_expirations_resolved" in codes(log)


def test_turn_end_before_the_procs_fails() -> None:
    log = good_log()
    turn_ended = log.pop(7)
    log.insert(5, turn_ended)
    found = codes(log)
    assert "turn_ended_before_mastery" in found
    assert "proc_after_turn_end" in found


def test_expiration_after_the_resolution_fails() -> None:
    log = good_log()
    log.insert(5, expired(1, "late"))
    assert "expiration_after_resolution" in codes(log)


def test_expiration_before_the_step_ends_fails() -> None:
    log = good_log()
    log.insert(2, expired(1, "early"))
    assert "expiration_before_turn_ending" in codes(log)


def test_wrong_expiration_count_fails() -> None:
    log = good_log()
    log[4] = expirations(1, "e1", "ghost")
    assert codes(log) == ["expiration_count_mismatch"]


def test_next_turn_started_before_the_turn_ended_fails() -> None:
    log = good_log()
    log[7], log[8] = log[8], log[7]
    assert "turn_started_before_turn_ended" in codes(log)


def test_proc_after_mastery_resolved_fails() -> None:
    log = good_log()
    log[5], log[6] = log[6], log[5]
    assert codes(log) == ["proc_after_mastery_resolved"]


def test_mastery_resolved_before_expirations_fails() -> None:
    log = good_log()
    log[9:12] = [log[9], MasteryResolved(step=2), expirations(2)]
    assert "mastery_before_expirations" in codes(log)


def test_rejection_after_turn_end_fails() -> None:
    log = good_log()
    log.insert(
        8,
        ProcRequestRejected(
            request_id="r2",
            holder="c",
            mastery="rapid_response",
            step=1,
            code="count_mismatch",
            reason="",
            expected=0,
            requested=1,
        ),
    )
    assert codes(log) == ["rejection_after_turn_end"]


def test_steps_must_be_consecutive_and_ended_properly() -> None:
    log: list[Event] = [
        TurnStarted(step=1, round=1, combatant_id="a"),
        TurnEnded(step=1, round=1, combatant_id="a"),
        TurnStarted(step=3, round=1, combatant_id="b"),
        TurnEnding(step=4, round=1, combatant_id="b"),
        TurnEnding(step=4, round=1, combatant_id="b"),
        expirations(5),
    ]
    assert codes(log) == [
        "turn_ended_without_ending",
        "turn_ended_before_mastery",
        "step_not_consecutive",
        "turn_started_before_turn_ended",
        "ending_before_start",
        "ending_before_start",
        "duplicate_turn_ending",
        "resolution_before_turn_ending",
    ]


def test_duplicate_resolution_fails() -> None:
    log = good_log()
    log.insert(5, expirations(1, "e1"))
    assert "duplicate_resolution" in codes(log)


def test_sequence_numbers_must_increase() -> None:
    log = good_log()
    sequence = list(range(1, len(log) + 1))
    sequence[4] = 3
    violations = check_turn_order(log, sequence)
    assert [(v.index, v.code) for v in violations] == [(4, "sequence_not_increasing")]
    assert codes(log, list(range(1, len(log)))) == ["sequence_length"]
