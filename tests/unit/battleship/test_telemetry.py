"""Battleship telemetry at the edge: span names, parentage, attributes and metrics, in memory."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from actors.battleship import telemetry as bt
from actors.battleship.engine import Rules
from actors.battleship.env import BattleshipEnv
from actors.battleship.errors import CellAlreadyShot
from actors.battleship.evaluate import fleet_rng, play, player_rng
from actors.battleship.players import BASELINES, RandomPlayer
from actors.battleship.vector import BattleshipVectorEnv
from actors.kernel import telemetry
from actors.kernel.telemetry import Settings
from actors.match import rules as match
from schemas.battleship import CreateMatch, Fire, PlaceFleet, Player, Resign
from schemas.headers import Header
from tests.unit.battleship.support import Driver

SMALL = Rules.of(6, 6, (3, 2))
FORBIDDEN = {"row", "col", "cell", "board", "marks", "observation", "action", "seed"}
"""Attribute keys that would leak coordinates, boards or secrets."""


@dataclass
class Otel:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.spans.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(
            p.value if hasattr(p, "value") else p.count
            for p in self.points(name)
            if all(p.attributes.get(k) == v for k, v in labels.items())
        )


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry.configure(settings=Settings(), tracer_provider=provider, metric_readers=[reader])
    try:
        yield Otel(exporter, reader)
    finally:
        telemetry.reset()
        provider.shutdown()


def _children_of(game: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    assert game.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == game.context.span_id]


def _check_bounded(spans: list[ReadableSpan]) -> None:
    for span in spans:
        assert not FORBIDDEN & set(span.attributes or {}), (span.name, span.attributes)
        assert not span.events, "no exception events (stack traces) on Battleship spans"


def _agent_game(game: bt.InstrumentedGame, seed: int) -> int:
    """Two random players to the end; returns the number of shots."""
    rng = random.Random(seed)
    game.setup_random(0, rng)
    game.setup_random(1, rng)
    shots = 0
    while game.game.turn is not None:
        seat = game.game.turn
        cell = RandomPlayer().select(game.game.view_for(seat), rng)
        game.fire(seat, *divmod(cell, SMALL.width))
        shots += 1
    return shots


def test_an_engine_game_is_one_span_with_a_child_per_step(otel: Otel) -> None:
    with bt.InstrumentedGame(SMALL, game_id="g1") as game:
        shots = _agent_game(game, seed=3)
    spans = otel.finished()
    (root,) = otel.finished(bt.GAME_SPAN)
    children = _children_of(root, spans)
    assert Counter(s.name for s in children) == {
        bt.SETUP_RANDOM_SPAN: 2,
        bt.MOVE_SPAN: shots,
        bt.COMPLETE_SPAN: 1,
    }
    assert len(spans) == 1 + len(children)
    _check_bounded(spans)
    assert root.attributes is not None
    assert dict(root.attributes) == {
        "game_id": "g1",
        "mode": "eve",
        "phase": "finished",
        "outcome": "win" if game.game.winner == 0 else "loss",
        "reason": "fleet_sunk",
    }
    moves = [s for s in children if s.name == bt.MOVE_SPAN]
    assert {s.attributes["shot_result"] for s in moves if s.attributes} <= {"miss", "hit", "sunk"}
    sunk = [s.attributes for s in moves if s.attributes and s.attributes["shot_result"] == "sunk"]
    winner = "player1" if game.game.winner == 0 else "player2"
    assert sorted(a["ship_type"] for a in sunk if a["player"] == winner) == ["cruiser", "destroyer"]
    assert {s.attributes["player"] for s in moves if s.attributes} == {"player1", "player2"}

    assert otel.total("battleship.game.started", mode="eve") == 1
    assert otel.total("battleship.game.completed", reason="fleet_sunk", mode="eve") == 1
    assert otel.total("battleship.shots") == shots
    assert otel.total("battleship.shots", result="sunk") == len(sunk)
    assert otel.total("battleship.game.duration", mode="eve") == 1


def test_an_invalid_move_is_recorded_without_a_stack_trace_and_still_raised(otel: Otel) -> None:
    game = bt.InstrumentedGame(SMALL, first=0, game_id="g2", kinds=("user", "agent"))
    game.setup_random(0, random.Random(1))
    game.setup_random(1, random.Random(2))
    game.fire(0, 0, 0)
    game.fire(1, 0, 0)
    with pytest.raises(CellAlreadyShot):
        game.fire(0, 0, 0)
    game.resign(0)
    failed = [s for s in otel.finished(bt.MOVE_SPAN) if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1
    assert failed[0].attributes is not None
    assert failed[0].attributes["error.type"] == "cell_already_shot"
    _check_bounded(otel.finished())
    (complete,) = otel.finished(bt.COMPLETE_SPAN)
    assert complete.attributes is not None
    # pve: the outcome is the user's, who resigned.
    assert (complete.attributes["outcome"], complete.attributes["reason"]) == ("loss", "resigned")
    assert otel.total("battleship.game.completed", outcome="loss", mode="pve") == 1
    assert otel.total("battleship.shots", shooter="user") == 1
    assert otel.total("battleship.shots", shooter="agent") == 1


def test_an_unfinished_game_is_closed_as_abandoned(otel: Otel) -> None:
    with bt.InstrumentedGame(SMALL, game_id="g3"):
        pass
    (root,) = otel.finished(bt.GAME_SPAN)
    assert root.attributes is not None
    assert root.attributes["outcome"] == "abandoned"
    assert otel.total("battleship.game.completed", outcome="abandoned", reason="abandoned") == 1


def test_traced_play_plays_exactly_like_play(otel: Otel) -> None:
    player = BASELINES["hunt_target"]
    for game in range(3):
        plain = play(player, SMALL, fleet_rng(5, game), player_rng(5, game))
        traced = bt.traced_play(
            player, SMALL, fleet_rng(5, game), player_rng(5, game), game_id=f"e{game}"
        )
        assert traced == plain
    roots = otel.finished(bt.GAME_SPAN)
    assert len(roots) == 3
    for root in roots:
        names = Counter(s.name for s in _children_of(root, otel.finished()))
        assert root.attributes is not None
        assert names[bt.MOVE_SPAN] == root.attributes["shots"]
        assert names[bt.SETUP_RANDOM_SPAN] == names[bt.COMPLETE_SPAN] == 1
    assert otel.total("battleship.game.completed", outcome="win", mode="solo") == 3


def test_the_env_wrapper_traces_steps_under_the_episode_and_changes_nothing(otel: Otel) -> None:
    plain = BattleshipEnv(6, 6, (3, 2))
    wrapped = bt.InstrumentedEnv(BattleshipEnv(6, 6, (3, 2)), time_every=1)
    obs_a, _ = plain.reset(seed=4)
    obs_b, _ = wrapped.reset(seed=4)
    assert np.array_equal(obs_a, obs_b)
    rng = np.random.default_rng(0)
    steps, invalid, done, action = 0, 0, False, 0
    while not done:
        # The second step repeats the first: an invalid action.
        if steps != 1:
            action = int(rng.choice(np.flatnonzero(plain.action_masks())))
        a = plain.step(action)
        b = wrapped.step(action)
        assert np.array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
        invalid += steps == 1
        steps += 1
        done = a[2] or a[3]
    wrapped.close()

    (episode,) = otel.finished(bt.GAME_SPAN)
    children = _children_of(episode, otel.finished())
    assert Counter(s.name for s in children) == {bt.ENV_RESET_SPAN: 1, bt.ENV_STEP_SPAN: steps}
    _check_bounded(otel.finished())
    last = [s for s in children if s.name == bt.ENV_STEP_SPAN][-1]
    assert last.attributes is not None
    assert dict(last.attributes) == {
        "episode_id": "episode-1",
        "action_valid": True,
        "terminated": True,
        "truncated": False,
        "reward_type": "win",
    }
    assert episode.attributes is not None
    assert episode.attributes["outcome"] == "win"
    assert otel.total("battleship.env.actions", result="invalid") == invalid == 1
    assert otel.total("battleship.env.actions", result="valid") == steps - 1
    assert otel.total("battleship.env.resets") == 1
    assert otel.total("battleship.env.reward.value", reward_type="invalid") == -5.0
    assert otel.total("battleship.env.reward.value", reward_type="win") == 12.0
    assert otel.total("battleship.env.step.duration", vectorised="false") == steps


def test_resetting_mid_episode_abandons_it(otel: Otel) -> None:
    env = bt.InstrumentedEnv(BattleshipEnv(6, 6, (3, 2)), episode_prefix="run7")
    env.reset(seed=1)
    env.step(0)
    env.reset(seed=2)
    env.close()
    first, second = otel.finished(bt.GAME_SPAN)
    assert first.attributes is not None
    assert second.attributes is not None
    assert (first.attributes["episode_id"], first.attributes["outcome"]) == ("run7-1", "abandoned")
    assert second.attributes["episode_id"] == "run7-2"


def test_the_vector_wrapper_counts_every_board(otel: Otel) -> None:
    env = bt.InstrumentedVectorEnv(BattleshipVectorEnv(8, 4, 4, (2,)))
    env.reset(seed=0)
    ended = 0
    steps = 30
    for step in range(steps):
        actions = np.full(8, (step // 2) % 16)  # every cell twice: the repeat is invalid
        _, _, terminated, truncated, _ = env.step(actions)
        ended += int(np.count_nonzero(terminated | truncated))
    assert len(otel.finished(bt.ENV_STEP_SPAN)) == steps
    assert otel.total("battleship.env.actions") == 8 * steps
    assert otel.total("battleship.env.actions", result="invalid") > 0
    assert otel.total("battleship.env.resets") == 8 + ended
    assert otel.total("battleship.env.step.duration", vectorised="true") == steps


def _live_match() -> list[Any]:
    m = Driver(match.decide, match.evolve, match.initial("m1"), "m1", "match")
    agent = Player(kind="agent", id="hunt_target")
    m.ok(CreateMatch(players=(Player(kind="user", id="alice"), agent), seed=9, first=0))
    m.ok(PlaceFleet(player="alice", seed=3))
    for cell in range(4):
        m.ok(Fire(player="alice", row=cell, col=cell))
    m.ok(Resign(player="alice"))
    return m.log


def test_live_match_events_become_the_same_spans_and_metrics(otel: Otel) -> None:
    observer = bt.MatchTelemetry()
    cause = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for event in _live_match():
        observer.observe("m1", event, {Header.TRACEPARENT.value: cause})
    assert observer.open_matches == 0
    (root,) = otel.finished(bt.GAME_SPAN)
    children = _children_of(root, otel.finished())
    assert Counter(s.name for s in children) == {
        bt.SETUP_RANDOM_SPAN: 2,
        bt.MOVE_SPAN: 8,
        bt.COMPLETE_SPAN: 1,
    }
    _check_bounded(otel.finished())
    for child in children:
        assert [format(link.context.trace_id, "032x") for link in child.links] == [
            "0af7651916cd43dd8448eb211c80319c"
        ]
    assert root.attributes is not None
    assert dict(root.attributes) == {
        "game_id": "m1",
        "mode": "pve",
        "phase": "finished",
        "outcome": "loss",
        "reason": "resigned",
    }
    # Spans are timed by the events: the game lasts from creation to the resignation.
    assert root.end_time is not None
    assert root.start_time is not None
    assert root.end_time - root.start_time == 6 * 1_000_000_000
    assert otel.total("battleship.game.started", mode="pve") == 1
    assert otel.total("battleship.game.completed", outcome="loss", reason="resigned") == 1
    assert otel.total("battleship.shots", shooter="user", player="player1") == 4
    assert otel.total("battleship.shots", shooter="agent", player="player2") == 4
    (duration,) = otel.points("battleship.game.duration")
    assert duration.sum == 6.0


def test_a_match_seen_midway_still_gets_a_game_span(otel: Otel) -> None:
    observer = bt.MatchTelemetry(max_open=1)
    events = _live_match()
    for event in events[3:]:
        observer.observe("m1", event)
    observer.observe("m2", events[0])
    observer.observe("m3", events[0])  # evicts m2
    observer.close()
    roots = otel.finished(bt.GAME_SPAN)
    assert len(roots) == 3
    assert roots[0].attributes is not None
    assert roots[0].attributes["outcome"] == "loss"


def test_metric_names_as_prometheus_sees_them_and_their_labels(otel: Otel) -> None:
    with bt.InstrumentedGame(SMALL, game_id="p1") as game:
        _agent_game(game, seed=1)
    env = bt.InstrumentedEnv(BattleshipEnv(4, 4, (2,)), time_every=1)
    env.reset(seed=0)
    env.step(0)
    env.close()  # the episode's counts are added when it ends
    text = telemetry.prometheus_text()[0].decode()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("battleship_"):
                labels.setdefault(sample.name, set()).update(set(sample.labels) - {"le"})
    assert labels == {
        "battleship_game_started_total": {"mode"},
        "battleship_game_completed_total": {"outcome", "reason", "mode"},
        "battleship_shots_total": {"result", "player", "shooter"},
        "battleship_game_duration_seconds_bucket": {"mode"},
        "battleship_game_duration_seconds_count": {"mode"},
        "battleship_game_duration_seconds_sum": {"mode"},
        "battleship_env_actions_total": {"result"},
        "battleship_env_resets_total": set(),
        "battleship_env_step_duration_seconds_bucket": {"vectorised"},
        "battleship_env_step_duration_seconds_count": {"vectorised"},
        "battleship_env_step_duration_seconds_sum": {"vectorised"},
        "battleship_env_reward_value": {"reward_type"},
    }


def test_the_pure_modules_import_no_telemetry() -> None:
    code = (
        "import sys\n"
        "import actors.battleship.engine, actors.battleship.env, actors.battleship.vector\n"
        "import actors.battleship.players, actors.battleship.evaluate\n"
        "import actors.match.rules, actors.lobby.rules, actors.ratings.rules\n"
        "loaded = [m for m in sys.modules if m.startswith('opentelemetry')\n"
        "          or m in ('actors.kernel.telemetry', 'actors.battleship.telemetry')]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
