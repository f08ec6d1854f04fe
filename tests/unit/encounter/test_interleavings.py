"""next_turn races under any interleaving with lagging reactors: one advance per step, in order."""

from __future__ import annotations

from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.encounter.ordering import check_turn_order
from schemas.base import Rejection
from schemas.encounter import NextTurn, TurnEnding, TurnStarted
from schemas.mastery import RequestProc
from tests.unit.encounter.harness import KEY, PEOPLE, Bus, begin, effect

Action = tuple[Literal["next", "hold", "release", "effect", "proc"], int]

actions = st.lists(
    st.one_of(
        st.tuples(st.just("next"), st.integers(-1, 1)),
        st.tuples(st.sampled_from(["hold", "release"]), st.integers(0, 1)),
        st.tuples(st.just("effect"), st.integers(0, 2)),
        st.tuples(st.just("proc"), st.integers(0, 2)),
    ),
    min_size=1,
    max_size=40,
)
REACTORS = ("effects", "mastery")


@settings(max_examples=60, deadline=None)
@given(actions, st.integers(0, 50))
def test_no_interleaving_advances_a_step_twice(plan: list[Action], seed: int) -> None:
    bus = Bus()
    begin(bus, seed)
    accepted: list[int] = []
    conflicts: list[tuple[str, int]] = []
    fx = 0
    for kind, arg in plan:
        state = bus.nodes["encounter"].state(KEY)
        if state.status != "active":
            break
        match kind:
            case "next":
                # A client whose view of the step may be one behind or ahead.
                expected = max(0, state.step + arg)
                decision = bus.send(KEY, NextTurn(expected_step=expected))
                if isinstance(decision, Rejection):
                    assert decision.kind == "conflict"
                    conflicts.append((decision.code, decision.details["step"]))
                    # The refusal names where the encounter is.
                    assert decision.details["step"] == state.step
                    assert f"step {state.step}" in decision.reason
                else:
                    assert expected == state.step
                    accepted.append(expected)
            case "hold":
                bus.hold(REACTORS[arg])
            case "release":
                if bus.is_held(REACTORS[arg]):
                    bus.release(REACTORS[arg])
            case "effect":
                fx += 1
                bus.send(KEY, effect(f"fx-{fx}", PEOPLE[arg], duration=1 + arg))
            case "proc":
                bus.send(
                    KEY,
                    RequestProc(
                        holder=PEOPLE[arg], mastery="rapid_response", count=1, step=state.step
                    ),
                )
    for reactor in REACTORS:
        if bus.is_held(reactor):
            bus.release(reactor)

    events = bus.events(KEY)
    assert check_turn_order(events, bus.sequence(KEY)) == []
    endings = [e.step for e in events if isinstance(e, TurnEnding)]
    starts = [e.step for e in events if isinstance(e, TurnStarted)]
    assert endings == accepted
    assert len(set(endings)) == len(endings)
    assert starts == list(range(1, len(accepted) + 2))
    assert all(code in ("turn_ending", "stale_step") for code, _ in conflicts)
