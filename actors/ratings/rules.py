"""Pure rules of the ratings: an Elo ladder per board setup, moved by finished rated matches."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from schemas.base import Command, Context, Decision, Event, Message, Rejection
from schemas.battleship import (
    Enroll,
    MatchFinished,
    MatchRated,
    Player,
    PlayerEnrolled,
    RatingChange,
)
from schemas.subjects import parse

INITIAL_RATING = 1500.0
"""Rating of a player's first rated match."""
K_FACTOR = 32.0
"""Largest rating change one match can bring (the winner gains what the loser loses)."""
SCALE = 400.0
"""A rating gap of ``SCALE`` means the stronger player is expected to win 10 times out of 11."""


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One player's standing on a ladder."""

    player: Player
    rating: float = INITIAL_RATING
    games: int = 0
    wins: int = 0
    losses: int = 0
    streak: int = 0
    """+n after n wins in a row, -n after n losses in a row, 0 before any game."""
    peak: float = INITIAL_RATING
    last_played: datetime | None = None


class Ladder(msgspec.Struct, frozen=True, kw_only=True):
    """A ladder: entries keyed ``<kind>:<id>`` (``user:alice``, ``agent:hunt_target``).

    The entity key is the ladder id (``standard``, ``6x6_3-2``, ... from
    ``schemas.battleship.ladder_of``), not the player: an Elo update needs both players'
    ratings at once, and one ladder entity changes both in a single decision, in match
    order, and answers ranking queries from one state.
    """

    ladder_id: str
    entries: dict[str, Entry] = {}
    rated_matches: int = 0
    updated_at: datetime | None = None


def initial(key: str) -> Ladder:
    """A ladder never seen before."""
    return Ladder(ladder_id=key)


def ladder_key(message: Message, ctx: Context) -> str:
    """The ladder a finished match counts for (its ``ladder`` field)."""
    if isinstance(message, MatchFinished):
        return message.ladder
    return ctx.key


COMMANDS = (Enroll,)
REACTIONS = (MatchFinished,)
EMITS = (PlayerEnrolled, MatchRated)


def entry_key(player: Player) -> str:
    """The ladder's key for a player: users and agents may share an id without clashing."""
    return f"{player.kind}:{player.id}"


def expected_score(rating: float, opponent: float) -> float:
    """Elo's expected score of ``rating`` against ``opponent`` (win probability)."""
    return 1.0 / (1.0 + float(10.0 ** ((opponent - rating) / SCALE)))


def standings(ladder: Ladder) -> list[Entry]:
    """Entries best first: rating, then more games, then id."""
    return sorted(
        ladder.entries.values(),
        key=lambda e: (-e.rating, -e.games, e.player.kind, e.player.id),
    )


def decide(state: Ladder, message: Command | Event, ctx: Context) -> Decision:
    """Enrol a player, or rate a finished match."""
    match message:
        case Enroll():
            if entry_key(message.player) in state.entries:
                return Rejection(
                    code="already_enrolled",
                    reason=f"{message.player.id} is already on the {state.ladder_id} ladder",
                    kind="conflict",
                )
            return [
                PlayerEnrolled(player=message.player, rating=INITIAL_RATING, at=ctx.received_at)
            ]
        case MatchFinished():
            if not message.rated or message.ladder != state.ladder_id:
                return []
            return [_rate(state, message, ctx)]
        case _:
            return Rejection(
                code="unsupported_message",
                reason=f"the ratings do not handle {type(message).__name__}",
            )


def evolve(state: Ladder, event: Event) -> Ladder:
    """Apply one ratings event."""
    match event:
        case PlayerEnrolled():
            entries = dict(state.entries)
            entries[entry_key(event.player)] = Entry(player=event.player, rating=event.rating)
            return msgspec.structs.replace(state, entries=entries, updated_at=event.at)
        case MatchRated():
            entries = dict(state.entries)
            for change in event.changes:
                key = entry_key(change.player)
                old = entries.get(key, Entry(player=change.player))
                entries[key] = Entry(
                    player=change.player,
                    rating=change.after,
                    games=change.games,
                    wins=change.wins,
                    losses=change.losses,
                    streak=change.streak,
                    peak=max(old.peak, change.after),
                    last_played=event.at,
                )
            return msgspec.structs.replace(
                state,
                entries=entries,
                rated_matches=state.rated_matches + 1,
                updated_at=event.at,
            )
        case _:
            return state


def _rate(state: Ladder, event: MatchFinished, ctx: Context) -> MatchRated:
    winner = state.entries.get(entry_key(event.winner), Entry(player=event.winner))
    loser = state.entries.get(entry_key(event.loser), Entry(player=event.loser))
    gain = K_FACTOR * (1.0 - expected_score(winner.rating, loser.rating))
    # Ratings are kept to two decimals so the values in events are exactly what is stored.
    return MatchRated(
        match_id=parse(ctx.subject).key,
        changes=(
            _change(winner, "win", round(winner.rating + gain, 2)),
            _change(loser, "loss", round(loser.rating - gain, 2)),
        ),
        at=ctx.received_at,
    )


def _change(entry: Entry, result: Literal["win", "loss"], after: float) -> RatingChange:
    won = result == "win"
    if won:
        streak = entry.streak + 1 if entry.streak > 0 else 1
    else:
        streak = entry.streak - 1 if entry.streak < 0 else -1
    return RatingChange(
        player=entry.player,
        result=result,
        before=entry.rating,
        after=after,
        games=entry.games + 1,
        wins=entry.wins + won,
        losses=entry.losses + (not won),
        streak=streak,
    )


__all__ = [
    "COMMANDS",
    "EMITS",
    "INITIAL_RATING",
    "K_FACTOR",
    "REACTIONS",
    "Entry",
    "Ladder",
    "decide",
    "entry_key",
    "evolve",
    "expected_score",
    "initial",
    "ladder_key",
    "standings",
]
