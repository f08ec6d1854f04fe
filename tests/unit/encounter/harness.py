"""An in-memory bus for the three turn-step actors: each event is routed to every reactor."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.effects import rules as effects
from actors.encounter import rules as encounter
from actors.mastery import rules as mastery
from schemas.base import Command, Context, Decision, Event, Rejection, domain_of
from schemas.effects import ApplyEffect, ExpirationsResolved
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    EncounterEnded,
    RollInitiative,
    StartEncounter,
    TurnEnding,
)
from schemas.flags import FlagVerdict
from schemas.mastery import MasteryResolved
from tests.unit.encounter.support import WHEN


@dataclass
class Node:
    """One actor on the bus: its rules, the events it reacts to, and its state per key."""

    domain: str
    decide: Callable[[Any, Command | Event, Context], Decision]
    evolve: Callable[[Any, Event], Any]
    initial: Callable[[str], Any]
    reactions: tuple[type[Event], ...]
    states: dict[str, Any] = field(default_factory=dict)

    def state(self, key: str) -> Any:
        return self.states.setdefault(key, self.initial(key))


@dataclass
class Logged:
    """An event as the stream stored it."""

    seq: int
    domain: str
    key: str
    event: Event


class Bus:
    """Routes commands to their domain's actor and every emitted event to its reactors, FIFO.

    Delivery is breadth-first in emission order, one message at a time, as a
    single consumer per key would see it; the log is the stream, ``seq`` its
    sequence numbers.
    """

    def __init__(self, combat: FlagVerdict | None = None) -> None:
        self.combat = combat
        self.nodes: dict[str, Node] = {
            "encounter": Node(
                "encounter",
                self._encounter_decide,
                encounter.evolve,
                encounter.initial_state,
                (MasteryResolved,),
            ),
            "effects": Node(
                "effects",
                effects.decide,
                effects.evolve,
                effects.initial_state,
                (TurnEnding, EncounterEnded),
            ),
            "mastery": Node(
                "mastery",
                mastery.decide,
                mastery.evolve,
                mastery.initial_state,
                (ExpirationsResolved, EncounterEnded),
            ),
        }
        self.log: list[Logged] = []
        self._queue: deque[tuple[str, Event]] = deque()
        self._held: dict[str, deque[tuple[str, Event]]] = {}
        self._ids = 0

    def hold(self, domain: str) -> None:
        """Stop delivering events to ``domain`` (its actor is down or lagging)."""
        self._held.setdefault(domain, deque())

    def is_held(self, domain: str) -> bool:
        """True while ``domain`` is held."""
        return domain in self._held

    def release(self, domain: str) -> None:
        """Deliver what ``domain`` missed, in order, and everything that follows from it."""
        held = self._held.pop(domain, deque())
        node = self.nodes[domain]
        for key, event in held:
            reaction = self._deliver(node, key, event)
            assert not isinstance(reaction, Rejection), reaction
        self._drain()

    def _encounter_decide(self, state: Any, message: Command | Event, ctx: Context) -> Decision:
        if self.combat is None:
            return encounter.decide(state, message, ctx)
        return encounter.decide(state, message, ctx, combat=self.combat)

    def _ctx(self, key: str) -> Context:
        self._ids += 1
        mid = f"m-{self._ids}"
        return Context(key=key, message_id=mid, subject="bus", received_at=WHEN, correlation_id=mid)

    def _deliver(self, node: Node, key: str, message: Command | Event) -> Decision:
        decision = node.decide(node.state(key), message, self._ctx(key))
        if isinstance(decision, Rejection):
            return decision
        for event in decision:
            assert isinstance(event, Event)
            node.states[key] = node.evolve(node.state(key), event)
            self.log.append(Logged(len(self.log) + 1, node.domain, key, event))
            self._queue.append((key, event))
        return decision

    def send(self, key: str, command: Command) -> Decision:
        """Publish a command and run every reaction it causes to completion."""
        decision = self._deliver(self.nodes[domain_of(type(command))], key, command)
        self._drain()
        return decision

    def _drain(self) -> None:
        while self._queue:
            k, event = self._queue.popleft()
            for node in self.nodes.values():
                if not isinstance(event, node.reactions):
                    continue
                if node.domain in self._held:
                    self._held[node.domain].append((k, event))
                    continue
                reaction = self._deliver(node, k, event)
                assert not isinstance(reaction, Rejection), reaction

    def events(self, key: str) -> list[Event]:
        """Every event about ``key``, in stream order."""
        return [entry.event for entry in self.log if entry.key == key]

    def sequence(self, key: str) -> list[int]:
        """The stream sequence numbers of ``events(key)``."""
        return [entry.seq for entry in self.log if entry.key == key]

    def of_type(self, key: str, kinds: type[Event] | tuple[type[Event], ...]) -> Sequence[Any]:
        """The events about ``key`` of the given types."""
        return [e for e in self.events(key) if isinstance(e, kinds)]


KEY = "enc-7"
PEOPLE = ("a", "b", "c")


def begin(bus: Bus, seed: int = 5) -> None:
    """Create the encounter ``KEY`` with ``PEOPLE``, roll initiative and start it."""
    assert not isinstance(bus.send(KEY, CreateEncounter(seed=seed, campaign_id="camp")), Rejection)
    for i, cid in enumerate(PEOPLE):
        bus.send(KEY, AddCombatant(combatant_id=cid, name=cid.upper(), dexterity_modifier=i))
    bus.send(KEY, RollInitiative())
    bus.send(KEY, StartEncounter())


def effect(instance_id: str, placed_by: str, kind: str = "BUFF", duration: int = 1) -> ApplyEffect:
    """An effect on ``b`` placed by ``placed_by``."""
    return ApplyEffect(
        instance_id=instance_id,
        owner="b",
        placed_by=placed_by,
        kind=kind,  # type: ignore[arg-type]
        name=f"effect {instance_id}",
        duration=duration,
    )
