"""Pure rules of a match: two users or agents place fleets and fire in turn until one is sunk."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Literal

import msgspec

from actors.battleship.engine import Board, Game, Mark, Phase, random_placements
from actors.battleship.errors import BattleshipError, cell_name
from actors.battleship.players import BASELINES, RandomPlayer, baseline
from actors.battleship.players import Player as Policy
from actors.battleship.specs import acting_as, placements_of, rules_of, wire_placements
from schemas.base import Command, Context, Decision, Event, Rejection
from schemas.battleship import (
    STANDARD_BOARD,
    BoardSpec,
    Chat,
    ChatPosted,
    CreateMatch,
    Fire,
    FleetPlaced,
    MatchCreated,
    MatchFinished,
    MatchStarted,
    PlaceFleet,
    Player,
    Resign,
    ShipPlacement,
    ShotFired,
    ShotResult,
    ladder_of,
)

Status = Literal["new", "placing", "in_progress", "finished"]
Resolver = Callable[[str], Policy | None]
"""Finds the policy behind an agent id: the baselines by default, trained agents when wired."""


class ShotRecord(msgspec.Struct, frozen=True, array_like=True):
    """One shot as the match keeps it: ``[seat, row, col, result, at]``."""

    seat: int
    row: int
    col: int
    result: ShotResult
    at: datetime | None = None


class MatchState(msgspec.Struct, frozen=True, kw_only=True):
    """A match: ``new`` until created, then ``placing`` -> ``in_progress`` -> ``finished``."""

    match_id: str
    status: Status = "new"
    players: tuple[Player, ...] = ()
    room_id: str | None = None
    rated: bool = True
    board: BoardSpec = STANDARD_BOARD
    seed: int = 0
    first: int = 0
    fleets: tuple[tuple[ShipPlacement, ...] | None, ...] = (None, None)
    shots: tuple[ShotRecord, ...] = ()
    turn: int | None = None
    winner: int | None = None
    reason: str | None = None
    chat_messages: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def initial(key: str) -> MatchState:
    """A match never seen before."""
    return MatchState(match_id=key)


COMMANDS = (CreateMatch, PlaceFleet, Fire, Resign, Chat)
EMITS = (MatchCreated, FleetPlaced, MatchStarted, ShotFired, MatchFinished, ChatPosted)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from data (the match seed, a message id, ...): stable across runs."""
    text = ":".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def make_decide(resolve: Resolver = baseline) -> Callable[[MatchState, Command, Context], Decision]:
    """A ``decide`` whose agents come from ``resolve`` (for example trained policies)."""

    def decide(state: MatchState, message: Command, ctx: Context) -> Decision:
        match message:
            case CreateMatch():
                return _create(state, message, ctx, resolve)
            case PlaceFleet():
                return _place(state, message, ctx, resolve)
            case Fire():
                return _fire(state, message, ctx, resolve)
            case Resign():
                return _resign(state, message, ctx)
            case Chat():
                return _chat(state, message, ctx)
            case _:
                return Rejection(
                    code="unsupported_message",
                    reason=f"a match does not handle {type(message).__name__}",
                )

    return decide


decide = make_decide()
"""The match's ``decide`` with the baseline players as the only agents."""


def evolve(state: MatchState, event: Event) -> MatchState:
    """Apply one match event."""
    replace = msgspec.structs.replace
    match event:
        case MatchCreated():
            return replace(
                state,
                status="placing",
                players=event.players,
                room_id=event.room_id,
                rated=event.rated,
                board=event.board,
                seed=event.seed,
                first=event.first,
                created_at=event.at,
            )
        case FleetPlaced():
            fleets = list(state.fleets)
            fleets[event.seat] = event.ships
            return replace(state, fleets=tuple(fleets))
        case MatchStarted():
            return replace(state, status="in_progress", turn=event.turn, started_at=event.at)
        case ShotFired():
            record = ShotRecord(event.seat, event.row, event.col, event.result, event.at)
            return replace(state, shots=(*state.shots, record), turn=event.next_turn)
        case MatchFinished():
            return replace(
                state,
                status="finished",
                turn=None,
                winner=event.winner_seat,
                reason=event.reason,
                finished_at=event.at,
            )
        case ChatPosted():
            return replace(state, chat_messages=state.chat_messages + 1)
        case _:
            return state


def replay(events: Iterable[Event], match_id: str = "replay") -> MatchState:
    """Fold a match's events into its state."""
    state = initial(match_id)
    for event in events:
        state = evolve(state, event)
    return state


def game_of(state: MatchState) -> Game:
    """The engine game a match state describes: fleets placed and every shot replayed."""
    game = Game(rules_of(state.board), state.first)
    for seat, fleet in enumerate(state.fleets):
        if fleet is not None:
            game.place_fleet(seat, placements_of(fleet))
    for shot in state.shots:
        game.fire(shot.seat, shot.row, shot.col)
    if state.reason == "resigned" and state.winner is not None:
        game.resign(1 - state.winner)
    return game


