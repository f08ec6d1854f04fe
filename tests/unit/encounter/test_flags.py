"""The combat flag: evaluation order, stable percentage buckets, and gating encounter commands."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.encounter import rules
from actors.encounter.flags import ALLOWED, bucket, evaluate
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    EncounterEnded,
    EndEncounter,
    NextTurn,
    TurnEnded,
    TurnStarted,
)
from schemas.flags import FeatureFlag, FlagVerdict
from schemas.mastery import MasteryResolved
from tests.unit.encounter.support import KEY, apply, ctx, rejection_of, started

cohorts = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)


def test_kill_switch_beats_everything() -> None:
    flag = FeatureFlag(
        name="combat",
        enabled=True,
        rollout_percent=100,
        allow=("camp-1",),
        kill_switch=True,
        note="INC-42",
    )
    verdict = evaluate(flag, "camp-1")
    assert not verdict.allowed
    assert verdict.code == "kill_switch"
    assert "INC-42" in verdict.reason


def test_disabled_flag_lets_no_one_in() -> None:
    flag = FeatureFlag(name="combat", enabled=False, rollout_percent=100, allow=("camp-1",))
    assert evaluate(flag, "camp-1").code == "disabled"
    assert not evaluate(flag, "camp-2").allowed


def test_allow_list_ignores_the_percentage() -> None:
    flag = FeatureFlag(name="combat", enabled=True, rollout_percent=0, allow=("beta",))
    assert evaluate(flag, "beta") == FlagVerdict(
        allowed=True,
        code="allow_list",
        reason="beta is on the combat allow-list",
        flag="combat",
        cohort="beta",
    )
    assert evaluate(flag, "other").code == "outside_rollout"


def test_bucket_is_sha256_of_flag_and_cohort() -> None:
    digest = hashlib.sha256(b"combat:camp-1").digest()
    assert bucket("combat", "camp-1") == int.from_bytes(digest[:8], "big") % 100


@settings(max_examples=100)
@given(cohorts, st.integers(0, 100))
def test_percentage_decides_by_bucket(cohort: str, percent: int) -> None:
    verdict = evaluate(FeatureFlag(name="combat", enabled=True, rollout_percent=percent), cohort)
    assert verdict.bucket == bucket("combat", cohort)
    assert verdict.allowed == (bucket("combat", cohort) < percent)
    assert verdict.code == ("in_rollout" if verdict.allowed else "outside_rollout")


@settings(max_examples=100)
@given(cohorts, st.integers(0, 100), st.integers(0, 100))
def test_raising_the_percentage_never_drops_a_cohort(cohort: str, low: int, high: int) -> None:
    low, high = sorted((low, high))
    before = evaluate(FeatureFlag(name="combat", enabled=True, rollout_percent=low), cohort)
    after = evaluate(FeatureFlag(name="combat", enabled=True, rollout_percent=high), cohort)
    assert not before.allowed or after.allowed


def test_zero_and_hundred_percent_are_none_and_all() -> None:
    ids = [f"camp-{i}" for i in range(200)]
    none = FeatureFlag(name="combat", enabled=True, rollout_percent=0)
    every = FeatureFlag(name="combat", enabled=True, rollout_percent=100)
    assert not any(evaluate(none, c).allowed for c in ids)
    assert all(evaluate(every, c).allowed for c in ids)


def test_fifty_percent_lets_roughly_half_in() -> None:
    half = FeatureFlag(name="combat", enabled=True, rollout_percent=50)
    allowed = sum(evaluate(half, f"guild-{i}").allowed for i in range(2000))
    assert 850 < allowed < 1150


def test_flag_decodes_from_stored_json_and_refuses_typos() -> None:
    flag = msgspec.json.decode(
        b'{"name":"combat","enabled":true,"rollout_percent":25,"allow":["beta"]}',
        type=FeatureFlag,
    )
    assert (flag.rollout_percent, flag.allow) == (25, ("beta",))
    with pytest.raises(msgspec.ValidationError, match="rollout_pct"):
        msgspec.json.decode(b'{"name":"combat","rollout_pct":25}', type=FeatureFlag)
    with pytest.raises(msgspec.ValidationError, match=r"\$.rollout_percent"):
        msgspec.json.decode(b'{"name":"combat","rollout_percent":101}', type=FeatureFlag)


# Gating encounter commands

OFF = evaluate(FeatureFlag(name="combat", kill_switch=True, note="rollback"), "camp-1")


def test_commands_are_forbidden_when_combat_is_off_for_the_cohort() -> None:
    r = rejection_of(
        rules.decide(
            rules.initial_state(KEY),
            CreateEncounter(seed=1, campaign_id="camp-1"),
            ctx(),
            combat=OFF,
        )
    )
    assert (r.kind, r.code) == ("forbidden", "combat_disabled")
    assert r.reason == "combat is not available for camp-1: the combat kill switch is on (rollback)"
    assert r.details == {"flag": "combat", "verdict": "kill_switch"}
    for command in (NextTurn(expected_step=1), AddCombatant(combatant_id="z", name="Z")):
        r = rejection_of(rules.decide(started(), command, ctx(), combat=OFF))
        assert r.code == "combat_disabled"


def test_end_and_in_flight_steps_still_work_when_combat_is_off() -> None:
    state, _ = apply(started(), NextTurn(expected_step=1))
    state, events = apply(state, MasteryResolved(step=1), combat=OFF)
    assert [type(e) for e in events] == [TurnEnded, TurnStarted]
    _, events = apply(state, EndEncounter(), combat=OFF)
    assert [type(e) for e in events] == [EncounterEnded]


def test_the_default_verdict_allows() -> None:
    assert ALLOWED.allowed
    _, events = apply(rules.initial_state(KEY), CreateEncounter(seed=1, campaign_id="c"))
    assert events


def test_cohort_is_the_campaign() -> None:
    create = CreateEncounter(seed=1, campaign_id="camp-9")
    assert rules.cohort_of(rules.initial_state(KEY), create) == "camp-9"
    assert rules.cohort_of(started(), NextTurn(expected_step=1)) == "camp-1"
    assert rules.cohort_of(rules.initial_state(KEY), NextTurn(expected_step=1)) is None
