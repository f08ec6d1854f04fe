"""Mastery rules: request gating, strict count validation, attribution of procs, closing."""

from __future__ import annotations

import pytest

from actors.mastery import rules
from schemas.effects import Expiration, ExpirationsResolved
from schemas.encounter import EncounterEnded, StartEncounter
from schemas.mastery import (
    MasteryClosed,
    MasteryProc,
    MasteryResolved,
    ProcRequested,
    ProcRequestRejected,
    RequestProc,
)
from tests.unit.encounter.support import KEY, ctx, events_of, rejection_of


def request(
    holder: str = "a", count: int = 1, step: int = 1, mastery: str = "rapid_response"
) -> RequestProc:
    return RequestProc(holder=holder, mastery=mastery, count=count, step=step)


def expired(instance_id: str, placed_by: str = "a", kind: str = "BUFF") -> Expiration:
    return Expiration(
        instance_id=instance_id,
        owner="b",
        placed_by=placed_by,
        kind=kind,  # type: ignore[arg-type]
        name=f"effect {instance_id}",
    )


def resolved(step: int, *expirations: Expiration) -> ExpirationsResolved:
    return ExpirationsResolved(step=step, count=len(expirations), expirations=expirations)


def recorded(*requests: RequestProc) -> rules.MasteryState:
    state = rules.initial_state(KEY)
    for i, req in enumerate(requests):
        events = events_of(rules.decide(state, req, ctx(message_id=f"req-{i}")))
        state = rules.fold(state, events)
    return state


def test_request_is_recorded_with_its_message_id() -> None:
    events = events_of(
        rules.decide(rules.initial_state(KEY), request(count=2), ctx(message_id="m1"))
    )
    assert events == [
        ProcRequested(request_id="m1", holder="a", mastery="rapid_response", count=2, step=1)
    ]


def test_matching_count_emits_one_proc_per_qualifying_expiration() -> None:
    state = recorded(request(count=2))
    step = resolved(
        1,
        expired("x"),
        expired("debuff", kind="DEBUFF"),
        expired("y"),
        expired("theirs", placed_by="c"),
    )
    events = events_of(rules.decide(state, step, ctx()))
    procs = [e for e in events if isinstance(e, MasteryProc)]
    assert [(p.instance_id, p.ordinal, p.count) for p in procs] == [("x", 1, 2), ("y", 2, 2)]
    assert all(p.request_id == "req-0" and p.step == 1 for p in procs)
    assert events[-1] == MasteryResolved(step=1, procs=2, rejected=0)
    after = rules.fold(state, events)
    assert (after.pending, after.resolved_through) == ((), 1)


@pytest.mark.parametrize(
    ("count", "expirations", "code", "expected"),
    [
        (3, ("x", "y"), "count_mismatch", 2),
        (1, ("x", "y"), "count_mismatch", 2),
        (1, (), "no_qualifying_expirations", 0),
    ],
)
def test_count_must_match_exactly(
    count: int, expirations: tuple[str, ...], code: str, expected: int
) -> None:
    state = recorded(request(count=count))
    events = events_of(rules.decide(state, resolved(1, *map(expired, expirations)), ctx()))
    assert not [e for e in events if isinstance(e, MasteryProc)]
    rejected, done = events
    assert isinstance(rejected, ProcRequestRejected)
    assert (rejected.code, rejected.expected, rejected.requested) == (code, expected, count)
    assert done == MasteryResolved(step=1, procs=0, rejected=1)


def test_buffs_placed_by_someone_else_are_a_holder_mismatch() -> None:
    state = recorded(request(holder="a", count=1))
    step = resolved(1, expired("x", placed_by="c"), expired("y", placed_by="b"))
    rejected, _ = events_of(rules.decide(state, step, ctx()))
    assert isinstance(rejected, ProcRequestRejected)
    assert rejected.code == "holder_mismatch"
    assert "placed by b, c" in rejected.reason


def test_debuffs_never_qualify() -> None:
    state = recorded(request(count=1))
    step = resolved(1, expired("x", kind="DEBUFF"))
    rejected, _ = events_of(rules.decide(state, step, ctx()))
    assert isinstance(rejected, ProcRequestRejected)
    assert rejected.code == "no_qualifying_expirations"


