"""Dice expressions: parsing, limits, errors naming the bad part, and rolls within bounds."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dnd import (
    MAX_DICE,
    MAX_EXPRESSION_LENGTH,
    DiceError,
    DiceExpression,
    DiceLimitError,
    DiceSyntaxError,
    DiceTerm,
    parse,
    roll,
)


@pytest.mark.parametrize(
    ("text", "canonical", "dice"),
    [
        ("1d20", "1d20", 1),
        ("d20", "1d20", 1),
        ("2d6+3", "2d6+3", 2),
        ("2d6-3", "2d6-3", 2),
        ("1d8+2d6+3", "1d8+2d6+3", 3),
        (" 1d8 + 2d6 + 3 ", "1d8+2d6+3", 3),
        ("4d6kh3", "4d6kh3", 4),
        ("2d20kl1", "2d20kl1", 2),
        ("2D20KH1", "2d20kh1", 2),
        ("d%", "1d100", 1),
        ("-1d4+2", "-1d4+2", 1),
        ("+1d4", "1d4", 1),
        ("3+1d6-1", "1d6+2", 1),
        ("5", "5", 0),
        ("1d6-1d6", "1d6-1d6", 2),
    ],
)
def test_parse_accepts_the_usual_notation(text: str, canonical: str, dice: int) -> None:
    expression = parse(text)
    assert str(expression) == canonical
    assert expression.dice_count == dice
    assert parse(canonical) == expression


def test_parse_builds_terms_with_signs_and_keeps() -> None:
    assert parse("4d6kh3-1d4+2") == DiceExpression(
        terms=(
            DiceTerm(count=4, sides=6, keep="kh", keep_count=3),
            DiceTerm(count=1, sides=4, sign=-1),
        ),
        modifier=2,
    )


@pytest.mark.parametrize(
    ("text", "position", "part"),
    [
        ("", 0, ""),
        ("   ", 0, ""),
        ("1d", 2, ""),
        ("2d6+", 4, ""),
        ("4d6k3", 3, "k3"),
        ("4d6kh", 5, ""),
        ("1d8x", 3, "x"),
        ("abc", 0, "abc"),
        ("1d6++2", 4, "+"),
        ("3 d6", 2, "d6"),
        ("1d6 2", 4, "2"),
        ("2d6*2", 3, "*2"),
        ("5kh1", 1, "kh1"),
    ],
)
def test_malformed_expressions_name_the_bad_part(text: str, position: int, part: str) -> None:
    with pytest.raises(DiceSyntaxError) as caught:
        parse(text)
    assert caught.value.position == position
    assert caught.value.part == part
    assert caught.value.expression == text
    if part:
        assert repr(part) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("0d6", "count"),
        ("101d6", "dice"),
        ("60d6+41d8", "dice"),
        ("1d1", "sides"),
        ("1d0", "sides"),
        ("1d1001", "sides"),
        ("4d6kh5", "keep"),
        ("4d6kl0", "keep"),
        ("10001", "constant"),
        ("6000+6000", "constant"),
        ("+".join(["1"] * 21), "terms"),
        ("1" * (MAX_EXPRESSION_LENGTH + 1), "length"),
    ],
)
def test_limits_keep_user_input_small(text: str, limit: str) -> None:
    with pytest.raises(DiceLimitError) as caught:
        parse(text)
    assert caught.value.limit == limit


def test_limit_error_names_the_offending_term() -> None:
    with pytest.raises(DiceLimitError, match=r"'101d6' rolls 101 dice, more than 100"):
        parse("1d4+101d6")


def test_the_limits_themselves_are_accepted() -> None:
    assert parse(f"{MAX_DICE}d1000").dice_count == MAX_DICE
    assert parse("1d2").terms[0].sides == 2
    assert parse("4d6kh4").terms[0].kept_count == 4


def test_roll_records_every_die_and_the_kept_ones() -> None:
    result = roll(random.Random(1), "4d6kh3+1d8-2")
    assert result.expression == "4d6kh3+1d8-2"
    keep_group, plain = result.groups
    assert len(keep_group.rolls) == 4
    assert sorted(keep_group.kept) == sorted(keep_group.rolls)[1:]
    assert plain.kept == plain.rolls
    assert result.dice == keep_group.rolls + plain.rolls
    assert result.total == sum(keep_group.kept) + sum(plain.kept) - 2


def test_keep_lowest_and_negative_groups() -> None:
    result = roll(random.Random(3), "-2d20kl1")
    (group,) = result.groups
    assert group.kept == (min(group.rolls),)
    assert result.total == -min(group.rolls)


def test_a_constant_rolls_no_dice() -> None:
    result = roll(random.Random(0), "7")
    assert result.groups == ()
    assert result.total == 7


def test_every_face_of_a_die_comes_up() -> None:
    rng = random.Random(11)
    faces = Counter(roll(rng, "1d6").total for _ in range(600))
    assert set(faces) == {1, 2, 3, 4, 5, 6}


terms = st.builds(
    lambda count, sides, keep, negative: (
        f"{'-' if negative else '+'}{count}d{sides}"
        + ("" if keep is None else f"{keep[0]}{min(keep[1], count)}")
    ),
    st.integers(1, 12),
    st.integers(2, 1000),
    st.none() | st.tuples(st.sampled_from(["kh", "kl"]), st.integers(1, 12)),
    st.booleans(),
)
expressions = st.builds(
    lambda parts, k: "".join(parts).lstrip("+") + (f"{k:+d}" if k else ""),
    st.lists(terms, min_size=1, max_size=6),
    st.integers(-50, 50),
)


@settings(max_examples=150)
@given(expressions, st.integers(0, 2**32))
def test_rolls_stay_within_bounds_and_keep_counts(text: str, seed: int) -> None:
    expression = parse(text)
    result = roll(random.Random(seed), expression)
    assert expression.minimum <= result.total <= expression.maximum
    assert len(result.groups) == len(expression.terms)
    for term, group in zip(expression.terms, result.groups, strict=True):
        assert len(group.rolls) == term.count
        assert len(group.kept) == term.kept_count
        assert all(1 <= d <= term.sides for d in group.rolls)
        assert not Counter(group.kept) - Counter(group.rolls)
        ranked = sorted(group.rolls, reverse=term.keep == "kh")
        if term.keep is not None:
            assert sorted(group.kept) == sorted(ranked[: term.kept_count])
        assert group.subtotal == term.sign * sum(group.kept)
    assert result.total == sum(g.subtotal for g in result.groups) + expression.modifier


@settings(max_examples=100)
@given(expressions, st.integers(0, 2**32))
def test_the_same_seed_rolls_the_same(text: str, seed: int) -> None:
    assert roll(random.Random(seed), text) == roll(random.Random(seed), text)


@settings(max_examples=100)
@given(expressions)
def test_canonical_form_parses_back_to_the_same_expression(text: str) -> None:
    expression = parse(text)
    assert parse(str(expression)) == expression


@settings(max_examples=300)
@given(st.text(alphabet="0123456789dkhl%+- xD*", max_size=40) | st.text(max_size=40))
def test_arbitrary_input_only_ever_raises_dice_errors(text: str) -> None:
    try:
        expression = parse(text)
    except DiceError:
        return
    assert expression.dice_count <= MAX_DICE
