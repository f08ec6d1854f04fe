"""Battleship telemetry at the edge: spans and metrics around engines, environments and matches.

The engine, the environments and the match rules import no telemetry; this module wraps them:

* ``InstrumentedGame`` drives an engine ``Game`` inside a ``battleship.engine.game`` span
  whose children are ``battleship.engine.setup_random`` (or ``place_fleet``),
  ``battleship.engine.make_move`` and ``battleship.engine.game_complete``;
* ``traced_play`` is ``evaluate.play`` with the same spans, for single-sided games;
* ``InstrumentedEnv`` / ``InstrumentedVectorEnv`` wrap the Gymnasium environments with
  ``battleship.env.reset`` / ``battleship.env.step`` spans under an episode span and the
  ``battleship_env_*`` metrics;
* ``MatchTelemetry`` turns the match actor's events into the same spans and metrics for live
  matches (the actor runs it on its own events; see ``actors/match/actor.py``).

Metric labels are small closed sets (mode, outcome, reason, result, player seat, shooter
kind); span attributes carry the game or episode id but never coordinates or boards.
"""

from __future__ import annotations

import logging
import random
import time
import weakref
from collections import Counter as CounterType
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, SupportsFloat, SupportsInt

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorWrapper
from numpy.typing import NDArray
from opentelemetry import trace
from opentelemetry.trace import Link, Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from actors.battleship.engine import (
    STANDARD_RULES,
    Board,
    Game,
    Phase,
    Placement,
    Rules,
    Shot,
)
from actors.battleship.env import StepResult
from actors.battleship.errors import BattleshipError
from actors.battleship.players import Player as Policy
from actors.kernel import telemetry
from schemas.base import Event
from schemas.battleship import (
    FleetPlaced,
    MatchCreated,
    MatchFinished,
    MatchStarted,
    PlayerKind,
    ShotFired,
)

if TYPE_CHECKING:
    from actors.battleship.engine import RandomSource

SCOPE: Final = "troupe.battleship"
"""Instrumentation scope of every Battleship span and metric."""

GAME_SPAN: Final = "battleship.engine.game"
SETUP_RANDOM_SPAN: Final = "battleship.engine.setup_random"
PLACE_FLEET_SPAN: Final = "battleship.engine.place_fleet"
MOVE_SPAN: Final = "battleship.engine.make_move"
COMPLETE_SPAN: Final = "battleship.engine.game_complete"
ENV_RESET_SPAN: Final = "battleship.env.reset"
ENV_STEP_SPAN: Final = "battleship.env.step"

Mode = Literal["solo", "pvp", "pve", "eve"]
"""solo: one shooter against a hidden fleet (evaluation, environments); pvp: two users;
pve: a user against an agent; eve: two agents."""
GameOutcome = Literal["win", "loss", "abandoned"]
Reason = Literal["fleet_sunk", "resigned", "truncated", "abandoned"]
Seat = Literal["player1", "player2"]
RewardType = Literal["miss", "hit", "sunk", "win", "invalid"]

SEATS: Final[tuple[Seat, Seat]] = ("player1", "player2")

GAME_DURATION_BUCKETS: Final = (
    0.001,
    0.01,
    0.1,
    1.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
STEP_DURATION_BUCKETS: Final = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.01,
    0.1,
)

log = logging.getLogger("troupe.battleship")