def test_requests_resolve_in_a_stable_order_whatever_their_arrival() -> None:
    one = recorded(request(holder="c", count=1), request(holder="a", count=1))
    other = recorded(request(holder="a", count=1), request(holder="c", count=1))
    step = resolved(1, expired("x", placed_by="a"), expired("y", placed_by="c"))
    first = events_of(rules.decide(one, step, ctx()))
    second = events_of(rules.decide(other, step, ctx()))
    assert [(type(e), getattr(e, "holder", None)) for e in first] == [
        (MasteryProc, "a"),
        (MasteryProc, "c"),
        (MasteryResolved, None),
    ]
    assert [getattr(e, "instance_id", None) for e in first] == [
        getattr(e, "instance_id", None) for e in second
    ]


def test_requests_for_later_steps_wait() -> None:
    state = recorded(request(step=2))
    events = events_of(rules.decide(state, resolved(1, expired("x")), ctx()))
    assert events == [MasteryResolved(step=1)]
    state = rules.fold(state, events)
    assert len(state.pending) == 1
    events = events_of(rules.decide(state, resolved(2, expired("y")), ctx()))
    assert [type(e) for e in events] == [MasteryProc, MasteryResolved]


def test_a_request_whose_step_never_resolved_is_rejected_as_missed() -> None:
    state = recorded(request(step=1))
    events = events_of(rules.decide(state, resolved(2, expired("x")), ctx()))
    rejected, done = events
    assert isinstance(rejected, ProcRequestRejected)
    assert rejected.code == "step_missed"
    assert done == MasteryResolved(step=2, procs=0, rejected=1)
    assert rules.fold(state, events).pending == ()


def test_a_resolved_step_is_handled_once() -> None:
    state = recorded(request())
    events = events_of(rules.decide(state, resolved(1, expired("x")), ctx()))
    state = rules.fold(state, events)
    assert rules.decide(state, resolved(1, expired("x")), ctx()) == []


def test_request_refusals() -> None:
    state = recorded(request(step=2))
    r = rejection_of(rules.decide(state, request(mastery="swift_strike"), ctx()))
    assert (r.kind, r.code) == ("invalid", "unknown_mastery")
    assert "rapid_response" in r.reason
    r = rejection_of(rules.decide(state, request(step=2, count=5), ctx()))
    assert (r.kind, r.code) == ("conflict", "duplicate_request")
    state = rules.fold(state, events_of(rules.decide(state, resolved(1), ctx())))
    r = rejection_of(rules.decide(state, request(step=1), ctx()))
    assert (r.kind, r.code) == ("conflict", "step_resolved")
    assert r.details == {"step": 1, "resolved_through": 1}


def test_pending_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MAX_PENDING", 1)
    state = recorded(request(step=1))
    r = rejection_of(rules.decide(state, request(step=2), ctx()))
    assert (r.kind, r.code) == ("invalid", "too_many_requests")


def test_a_mastery_that_disappeared_is_rejected_at_resolution() -> None:
    pending = rules.PendingRequest(
        request_id="r", holder="a", mastery="retired_mastery", count=1, step=1
    )
    (rejected,) = rules.validate(pending, resolved(1, expired("x")))
    assert isinstance(rejected, ProcRequestRejected)
    assert rejected.code == "unknown_mastery"


def test_encounter_end_rejects_pending_requests_and_closes() -> None:
    state = recorded(request(step=3), request(holder="b", step=2))
    end = EncounterEnded(step=1, round=1, reason="ended", from_status="active")
    events = events_of(rules.decide(state, end, ctx()))
    assert [(type(e), getattr(e, "step", None)) for e in events] == [
        (ProcRequestRejected, 2),
        (ProcRequestRejected, 3),
        (MasteryClosed, None),
    ]
    assert all(e.code == "encounter_ended" for e in events if isinstance(e, ProcRequestRejected))
    state = rules.fold(state, events)
    assert state.closed
    assert rules.decide(state, end, ctx()) == []
    assert rules.decide(state, resolved(1), ctx()) == []
    r = rejection_of(rules.decide(state, request(step=5), ctx()))
    assert (r.kind, r.code) == ("conflict", "encounter_ended")


def test_other_messages_are_ignored_or_refused() -> None:
    state = rules.initial_state(KEY)
    assert rules.decide(state, MasteryResolved(step=1), ctx()) == []
    r = rejection_of(rules.decide(state, StartEncounter(), ctx()))
    assert r.code == "unsupported_message"
    assert rules.evolve(state, StartEncounter()) == state  # type: ignore[arg-type]
