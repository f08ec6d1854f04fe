"""Conversions between the wire schemas and the engine, and checks the Battleship actors share."""

from __future__ import annotations

from collections.abc import Iterable

from actors.battleship.engine import Orientation, Placement, Rules, ShipSpec
from schemas.base import Context, Rejection
from schemas.battleship import BoardSpec, ShipPlacement
from schemas.battleship import ShipSpec as WireShip


def rules_of(board: BoardSpec) -> Rules:
    """Engine rules for a board spec; raises ``InvalidRules`` when it cannot be played."""
    return Rules(
        board.height,
        board.width,
        tuple(ShipSpec(s.name, s.length) for s in board.fleet),
        board.no_touch,
    )


def board_of(rules: Rules) -> BoardSpec:
    """The board spec of engine rules."""
    return BoardSpec(
        height=rules.height,
        width=rules.width,
        fleet=tuple(WireShip(name=s.name, length=s.length) for s in rules.fleet),
        no_touch=rules.no_touch,
    )


def placements_of(ships: Iterable[ShipPlacement]) -> tuple[Placement, ...]:
    """Engine placements from wire placements."""
    return tuple(Placement(s.ship, s.row, s.col, Orientation(s.orientation)) for s in ships)


def wire_placements(placements: Iterable[Placement]) -> tuple[ShipPlacement, ...]:
    """Wire placements from engine placements."""
    return tuple(
        ShipPlacement(ship=p.ship, row=p.row, col=p.col, orientation=p.orientation.value)
        for p in placements
    )


def acting_as(ctx: Context, user: str) -> Rejection | None:
    """A rejection when the signed-in principal is not ``user``.

    The gateway sets the principal from the caller's token; trusted services on the bus may
    leave it unset, but nobody may act in someone else's name.
    """
    if ctx.principal is not None and ctx.principal != user:
        return Rejection(
            code="wrong_principal",
            reason=f"signed in as {ctx.principal}, cannot act for {user}",
            kind="forbidden",
        )
    return None


__all__ = ["acting_as", "board_of", "placements_of", "rules_of", "wire_placements"]