class BattleshipMetrics:
    """Every Battleship instrument; Prometheus names are in each method's docstring."""

    def __init__(self, meter: Any) -> None:
        self._started = meter.create_counter(
            "battleship.game.started", unit="{game}", description="Games started, by mode."
        )
        self._completed = meter.create_counter(
            "battleship.game.completed",
            unit="{game}",
            description="Games ended, by outcome (for player1, or the first user), reason, mode.",
        )
        self._shots = meter.create_counter(
            "battleship.shots",
            unit="{shot}",
            description="Shots fired, by result, shooter seat and shooter kind.",
        )
        self._duration = meter.create_histogram(
            "battleship.game.duration",
            unit="s",
            description="Time from a game's start to its end.",
            explicit_bucket_boundaries_advisory=GAME_DURATION_BUCKETS,
        )
        self._env_actions = meter.create_counter(
            "battleship.env.actions",
            unit="{action}",
            description="Environment steps, by whether the action was valid.",
        )
        self._env_resets = meter.create_counter(
            "battleship.env.resets", unit="{reset}", description="Environment episodes begun."
        )
        self._env_step_duration = meter.create_histogram(
            "battleship.env.step.duration",
            unit="s",
            description="Wall time of one environment step (one batch for a vector env).",
            explicit_bucket_boundaries_advisory=STEP_DURATION_BUCKETS,
        )
        # Rewards go negative, which OpenTelemetry histograms refuse: a running sum per reward
        # type (with battleship_env_actions_total it gives the mean reward per step).
        self._env_reward = meter.create_up_down_counter(
            "battleship.env.reward.value",
            description="Sum of single-environment step rewards, by reward type.",
        )

    def game_started(self, mode: Mode) -> None:
        """``battleship_game_started_total{mode}``."""
        self._started.add(1, {"mode": mode})

    def game_completed(
        self, outcome: GameOutcome, reason: Reason, mode: Mode, seconds: float | None
    ) -> None:
        """``battleship_game_completed_total{outcome,reason,mode}`` and
        ``battleship_game_duration_seconds{mode}``."""
        self._completed.add(1, {"outcome": outcome, "reason": reason, "mode": mode})
        if seconds is not None:
            self._duration.record(max(seconds, 0.0), {"mode": mode})

    def shot(self, result: str, player: Seat, shooter: PlayerKind, n: int = 1) -> None:
        """``battleship_shots_total{result,player,shooter}``."""
        if n:
            self._shots.add(n, {"result": result, "player": player, "shooter": shooter})

    def shots(self, counts: Mapping[tuple[str, Seat, PlayerKind], int]) -> None:
        """Many shots at once (an engine game adds its shots when it ends)."""
        for (result, player, shooter), n in counts.items():
            self.shot(result, player, shooter, n)

    def env_actions(self, valid: int, invalid: int = 0) -> None:
        """``battleship_env_actions_total{result=valid|invalid}``."""
        if valid:
            self._env_actions.add(valid, {"result": "valid"})
        if invalid:
            self._env_actions.add(invalid, {"result": "invalid"})

    def env_resets(self, n: int = 1) -> None:
        """``battleship_env_resets_total``."""
        if n:
            self._env_resets.add(n)

    def env_step(self, seconds: float, *, vectorised: bool) -> None:
        """``battleship_env_step_duration_seconds{vectorised}``."""
        self._env_step_duration.record(
            max(seconds, 0.0), {"vectorised": "true" if vectorised else "false"}
        )

    def env_reward(self, value: float, reward_type: RewardType) -> None:
        """``battleship_env_reward_value{reward_type}`` (a sum, shown by Prometheus as a gauge)."""
        self._env_reward.add(value, {"reward_type": reward_type})

    def env_rewards(self, sums: Mapping[RewardType, float]) -> None:
        """Rewards summed per type (an environment adds an episode's rewards when it ends)."""
        for reward_type, value in sums.items():
            self.env_reward(value, reward_type)


_metrics: weakref.WeakKeyDictionary[telemetry.Telemetry, BattleshipMetrics] = (
    weakref.WeakKeyDictionary()
)


def metrics() -> BattleshipMetrics:
    """The instruments of the process's current telemetry configuration."""
    current = telemetry.get()
    found = _metrics.get(current)
    if found is None:
        found = _metrics.setdefault(current, BattleshipMetrics(current.meter(SCOPE)))
    return found


def tracer() -> trace.Tracer:
    """The Battleship tracer of the current telemetry configuration."""
    return telemetry.tracer(SCOPE)


def mode_of(kinds: Iterable[str]) -> Mode:
    """pvp, pve or eve from the two players' kinds."""
    users = sum(1 for k in kinds if k == "user")
    return "pvp" if users == 2 else "pve" if users == 1 else "eve"


def outcome_of(winner: int | None, kinds: tuple[str, str]) -> GameOutcome:
    """The result for the first user seat (seat 0, player1, when no user plays)."""
    if winner is None:
        return "abandoned"
    viewpoint = next((seat for seat, kind in enumerate(kinds) if kind == "user"), 0)
    return "win" if winner == viewpoint else "loss"


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


# ---------------------------------------------------------------- engine games


