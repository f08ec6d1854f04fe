"""A whole encounter as data: every command, its id and the outcome it must get."""

from __future__ import annotations

from dataclasses import dataclass, replace

from schemas.base import Command
from schemas.effects import ApplyEffect, RemoveEffect
from schemas.encounter import (
    AbilityScores,
    AddCombatant,
    CreateEncounter,
    DefeatCombatant,
    EndEncounter,
    NextTurn,
    RemoveCombatant,
    RollInitiative,
    SetInitiative,
    SkipCombatant,
    StartEncounter,
)
from schemas.mastery import RAPID_RESPONSE, RequestProc

KEY = "saga-1"
CAMPAIGN = "camp-saga"


@dataclass(frozen=True)
class Step:
    """One transition: a command and the outcome it must get."""

    label: str
    command: Command
    status: str = "applied"
    code: str | None = None
    number: int = 0

    @property
    def name(self) -> str:
        """``07 roll initiative``: the transition's place and what it does."""
        return f"{self.number:02d} {self.label}"

    @property
    def command_id(self) -> str:
        return f"{KEY}-{self.name.replace(' ', '-')}"


def _buff(
    instance: str, owner: str, placed_by: str, duration: int, kind: str = "BUFF"
) -> ApplyEffect:
    return ApplyEffect(
        instance_id=instance,
        owner=owner,
        placed_by=placed_by,
        kind=kind,  # type: ignore[arg-type]
        name=instance.capitalize(),
        duration=duration,
    )


def _proc(holder: str, count: int, step: int, mastery: str = RAPID_RESPONSE) -> RequestProc:
    return RequestProc(holder=holder, mastery=mastery, count=count, step=step)


_STEPS: tuple[Step, ...] = (
    Step("create", CreateEncounter(seed=20251122, campaign_id=CAMPAIGN, name="Goblin ambush")),
    Step(
        "add ada",
        AddCombatant(
            combatant_id="ada",
            name="Ada",
            abilities=AbilityScores(dexterity=16, wisdom=14),
            character_ref="sheets/ada",
        ),
    ),
    Step("add bryn", AddCombatant(combatant_id="bryn", name="Bryn", dexterity_modifier=1)),
    Step(
        "add goblin",
        AddCombatant(
            combatant_id="goblin", name="Goblin", dexterity_modifier=2, initiative_bonus=1
        ),
    ),
    Step("add ogre", AddCombatant(combatant_id="ogre", name="Ogre", dexterity_modifier=-1)),
    Step("add imp", AddCombatant(combatant_id="imp", name="Imp", dexterity_modifier=4)),
    Step("imp leaves", RemoveCombatant(combatant_id="imp")),
    Step(
        "add ada again",
        AddCombatant(combatant_id="ada", name="Ada"),
        "rejected",
        "duplicate_combatant",
    ),
    Step("roll initiative", RollInitiative()),
    Step("roll again", RollInitiative(combatant_id="ada"), "rejected", "initiative_exists"),
    Step("ogre rolled at the table", SetInitiative(combatant_id="ogre", value=9)),
    Step("goblin surprised", SkipCombatant(combatant_id="goblin")),
    Step("start", StartEncounter()),
    # Step 1: three effects expire at its end; ada's request matches, bryn's does not.
    Step("bless", _buff("bless", "bryn", "ada", 1)),
    Step("haste", _buff("haste", "ada", "ada", 1)),
    Step("hex", _buff("hex", "ogre", "bryn", 1, kind="DEBUFF")),
    Step("aid", _buff("aid", "bryn", "bryn", 3)),
    Step("shield", _buff("shield", "ada", "ogre", 2)),
    Step("ada requests 2", _proc("ada", 2, 1)),
    Step("bryn requests 1", _proc("bryn", 1, 1)),
    Step("ada requests again", _proc("ada", 1, 1), "rejected", "duplicate_request"),
    Step("unknown mastery", _proc("ada", 1, 1, "fireball"), "rejected", "unknown_mastery"),
    Step("next turn 1", NextTurn(expected_step=1)),
    # Step 2: shield expires; ogre asks for two procs where one qualifies.
    Step("ogre requests 2", _proc("ogre", 2, 2)),
    Step("ward", _buff("ward", "ada", "ada", 5)),
    Step("dispel ward", RemoveEffect(instance_id="ward", note="dispelled")),
    Step("dispel ward again", RemoveEffect(instance_id="ward"), "rejected", "effect_gone"),
    Step("ogre falls", DefeatCombatant(combatant_id="ogre")),
    Step("next turn 2", NextTurn(expected_step=2)),
    Step("late request", _proc("ada", 1, 1), "rejected", "step_resolved"),
    # Step 3: aid expires and bryn's request for it procs.
    Step("bryn requests 1", _proc("bryn", 1, 3)),
    Step("stale next turn", NextTurn(expected_step=2), "rejected", "stale_step"),
    Step("next turn 3", NextTurn(expected_step=3)),
    # Step 4: a long effect and a request still pending when the encounter ends.
    Step("rage", _buff("rage", "goblin", "goblin", 4)),
    Step("goblin requests 1", _proc("goblin", 1, 7)),
    Step("end", EndEncounter(note="the goblins fled")),
    Step("next turn after end", NextTurn(expected_step=4), "rejected", "encounter_ended"),
    Step("effect after end", _buff("late", "ada", "ada", 1), "rejected", "encounter_ended"),
    Step("request after end", _proc("ada", 1, 5), "rejected", "encounter_ended"),
)
STEPS: tuple[Step, ...] = tuple(replace(step, number=n) for n, step in enumerate(_STEPS, start=1))
