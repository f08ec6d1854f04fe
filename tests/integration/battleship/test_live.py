"""The match actor in a running host: telemetry from its own events, and the trained-agent hook."""

from __future__ import annotations

import asyncio
import random
import sys
import types
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import nats
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors.battleship import telemetry as bt
from actors.battleship.engine import BoardView
from actors.kernel import telemetry
from actors.kernel.actor import Services
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.match import actor as match_actor
from actors.match.actor import ACTOR as MATCH
from actors.match.actor import AGENTS
from schemas.battleship import CreateMatch, Fire, PlaceFleet, Player, Resign, ShotFired
from tests.integration.battleship.conftest import Bus

pytestmark = pytest.mark.asyncio

ALICE = Player(kind="user", id="alice")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(
        settings=telemetry.Settings(),
        tracer_provider=provider,
        metric_readers=[InMemoryMetricReader()],
    )
    try:
        yield exporter
    finally:
        telemetry.reset()
        provider.shutdown()


async def _client(server: EmbeddedNats) -> Bus:
    return Bus(await nats.connect(server.url))


async def test_a_live_match_is_traced_from_the_actors_events(
    nats_server: EmbeddedNats, sqlite_url: str, spans: InMemorySpanExporter
) -> None:
    settings = Settings(database_url=sqlite_url, nats_url=nats_server.url)
    host = Host(settings, [MATCH], nats_url=nats_server.url)
    await host.start()
    bus = await _client(nats_server)
    try:
        await host.wait_ready()
        agent = Player(kind="agent", id="hunt_target")
        await bus.ok("live1", CreateMatch(players=(ALICE, agent), seed=2, first=0))
        await bus.ok("live1", PlaceFleet(player="alice", seed=8))
        for col in range(3):
            await bus.ok("live1", Fire(player="alice", row=0, col=col))
        await bus.ok("live1", Resign(player="alice"))

        async def games() -> list[Any]:
            return [s for s in spans.get_finished_spans() if s.name == bt.GAME_SPAN]

        (game,) = await bus.until(games, lambda found: len(found) == 1)
    finally:
        await bus.nc.close()
        await host.stop()
    names = Counter(
        s.name
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == game.context.span_id
    )
    assert names == {bt.SETUP_RANDOM_SPAN: 2, bt.MOVE_SPAN: 6, bt.COMPLETE_SPAN: 1}
    assert game.attributes["game_id"] == "live1"
    assert (game.attributes["mode"], game.attributes["outcome"]) == ("pve", "loss")
    text = telemetry.prometheus_text()[0].decode()
    assert (
        'battleship_game_completed_total{mode="pve",outcome="loss",reason="resigned"} 1.0' in text
    )
    assert 'battleship_shots_total{player="player2",result=' in text


class FirstFree:
    """A deterministic stand-in for a trained policy: the first cell not yet fired at."""

    name = "first-free"

    def select(self, view: BoardView, rng: random.Random) -> int:
        return view.unknown()[0]


async def test_trained_agents_arrive_through_the_hook_for_the_actors_lifetime(
    nats_server: EmbeddedNats, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[Services] = []
    left = asyncio.Event()

    @asynccontextmanager
    async def trained_agents(services: Services) -> AsyncIterator[Any]:
        entered.append(services)
        policy = FirstFree()
        try:
            yield lambda agent_id: policy if agent_id == "dqn-1" else None
        finally:
            left.set()

    module = types.ModuleType(match_actor.TRAINED_AGENTS_MODULE)
    module.trained_agents = trained_agents  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, match_actor.TRAINED_AGENTS_MODULE, module)

    settings = Settings(database_url=sqlite_url, nats_url=nats_server.url)
    host = Host(settings, [MATCH], nats_url=nats_server.url)
    await host.start()
    bus = await _client(nats_server)
    try:
        await host.wait_ready()
        assert len(entered) == 1
        assert entered[0].bus is host.bus
        trained = Player(kind="agent", id="dqn-1")
        await bus.ok("t1", CreateMatch(players=(ALICE, trained), seed=4, first=0))
        await bus.ok("t1", PlaceFleet(player="alice", seed=5))
        outcome = await bus.ok("t1", Fire(player="alice", row=9, col=9))
        agent_shot = outcome.events[-1]
        assert agent_shot.type == "match.shot_fired.v1"
        shot = msgspec.json.decode(agent_shot.data, type=ShotFired)
        assert (shot.by_agent, shot.row, shot.col) == (True, 0, 0)
    finally:
        await bus.nc.close()
        await host.stop()
    assert left.is_set()
    assert AGENTS("dqn-1") is None  # uninstalled with the actor