class InstrumentedGame:
    """A two-player engine ``Game`` played inside a ``battleship.engine.game`` span.

    Every call mirrors the ``Game`` method of the same name and returns what it returns;
    rule errors propagate unchanged after being recorded on the move span (``error.type`` is
    the error's code, no stack trace) and logged. ``close`` ends an unfinished game as
    abandoned; the class is a context manager that closes itself.
    """

    def __init__(
        self,
        rules: Rules = STANDARD_RULES,
        first: int = 0,
        *,
        game_id: str,
        kinds: tuple[PlayerKind, PlayerKind] = ("agent", "agent"),
    ) -> None:
        self.game = Game(rules, first)
        self.game_id = game_id
        self.kinds = kinds
        self.mode = mode_of(kinds)
        self._metrics = metrics()
        self._tracer = tracer()
        self._span = self._tracer.start_span(
            GAME_SPAN, attributes={"game_id": game_id, "mode": self.mode, "phase": "setup"}
        )
        self._context = trace.set_span_in_context(self._span)
        self._started = time.perf_counter()
        self._closed = False
        # Counted per game and added when it ends: one SDK call per shot would cost more than
        # the shot itself.
        self._shots: CounterType[tuple[str, Seat, PlayerKind]] = CounterType()
        self._metrics.game_started(self.mode)
        with trace.use_span(self._span):
            log.info("game started", extra={"game_id": game_id, "mode": self.mode})

    def _attributes(self, seat: int, phase: str) -> dict[str, AttributeValue]:
        return {"game_id": self.game_id, "player": SEATS[seat], "phase": phase, "mode": self.mode}

    def setup_random(self, seat: int, rng: RandomSource) -> Board:
        """``Game.place_random`` in a ``battleship.engine.setup_random`` span."""
        with self._tracer.start_as_current_span(
            SETUP_RANDOM_SPAN, context=self._context, attributes=self._attributes(seat, "setup")
        ):
            return self.game.place_random(seat, rng)

    def place_fleet(self, seat: int, placements: Iterable[Placement]) -> Board:
        """``Game.place_fleet`` in a ``battleship.engine.place_fleet`` span."""
        with self._tracer.start_as_current_span(
            PLACE_FLEET_SPAN, context=self._context, attributes=self._attributes(seat, "setup")
        ) as span:
            try:
                return self.game.place_fleet(seat, placements)
            except BattleshipError as exc:
                _refused(span, exc, self.game_id, seat)
                raise

    def fire(self, seat: int, row: int, col: int) -> Shot:
        """``Game.fire`` in a ``battleship.engine.make_move`` span; ends the game on a win."""
        with self._tracer.start_as_current_span(
            MOVE_SPAN,
            context=self._context,
            attributes=self._attributes(seat, "in_progress"),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                shot = self.game.fire(seat, row, col)
            except BattleshipError as exc:
                _refused(span, exc, self.game_id, seat)
                raise
            span.set_attribute("shot_result", shot.outcome.value)
            if shot.ship is not None:
                span.set_attribute("ship_type", shot.ship)
        self._shots[(shot.outcome.value, SEATS[seat], self.kinds[seat])] += 1
        if shot.defeated:
            self._complete(seat, "fleet_sunk")
        return shot

    def resign(self, seat: int) -> None:
        """``Game.resign``; ends the game."""
        self.game.resign(seat)
        self._complete(1 - seat, "resigned")

    def close(self) -> None:
        """End the game span; a game without a winner counts as abandoned."""
        if not self._closed:
            self._complete(None, "abandoned")

    def __enter__(self) -> InstrumentedGame:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _complete(self, winner: int | None, reason: Reason) -> None:
        if self._closed:
            return
        self._closed = True
        outcome = outcome_of(winner, self.kinds)
        seconds = time.perf_counter() - self._started
        attributes: dict[str, AttributeValue] = {
            "game_id": self.game_id,
            "phase": "finished",
            "mode": self.mode,
            "outcome": outcome,
            "reason": reason,
        }
        if winner is not None:
            attributes["player"] = SEATS[winner]
        with self._tracer.start_as_current_span(
            COMPLETE_SPAN, context=self._context, attributes=attributes
        ):
            log.info("game complete", extra={k: v for k, v in attributes.items() if k != "phase"})
        self._metrics.shots(self._shots)
        self._metrics.game_completed(outcome, reason, self.mode, seconds)
        self._span.set_attributes({"phase": "finished", "outcome": outcome, "reason": reason})
        self._span.end()

    @property
    def phase(self) -> Phase:
        return self.game.phase


def _refused(span: Span, exc: BattleshipError, game_id: str, seat: int) -> None:
    span.set_attribute("error.type", exc.code)
    span.set_status(Status(StatusCode.ERROR, exc.code))
    log.info(
        "invalid move",
        extra={"game_id": game_id, "player": SEATS[seat], "code": exc.code, "reason": str(exc)},
    )


def traced_play(
    player: Policy,
    rules: Rules,
    fleet: random.Random,
    rng: random.Random,
    *,
    game_id: str,
) -> int:
    """``evaluate.play`` with spans and metrics: the shots ``player`` needs to sink a fleet."""
    m, t = metrics(), tracer()
    shots: CounterType[tuple[str, Seat, PlayerKind]] = CounterType()
    started = time.perf_counter()
    m.game_started("solo")
    with t.start_as_current_span(
        GAME_SPAN,
        attributes={"game_id": game_id, "mode": "solo", "player": "player1", "phase": "setup"},
    ) as game:
        context = trace.set_span_in_context(game)
        with t.start_as_current_span(
            SETUP_RANDOM_SPAN, context=context, attributes={"game_id": game_id, "phase": "setup"}
        ):
            board = Board.random(rules, fleet)
        attributes: dict[str, AttributeValue] = {
            "game_id": game_id,
            "player": "player1",
            "phase": "in_progress",
        }
        while not board.defeated:
            with t.start_as_current_span(MOVE_SPAN, context=context, attributes=attributes) as span:
                shot = board.fire_at(player.select(board.view(), rng))
                span.set_attribute("shot_result", shot.outcome.value)
                if shot.ship is not None:
                    span.set_attribute("ship_type", shot.ship)
            shots[(shot.outcome.value, "player1", "agent")] += 1
        with t.start_as_current_span(
            COMPLETE_SPAN,
            context=context,
            attributes={"game_id": game_id, "phase": "finished", "outcome": "win"},
        ):
            pass
        game.set_attributes({"phase": "finished", "outcome": "win", "shots": board.shots})
    m.shots(shots)
    m.game_completed("win", "fleet_sunk", "solo", time.perf_counter() - started)
    return board.shots


# ---------------------------------------------------------------- environments


_REWARD_TYPE: dict[int, RewardType] = {
    StepResult.MISS: "miss",
    StepResult.HIT: "hit",
    StepResult.SUNK: "sunk",
    StepResult.INVALID: "invalid",
}


class InstrumentedEnv(gym.Wrapper[Any, Any, Any, Any]):
    """A single environment with ``battleship.env.reset``/``step`` spans and env metrics.

    Each episode runs inside a ``battleship.engine.game`` span (mode ``solo``, attribute
    ``episode_id``) that ends when the episode terminates, is truncated, is reset early
    (``abandoned``) or the environment is closed. Observations, rewards and info pass
    through unchanged, so the wrapper never alters the environment's behaviour.

    Action counts and rewards are added to the metrics when an episode ends (per-step SDK
    calls would cost several times the step); ``time_every`` times one step in that many.
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        *,
        episode_prefix: str = "episode",
        time_every: int = 10,
    ) -> None:
        super().__init__(env)
        if time_every < 1:
            raise ValueError(f"time_every must be at least 1, not {time_every}")
        self._prefix = episode_prefix
        self._time_every = time_every
        self._steps = 0
        self._episodes = 0
        self._episode: Span | None = None
        self._context: Any = None
        self._attributes: dict[str, AttributeValue] = {}
        self._valid = 0
        self._invalid = 0
        self._rewards: dict[RewardType, float] = {}

    def _flush(self) -> None:
        m = metrics()
        m.env_actions(self._valid, self._invalid)
        m.env_rewards(self._rewards)
        self._valid = self._invalid = 0
        self._rewards = {}

    def _end_episode(self, outcome: GameOutcome, reason: Reason) -> None:
        self._flush()
        if self._episode is not None:
            self._episode.set_attributes(
                {"phase": "finished", "outcome": outcome, "reason": reason}
            )
            self._episode.end()
            self._episode = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self._end_episode("abandoned", "abandoned")
        self._episodes += 1
        episode_id = f"{self._prefix}-{self._episodes}"
        t = tracer()
        self._attributes = {"episode_id": episode_id}
        self._episode = t.start_span(
            GAME_SPAN, attributes={"episode_id": episode_id, "mode": "solo", "phase": "setup"}
        )
        self._context = trace.set_span_in_context(self._episode)
        with t.start_as_current_span(
            ENV_RESET_SPAN, context=self._context, attributes=self._attributes
        ):
            result = self.env.reset(seed=seed, options=options)
        metrics().env_resets()
        return result

    def step(self, action: SupportsInt) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        self._steps += 1
        timed = self._steps % self._time_every == 0
        with tracer().start_as_current_span(
            ENV_STEP_SPAN, context=self._context, attributes=self._attributes
        ) as span:
            started = time.perf_counter()
            obs, reward, terminated, truncated, info = self.env.step(action)
            if timed:
                metrics().env_step(time.perf_counter() - started, vectorised=False)
            result = int(info.get("result", 0))
            valid = result != StepResult.INVALID
            reward_type: RewardType = "win" if terminated else _REWARD_TYPE.get(result, "miss")
            span.set_attributes(
                {
                    "action_valid": valid,
                    "terminated": bool(terminated),
                    "truncated": bool(truncated),
                    "reward_type": reward_type,
                }
            )
        if valid:
            self._valid += 1
        else:
            self._invalid += 1
        self._rewards[reward_type] = self._rewards.get(reward_type, 0.0) + float(reward)
        if not valid:
            log.info("invalid action", extra={"episode_id": self._attributes.get("episode_id")})
        if terminated:
            self._end_episode("win", "fleet_sunk")
        elif truncated:
            self._end_episode("loss", "truncated")
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self._end_episode("abandoned", "abandoned")
        super().close()


class InstrumentedVectorEnv(VectorWrapper):
    """A vector environment with one ``battleship.env.reset``/``step`` span per batch call.

    Step spans carry the batch's counts (``num_envs``, ``valid_actions``, ``terminated``,
    ``truncated``); metrics count every sub-environment's action and autoreset. Rewards are not
    recorded one by one here: at thousands of steps a second that would cost more than the step.
    """

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._attributes: dict[str, AttributeValue] = {"num_envs": int(self.num_envs)}

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        # BattleshipVectorEnv also takes one seed per sub-environment.
        inner: Any = self.env
        with tracer().start_as_current_span(ENV_RESET_SPAN, attributes=self._attributes):
            result: tuple[Any, dict[str, Any]] = inner.reset(seed=seed, options=options)
        mask = (options or {}).get("reset_mask")
        metrics().env_resets(int(np.count_nonzero(mask)) if mask is not None else self.num_envs)
        return result

    def step(
        self, actions: Any
    ) -> tuple[Any, NDArray[Any], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        m = metrics()
        with tracer().start_as_current_span(ENV_STEP_SPAN, attributes=self._attributes) as span:
            started = time.perf_counter()
            obs, rewards, terminated, truncated, info = self.env.step(actions)
            m.env_step(time.perf_counter() - started, vectorised=True)
            result = np.asarray(info["result"])
            if "final_info" in info:
                # Rows that ended were reset in the same step; their last result is kept apart.
                done = np.asarray(info["_final_info"], np.bool_)
                result = np.where(done, np.asarray(info["final_info"]["result"]), result)
            invalid = int(np.count_nonzero(result == StepResult.INVALID))
            ended = int(np.count_nonzero(np.asarray(terminated) | np.asarray(truncated)))
            span.set_attributes(
                {
                    "valid_actions": int(self.num_envs) - invalid,
                    "terminated": int(np.count_nonzero(terminated)),
                    "truncated": int(np.count_nonzero(truncated)),
                }
            )
        m.env_actions(int(self.num_envs) - invalid, invalid)
        m.env_resets(ended)
        return obs, rewards, terminated, truncated, info


# ---------------------------------------------------------------- live matches


class _OpenGame:
    __slots__ = ("context", "mode", "span")

    def __init__(self, span: Span, mode: Mode | None) -> None:
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.mode = mode


class MatchTelemetry:
    """Spans and metrics of live matches, derived from the match actor's events.

    A match's ``battleship.engine.game`` span opens at ``match.created`` and ends at
    ``match.finished``, timed by the events' own timestamps; each ``match.fleet_placed``,
    ``match.shot_fired`` and ``match.finished`` adds a child span, linked to the trace of the
    command that caused it. Open spans are kept for at most ``max_open`` matches (the oldest
    is ended as abandoned); a match whose creation this process did not see gets its game span
    when its next event arrives.
    """

    def __init__(self, *, max_open: int = 10_000) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, _OpenGame] = OrderedDict()

    def observe(
        self, match_id: str, event: Event, headers: Mapping[str, str] | None = None
    ) -> None:
        """Record one match event (``headers`` of the message, for the link to its trace)."""
        match event:
            case MatchCreated():
                mode = mode_of(p.kind for p in event.players)
                self._open_game(match_id, mode, event.at)
                metrics().game_started(mode)
            case FleetPlaced():
                game = self._game(match_id, event.at)
                name = SETUP_RANDOM_SPAN if event.random else PLACE_FLEET_SPAN
                self._child(game, name, event.at, headers, match_id, event.seat, "setup")
            case MatchStarted():
                game = self._game(match_id, event.at)
                game.span.set_attribute("phase", "in_progress")
            case ShotFired():
                game = self._game(match_id, event.at)
                extra: dict[str, AttributeValue] = {"shot_result": event.result}
                if event.ship is not None:
                    extra["ship_type"] = event.ship
                self._child(
                    game, MOVE_SPAN, event.at, headers, match_id, event.seat, "in_progress", extra
                )
                shooter: PlayerKind = "agent" if event.by_agent else "user"
                metrics().shot(event.result, SEATS[event.seat], shooter)
            case MatchFinished():
                kinds = (
                    (event.winner.kind, event.loser.kind)
                    if event.winner_seat == 0
                    else (event.loser.kind, event.winner.kind)
                )
                mode = mode_of(kinds)
                game = (
                    self._open.pop(match_id)
                    if match_id in self._open
                    else self._start(match_id, mode, event.at)
                )
                game.mode = mode
                outcome = outcome_of(event.winner_seat, kinds)
                extra = {"outcome": outcome, "reason": event.reason}
                self._child(
                    game, COMPLETE_SPAN, event.at, headers, match_id, event.winner_seat,
                    "finished", extra,
                )  # fmt: skip
                game.span.set_attributes({"phase": "finished", **extra})
                game.span.end(end_time=_ns(event.at))
                seconds = (
                    (event.at - event.created_at).total_seconds()
                    if event.created_at is not None
                    else None
                )
                metrics().game_completed(outcome, event.reason, mode, seconds)
                log.info(
                    "match complete",
                    extra={"game_id": match_id, "outcome": outcome, "reason": event.reason},
                )
            case _:
                pass

    @property
    def open_matches(self) -> int:
        """Matches whose game span is open in this process."""
        return len(self._open)

    def close(self) -> None:
        """End every open game span (at shutdown); the matches go on elsewhere."""
        while self._open:
            _, game = self._open.popitem(last=False)
            game.span.set_attribute("phase", "interrupted")
            game.span.end()

    def _start(self, match_id: str, mode: Mode | None, at: datetime) -> _OpenGame:
        attributes: dict[str, AttributeValue] = {"game_id": match_id, "phase": "setup"}
        if mode is not None:
            attributes["mode"] = mode
        span = tracer().start_span(GAME_SPAN, attributes=attributes, start_time=_ns(at))
        return _OpenGame(span, mode)

    def _open_game(self, match_id: str, mode: Mode | None, at: datetime) -> _OpenGame:
        game = self._start(match_id, mode, at)
        self._open[match_id] = game
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.span.set_attributes({"phase": "unfinished", "outcome": "abandoned"})
            old.span.end()
        return game

    def _game(self, match_id: str, at: datetime) -> _OpenGame:
        game = self._open.get(match_id)
        if game is None:
            # Created before this process started, or observed by another instance.
            return self._open_game(match_id, None, at)
        self._open.move_to_end(match_id)
        return game

    def _child(
        self,
        game: _OpenGame,
        name: str,
        at: datetime,
        headers: Mapping[str, str] | None,
        match_id: str,
        seat: int,
        phase: str,
        extra: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        attributes: dict[str, AttributeValue] = {
            "game_id": match_id,
            "player": SEATS[seat],
            "phase": phase,
            **(extra or {}),
        }
        if game.mode is not None:
            attributes["mode"] = game.mode
        links = []
        cause = trace.get_current_span(telemetry.extract(headers)).get_span_context()
        if cause.is_valid:
            links.append(Link(cause))
        span = tracer().start_span(
            name, context=game.context, attributes=attributes, links=links, start_time=_ns(at)
        )
        span.end(end_time=_ns(at))


__all__ = [
    "COMPLETE_SPAN",
    "ENV_RESET_SPAN",
    "ENV_STEP_SPAN",
    "GAME_SPAN",
    "MOVE_SPAN",
    "PLACE_FLEET_SPAN",
    "SCOPE",
    "SETUP_RANDOM_SPAN",
    "BattleshipMetrics",
    "InstrumentedEnv",
    "InstrumentedGame",
    "InstrumentedVectorEnv",
    "MatchTelemetry",
    "metrics",
    "mode_of",
    "outcome_of",
    "traced_play",
    "tracer",
]
