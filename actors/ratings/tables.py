"""The ratings actor's tables: one row per ladder and one rating per player on it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)

from actors.kernel.db import metadata
from actors.match.tables import UtcDateTime

ladders = Table(
    "ladders",
    metadata,
    Column("ladder_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("rated_matches", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment=(
        "One row per ladder (key = ladder id, one per board setup), written by the ratings "
        "actor; version is its optimistic-concurrency counter."
    ),
)

ratings = Table(
    "ratings",
    metadata,
    Column(
        "ladder_id",
        String(64),
        ForeignKey("ladders.ladder_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("player_kind", String(8), nullable=False),
    Column("player_id", String(128), nullable=False),
    Column("rating", Double, nullable=False),
    Column("games", Integer, nullable=False),
    Column("wins", Integer, nullable=False),
    Column("losses", Integer, nullable=False),
    Column("streak", Integer, nullable=False),
    Column("peak", Double, nullable=False),
    Column("last_played", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("ladder_id", "player_kind", "player_id"),
    CheckConstraint("player_kind IN ('user', 'agent')", name="player_kind"),
    CheckConstraint("games = wins + losses", name="games"),
    comment="A user's or agent's Elo standing on one ladder.",
)
# The ladder query: best first.
Index("ix_ratings_ladder_id_rating", ratings.c.ladder_id, ratings.c.rating)
# Every ladder a player is on.
Index("ix_ratings_player", ratings.c.player_kind, ratings.c.player_id)

__all__ = ["ladders", "ratings"]
