"""Battleship tables: rooms and members, matches, fleets and moves, ladders and ratings.

Revision ID: 0200_battleship
Revises: 0001_kernel
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200_battleship"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("battleship",)
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("capacity", sa.SmallInteger(), nullable=False),
        sa.Column("rated", sa.Boolean(), nullable=False),
        sa.Column("board", sa.Text(), nullable=False),
        sa.Column("ladder", sa.String(64), nullable=False),
        sa.Column("close_after_match", sa.Boolean(), nullable=False),
        sa.Column("match_id", sa.String(128), nullable=True),
        sa.Column("matches_played", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_rooms")),
        sa.CheckConstraint(
            "status IN ('open', 'full', 'in_match', 'closed')", name=op.f("ck_rooms_status")
        ),
        sa.CheckConstraint("capacity BETWEEN 2 AND 16", name=op.f("ck_rooms_capacity")),
        comment=(
            "One row per room (key = room id), written by the lobby actor; version is its "
            "optimistic-concurrency counter."
        ),
    )
    op.create_index("ix_rooms_status_created_at", "rooms", ["status", "created_at"])
    op.create_table(
        "room_members",
        sa.Column("room_id", sa.String(128), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("match_seat", sa.SmallInteger(), nullable=True),
        sa.PrimaryKeyConstraint("room_id", "position", name=op.f("pk_room_members")),
        sa.UniqueConstraint("room_id", "user_id", name=op.f("uq_room_members_room_id_user_id")),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.room_id"],
            name=op.f("fk_room_members_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "match_seat IS NULL OR match_seat >= 0", name=op.f("ck_room_members_match_seat")
        ),
        comment=(
            "Members of a room in joining order (position 0 is the host); match_seat orders the "
            "members playing the room's current match."
        ),
    )
    op.create_index("ix_room_members_user_id", "room_members", ["user_id"])

    op.create_table(
        "matches",
        sa.Column("match_id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seat0_kind", sa.String(8), nullable=False),
        sa.Column("seat0_id", sa.String(128), nullable=False),
        sa.Column("seat1_kind", sa.String(8), nullable=False),
        sa.Column("seat1_id", sa.String(128), nullable=False),
        sa.Column("room_id", sa.String(128), nullable=True),
        sa.Column("rated", sa.Boolean(), nullable=False),
        sa.Column("board", sa.Text(), nullable=False),
        sa.Column("ladder", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("first_seat", sa.SmallInteger(), nullable=False),
        sa.Column("turn", sa.SmallInteger(), nullable=True),
        sa.Column("winner", sa.SmallInteger(), nullable=True),
        sa.Column("reason", sa.String(16), nullable=True),
        sa.Column("shots_fired", sa.Integer(), nullable=False),
        sa.Column("chat_messages", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("match_id", name=op.f("pk_matches")),
        sa.CheckConstraint(
            "status IN ('placing', 'in_progress', 'finished')", name=op.f("ck_matches_status")
        ),
        sa.CheckConstraint(
            "seat0_kind IN ('user', 'agent') AND seat1_kind IN ('user', 'agent')",
            name=op.f("ck_matches_kinds"),
        ),
        sa.CheckConstraint("first_seat IN (0, 1)", name=op.f("ck_matches_first_seat")),
        sa.CheckConstraint("turn IS NULL OR turn IN (0, 1)", name=op.f("ck_matches_turn")),
        sa.CheckConstraint("winner IS NULL OR winner IN (0, 1)", name=op.f("ck_matches_winner")),
        sa.CheckConstraint(
            "reason IS NULL OR reason IN ('fleet_sunk', 'resigned')",
            name=op.f("ck_matches_reason"),
        ),
        comment=(
            "One row per match (key = match id), written by the match actor; version is its "
            "optimistic-concurrency counter. Player ids are user subjects or agent ids."
        ),
    )
    op.create_index("ix_matches_seat0_id", "matches", ["seat0_id"])
    op.create_index("ix_matches_seat1_id", "matches", ["seat1_id"])
    op.create_index("ix_matches_room_id", "matches", ["room_id"])
    op.create_index("ix_matches_status_created_at", "matches", ["status", "created_at"])
    op.create_table(
        "match_ships",
        sa.Column("match_id", sa.String(128), nullable=False),
        sa.Column("seat", sa.SmallInteger(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("ship", sa.String(32), nullable=False),
        sa.Column("row", sa.SmallInteger(), nullable=False),
        sa.Column("col", sa.SmallInteger(), nullable=False),
        sa.Column("orientation", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("match_id", "seat", "position", name=op.f("pk_match_ships")),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.match_id"],
            name=op.f("fk_match_ships_match_id_matches"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("seat IN (0, 1)", name=op.f("ck_match_ships_seat")),
        sa.CheckConstraint(
            "orientation IN ('horizontal', 'vertical')", name=op.f("ck_match_ships_orientation")
        ),
        comment="Each placed fleet, one row per ship in fleet order; secret until the match ends.",
    )
    op.create_table(
        "moves",
        sa.Column("match_id", sa.String(128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("seat", sa.SmallInteger(), nullable=False),
        sa.Column("row", sa.SmallInteger(), nullable=False),
        sa.Column("col", sa.SmallInteger(), nullable=False),
        sa.Column("result", sa.String(8), nullable=False),
        _ts("at", nullable=True),
        sa.PrimaryKeyConstraint("match_id", "number", name=op.f("pk_moves")),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.match_id"],
            name=op.f("fk_moves_match_id_matches"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("seat IN (0, 1)", name=op.f("ck_moves_seat")),
        sa.CheckConstraint("number > 0", name=op.f("ck_moves_number")),
        sa.CheckConstraint("result IN ('miss', 'hit', 'sunk')", name=op.f("ck_moves_result")),
        comment="Every shot of every match, numbered from 1 in the order fired.",
    )

    op.create_table(
        "ladders",
        sa.Column("ladder_id", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("rated_matches", sa.Integer(), nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("ladder_id", name=op.f("pk_ladders")),
        comment=(
            "One row per ladder (key = ladder id, one per board setup), written by the ratings "
            "actor; version is its optimistic-concurrency counter."
        ),
    )
    op.create_table(
        "ratings",
        sa.Column("ladder_id", sa.String(64), nullable=False),
        sa.Column("player_kind", sa.String(8), nullable=False),
        sa.Column("player_id", sa.String(128), nullable=False),
        sa.Column("rating", sa.Double(), nullable=False),
        sa.Column("games", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("losses", sa.Integer(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("peak", sa.Double(), nullable=False),
        _ts("last_played", nullable=True),
        sa.PrimaryKeyConstraint("ladder_id", "player_kind", "player_id", name=op.f("pk_ratings")),
        sa.ForeignKeyConstraint(
            ["ladder_id"],
            ["ladders.ladder_id"],
            name=op.f("fk_ratings_ladder_id_ladders"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("player_kind IN ('user', 'agent')", name=op.f("ck_ratings_player_kind")),
        sa.CheckConstraint("games = wins + losses", name=op.f("ck_ratings_games")),
        comment="A user's or agent's Elo standing on one ladder.",
    )
    op.create_index("ix_ratings_ladder_id_rating", "ratings", ["ladder_id", "rating"])
    op.create_index("ix_ratings_player", "ratings", ["player_kind", "player_id"])


def downgrade() -> None:
    op.drop_index("ix_ratings_player", table_name="ratings")
    op.drop_index("ix_ratings_ladder_id_rating", table_name="ratings")
    op.drop_table("ratings")
    op.drop_table("ladders")
    op.drop_table("moves")
    op.drop_table("match_ships")
    op.drop_index("ix_matches_status_created_at", table_name="matches")
    op.drop_index("ix_matches_room_id", table_name="matches")
    op.drop_index("ix_matches_seat1_id", table_name="matches")
    op.drop_index("ix_matches_seat0_id", table_name="matches")
    op.drop_table("matches")
    op.drop_index("ix_room_members_user_id", table_name="room_members")
    op.drop_table("room_members")
    op.drop_index("ix_rooms_status_created_at", table_name="rooms")
    op.drop_table("rooms")