# ---------------------------------------------------------------- command handlers


class _Turns:
    """Emits events while keeping the state and the engine game in step with them."""

    def __init__(self, state: MatchState, ctx: Context, game: Game | None = None) -> None:
        self.state = state
        self.ctx = ctx
        self.game = game
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self.state = evolve(self.state, event)

    def start_if_ready(self, resolve: Resolver) -> Rejection | None:
        if all(f is not None for f in self.state.fleets):
            self.emit(MatchStarted(turn=self.state.first, at=self.ctx.received_at))
            self.game = game_of(self.state)
            return self.agent_turns(resolve)
        return None

    def fire(self, seat: int, row: int, col: int, *, by_agent: bool) -> None:
        game = self.game
        assert game is not None
        shot = game.fire(seat, row, col)
        width = game.rules.width
        state = self.state
        self.emit(
            ShotFired(
                seat=seat,
                player=state.players[seat].id,
                number=len(state.shots) + 1,
                row=row,
                col=col,
                cell=cell_name(row, col),
                result=shot.outcome.value,
                ship=shot.ship,
                sunk_cells=tuple(divmod(c, width) for c in shot.sunk_cells),
                next_turn=game.turn,
                by_agent=by_agent,
                at=self.ctx.received_at,
            )
        )
        if shot.defeated:
            self.finish(seat, "fleet_sunk")

    def agent_turns(self, resolve: Resolver) -> Rejection | None:
        """Let agents fire while it is their turn: one shot after a user's, all of an agent game."""
        game = self.game
        assert game is not None
        while game.phase is Phase.BATTLE:
            seat = game.turn
            assert seat is not None
            player = self.state.players[seat]
            if player.kind != "agent":
                return None
            policy = resolve(player.id)
            if policy is None:
                return Rejection(
                    code="agent_unavailable",
                    reason=f"agent {player.id} is not available to play its turn; retry later",
                    kind="unavailable",
                )
            row, col = _agent_shot(policy, game, seat, self.state)
            self.fire(seat, row, col, by_agent=True)
        return None

    def finish(self, winner: int, reason: Literal["fleet_sunk", "resigned"]) -> None:
        state = self.state
        counts = [0, 0]
        for shot in state.shots:
            counts[shot.seat] += 1
        self.emit(
            MatchFinished(
                winner=state.players[winner],
                loser=state.players[1 - winner],
                winner_seat=winner,
                reason=reason,
                rated=state.rated,
                ladder=ladder_of(state.board),
                room_id=state.room_id,
                shots=(counts[0], counts[1]),
                at=self.ctx.received_at,
                created_at=state.created_at,
                started_at=state.started_at,
            )
        )


def _agent_shot(policy: Policy, game: Game, seat: int, state: MatchState) -> tuple[int, int]:
    """The agent's next cell, drawn from a generator seeded by the match and the shot number."""
    view = game.view_for(seat)
    rng = random.Random(derive_seed(state.seed, "agent", seat, len(state.shots) + 1))
    cell = policy.select(view, rng)
    if not (0 <= cell < len(view.marks)) or view.marks[cell] != Mark.UNKNOWN:
        # A policy that ignores the mask must not stall the match: fire at random instead.
        cell = RandomPlayer().select(view, rng)
    return divmod(cell, view.width)


def _not_found(state: MatchState) -> Rejection:
    return Rejection(
        code="match_not_found", reason=f"there is no match {state.match_id}", kind="not_found"
    )


def _seat_of(state: MatchState, user: str) -> int | Rejection:
    for seat, player in enumerate(state.players):
        if player.kind == "user" and player.id == user:
            return seat
    return Rejection(
        code="not_a_player",
        reason=f"{user} is not playing in match {state.match_id}",
        kind="forbidden",
    )


def _over(state: MatchState) -> Rejection:
    winner = state.players[state.winner].id if state.winner is not None else "nobody"
    return Rejection(
        code="game_over",
        reason=f"match {state.match_id} is over ({winner} won); no more moves are accepted",
        kind="conflict",
    )


def _from_error(exc: BattleshipError) -> Rejection:
    return Rejection(code=exc.code, reason=str(exc), kind=exc.kind)


def _known_agents(resolve: Resolver, players: Sequence[Player]) -> Rejection | None:
    for player in players:
        if player.kind == "agent" and resolve(player.id) is None:
            return Rejection(
                code="unknown_agent",
                reason=(
                    f"there is no agent called {player.id}; "
                    f"the built-in ones are {', '.join(BASELINES)}"
                ),
                kind="not_found",
            )
    return None


