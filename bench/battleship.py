"""Battleship: engine games/s, env steps/s (single vs vectorised), the match actor's stores."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import msgspec
import numpy as np

from actors.battleship.engine import STANDARD_RULES, Game
from actors.battleship.env import BattleshipEnv
from actors.battleship.evaluate import fleet_rng, play, player_rng
from actors.battleship.players import BASELINES, RandomPlayer
from actors.battleship.players import Player as Policy
from actors.battleship.telemetry import InstrumentedEnv, InstrumentedGame
from actors.battleship.vector import BattleshipVectorEnv
from actors.kernel.actor import Actor
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.host import Host
from actors.kernel.store import JsonStateStore
from actors.match import rules as match_rules
from actors.match.actor import ACTOR as MATCH
from actors.match.rules import MatchState
from bench.env import BenchEnv, Result
from schemas import subjects
from schemas.base import Command, Context, Rejection
from schemas.battleship import CreateMatch, Fire, PlaceFleet, Player
from schemas.headers import Header

ENGINE = "battleship engine"
ENV = "battleship env"
ACTOR = "battleship match actor"


def _rate(run: Callable[[], int]) -> float:
    """Units per second of ``run``, which returns how many units it did."""
    started = time.perf_counter()
    done = run()
    return done / max(time.perf_counter() - started, 1e-9)


# ---------------------------------------------------------------- engine games/s


def _solo_random(games: int) -> int:
    player = RandomPlayer()
    for i in range(games):
        play(player, STANDARD_RULES, fleet_rng(1, i), player_rng(1, i))
    return games


def _duel(policy: Policy, games: int, *, traced: bool = False) -> int:
    for i in range(games):
        rng = random.Random(i)
        if traced:
            with InstrumentedGame(STANDARD_RULES, i % 2, game_id=f"bench-{i}") as game:
                game.setup_random(0, rng)
                game.setup_random(1, rng)
                while (seat := game.game.turn) is not None:
                    cell = policy.select(game.game.view_for(seat), rng)
                    game.fire(seat, *divmod(cell, 10))
            continue
        plain = Game(STANDARD_RULES, i % 2)
        plain.place_random(0, rng)
        plain.place_random(1, rng)
        while (seat := plain.turn) is not None:
            cell = policy.select(plain.view_for(seat), rng)
            plain.fire(seat, *divmod(cell, 10))
    return games


def _rules_match(games: int) -> int:
    """Whole agent-vs-agent matches through the match rules: events, evolve and all."""
    from datetime import UTC, datetime

    agents = (Player(kind="agent", id="random"), Player(kind="agent", id="random_b"))
    resolve: Callable[[str], Policy | None] = lambda _: BASELINES["random"]  # noqa: E731
    decide = match_rules.make_decide(resolve)
    for i in range(games):
        ctx = Context(
            key=f"m{i}",
            message_id=f"c{i}",
            subject=f"cmd.match.m{i}.create",
            received_at=datetime(2025, 1, 1, tzinfo=UTC),
            correlation_id=f"c{i}",
        )
        decision = decide(match_rules.initial(f"m{i}"), CreateMatch(players=agents, seed=i), ctx)
        assert not isinstance(decision, Rejection), decision
    return games


def engine_results(env: BenchEnv) -> list[Result]:
    games = env.size(400, 4)
    baseline = _rate(lambda: _solo_random(games))
    out = [
        Result(
            group=ENGINE,
            name="random player, one-sided loop",
            value=baseline,
            unit="games/s",
            notes="Board + RandomPlayer until sunk (evaluate.play)",
        )
    ]
    for name, run, notes in [
        ("two-player Game, random", lambda: _duel(BASELINES["random"], games), ""),
        ("two-player Game, hunt_target", lambda: _duel(BASELINES["hunt_target"], games), ""),
        (
            "two-player Game, probability",
            lambda: _duel(BASELINES["probability"], max(games // 4, 1)),
            "density player: numpy per shot",
        ),
        (
            "two-player InstrumentedGame, random",
            lambda: _duel(BASELINES["random"], games, traced=True),
            "spans and metrics, no exporter",
        ),
        ("match rules, agent vs agent", lambda: _rules_match(games), "decide + events + evolve"),
    ]:
        out.append(
            Result(
                group=ENGINE,
                name=name,
                value=_rate(run),
                unit="games/s",
                baseline="random player, one-sided loop",
                notes=notes,
            )
        )
    return out


# ---------------------------------------------------------------- environment steps/s


def _single_steps(env: gym.Env[Any, Any], steps: int) -> int:
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    inner: BattleshipEnv = env.unwrapped  # type: ignore[assignment]
    for _ in range(steps):
        action = int(rng.choice(np.flatnonzero(inner.action_masks())))
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps


def _vector_steps(num_envs: int, batches: int) -> int:
    env = BattleshipVectorEnv(num_envs)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(batches):
        # A random legal cell per board: the largest random score among unshot cells.
        scores = rng.random((num_envs, 100)) * env.action_masks()
        env.step(scores.argmax(axis=1))
    return num_envs * batches


def _sync_vector_steps(num_envs: int, batches: int) -> int:
    env = gym.vector.SyncVectorEnv(
        [lambda: BattleshipEnv() for _ in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    for _ in range(batches):
        scores = rng.random((num_envs, 100)) * info["action_mask"]
        _, _, _, _, info = env.step(scores.argmax(axis=1))
    env.close()
    return num_envs * batches


def env_results(env: BenchEnv) -> list[Result]:
    steps = env.size(20_000, 200)
    baseline = "BattleshipEnv, one env"
    out = [
        Result(
            group=ENV,
            name=baseline,
            value=_rate(lambda: _single_steps(BattleshipEnv(), steps)),
            unit="steps/s",
            notes="masked random actions",
        ),
        Result(
            group=ENV,
            name="InstrumentedEnv, one env",
            value=_rate(lambda: _single_steps(InstrumentedEnv(BattleshipEnv()), steps)),
            unit="steps/s",
            baseline=baseline,
            notes="spans and metrics, no exporter",
        ),
    ]
    for n in (16, 64, 256):
        batches = max(steps // n, 2)
        out.append(
            Result(
                group=ENV,
                name=f"BattleshipVectorEnv x{n}",
                value=_rate(functools.partial(_vector_steps, n, batches)),
                unit="steps/s",
                baseline=baseline,
                notes="numpy boards, same-step autoreset",
            )
        )
    batches = max(steps // 16 // 4, 2)
    out.append(
        Result(
            group=ENV,
            name="gymnasium SyncVectorEnv x16",
            value=_rate(lambda: _sync_vector_steps(16, batches)),
            unit="steps/s",
            baseline=baseline,
            notes="16 BattleshipEnv stepped in a Python loop",
        )
    )
    return out


# ---------------------------------------------------------------- the match actor


def _workload(matches: int, shots: int) -> list[tuple[str, Command]]:
    """Per match: create (user vs random agent), place at random, then ``shots`` shots."""
    out: list[tuple[str, Command]] = []
    cells = [(r, c) for r in range(10) for c in range(10)]
    for m in range(matches):
        key = f"m{m}"
        players = (Player(kind="user", id=f"u{m}"), Player(kind="agent", id="random"))
        out.append((key, CreateMatch(players=players, seed=m, first=0, rated=False)))
        out.append((key, PlaceFleet(player=f"u{m}", seed=m)))
        out += [(key, Fire(player=f"u{m}", row=r, col=c)) for r, c in cells[:shots]]
    return out


async def _publish(url: str, work: list[tuple[str, Command]]) -> None:
    bus = await Bus.connect(url, Settings(nats_url=url))
    try:
        await bus.ensure_streams()
        futures = [
            await bus.js.publish_async(
                subjects.command_subject_for(type(cmd), key),
                msgspec.json.encode(cmd),
                headers={Header.MSG_ID.value: f"w{i}"},
            )
            for i, (key, cmd) in enumerate(work)
        ]
        await asyncio.gather(*futures)
    finally:
        await bus.close()


async def _actor_rate(
    env: BenchEnv, actor: Actor[MatchState], database_url: str, work: list[tuple[str, Command]]
) -> float:
    """Commands/s: the workload is published first, then the actor is timed through all of it."""
    with env.nats() as server:
        await _publish(server.url, work)
        settings = Settings(nats_url=server.url, database_url=database_url, batch_size=256)
        host = Host(settings, [actor], nats_url=server.url, serve_requests=False)
        started = time.perf_counter()
        await host.start()
        try:
            async with asyncio.timeout(600):
                while True:
                    stats = host.runners[0].stats
                    if stats.applied + stats.rejected + stats.duplicates >= len(work):
                        break
                    await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
        finally:
            await host.stop()
    return len(work) / elapsed


async def actor_results(env: BenchEnv) -> list[Result]:
    work = _workload(env.size(100, 2), env.size(40, 3))
    as_json = dataclasses.replace(MATCH, store=JsonStateStore(MatchState))
    out: list[Result] = []
    for backend in ("sqlite", "postgres"):
        database = env.sqlite() if backend == "sqlite" else env.postgres()
        async with database as url:
            json_rate = await _actor_rate(env, as_json, url, work)
        database = env.sqlite() if backend == "sqlite" else env.postgres()
        async with database as url:
            table_rate = await _actor_rate(env, MATCH, url, work)
        base = f"JSON state store, {backend}"
        out += [
            Result(
                group=ACTOR,
                name=base,
                value=json_rate,
                unit="commands/s",
                notes="one JSON row per match (actor_state)",
            ),
            Result(
                group=ACTOR,
                name=f"relational store, {backend}",
                value=table_rate,
                unit="commands/s",
                baseline=base,
                notes="matches + match_ships + moves; each user shot answered by the agent",
            ),
        ]
    return out


async def run(env: BenchEnv) -> list[Result]:
    """Every Battleship figure, each group with a baseline measured in the same run."""
    results = await asyncio.to_thread(engine_results, env)
    results += await asyncio.to_thread(env_results, env)
    results += await actor_results(env)
    return results
