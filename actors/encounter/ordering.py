"""The turn-step order contract as a checker: EFFECT_EXPIRED -> MASTERY_PROC -> TURN_END -> next."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from schemas.base import Event
from schemas.effects import EffectExpired, ExpirationsResolved
from schemas.encounter import TurnEnded, TurnEnding, TurnStarted
from schemas.mastery import MasteryProc, MasteryResolved, ProcRequestRejected


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One breach of the order contract, at ``index`` in the checked sequence."""

    index: int
    code: str
    message: str
    step: int | None = None


class _Step:
    """What has been seen of one step so far, as positions in the sequence."""

    def __init__(self) -> None:
        self.started: int | None = None
        self.ending: int | None = None
        self.expired: set[str] = set()
        self.expirations_resolved: int | None = None
        self.mastery_resolved: int | None = None
        self.ended: int | None = None


class _Checker:
    def __init__(self) -> None:
        self.steps: dict[int, _Step] = {}
        self.violations: list[Violation] = []
        self.last_started = 0

    def step(self, n: int) -> _Step:
        return self.steps.setdefault(n, _Step())

    def fail(self, index: int, code: str, step: int | None, message: str) -> None:
        self.violations.append(Violation(index=index, code=code, message=message, step=step))

    def turn_started(self, i: int, e: TurnStarted) -> None:
        if e.step != self.last_started + 1:
            self.fail(
                i,
                "step_not_consecutive",
                e.step,
                f"TurnStarted({e.step}) follows TurnStarted({self.last_started})",
            )
        previous = self.steps.get(e.step - 1)
        if e.step > 1 and (previous is None or previous.ended is None):
            self.fail(
                i,
                "turn_started_before_turn_ended",
                e.step,
                f"TurnStarted({e.step}) before TurnEnded({e.step - 1})",
            )
        self.step(e.step).started = i
        self.last_started = max(self.last_started, e.step)

    def turn_ending(self, i: int, e: TurnEnding) -> None:
        s = self.step(e.step)
        if s.started is None:
            self.fail(
                i,
                "ending_before_start",
                e.step,
                f"TurnEnding({e.step}) before TurnStarted({e.step})",
            )
        if s.ending is not None:
            self.fail(
                i,
                "duplicate_turn_ending",
                e.step,
                f"TurnEnding({e.step}) again (first at {s.ending})",
            )
        s.ending = i

    def effect_expired(self, i: int, e: EffectExpired) -> None:
        s = self.step(e.step)
        if s.ending is None:
            self.fail(
                i,
                "expiration_before_turn_ending",
                e.step,
                f"EffectExpired({e.instance_id}) before TurnEnding({e.step})",
            )
        if s.expirations_resolved is not None:
            self.fail(
                i,
                "expiration_after_resolution",
                e.step,
                f"EffectExpired({e.instance_id}) after ExpirationsResolved({e.step})",
            )
        if s.ended is not None:
            self.fail(
                i,
                "expiration_after_turn_end",
                e.step,
                f"EffectExpired({e.instance_id}) after TurnEnded({e.step})",
            )
        s.expired.add(e.instance_id)

    def expirations_resolved(self, i: int, e: ExpirationsResolved) -> None:
        s = self.step(e.step)
        if s.ending is None:
            self.fail(
                i,
                "resolution_before_turn_ending",
                e.step,
                f"ExpirationsResolved({e.step}) before TurnEnding({e.step})",
            )
        if s.expirations_resolved is not None:
            self.fail(
                i,
                "duplicate_resolution",
                e.step,
                f"ExpirationsResolved({e.step}) again (first at {s.expirations_resolved})",
            )
        if e.count != len(s.expired):
            self.fail(
                i,
                "expiration_count_mismatch",
                e.step,
                f"ExpirationsResolved({e.step}) counts {e.count} but {len(s.expired)} "
                "EffectExpired preceded it",
            )
        s.expirations_resolved = i

    def mastery_proc(self, i: int, e: MasteryProc) -> None:
        s = self.step(e.step)
        if e.instance_id not in s.expired:
            self.fail(
                i,
                "proc_without_expiration",
                e.step,
                f"MasteryProc for {e.instance_id} with no EffectExpired({e.instance_id}) "
                f"before it in step {e.step}",
            )
        if s.expirations_resolved is None:
            self.fail(
                i,
                "proc_before_expirations_resolved",
                e.step,
                f"MasteryProc({e.instance_id}) before ExpirationsResolved({e.step})",
            )
        if s.mastery_resolved is not None:
            self.fail(
                i,
                "proc_after_mastery_resolved",
                e.step,
                f"MasteryProc({e.instance_id}) after MasteryResolved({e.step})",
            )
        if s.ended is not None:
            self.fail(
                i,
                "proc_after_turn_end",
                e.step,
                f"MasteryProc({e.instance_id}) after TurnEnded({e.step})",
            )

    def proc_rejected(self, i: int, e: ProcRequestRejected) -> None:
        s = self.steps.get(e.step)
        if s is not None and s.ended is not None:
            self.fail(
                i,
                "rejection_after_turn_end",
                e.step,
                f"ProcRequestRejected({e.request_id}) after TurnEnded({e.step})",
            )

    def mastery_resolved(self, i: int, e: MasteryResolved) -> None:
        s = self.step(e.step)
        if s.expirations_resolved is None:
            self.fail(
                i,
                "mastery_before_expirations",
                e.step,
                f"MasteryResolved({e.step}) before ExpirationsResolved({e.step})",
            )
        s.mastery_resolved = i

    def turn_ended(self, i: int, e: TurnEnded) -> None:
        s = self.step(e.step)
        if s.ending is None:
            self.fail(
                i,
                "turn_ended_without_ending",
                e.step,
                f"TurnEnded({e.step}) without TurnEnding({e.step}) before it",
            )
        if s.mastery_resolved is None:
            self.fail(
                i,
                "turn_ended_before_mastery",
                e.step,
                f"TurnEnded({e.step}) before MasteryResolved({e.step})",
            )
        s.ended = i


