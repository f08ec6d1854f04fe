"""The three actors on an in-memory bus: whole encounters keep EXPIRED -> PROC -> TURN_END order."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.encounter.ordering import check_turn_order
from schemas.base import Event, Rejection
from schemas.effects import (
    EffectExpired,
    EffectRemoved,
    EffectsClosed,
    ExpirationsResolved,
)
from schemas.encounter import (
    DefeatCombatant,
    EncounterEnded,
    EndEncounter,
    NextTurn,
    TurnEnded,
    TurnEnding,
    TurnStarted,
)
from schemas.mastery import (
    MasteryClosed,
    MasteryProc,
    MasteryResolved,
    ProcRequested,
    ProcRequestRejected,
    RequestProc,
)
from tests.unit.encounter.harness import KEY, PEOPLE, Bus, begin, effect


def current_step(bus: Bus) -> int:
    return bus.nodes["encounter"].state(KEY).step  # type: ignore[no-any-return]


def step_slice(events: list[Event], step: int) -> list[Event]:
    start = next(i for i, e in enumerate(events) if isinstance(e, TurnEnding) and e.step == step)
    end = next(i for i, e in enumerate(events) if isinstance(e, TurnStarted) and e.step == step + 1)
    return events[start : end + 1]


def test_one_step_with_valid_and_invalid_requests() -> None:
    bus = Bus()
    begin(bus)
    for command in (
        effect("bless", "a"),
        effect("haste", "a"),
        effect("hex", "a", kind="DEBUFF"),
        effect("shield", "b"),
        effect("long", "a", duration=3),
    ):
        assert not isinstance(bus.send(KEY, command), Rejection)
    bus.send(KEY, RequestProc(holder="a", mastery="rapid_response", count=2, step=1))
    bus.send(KEY, RequestProc(holder="b", mastery="rapid_response", count=2, step=1))
    bus.send(KEY, NextTurn(expected_step=1))

    events = bus.events(KEY)
    assert check_turn_order(events, bus.sequence(KEY)) == []
    step = step_slice(events, 1)
    assert [type(e).__name__ for e in step] == [
        "TurnEnding",
        "EffectExpired",
        "EffectExpired",
        "EffectExpired",
        "EffectExpired",
        "ExpirationsResolved",
        "MasteryProc",
        "MasteryProc",
        "ProcRequestRejected",
        "MasteryResolved",
        "TurnEnded",
        "TurnStarted",
    ]
    procs = [e for e in step if isinstance(e, MasteryProc)]
    assert [(p.holder, p.instance_id) for p in procs] == [("a", "bless"), ("a", "haste")]
    (rejected,) = [e for e in step if isinstance(e, ProcRequestRejected)]
    assert (rejected.holder, rejected.code, rejected.expected, rejected.requested) == (
        "b",
        "count_mismatch",
        1,
        2,
    )
    assert current_step(bus) == 2


def test_next_turn_is_refused_while_mastery_has_not_resolved() -> None:
    bus = Bus()
    begin(bus)
    bus.send(KEY, effect("bless", "a"))
    bus.hold("mastery")
    bus.send(KEY, NextTurn(expected_step=1))
    refused = bus.send(KEY, NextTurn(expected_step=1))
    assert isinstance(refused, Rejection)
    assert (refused.kind, refused.code) == ("conflict", "turn_ending")
    assert "step 1 " in refused.reason
    # A request for the step arrives before mastery catches up: it is still honoured.
    bus.send(KEY, RequestProc(holder="a", mastery="rapid_response", count=1, step=1))
    bus.release("mastery")
    assert current_step(bus) == 2
    assert check_turn_order(bus.events(KEY), bus.sequence(KEY)) == []
    assert len(bus.of_type(KEY, MasteryProc)) == 1
    stale = bus.send(KEY, NextTurn(expected_step=1))
    assert isinstance(stale, Rejection)
    assert stale.reason == "next_turn expected step 1, the encounter is at step 2"


def test_request_after_its_step_resolved_is_refused() -> None:
    bus = Bus()
    begin(bus)
    bus.send(KEY, NextTurn(expected_step=1))
    late = bus.send(KEY, RequestProc(holder="a", mastery="rapid_response", count=1, step=1))
    assert isinstance(late, Rejection)
    assert late.code == "step_resolved"


def test_ending_the_encounter_closes_effects_and_mastery() -> None:
    bus = Bus()
    begin(bus)
    bus.send(KEY, effect("long", "a", duration=5))
    bus.send(KEY, RequestProc(holder="a", mastery="rapid_response", count=1, step=3))
    bus.send(KEY, EndEncounter())
    assert [type(e) for e in bus.events(KEY)[-5:]] == [
        EncounterEnded,
        EffectRemoved,
        EffectsClosed,
        ProcRequestRejected,
        MasteryClosed,
    ]
    refused = bus.send(KEY, effect("new", "a"))
    assert isinstance(refused, Rejection)
    assert refused.code == "encounter_ended"


def test_an_encounter_where_everyone_falls() -> None:
    bus = Bus()
    begin(bus)
    for cid in PEOPLE:
        bus.send(KEY, DefeatCombatant(combatant_id=cid))
    bus.send(KEY, effect("bless", "a"))
    bus.send(KEY, RequestProc(holder="a", mastery="rapid_response", count=1, step=1))
    bus.send(KEY, NextTurn(expected_step=1))
    events = bus.events(KEY)
    assert check_turn_order(events, bus.sequence(KEY)) == []
    tail = [type(e) for e in events[events.index(bus.of_type(KEY, TurnEnding)[-1]) :]]
    assert tail[:5] == [
        TurnEnding,
        EffectExpired,
        ExpirationsResolved,
        MasteryProc,
        MasteryResolved,
    ]
    assert tail[5:7] == [TurnEnded, EncounterEnded]


effects_strategy = st.lists(
    st.tuples(
        st.sampled_from(PEOPLE),
        st.sampled_from(["BUFF", "DEBUFF"]),
        st.integers(1, 4),
        st.integers(1, 5),
    ),
    max_size=10,
)
requests_strategy = st.lists(
    st.tuples(st.sampled_from(PEOPLE), st.integers(1, 3), st.integers(1, 5)),
    max_size=6,
    unique_by=lambda r: (r[0], r[2]),
)


@settings(max_examples=40, deadline=None)
@given(effects_strategy, requests_strategy, st.integers(0, 1000))
def test_random_encounters_keep_the_order_contract(
    effects: list[tuple[str, str, int, int]],
    requests: list[tuple[str, int, int]],
    seed: int,
) -> None:
    bus = Bus()
    begin(bus, seed)
    for holder, count, step in requests:
        bus.send(KEY, RequestProc(holder=holder, mastery="rapid_response", count=count, step=step))
    for step in range(1, 7):
        for i, (placer, kind, duration, at_step) in enumerate(effects):
            if at_step == step:
                bus.send(KEY, effect(f"fx-{i}", placer, kind, duration))
        assert not isinstance(bus.send(KEY, NextTurn(expected_step=step)), Rejection)

    events = bus.events(KEY)
    assert check_turn_order(events, bus.sequence(KEY)) == []

    # Every recorded request ends in exactly its procs or exactly one rejection.
    expired_by_step: dict[int, list[EffectExpired]] = {}
    for e in events:
        if isinstance(e, EffectExpired):
            expired_by_step.setdefault(e.step, []).append(e)
    procs = Counter(p.request_id for p in bus.of_type(KEY, MasteryProc))
    rejections = Counter(r.request_id for r in bus.of_type(KEY, ProcRequestRejected))
    for req in bus.of_type(KEY, ProcRequested):
        qualifying = [
            e
            for e in expired_by_step.get(req.step, [])
            if e.kind == "BUFF" and e.placed_by == req.holder
        ]
        if req.count == len(qualifying):
            assert (procs[req.request_id], rejections[req.request_id]) == (req.count, 0)
        else:
            assert (procs[req.request_id], rejections[req.request_id]) == (0, 1)
    # Each step resolved once, in order, and each turn ended after it.
    assert [e.step for e in bus.of_type(KEY, ExpirationsResolved)] == list(range(1, 7))
    assert [e.step for e in bus.of_type(KEY, MasteryResolved)] == list(range(1, 7))
    assert [e.step for e in bus.of_type(KEY, TurnEnded)] == list(range(1, 7))
