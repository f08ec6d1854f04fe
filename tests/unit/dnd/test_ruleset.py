"""The D&D 5e ruleset: modifiers, proficiency, d20 tests with advantage, checks, initiative."""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dnd import (
    Ability,
    AbilityScoreError,
    Advantage,
    CheckError,
    CheckInput,
    Dnd5eRuleset,
    LevelError,
    Ruleset,
)

RULES = Dnd5eRuleset()


class Loaded(random.Random):
    """A RNG whose ``randint`` answers from a script, so a test can set the dice."""

    def __init__(self, *faces: int) -> None:
        super().__init__(0)
        self.faces = deque(faces)

    def randint(self, a: int, b: int) -> int:
        face = self.faces.popleft()
        assert a <= face <= b
        return face


@pytest.mark.parametrize(
    ("score", "modifier"),
    [
        (1, -5),
        (2, -4),
        (3, -4),
        (8, -1),
        (9, -1),
        (10, 0),
        (11, 0),
        (12, 1),
        (15, 2),
        (18, 4),
        (20, 5),
        (29, 9),
        (30, 10),
    ],
)
def test_ability_modifier_follows_the_table(score: int, modifier: int) -> None:
    assert RULES.ability_modifier(score) == modifier


@pytest.mark.parametrize("score", [0, -3, 31])
def test_ability_scores_outside_1_to_30_are_refused(score: int) -> None:
    with pytest.raises(AbilityScoreError, match=f"ability score {score} is outside 1..30"):
        RULES.ability_modifier(score)


# SRD 5.1, "Beyond 1st Level": the proficiency bonus column for levels 1-20.
PROFICIENCY_TABLE = [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6]


@pytest.mark.parametrize(("level", "bonus"), list(enumerate(PROFICIENCY_TABLE, start=1)))
def test_proficiency_bonus_by_level(level: int, bonus: int) -> None:
    assert RULES.proficiency_bonus(level) == bonus


@pytest.mark.parametrize("level", [0, 21])
def test_levels_outside_1_to_20_are_refused(level: int) -> None:
    with pytest.raises(LevelError):
        RULES.proficiency_bonus(level)


@pytest.mark.parametrize(
    ("advantage", "disadvantage", "expected"),
    [
        (False, False, Advantage.NONE),
        (True, False, Advantage.ADVANTAGE),
        (False, True, Advantage.DISADVANTAGE),
        (True, True, Advantage.NONE),
    ],
)
def test_advantage_and_disadvantage_cancel(
    advantage: bool, disadvantage: bool, expected: Advantage
) -> None:
    assert Advantage.from_flags(advantage, disadvantage) is expected


@settings(max_examples=100)
@given(st.integers(0, 2**32), st.sampled_from(list(Advantage)), st.integers(-10, 10))
def test_d20_keeps_the_right_die(seed: int, advantage: Advantage, modifier: int) -> None:
    d20 = RULES.roll_d20(random.Random(seed), modifier=modifier, advantage=advantage)
    assert all(1 <= d <= 20 for d in d20.rolls)
    if advantage is Advantage.NONE:
        assert d20.rolls == (d20.natural,)
    elif advantage is Advantage.ADVANTAGE:
        assert len(d20.rolls) == 2
        assert d20.natural == max(d20.rolls)
    else:
        assert len(d20.rolls) == 2
        assert d20.natural == min(d20.rolls)
    assert d20.total == d20.natural + modifier
    assert d20 == RULES.roll_d20(random.Random(seed), modifier=modifier, advantage=advantage)


def test_natural_results_are_flagged() -> None:
    assert RULES.roll_d20(Loaded(20)).natural_20
    assert RULES.roll_d20(Loaded(1)).natural_1
    assert RULES.roll_d20(Loaded(7, 20), advantage=Advantage.ADVANTAGE).natural_20


def test_d20_modifier_is_bounded() -> None:
    with pytest.raises(CheckError):
        RULES.roll_d20(random.Random(0), modifier=10_001)


def test_check_adds_modifier_and_proficiency_and_meets_the_dc() -> None:
    # Dexterity 16 (+3), level 5 (+3 proficiency), die 9: total 15 against DC 15.
    check = CheckInput(ability=Ability.DEXTERITY, score=16, dc=15, level=5, proficient=True)
    result = RULES.perform_check(Loaded(9), check)
    assert (result.ability_modifier, result.proficiency, result.total) == (3, 3, 15)
    assert result.success
    assert result.margin == 0
    assert result.ability is Ability.DEXTERITY


def test_check_below_the_dc_fails_even_on_a_natural_20() -> None:
    result = RULES.perform_check(Loaded(20), CheckInput(score=1, dc=30))
    assert result.roll.natural_20
    assert result.total == 15
    assert not result.success
    assert result.margin == -15


@pytest.mark.parametrize(
    ("proficient", "expertise", "proficiency"),
    [(False, False, 0), (True, False, 4), (True, True, 8), (False, True, 8)],
)
def test_expertise_doubles_proficiency(proficient: bool, expertise: bool, proficiency: int) -> None:
    check = CheckInput(score=10, dc=10, level=9, proficient=proficient, expertise=expertise)
    result = RULES.perform_check(Loaded(10), check)
    assert result.proficiency == proficiency
    assert result.total == 10 + proficiency


def test_check_with_advantage_and_bonus() -> None:
    check = CheckInput(score=12, dc=12, advantage=Advantage.ADVANTAGE, bonus=2)
    result = RULES.perform_check(Loaded(3, 9), check)
    assert result.roll.rolls == (3, 9)
    assert result.total == 9 + 1 + 2
    assert result.success


@pytest.mark.parametrize("dc", [0, 101])
def test_check_dc_must_be_sensible(dc: int) -> None:
    with pytest.raises(CheckError, match="difficulty class"):
        RULES.perform_check(random.Random(0), CheckInput(score=10, dc=dc))


def test_initiative_is_d20_plus_dexterity_plus_bonus() -> None:
    d20 = RULES.roll_initiative(Loaded(11), dexterity_modifier=3, bonus=5)
    assert (d20.natural, d20.modifier, d20.total) == (11, 8, 19)
    low = RULES.roll_initiative(
        Loaded(11, 4), dexterity_modifier=-1, advantage=Advantage.DISADVANTAGE
    )
    assert low.total == 3


def test_ruleset_is_an_interface() -> None:
    with pytest.raises(TypeError):
        Ruleset()  # type: ignore[abstract]
    assert isinstance(RULES, Ruleset)
    assert RULES.name == "dnd5e"
    rolled = RULES.roll(random.Random(5), RULES.parse_dice("2d6+1"))
    assert rolled == RULES.roll(random.Random(5), "2d6+1")
