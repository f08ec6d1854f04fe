"""The ``Ruleset`` interface and its D&D 5e implementation: dice, modifiers, checks, initiative."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from enum import StrEnum
from typing import ClassVar

import msgspec

from actors.dnd.dice import (
    MAX_CONSTANT,
    DiceExpression,
    DiceTerm,
    Keep,
    RollResult,
    parse,
    roll,
)
from actors.dnd.errors import AbilityScoreError, CheckError, LevelError

MIN_SCORE, MAX_SCORE = 1, 30
MIN_LEVEL, MAX_LEVEL = 1, 20
MIN_DC, MAX_DC = 1, 100


class Ability(StrEnum):
    """The six abilities."""

    STRENGTH = "strength"
    DEXTERITY = "dexterity"
    CONSTITUTION = "constitution"
    INTELLIGENCE = "intelligence"
    WISDOM = "wisdom"
    CHARISMA = "charisma"


class Advantage(StrEnum):
    """How a d20 is rolled: once, or twice keeping the higher or the lower die."""

    NONE = "none"
    ADVANTAGE = "advantage"
    DISADVANTAGE = "disadvantage"

    @classmethod
    def from_flags(cls, advantage: bool, disadvantage: bool) -> Advantage:
        """Combine sources: in 5e advantage and disadvantage together cancel out."""
        if advantage and not disadvantage:
            return cls.ADVANTAGE
        if disadvantage and not advantage:
            return cls.DISADVANTAGE
        return cls.NONE


class D20Roll(msgspec.Struct, frozen=True, kw_only=True):
    """A d20 test: the dice thrown (two with advantage or disadvantage), the one kept, the sum."""

    advantage: Advantage
    rolls: tuple[int, ...]
    natural: int
    modifier: int
    total: int

    @property
    def natural_20(self) -> bool:
        """The kept die shows 20."""
        return self.natural == 20

    @property
    def natural_1(self) -> bool:
        """The kept die shows 1."""
        return self.natural == 1


class CheckInput(msgspec.Struct, frozen=True, kw_only=True):
    """An ability check to make: the score, the difficulty and what applies to the roll.

    ``expertise`` doubles the proficiency bonus and implies proficiency.
    """

    score: int
    dc: int
    ability: Ability | None = None
    level: int = 1
    proficient: bool = False
    expertise: bool = False
    advantage: Advantage = Advantage.NONE
    bonus: int = 0


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of an ability check, with every number that went into it."""

    ability: Ability | None
    ability_modifier: int
    proficiency: int
    bonus: int
    roll: D20Roll
    total: int
    dc: int
    success: bool

    @property
    def margin(self) -> int:
        """How far the total landed above (positive) or below (negative) the DC."""
        return self.total - self.dc


class Ruleset(ABC):
    """What a game system offers the engine; every random call takes the RNG to use."""

    name: ClassVar[str]

    @abstractmethod
    def parse_dice(self, expression: str) -> DiceExpression:
        """Parse a dice expression or raise a ``DiceError`` naming the bad part."""

    @abstractmethod
    def roll(self, rng: random.Random, expression: str | DiceExpression) -> RollResult:
        """Roll a dice expression."""

    @abstractmethod
    def roll_d20(
        self, rng: random.Random, *, modifier: int = 0, advantage: Advantage = Advantage.NONE
    ) -> D20Roll:
        """Roll a d20 test with a flat modifier."""

    @abstractmethod
    def ability_modifier(self, score: int) -> int:
        """The modifier of an ability score."""

    @abstractmethod
    def proficiency_bonus(self, level: int) -> int:
        """The proficiency bonus at a character level."""

    @abstractmethod
    def perform_check(self, rng: random.Random, check: CheckInput) -> CheckResult:
        """Make an ability check against its DC."""

    @abstractmethod
    def roll_initiative(
        self,
        rng: random.Random,
        *,
        dexterity_modifier: int,
        bonus: int = 0,
        advantage: Advantage = Advantage.NONE,
    ) -> D20Roll:
        """Roll initiative for one combatant."""


class Dnd5eRuleset(Ruleset):
    """Fifth edition rules as published in the System Reference Document 5.1."""

    name: ClassVar[str] = "dnd5e"

    def parse_dice(self, expression: str) -> DiceExpression:
        return parse(expression)

    def roll(self, rng: random.Random, expression: str | DiceExpression) -> RollResult:
        return roll(rng, expression)

    def roll_d20(
        self, rng: random.Random, *, modifier: int = 0, advantage: Advantage = Advantage.NONE
    ) -> D20Roll:
        if abs(modifier) > MAX_CONSTANT:
            raise CheckError(f"d20 modifier {modifier} is beyond ±{MAX_CONSTANT}")
        if advantage is Advantage.NONE:
            term = DiceTerm(count=1, sides=20)
        else:
            keep: Keep = "kh" if advantage is Advantage.ADVANTAGE else "kl"
            term = DiceTerm(count=2, sides=20, keep=keep, keep_count=1)
        result = roll(rng, DiceExpression(terms=(term,), modifier=modifier))
        group = result.groups[0]
        return D20Roll(
            advantage=advantage,
            rolls=group.rolls,
            natural=group.kept[0],
            modifier=modifier,
            total=result.total,
        )

    def ability_modifier(self, score: int) -> int:
        if not MIN_SCORE <= score <= MAX_SCORE:
            raise AbilityScoreError(score)
        return (score - 10) // 2

    def proficiency_bonus(self, level: int) -> int:
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise LevelError(level)
        # SRD 5.1 "Character Advancement": +2 at levels 1-4, one more every four levels.
        return 2 + (level - 1) // 4

    def perform_check(self, rng: random.Random, check: CheckInput) -> CheckResult:
        if not MIN_DC <= check.dc <= MAX_DC:
            raise CheckError(f"difficulty class {check.dc} is outside {MIN_DC}..{MAX_DC}")
        ability_mod = self.ability_modifier(check.score)
        proficiency_bonus = self.proficiency_bonus(check.level)
        if check.expertise:
            proficiency = 2 * proficiency_bonus
        elif check.proficient:
            proficiency = proficiency_bonus
        else:
            proficiency = 0
        d20 = self.roll_d20(
            rng, modifier=ability_mod + proficiency + check.bonus, advantage=check.advantage
        )
        # Ability checks have no automatic success on a natural 20 (that rule is for attacks).
        return CheckResult(
            ability=check.ability,
            ability_modifier=ability_mod,
            proficiency=proficiency,
            bonus=check.bonus,
            roll=d20,
            total=d20.total,
            dc=check.dc,
            success=d20.total >= check.dc,
        )

    def roll_initiative(
        self,
        rng: random.Random,
        *,
        dexterity_modifier: int,
        bonus: int = 0,
        advantage: Advantage = Advantage.NONE,
    ) -> D20Roll:
        return self.roll_d20(rng, modifier=dexterity_modifier + bonus, advantage=advantage)
