"""Checks the match socket makes before a move becomes a command (pure: state in, refusal out).

The match actor decides every move; these checks only spare the bus commands that the
actor would refuse anyway (a shot out of turn, a move in a finished match, a spectator
moving), with the same codes and kinds as the actor's refusals. The socket checks against
its fold of the events it has read, and confirms a refusal that depends on the match's
state against the actor's own state before sending it.
"""

from __future__ import annotations

from actors.battleship.errors import cell_name
from actors.match.rules import MatchState
from gateway.battleship.frames import ChatFrame, ClientFrame, FireFrame, PlaceFleetFrame
from schemas.base import Rejection

__all__ = ["BadTarget", "check_move", "target"]


class BadTarget(ValueError):
    """Raised when a shot names its cell in no way, or in two ways at once."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def target(row: int | None, col: int | None, cell: str | None) -> tuple[int, int]:
    """The (row, col) of a shot given as ``row`` and ``col`` or as a cell name such as ``B7``."""
    if cell is not None:
        if row is not None or col is not None:
            raise BadTarget("cell", "give either cell or row and col, not both")
        return ord(cell[0].upper()) - ord("A"), int(cell[1:]) - 1
    if row is None or col is None:
        raise BadTarget("row" if row is None else "col", "a shot needs row and col, or a cell")
    return row, col


def _over(state: MatchState) -> Rejection:
    winner = state.players[state.winner].id if state.winner is not None else "nobody"
    return Rejection(
        code="game_over",
        reason=f"match {state.match_id} is over ({winner} won); no more moves are accepted",
        kind="conflict",
    )


def check_move(state: MatchState, seats: set[int], frame: ClientFrame) -> Rejection | None:
    """Why ``frame`` from the player in ``seats`` cannot apply to ``state`` now, or None."""
    if state.status == "new":
        return Rejection(
            code="match_not_found", reason=f"there is no match {state.match_id}", kind="not_found"
        )
    if not seats:
        return Rejection(
            code="not_a_player",
            reason=f"you are not playing in match {state.match_id}; spectators may only watch",
            kind="forbidden",
        )
    seat = min(seats)
    if isinstance(frame, ChatFrame):
        return None
    if state.status == "finished":
        return _over(state)
    if isinstance(frame, PlaceFleetFrame):
        if state.fleets[seat] is not None:
            return Rejection(
                code="fleet_already_placed",
                reason="your fleet is already placed; it cannot be moved",
                kind="conflict",
            )
        return None
    if not isinstance(frame, FireFrame):
        return None  # resigning is allowed in either phase
    try:
        row, col = target(frame.row, frame.col, frame.cell)
    except BadTarget as exc:
        return Rejection(code="invalid_target", reason=str(exc), details={"field": exc.field})
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
    if not (0 <= row < state.board.height and 0 <= col < state.board.width):
        return Rejection(
            code="cell_out_of_bounds",
            reason=(
                f"{cell_name(row, col)} is off the {state.board.height}x{state.board.width} board"
            ),
        )
    for shot in state.shots:
        if shot.seat == seat and (shot.row, shot.col) == (row, col):
            return Rejection(
                code="cell_already_shot",
                reason=f"{cell_name(row, col)} was already fired at ({shot.result}); "
                "choose a cell not yet shot",
            )
    return None
