"""The encounter's tables: one row per encounter, its combatants, and one initiative row each."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from actors.kernel.db import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")

encounters = Table(
    "encounters",
    metadata,
    Column("encounter_id", String(128), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("campaign_id", String(128), nullable=True),
    Column("name", String(200), nullable=True),
    Column("draws", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("round", Integer, nullable=False),
    Column("active_combatant_id", String(128), nullable=True),
    Column("ending", Boolean, nullable=False),
    Column("ending_since", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("encounter_id"),
    CheckConstraint("status IN ('setup', 'active', 'ended')", name="status"),
    CheckConstraint("step >= 0 AND round >= 0 AND draws >= 0 AND version > 0", name="counters"),
    CheckConstraint(
        "(status = 'active' AND active_combatant_id IS NOT NULL) "
        "OR (status <> 'active' AND active_combatant_id IS NULL)",
        name="one_active_combatant",
    ),
    CheckConstraint("status <> 'active' OR (step >= 1 AND round >= 1)", name="active_has_turn"),
    CheckConstraint("NOT ending OR status = 'active'", name="ending_only_when_active"),
    comment=(
        "One row per encounter: status, the turn step and round, the active combatant; "
        "version is the optimistic-concurrency counter of the encounter actor."
    ),
)
# The active-encounters gauge and the stuck-step check count by status.
Index("ix_encounters_status", encounters.c.status)
Index("ix_encounters_campaign_id", encounters.c.campaign_id)

combatants = Table(
    "combatants",
    metadata,
    Column("encounter_id", String(128), nullable=False),
    Column("combatant_id", String(128), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("dexterity_modifier", Integer, nullable=False),
    Column("initiative_bonus", Integer, nullable=False),
    Column("defeated", Boolean, nullable=False),
    Column("skip_next", Boolean, nullable=False),
    Column("character_ref", String(200), nullable=True),
    PrimaryKeyConstraint("encounter_id", "combatant_id"),
    ForeignKeyConstraint(["encounter_id"], ["encounters.encounter_id"], ondelete="CASCADE"),
    CheckConstraint("position >= 0", name="position"),
    CheckConstraint("NOT (defeated AND skip_next)", name="defeated_never_skips"),
    comment="The combatants of an encounter; position is the order they joined in.",
)

initiative = Table(
    "initiative",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("encounter_id", String(128), nullable=False),
    Column("combatant_id", String(128), nullable=False),
    Column("value", Integer, nullable=False),
    # The schema invariant: a combatant holds at most one initiative in one encounter.
    UniqueConstraint("encounter_id", "combatant_id"),
    ForeignKeyConstraint(
        ["encounter_id", "combatant_id"],
        ["combatants.encounter_id", "combatants.combatant_id"],
        ondelete="CASCADE",
    ),
    CheckConstraint("value BETWEEN -30 AND 60", name="value_range"),
    comment="The initiative total of each placed combatant; at most one row per combatant.",
)

INITIATIVE_UNIQUE = "uq_initiative_encounter_id_combatant_id"
"""The constraint that refuses a second initiative row for one combatant in one encounter."""
