"""Encounter tables: encounters, combatants, initiative (one row per combatant), forward-only guard.

Revision ID: 0100_encounter
Revises: 0001_kernel
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100_encounter"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = ("encounter",)
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_RANK = "CASE {row}.status WHEN 'setup' THEN 1 WHEN 'active' THEN 2 WHEN 'ended' THEN 3 END"

# An update may never move an encounter backwards: version, step and round only grow and the
# status only moves setup -> active -> ended. The actor's rules never do it; this catches a
# store bug or a hand-edited row before it corrupts the turn order.
_PG_FUNCTION = f"""
CREATE FUNCTION encounters_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version <= OLD.version
        OR NEW.step < OLD.step
        OR NEW.round < OLD.round
        OR ({_RANK.format(row="NEW")}) < ({_RANK.format(row="OLD")}) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'encounters_forward_only',
            MESSAGE = format(
                'encounter %s may only move forward: version %s -> %s, step %s -> %s, '
                'round %s -> %s, status %s -> %s',
                OLD.encounter_id, OLD.version, NEW.version, OLD.step, NEW.step,
                OLD.round, NEW.round, OLD.status, NEW.status);
    END IF;
    RETURN NEW;
END
$$
"""
_PG_TRIGGER = """
CREATE TRIGGER encounters_forward_only BEFORE UPDATE ON encounters
FOR EACH ROW EXECUTE FUNCTION encounters_forward_only()
"""
_SQLITE_TRIGGER = f"""
CREATE TRIGGER encounters_forward_only BEFORE UPDATE ON encounters
WHEN NEW.version <= OLD.version
    OR NEW.step < OLD.step
    OR NEW.round < OLD.round
    OR ({_RANK.format(row="NEW")}) < ({_RANK.format(row="OLD")})
BEGIN
    SELECT RAISE(ABORT, 'encounters_forward_only: an encounter may only move forward');
END
"""


def upgrade() -> None:
    op.create_table(
        "encounters",
        sa.Column("encounter_id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("campaign_id", sa.String(128), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("draws", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("active_combatant_id", sa.String(128), nullable=True),
        sa.Column("ending", sa.Boolean(), nullable=False),
        sa.Column("ending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("encounter_id", name=op.f("pk_encounters")),
        sa.CheckConstraint(
            "status IN ('setup', 'active', 'ended')", name=op.f("ck_encounters_status")
        ),
        sa.CheckConstraint(
            "step >= 0 AND round >= 0 AND draws >= 0 AND version > 0",
            name=op.f("ck_encounters_counters"),
        ),
        sa.CheckConstraint(
            "(status = 'active' AND active_combatant_id IS NOT NULL) "
            "OR (status <> 'active' AND active_combatant_id IS NULL)",
            name=op.f("ck_encounters_one_active_combatant"),
        ),
        sa.CheckConstraint(
            "status <> 'active' OR (step >= 1 AND round >= 1)",
            name=op.f("ck_encounters_active_has_turn"),
        ),
        sa.CheckConstraint(
            "NOT ending OR status = 'active'", name=op.f("ck_encounters_ending_only_when_active")
        ),
        comment=(
            "One row per encounter: status, the turn step and round, the active combatant; "
            "version is the optimistic-concurrency counter of the encounter actor."
        ),
    )
    op.create_index("ix_encounters_status", "encounters", ["status"])
    op.create_index("ix_encounters_campaign_id", "encounters", ["campaign_id"])
    op.create_table(
        "combatants",
        sa.Column("encounter_id", sa.String(128), nullable=False),
        sa.Column("combatant_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dexterity_modifier", sa.Integer(), nullable=False),
        sa.Column("initiative_bonus", sa.Integer(), nullable=False),
        sa.Column("defeated", sa.Boolean(), nullable=False),
        sa.Column("skip_next", sa.Boolean(), nullable=False),
        sa.Column("character_ref", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("encounter_id", "combatant_id", name=op.f("pk_combatants")),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.encounter_id"],
            name=op.f("fk_combatants_encounter_id_encounters"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("position >= 0", name=op.f("ck_combatants_position")),
        sa.CheckConstraint(
            "NOT (defeated AND skip_next)", name=op.f("ck_combatants_defeated_never_skips")
        ),
        comment="The combatants of an encounter; position is the order they joined in.",
    )
    op.create_table(
        "initiative",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("encounter_id", sa.String(128), nullable=False),
        sa.Column("combatant_id", sa.String(128), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_initiative")),
        sa.UniqueConstraint(
            "encounter_id",
            "combatant_id",
            name=op.f("uq_initiative_encounter_id_combatant_id"),
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id", "combatant_id"],
            ["combatants.encounter_id", "combatants.combatant_id"],
            name=op.f("fk_initiative_encounter_id_combatants"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("value BETWEEN -30 AND 60", name=op.f("ck_initiative_value_range")),
        comment="The initiative total of each placed combatant; at most one row per combatant.",
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.drop_table("initiative")
    op.drop_table("combatants")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS encounters_forward_only ON encounters")
        op.execute("DROP FUNCTION IF EXISTS encounters_forward_only()")
    op.drop_index("ix_encounters_campaign_id", table_name="encounters")
    op.drop_index("ix_encounters_status", table_name="encounters")
    op.drop_table("encounters")
