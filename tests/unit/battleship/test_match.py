"""Match rules: setup, placement, turn order, every move an event, agents, resign, chat, replay."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from actors.battleship.engine import BoardView, Mark, Phase
from actors.battleship.players import BASELINES
from actors.battleship.players import Player as Policy
from actors.match import rules
from schemas.base import Event, Rejection
from schemas.battleship import (
    BoardSpec,
    Chat,
    ChatPosted,
    CreateMatch,
    Fire,
    FleetPlaced,
    JoinRoom,
    MatchCreated,
    MatchFinished,
    MatchStarted,
    PlaceFleet,
    Player,
    Resign,
    ShipPlacement,
    ShipSpec,
    ShotFired,
)
from tests.unit.battleship.support import FLEET, FLEET_CELLS, Driver, context

ALICE, BOB = Player(kind="user", id="alice"), Player(kind="user", id="bob")
HUNTER = Player(kind="agent", id="hunt_target")
SHIPS = tuple(
    ShipPlacement(ship=p.ship, row=p.row, col=p.col, orientation=p.orientation.value)  # type: ignore[arg-type]
    for p in FLEET
)
WATER = [(r, c) for r in range(10) for c in range(10) if (r, c) not in FLEET_CELLS]
SMALL = BoardSpec(
    height=6,
    width=6,
    fleet=(ShipSpec(name="cruiser", length=3), ShipSpec(name="destroyer", length=2)),
)


def match(key: str = "m1", decide: object = rules.decide) -> Driver[rules.MatchState]:
    return Driver(decide, rules.evolve, rules.initial(key), key, "match")  # type: ignore[arg-type]


def ready(first: int = 0) -> Driver[rules.MatchState]:
    """Alice and Bob, both with the fixed fleet, ``first`` to fire."""
    m = match()
    m.ok(CreateMatch(players=(ALICE, BOB), seed=42, first=first))
    m.ok(PlaceFleet(player="alice", ships=SHIPS))
    m.ok(PlaceFleet(player="bob", ships=SHIPS))
    return m


def kinds(events: Sequence[Event] | Rejection) -> list[str]:
    assert not isinstance(events, Rejection), events
    return [type(e).__name__ for e in events]


class TestCreate:
    def test_human_match(self) -> None:
        m = match()
        (event,) = m.ok(CreateMatch(players=(ALICE, BOB), seed=5, room_id="r1", rated=False))
        assert isinstance(event, MatchCreated)
        assert (event.seed, event.room_id, event.rated) == (5, "r1", False)
        assert event.first in (0, 1)
        assert m.state.status == "placing"
        assert m.state.players == (ALICE, BOB)
        assert m.state.created_at == event.at

    def test_first_player_comes_from_the_seed(self) -> None:
        def first(seed: int) -> int:
            m = match()
            (event,) = m.ok(CreateMatch(players=(ALICE, BOB), seed=seed))
            assert isinstance(event, MatchCreated)
            return event.first

        assert first(3) == first(3)
        assert {first(s) for s in range(20)} == {0, 1}

    def test_seed_derives_from_the_message_when_absent(self) -> None:
        a, b = match("g1"), match("g1")
        (ea,) = a.ok(CreateMatch(players=(ALICE, BOB)))
        (eb,) = b.ok(CreateMatch(players=(ALICE, BOB)))
        assert isinstance(ea, MatchCreated)
        assert isinstance(eb, MatchCreated)
        assert ea.seed == eb.seed == rules.derive_seed("match", "g1-msg-1")
        assert 0 <= ea.seed < 2**63

    def test_refusals(self) -> None:
        m = match()
        assert m.refused(CreateMatch(players=(ALICE, ALICE))).code == "same_player"
        unknown = m.refused(CreateMatch(players=(ALICE, Player(kind="agent", id="skynet"))))
        assert (unknown.code, unknown.kind) == ("unknown_agent", "not_found")
        assert "hunt_target" in unknown.reason
        bad = BoardSpec(height=3, width=3, fleet=(ShipSpec(name="carrier", length=5),))
        assert m.refused(CreateMatch(players=(ALICE, BOB), board=bad)).code == "invalid_rules"
        m.ok(CreateMatch(players=(ALICE, BOB)))
        assert m.refused(CreateMatch(players=(ALICE, BOB))).kind == "conflict"

    def test_a_user_and_an_agent_may_share_an_id(self) -> None:
        m = match()
        m.ok(
            CreateMatch(
                players=(Player(kind="user", id="random"), Player(kind="agent", id="random"))
            )
        )


class TestPlacement:
    def test_both_fleets_start_the_battle(self) -> None:
        m = match()
        m.ok(CreateMatch(players=(ALICE, BOB), seed=1, first=1))
        (placed,) = m.ok(PlaceFleet(player="alice", ships=SHIPS))
        assert isinstance(placed, FleetPlaced)
        assert (placed.seat, placed.random) == (0, False)
        assert placed.ships == SHIPS
        events = m.ok(PlaceFleet(player="bob"))
        assert kinds(events) == ["FleetPlaced", "MatchStarted"]
        assert isinstance(events[0], FleetPlaced)
        assert events[0].random
        assert isinstance(events[1], MatchStarted)
        assert events[1].turn == 1
        assert m.state.status == "in_progress"
        assert m.state.turn == 1

    def test_random_placement_is_seeded(self) -> None:
        def fleet(seed: int | None) -> tuple[ShipPlacement, ...]:
            m = match()
            m.ok(CreateMatch(players=(ALICE, BOB), seed=9))
            (event,) = m.ok(PlaceFleet(player="alice", seed=seed))
            assert isinstance(event, FleetPlaced)
            return event.ships

        assert fleet(1) == fleet(1)
        assert fleet(1) != fleet(2)
        assert fleet(None) == fleet(None)  # derived from match seed + message id

    def test_bad_placements_are_explained(self) -> None:
        m = match()
        m.ok(CreateMatch(players=(ALICE, BOB)))
        overlapping = (
            *SHIPS[:4],
            ShipPlacement(ship="destroyer", row=2, col=4, orientation="vertical"),
        )
        refused = m.refused(PlaceFleet(player="alice", ships=overlapping))
        assert (refused.code, refused.kind) == ("ships_overlap", "invalid")
        assert refused.reason == "the destroyer and the cruiser both cover D5"
        assert m.refused(PlaceFleet(player="alice", ships=SHIPS[:3])).code == "missing_ships"
        off = (*SHIPS[:4], ShipPlacement(ship="destroyer", row=9, col=9))
        assert m.refused(PlaceFleet(player="alice", ships=off)).code == "ship_out_of_bounds"
        m.ok(PlaceFleet(player="alice", ships=SHIPS))
        again = m.refused(PlaceFleet(player="alice"))
        assert (again.code, again.kind) == ("fleet_already_placed", "conflict")

    def test_who_may_place(self) -> None:
        m = match()
        assert m.refused(PlaceFleet(player="alice")).code == "match_not_found"
        m.ok(CreateMatch(players=(ALICE, HUNTER)))
        assert m.refused(PlaceFleet(player="hunt_target")).code == "not_a_player"
        assert m.refused(PlaceFleet(player="carol")).kind == "forbidden"
        assert m.refused(PlaceFleet(player="alice"), principal="bob").code == "wrong_principal"
        m.ok(PlaceFleet(player="alice"), principal="alice")


class TestFiring:
    def test_turn_order_and_results(self) -> None:
        m = ready(first=0)
        (miss,) = m.ok(Fire(player="alice", row=1, col=1))
        assert isinstance(miss, ShotFired)
        assert (miss.seat, miss.number, miss.cell, miss.result, miss.next_turn) == (
            0,
            1,
            "B2",
            "miss",
            1,
        )
        refused = m.refused(Fire(player="alice", row=1, col=2))
        assert (refused.code, refused.kind) == ("not_your_turn", "conflict")
        assert refused.reason == "it is bob's turn, not yours"
        (hit,) = m.ok(Fire(player="bob", row=9, col=4))
        assert isinstance(hit, ShotFired)
        assert (hit.result, hit.ship) == ("hit", None)
        m.ok(Fire(player="alice", row=1, col=2))
        (sunk,) = m.ok(Fire(player="bob", row=9, col=5))
        assert isinstance(sunk, ShotFired)
        assert (sunk.result, sunk.ship, sunk.sunk_cells) == ("sunk", "destroyer", ((9, 4), (9, 5)))

    def test_invalid_shots(self) -> None:
        m = ready()
        m.ok(Fire(player="alice", row=0, col=9))
        m.ok(Fire(player="bob", row=0, col=9))
        repeated = m.refused(Fire(player="alice", row=0, col=9))
        assert (repeated.code, repeated.kind) == ("cell_already_shot", "invalid")
        assert repeated.reason.startswith("A10 was already fired at (miss)")
        off = m.refused(Fire(player="alice", row=12, col=0))
        assert off.code == "cell_out_of_bounds"
        assert m.state.turn == 0

    def test_firing_before_the_battle(self) -> None:
        m = match()
        assert m.refused(Fire(player="alice", row=0, col=0)).kind == "not_found"
        m.ok(CreateMatch(players=(ALICE, BOB)))
        m.ok(PlaceFleet(player="bob"))
        refused = m.refused(Fire(player="alice", row=0, col=0))
        assert refused.code == "fleets_not_placed"
        assert "waiting for alice" in refused.reason

    def test_a_full_game_to_victory(self) -> None:
        m = ready(first=1)
        water = iter(WATER)
        for r, c in sorted(FLEET_CELLS):
            m.ok(Fire(player="bob", row=r, col=c))
            if m.state.status == "finished":
                break
            m.ok(Fire(player="alice", row=next(water)[0], col=next(water)[1]))
        finish = m.log[-1]
        assert isinstance(finish, MatchFinished)
        assert (finish.winner, finish.loser, finish.winner_seat) == (BOB, ALICE, 1)
        assert (finish.reason, finish.ladder, finish.rated) == ("fleet_sunk", "standard", True)
        assert finish.shots == (16, 17)
        last_shot = m.log[-2]
        assert isinstance(last_shot, ShotFired)
        assert last_shot.next_turn is None
        assert m.state.status == "finished"
        assert m.state.winner == 1
        refused = m.refused(Fire(player="alice", row=5, col=5))
        assert (refused.code, refused.kind) == ("game_over", "conflict")
        assert "bob won" in refused.reason
        assert m.refused(Resign(player="alice")).code == "game_over"
        assert m.refused(PlaceFleet(player="alice")).code == "game_over"


class TestResignAndChat:
    def test_resign_during_placement_or_battle(self) -> None:
        m = match()
        m.ok(CreateMatch(players=(ALICE, BOB), room_id="r1", board=SMALL))
        (event,) = m.ok(Resign(player="bob"))
        assert isinstance(event, MatchFinished)
        assert (event.winner, event.reason, event.ladder, event.room_id) == (
            ALICE,
            "resigned",
            "6x6_3-2",
            "r1",
        )
        assert event.shots == (0, 0)
        game = rules.game_of(m.state)
        assert (game.winner, game.resigned) == (0, 1)

    def test_chat(self) -> None:
        m = ready()
        (said,) = m.ok(Chat(player="bob", text="good luck"))
        assert isinstance(said, ChatPosted)
        assert (said.seat, said.player, said.text) == (1, "bob", "good luck")
        assert m.state.chat_messages == 1
        assert m.refused(Chat(player="eve", text="hi")).kind == "forbidden"
        assert m.refused(Chat(player="bob", text="hi"), principal="alice").kind == "forbidden"


class TestAgents:
    def test_agent_answers_every_human_shot(self) -> None:
        m = match()
        events = m.ok(CreateMatch(players=(ALICE, HUNTER), seed=3, first=0))
        assert kinds(events) == ["MatchCreated", "FleetPlaced"]
        assert isinstance(events[1], FleetPlaced)
        assert events[1].seat == 1
        assert events[1].random
        m.ok(PlaceFleet(player="alice", ships=SHIPS))
        events = m.ok(Fire(player="alice", row=0, col=9))
        assert kinds(events) == ["ShotFired", "ShotFired"]
        reply = events[1]
        assert isinstance(reply, ShotFired)
        assert (reply.seat, reply.player, reply.by_agent, reply.next_turn) == (
            1,
            "hunt_target",
            True,
            0,
        )

    def test_agent_opens_when_it_fires_first(self) -> None:
        m = match()
        m.ok(CreateMatch(players=(HUNTER, ALICE), seed=3, first=0))
        events = m.ok(PlaceFleet(player="alice", ships=SHIPS))
        assert kinds(events) == ["FleetPlaced", "MatchStarted", "ShotFired"]
        assert m.state.turn == 1

    def test_agent_moves_are_deterministic_given_the_seed(self) -> None:
        def transcript(seed: int) -> list[Event]:
            m = match()
            m.ok(
                CreateMatch(
                    players=(ALICE, Player(kind="agent", id="probability")), seed=seed, first=0
                )
            )
            m.ok(PlaceFleet(player="alice", ships=SHIPS))
            for r, c in WATER[:30]:
                m.ok(Fire(player="alice", row=r, col=c))
            return m.log

        assert transcript(8) == transcript(8)
        assert transcript(8) != transcript(9)

    def test_agent_against_agent_plays_out_at_creation(self) -> None:
        m = match()
        events = m.ok(
            CreateMatch(players=(HUNTER, Player(kind="agent", id="probability")), seed=12)
        )
        finish = events[-1]
        assert isinstance(finish, MatchFinished)
        shots = [e for e in events if isinstance(e, ShotFired)]
        assert all(s.by_agent for s in shots)
        assert [s.seat for s in shots] == [(shots[0].seat + i) % 2 for i in range(len(shots))]
        assert sum(finish.shots) == len(shots)
        assert m.state.status == "finished"

    def test_trained_agents_come_from_a_resolver(self) -> None:
        class FirstFree:
            name = "first_free"

            def select(self, view: BoardView, rng: random.Random) -> int:
                return view.marks.index(Mark.UNKNOWN)

        available = {"dqn_v1": FirstFree()}

        def resolve(agent: str) -> Policy | None:
            return available.get(agent) or BASELINES.get(agent)

        m = match(decide=rules.make_decide(resolve))
        dqn = Player(kind="agent", id="dqn_v1")
        m.ok(CreateMatch(players=(ALICE, dqn), seed=1, first=0))
        m.ok(PlaceFleet(player="alice", ships=SHIPS))
        events = m.ok(Fire(player="alice", row=5, col=5))
        reply = events[1]
        assert isinstance(reply, ShotFired)
        assert (reply.row, reply.col, reply.result) == (
            0,
            0,
            "hit",
        )
        del available["dqn_v1"]
        refused = m.refused(Fire(player="alice", row=5, col=6))
        assert (refused.code, refused.kind) == ("agent_unavailable", "unavailable")
        fresh = match("m2", decide=rules.make_decide(resolve))
        assert fresh.refused(CreateMatch(players=(ALICE, dqn))).code == "unknown_agent"

    def test_a_policy_that_ignores_the_mask_cannot_stall_the_match(self) -> None:
        class Stubborn:
            name = "stubborn"

            def select(self, view: BoardView, rng: random.Random) -> int:
                return 0

        m = match(decide=rules.make_decide(lambda agent: Stubborn()))
        m.ok(CreateMatch(players=(ALICE, Player(kind="agent", id="stubborn")), seed=1, first=0))
        m.ok(PlaceFleet(player="alice", ships=SHIPS))
        cells = []
        for r, c in WATER[:5]:
            reply = m.ok(Fire(player="alice", row=r, col=c))[1]
            assert isinstance(reply, ShotFired)
            cells.append((reply.row, reply.col))
        assert cells[0] == (0, 0)
        assert len(set(cells)) == 5


class TestReplay:
    def test_events_rebuild_the_state_and_the_boards(self) -> None:
        m = match()
        m.ok(CreateMatch(players=(ALICE, HUNTER), seed=21, first=1))
        m.ok(PlaceFleet(player="alice"))
        m.ok(Chat(player="alice", text="go"))
        for r, c in WATER[:25]:
            m.ok(Fire(player="alice", row=r, col=c))
        replayed = rules.replay(m.log, "m1")
        assert replayed == m.state
        game = rules.game_of(replayed)
        assert game.phase is Phase.BATTLE
        shots = [e for e in m.log if isinstance(e, ShotFired)]
        assert [(s, sh.row, sh.col, sh.outcome.value) for s, sh in game.history] == [
            (e.seat, e.row, e.col, e.result) for e in shots
        ]

    def test_unsupported_messages(self) -> None:
        refused = rules.decide(rules.initial("m1"), JoinRoom(user="alice"), context("m1"))
        assert isinstance(refused, Rejection)
        assert refused.code == "unsupported_message"


@pytest.mark.parametrize("board", [BoardSpec(), SMALL], ids=["10x10", "6x6"])
def test_random_human_games_always_finish(board: BoardSpec) -> None:
    rng = random.Random(0)
    m = match()
    m.ok(CreateMatch(players=(ALICE, BOB), board=board, seed=4))
    m.ok(PlaceFleet(player="alice"))
    m.ok(PlaceFleet(player="bob"))
    cells = {0: list(range(board.height * board.width)), 1: list(range(board.height * board.width))}
    for seat_cells in cells.values():
        rng.shuffle(seat_cells)
    while m.state.status == "in_progress":
        seat = m.state.turn
        assert seat is not None
        cell = cells[seat].pop()
        m.ok(Fire(player=("alice", "bob")[seat], row=cell // board.width, col=cell % board.width))
    assert isinstance(m.log[-1], MatchFinished)
    assert rules.replay(m.log, "m1") == m.state
