"""Random encounter command sequences, with the encounter invariants checked after every step."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from actors.encounter import rules
from schemas.base import Command, Event, Rejection
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    DefeatCombatant,
    EndEncounter,
    InitiativeRolled,
    NextTurn,
    RemoveCombatant,
    RollInitiative,
    SetInitiative,
    SkipCombatant,
    StartEncounter,
    TurnStarted,
)
from schemas.mastery import MasteryResolved
from tests.unit.encounter.support import KEY, ctx

IDS = ("a", "b", "c", "d", "e")
RANK = {"new": 0, "setup": 1, "active": 2, "ended": 3}
KINDS = {"invalid", "conflict", "forbidden", "not_found", "unavailable"}

ids = st.sampled_from(IDS)


class EncounterMachine(RuleBasedStateMachine):
    """Drives one encounter with any command in any order, as clients might."""

    state: rules.EncounterState
    log: list[Event]

    @initialize(
        seed=st.integers(0, 2**63 - 1),
        party=st.lists(ids, max_size=4, unique=True),
        begin=st.booleans(),
    )
    def fresh(self, seed: int, party: list[str], begin: bool) -> None:
        """Most runs start from a created encounter, half of them already in combat."""
        self.state = rules.initial_state(KEY)
        self.log = []
        self.send(CreateEncounter(seed=seed, campaign_id="camp"))
        for cid in party:
            self.send(AddCombatant(combatant_id=cid, name=cid, dexterity_modifier=len(cid)))
        if party:
            self.send(RollInitiative())
            if begin:
                self.send(StartEncounter())

    def send(self, message: Command | Event) -> list[Event] | Rejection:
        before = self.state
        decision = rules.decide(before, message, ctx())
        if isinstance(decision, Rejection):
            assert decision.kind in KINDS
            assert decision.code
            assert decision.reason
            return decision
        events = [e for e in decision if isinstance(e, Event)]
        for event in events:
            if isinstance(event, TurnStarted):
                acting = self.state.combatant(event.combatant_id)
                assert acting is not None
                assert not acting.defeated, "a defeated combatant was given a turn"
                assert event.step == self.state.step + 1, "steps move by one"
            self.state = rules.evolve(self.state, event)
        self.log.extend(events)
        return events

    @rule(seed=st.integers(0, 2**63 - 1))
    def create(self, seed: int) -> None:
        self.send(CreateEncounter(seed=seed, campaign_id="camp"))

    @rule(cid=ids, dex=st.integers(-5, 10), bonus=st.integers(-3, 5))
    def add(self, cid: str, dex: int, bonus: int) -> None:
        self.send(
            AddCombatant(combatant_id=cid, name=cid, dexterity_modifier=dex, initiative_bonus=bonus)
        )

    @rule(cid=ids)
    def remove(self, cid: str) -> None:
        self.send(RemoveCombatant(combatant_id=cid))

    @rule(cid=st.none() | ids, advantage=st.sampled_from(["none", "advantage", "disadvantage"]))
    def roll(self, cid: str | None, advantage: str) -> None:
        command = RollInitiative(combatant_id=cid, advantage=advantage)  # type: ignore[arg-type]
        before = self.state
        result = self.send(command)
        if isinstance(result, list):
            # The same state decides the same rolls: replay reproduces them.
            assert rules.decide(before, command, ctx()) == result
            assert all(isinstance(e, InitiativeRolled) for e in result)

    @rule(cid=ids, value=st.integers(-5, 30))
    def set_initiative(self, cid: str, value: int) -> None:
        self.send(SetInitiative(combatant_id=cid, value=value))

    @rule()
    def start(self) -> None:
        self.send(StartEncounter())

    @rule(offset=st.sampled_from([0, 0, 0, -1, 1]))
    def next_turn(self, offset: int) -> None:
        expected = max(self.state.step + offset, 0)
        result = self.send(NextTurn(expected_step=expected))
        s = self.state
        stale = expected != s.step and s.status == "active" and not s.ending
        if stale:
            assert isinstance(result, Rejection)
            assert result.code == "stale_step"
            assert result.reason == (
                f"next_turn expected step {expected}, the encounter is at step {s.step}"
            )

    @rule(offset=st.sampled_from([0, 0, 0, -1, 1]))
    def resolve(self, offset: int) -> None:
        was_ending = self.state.ending
        result = self.send(MasteryResolved(step=max(self.state.step + offset, 0)))
        assert isinstance(result, list)
        if not (was_ending and offset == 0):
            assert result == [], "only the ending step's MasteryResolved may act"

    @rule(cid=ids)
    def defeat(self, cid: str) -> None:
        self.send(DefeatCombatant(combatant_id=cid))

    @rule(cid=ids)
    def skip(self, cid: str) -> None:
        self.send(SkipCombatant(combatant_id=cid))

    @rule()
    def play_a_turn(self) -> None:
        if self.send(NextTurn(expected_step=self.state.step)) != []:
            self.send(MasteryResolved(step=self.state.step))

    @rule(chance=st.integers(0, 9))
    def end(self, chance: int) -> None:
        # Ending is terminal, so it is made rare enough for long encounters to happen.
        if chance == 0:
            self.send(EndEncounter())

    @invariant()
    def replay_rebuilds_the_state(self) -> None:
        assert rules.fold(rules.initial_state(KEY), self.log) == self.state

    @invariant()
    def status_steps_and_rounds_only_move_forward(self) -> None:
        ranks = [0]
        steps = [0]
        rounds = [0]
        replayed = rules.initial_state(KEY)
        for event in self.log:
            replayed = rules.evolve(replayed, event)
            ranks.append(RANK[replayed.status])
            steps.append(replayed.step)
            rounds.append(replayed.round)
        for series in (ranks, steps, rounds):
            assert series == sorted(series)

    @invariant()
    def exactly_one_active_combatant_while_active(self) -> None:
        s = self.state
        if s.status == "active":
            assert s.active_id is not None
            assert s.active_id in rules.initiative_order(s)
            assert s.step >= 1
            assert s.round >= 1
        else:
            assert s.active_id is None
            assert not s.ending

    @invariant()
    def one_initiative_per_combatant(self) -> None:
        combatant_ids = [c.combatant_id for c in self.state.combatants]
        assert len(combatant_ids) == len(set(combatant_ids))
        order = rules.initiative_order(self.state)
        assert len(order) == len(set(order))
        placed = {c.combatant_id for c in self.state.combatants if c.initiative is not None}
        assert set(order) == placed

    @invariant()
    def order_does_not_depend_on_join_order(self) -> None:
        shuffled = list(self.state.combatants)
        random.Random(len(self.log)).shuffle(shuffled)
        other = rules.EncounterState(
            encounter_id=KEY, seed=self.state.seed, combatants=tuple(shuffled)
        )
        assert rules.initiative_order(other) == rules.initiative_order(self.state)

    @invariant()
    def the_rng_counter_counts_the_rolls(self) -> None:
        rolls = [e for e in self.log if isinstance(e, InitiativeRolled)]
        assert self.state.draws == len(rolls)
        assert [e.draw for e in rolls] == list(range(len(rolls)))


EncounterMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None
)
TestEncounterMachine = EncounterMachine.TestCase
