"""The match actor's tables: one row per match, its fleets, and every shot as a move."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from actors.kernel.db import metadata


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends.

    PostgreSQL keeps the zone (``timestamptz``); SQLite stores text without one, so values
    are converted to UTC on the way in and marked UTC on the way out, and a state read back
    equals the state written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


matches = Table(
    "matches",
    metadata,
    Column("match_id", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("seat0_kind", String(8), nullable=False),
    Column("seat0_id", String(128), nullable=False),
    Column("seat1_kind", String(8), nullable=False),
    Column("seat1_id", String(128), nullable=False),
    Column("room_id", String(128), nullable=True),
    Column("rated", Boolean, nullable=False),
    Column("board", Text, nullable=False),
    Column("ladder", String(64), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("first_seat", SmallInteger, nullable=False),
    Column("turn", SmallInteger, nullable=True),
    Column("winner", SmallInteger, nullable=True),
    Column("reason", String(16), nullable=True),
    Column("shots_fired", Integer, nullable=False),
    Column("chat_messages", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    CheckConstraint("status IN ('placing', 'in_progress', 'finished')", name="status"),
    CheckConstraint("seat0_kind IN ('user', 'agent') AND seat1_kind IN ('user', 'agent')", "kinds"),
    CheckConstraint("first_seat IN (0, 1)", name="first_seat"),
    CheckConstraint("turn IS NULL OR turn IN (0, 1)", name="turn"),
    CheckConstraint("winner IS NULL OR winner IN (0, 1)", name="winner"),
    CheckConstraint("reason IS NULL OR reason IN ('fleet_sunk', 'resigned')", name="reason"),
    comment=(
        "One row per match (key = match id), written by the match actor; version is its "
        "optimistic-concurrency counter. Player ids are user subjects or agent ids."
    ),
)
# A player's matches (either seat), a room's matches, and the newest matches by status.
Index("ix_matches_seat0_id", matches.c.seat0_id)
Index("ix_matches_seat1_id", matches.c.seat1_id)
Index("ix_matches_room_id", matches.c.room_id)
Index("ix_matches_status_created_at", matches.c.status, matches.c.created_at)

match_ships = Table(
    "match_ships",
    metadata,
    Column(
        "match_id",
        String(128),
        ForeignKey("matches.match_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seat", SmallInteger, nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("ship", String(32), nullable=False),
    Column("row", SmallInteger, nullable=False),
    Column("col", SmallInteger, nullable=False),
    Column("orientation", String(10), nullable=False),
    PrimaryKeyConstraint("match_id", "seat", "position"),
    CheckConstraint("seat IN (0, 1)", name="seat"),
    CheckConstraint("orientation IN ('horizontal', 'vertical')", name="orientation"),
    comment="Each placed fleet, one row per ship in fleet order; secret until the match ends.",
)

moves = Table(
    "moves",
    metadata,
    Column(
        "match_id",
        String(128),
        ForeignKey("matches.match_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("number", Integer, nullable=False),
    Column("seat", SmallInteger, nullable=False),
    Column("row", SmallInteger, nullable=False),
    Column("col", SmallInteger, nullable=False),
    Column("result", String(8), nullable=False),
    Column("at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("match_id", "number"),
    CheckConstraint("seat IN (0, 1)", name="seat"),
    CheckConstraint("number > 0", name="number"),
    CheckConstraint("result IN ('miss', 'hit', 'sunk')", name="result"),
    comment="Every shot of every match, numbered from 1 in the order fired.",
)

__all__ = ["UtcDateTime", "match_ships", "matches", "moves"]