def _create(state: MatchState, cmd: CreateMatch, ctx: Context, resolve: Resolver) -> Decision:
    if state.status != "new":
        return Rejection(
            code="match_exists", reason=f"match {state.match_id} already exists", kind="conflict"
        )
    first, second = cmd.players
    if (first.kind, first.id) == (second.kind, second.id):
        return Rejection(
            code="same_player", reason=f"{first.id} cannot play a match against itself"
        )
    if refused := _known_agents(resolve, cmd.players):
        return refused
    try:
        rules = rules_of(cmd.board)
    except BattleshipError as exc:
        return _from_error(exc)
    seed = cmd.seed if cmd.seed is not None else derive_seed("match", ctx.message_id)
    opener = cmd.first
    if opener is None:
        opener = random.Random(derive_seed(seed, "first")).randrange(2)
    turns = _Turns(state, ctx)
    turns.emit(
        MatchCreated(
            players=cmd.players,
            room_id=cmd.room_id,
            rated=cmd.rated,
            board=cmd.board,
            seed=seed,
            first=opener,
            at=ctx.received_at,
        )
    )
    for seat, player in enumerate(cmd.players):
        if player.kind == "agent":
            rng = random.Random(derive_seed(seed, "fleet", seat))
            turns.emit(
                FleetPlaced(
                    seat=seat,
                    player=player.id,
                    ships=wire_placements(random_placements(rules, rng)),
                    random=True,
                    at=ctx.received_at,
                )
            )
    if refused := turns.start_if_ready(resolve):
        return refused
    return turns.events


def _place(state: MatchState, cmd: PlaceFleet, ctx: Context, resolve: Resolver) -> Decision:
    if refused := acting_as(ctx, cmd.player):
        return refused
    if state.status == "new":
        return _not_found(state)
    seat = _seat_of(state, cmd.player)
    if isinstance(seat, Rejection):
        return seat
    if state.status == "finished":
        return _over(state)
    if state.fleets[seat] is not None:
        return Rejection(
            code="fleet_already_placed",
            reason=f"{cmd.player} has already placed a fleet; it cannot be moved",
            kind="conflict",
        )
    rules = rules_of(state.board)
    try:
        if cmd.ships is None:
            seed = cmd.seed if cmd.seed is not None else derive_seed(state.seed, ctx.message_id)
            placements = random_placements(rules, random.Random(derive_seed(seed, "fleet", seat)))
        else:
            placements = Board(rules, placements_of(cmd.ships)).placements
    except BattleshipError as exc:
        return _from_error(exc)
    turns = _Turns(state, ctx)
    turns.emit(
        FleetPlaced(
            seat=seat,
            player=cmd.player,
            ships=wire_placements(placements),
            random=cmd.ships is None,
            at=ctx.received_at,
        )
    )
    if refused := turns.start_if_ready(resolve):
        return refused
    return turns.events


def _fire(state: MatchState, cmd: Fire, ctx: Context, resolve: Resolver) -> Decision:
    if refused := acting_as(ctx, cmd.player):
        return refused
    if state.status == "new":
        return _not_found(state)
    seat = _seat_of(state, cmd.player)
    if isinstance(seat, Rejection):
        return seat
    if state.status == "finished":
        return _over(state)
    if state.status == "placing":
        waiting = [state.players[s].id for s, f in enumerate(state.fleets) if f is None]
        return Rejection(
            code="fleets_not_placed",
            reason=f"the battle has not started: waiting for {' and '.join(waiting)} to place",
            kind="conflict",
        )
    if state.turn != seat:
        other = state.players[1 - seat].id
        return Rejection(
            code="not_your_turn", reason=f"it is {other}'s turn, not yours", kind="conflict"
        )
    turns = _Turns(state, ctx, game_of(state))
    try:
        turns.fire(seat, cmd.row, cmd.col, by_agent=False)
    except BattleshipError as exc:
        return _from_error(exc)
    if refused := turns.agent_turns(resolve):
        return refused
    return turns.events


def _resign(state: MatchState, cmd: Resign, ctx: Context) -> Decision:
    if refused := acting_as(ctx, cmd.player):
        return refused
    if state.status == "new":
        return _not_found(state)
    seat = _seat_of(state, cmd.player)
    if isinstance(seat, Rejection):
        return seat
    if state.status == "finished":
        return _over(state)
    turns = _Turns(state, ctx)
    turns.finish(1 - seat, "resigned")
    return turns.events


def _chat(state: MatchState, cmd: Chat, ctx: Context) -> Decision:
    if refused := acting_as(ctx, cmd.player):
        return refused
    if state.status == "new":
        return _not_found(state)
    seat = _seat_of(state, cmd.player)
    if isinstance(seat, Rejection):
        return seat
    return [ChatPosted(seat=seat, player=cmd.player, text=cmd.text, at=ctx.received_at)]


__all__ = [
    "COMMANDS",
    "EMITS",
    "MatchState",
    "Resolver",
    "ShotRecord",
    "decide",
    "derive_seed",
    "evolve",
    "game_of",
    "initial",
    "make_decide",
    "replay",
]