def check_turn_order(
    events: Sequence[Event], sequence: Sequence[int] | None = None
) -> list[Violation]:
    """Every breach of the turn-step order contract in one encounter's events, in log order.

    Within a step ``s``: TurnStarted(s) < TurnEnding(s) < EffectExpired(s)* <
    ExpirationsResolved(s) < MasteryProc(s)* < MasteryResolved(s) < TurnEnded(s) <
    TurnStarted(s + 1); every MasteryProc names an instance that expired in its
    step; ``ExpirationsResolved.count`` matches the expirations before it. If the
    stream ``sequence`` numbers are given they must increase strictly. An empty
    list means the sequence obeys the contract. Other events are ignored.
    """
    checker = _Checker()
    if sequence is not None:
        if len(sequence) != len(events):
            checker.fail(
                0,
                "sequence_length",
                None,
                f"{len(sequence)} sequence numbers for {len(events)} events",
            )
        for i in range(1, min(len(sequence), len(events))):
            if sequence[i] <= sequence[i - 1]:
                checker.fail(
                    i,
                    "sequence_not_increasing",
                    None,
                    f"sequence {sequence[i]} follows {sequence[i - 1]}",
                )
    for i, event in enumerate(events):
        match event:
            case TurnStarted():
                checker.turn_started(i, event)
            case TurnEnding():
                checker.turn_ending(i, event)
            case EffectExpired():
                checker.effect_expired(i, event)
            case ExpirationsResolved():
                checker.expirations_resolved(i, event)
            case MasteryProc():
                checker.mastery_proc(i, event)
            case ProcRequestRejected():
                checker.proc_rejected(i, event)
            case MasteryResolved():
                checker.mastery_resolved(i, event)
            case TurnEnded():
                checker.turn_ended(i, event)
    return checker.violations
