"""Event subject filters and tenant visibility."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.queries import SUBJECT_FILTER_PATTERN, InvalidFilter, check_filter


@pytest.mark.parametrize(
    "subject",
    [
        "evt.>",
        "evt.acct.>",
        "evt.acct.a1.>",
        "evt.acct.a1.deposited",
        "evt.acct.*.deposited",
        "evt.*.*.*",
        "evt.acct.a1.deposited.3",
        "evt.acct.a1.deposited.>",
    ],
)
def test_valid_filters(subject: str) -> None:
    assert check_filter(subject) == subject


@pytest.mark.parametrize(
    "subject",
    [
        "evt",
        "",
        "cmd.acct.>",
        ">",
        "evt.>.x",
        "evt.acct..x",
        "evt.acct.a b.x",
        "evt.a.b.c.d.e",
        "evt.a*.b",
        "evt.acct.a1.deposited ",
    ],
)
def test_invalid_filters(subject: str) -> None:
    with pytest.raises(InvalidFilter):
        check_filter(subject)


def test_partitioned_streams_match_four_token_filters() -> None:
    assert check_filter("evt.acct.a1.deposited", partitions=4) == "evt.acct.a1.deposited.*"
    assert check_filter("evt.acct.a1.>", partitions=4) == "evt.acct.a1.>"
    assert check_filter("evt.acct.>", partitions=4) == "evt.acct.>"


token = st.one_of(st.just("*"), st.from_regex(r"^[A-Za-z0-9_-]{1,8}$", fullmatch=True))


@settings(max_examples=60)
@given(st.lists(token, min_size=1, max_size=4), st.booleans())
def test_the_documented_pattern_accepts_exactly_what_the_check_accepts(
    tokens: list[str], tail: bool
) -> None:
    subject = ".".join(["evt", *tokens[: 3 if tail else 4]]) + (".>" if tail else "")
    assert re.fullmatch(SUBJECT_FILTER_PATTERN, subject)
    assert check_filter(subject) == subject
