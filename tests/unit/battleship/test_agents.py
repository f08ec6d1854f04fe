"""Agent resolution of the match actor: baselines always, trained agents through the hook."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from actors.battleship.engine import BoardView
from actors.battleship.players import BASELINES, ProbabilityPlayer
from actors.match import actor as match_actor
from actors.match import rules
from actors.match.actor import Agents
from schemas.battleship import CreateMatch, Fire, PlaceFleet, Player, ShotFired
from tests.unit.battleship.support import Driver


class FirstFree:
    """A deterministic stand-in for a trained policy: the first cell not yet fired at."""

    name = "first-free"

    def __init__(self) -> None:
        self.calls = 0

    def select(self, view: BoardView, rng: random.Random) -> int:
        self.calls += 1
        return view.unknown()[0]


def test_baselines_resolve_before_any_lookup() -> None:
    shadow = ProbabilityPlayer()
    agents = Agents([lambda agent_id: shadow])
    assert agents("random") is BASELINES["random"]
    assert agents("anything") is shadow


def test_lookups_are_consulted_in_order_and_can_be_removed() -> None:
    first, second = FirstFree(), FirstFree()

    def one(agent_id: str) -> FirstFree | None:
        return first if agent_id == "a1" else None

    def two(agent_id: str) -> FirstFree | None:
        return second if agent_id in ("a1", "a2") else None

    agents = Agents()
    assert agents("a1") is None
    agents.install(one)
    agents.install(two)
    assert agents("a1") is first
    assert agents("a2") is second
    agents.remove(one)
    agents.remove(one)  # removing twice is harmless
    assert agents("a1") is second


def test_a_trained_agent_plays_its_seat_through_the_resolver() -> None:
    policy = FirstFree()
    agents = Agents([lambda agent_id: policy if agent_id == "dqn-7" else None])
    m = Driver(rules.make_decide(agents), rules.evolve, rules.initial("m1"), "m1", "match")
    trained = Player(kind="agent", id="dqn-7")
    m.ok(CreateMatch(players=(Player(kind="user", id="alice"), trained), seed=1, first=0))
    m.ok(PlaceFleet(player="alice", seed=4))
    events = m.ok(Fire(player="alice", row=5, col=5))
    agent_shot = [e for e in events if isinstance(e, ShotFired) and e.by_agent]
    assert [(s.row, s.col) for s in agent_shot] == [(0, 0)]
    assert policy.calls == 1
    refused = m.refused(Fire(player="alice", row=5, col=5))
    assert refused.code == "cell_already_shot"


def test_the_hook_is_absent_until_the_training_module_provides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType(match_actor.TRAINED_AGENTS_MODULE)
    monkeypatch.setitem(sys.modules, match_actor.TRAINED_AGENTS_MODULE, module)
    assert match_actor.trained_agents_hook() is None

    @asynccontextmanager
    async def trained_agents(services: Any) -> AsyncIterator[Any]:
        yield lambda agent_id: None

    module.trained_agents = trained_agents  # type: ignore[attr-defined]
    assert match_actor.trained_agents_hook() is trained_agents


def test_without_the_training_module_there_is_no_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, match_actor.TRAINED_AGENTS_MODULE, None)
    # A module set to None in sys.modules raises ModuleNotFoundError on import.
    assert match_actor.trained_agents_hook() is None
