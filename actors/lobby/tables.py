"""The lobby's tables: rooms and their members."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from actors.kernel.db import metadata
from actors.match.tables import UtcDateTime

rooms = Table(
    "rooms",
    metadata,
    Column("room_id", String(128), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("host", String(128), nullable=False),
    Column("capacity", SmallInteger, nullable=False),
    Column("rated", Boolean, nullable=False),
    Column("board", Text, nullable=False),
    Column("ladder", String(64), nullable=False),
    Column("close_after_match", Boolean, nullable=False),
    Column("match_id", String(128), nullable=True),
    Column("matches_played", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("status IN ('open', 'full', 'in_match', 'closed')", name="status"),
    CheckConstraint("capacity BETWEEN 2 AND 16", name="capacity"),
    comment=(
        "One row per room (key = room id), written by the lobby actor; version is its "
        "optimistic-concurrency counter."
    ),
)
# The lobby list: rooms by status, newest first.
Index("ix_rooms_status_created_at", rooms.c.status, rooms.c.created_at)

room_members = Table(
    "room_members",
    metadata,
    Column(
        "room_id",
        String(128),
        ForeignKey("rooms.room_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", SmallInteger, nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("match_seat", SmallInteger, nullable=True),
    PrimaryKeyConstraint("room_id", "position"),
    UniqueConstraint("room_id", "user_id"),
    CheckConstraint("match_seat IS NULL OR match_seat >= 0", name="match_seat"),
    comment=(
        "Members of a room in joining order (position 0 is the host); match_seat orders the "
        "members playing the room's current match."
    ),
)
Index("ix_room_members_user_id", room_members.c.user_id)

__all__ = ["room_members", "rooms"]
