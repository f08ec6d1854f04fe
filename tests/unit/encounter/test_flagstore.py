"""The flag as the encounter actor holds it, and the edits ``troupe flags`` makes."""

from __future__ import annotations

import argparse

import msgspec
import pytest

from actors.encounter.flags import ALLOWED, bucket
from actors.encounter.flagstore import FlagHolder, InvalidStoredFlag, bucket_name, decode
from actors.kernel.config import Settings, StreamSettings
from schemas.flags import COMBAT, FeatureFlag
from troupe.commands.flags import FlagCommandError, change_for, register


def test_no_stored_flag_restricts_nothing() -> None:
    holder = FlagHolder(COMBAT)
    assert holder.verdict("camp") == ALLOWED
    assert holder.verdict(None) == ALLOWED


def test_without_a_cohort_only_the_switches_refuse() -> None:
    holder = FlagHolder(COMBAT)
    holder.set(FeatureFlag(name=COMBAT, enabled=True, rollout_percent=0), 1)
    assert holder.verdict(None).allowed  # the rules then answer unknown_encounter
    assert not holder.verdict("camp").allowed
    holder.set(FeatureFlag(name=COMBAT, enabled=True, rollout_percent=100, kill_switch=True), 2)
    assert holder.verdict(None).code == "kill_switch"
    holder.set(FeatureFlag(name=COMBAT), 3)
    assert holder.verdict(None).code == "disabled"


def test_older_revisions_are_ignored_unless_forced() -> None:
    holder = FlagHolder(COMBAT)
    on = FeatureFlag(name=COMBAT, enabled=True, rollout_percent=100)
    off = FeatureFlag(name=COMBAT)
    assert holder.set(on, 5)
    assert not holder.set(off, 4)
    assert holder.flag == on
    assert holder.set(off, 2, force=True)  # a fresh read from a server whose revisions restarted
    assert (holder.flag, holder.revision) == (off, 2)


def test_an_undecodable_revision_keeps_the_last_good_value() -> None:
    holder = FlagHolder(COMBAT)
    good = FeatureFlag(name=COMBAT, enabled=True, rollout_percent=30)
    holder.set(good, 1)
    with pytest.raises(InvalidStoredFlag, match="rollout_pct") as caught:
        decode(COMBAT, 2, b'{"type": "flags.feature_flag.v1", "name": "combat", "rollout_pct": 5}')
    holder.invalid(caught.value.revision, caught.value.error)
    assert holder.flag == good
    assert holder.revision == 2
    assert holder.error is not None
    with pytest.raises(InvalidStoredFlag, match="names flag 'other'"):
        decode(COMBAT, 3, msgspec.json.encode(FeatureFlag(name="other")))


def test_the_bucket_carries_the_stream_prefix() -> None:
    assert bucket_name(Settings()) == "troupe_flags"
    assert bucket_name(Settings(streams=StreamSettings(prefix="T1_"))) == "T1_troupe_flags"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["flags", *argv])


def test_set_edits_only_what_it_names() -> None:
    base = FeatureFlag(name=COMBAT, enabled=True, rollout_percent=5, allow=("a", "b"), note="x")
    changed = change_for(_args("set", "--percent", "25", "--allow", "c", "--disallow", "a"))(base)
    assert changed == FeatureFlag(
        name=COMBAT, enabled=True, rollout_percent=25, allow=("b", "c"), note="x"
    )
    # Applying the same edit again yields the same flag: what makes `set` idempotent.
    again = change_for(_args("set", "--percent", "25", "--allow", "c", "--disallow", "a"))(changed)
    assert again == changed


def test_kill_turns_the_switch_on_and_keeps_the_rest() -> None:
    base = FeatureFlag(name=COMBAT, enabled=True, rollout_percent=50)
    killed = change_for(_args("kill", "--note", "incident 3"))(base)
    assert killed.kill_switch
    assert killed.rollout_percent == 50
    assert killed.note == "incident 3"
    released = change_for(_args("set", "--kill-switch", "off"))(killed)
    assert not released.kill_switch
    assert released.note == "incident 3"


def test_invalid_edits_are_refused() -> None:
    with pytest.raises(FlagCommandError, match="nothing to set"):
        change_for(_args("set"))
    with pytest.raises(FlagCommandError, match="invalid flag"):
        change_for(_args("set", "--allow", "has space"))(FeatureFlag(name=COMBAT))
    with pytest.raises(SystemExit):
        _args("set", "--percent", "-1")


def test_raising_the_percentage_only_adds_cohorts() -> None:
    cohorts = [f"camp-{n}" for n in range(200)]
    holder = FlagHolder(COMBAT)
    allowed_before: set[str] = set()
    for percent in (0, 1, 5, 25, 50, 100):
        holder.set(FeatureFlag(name=COMBAT, enabled=True, rollout_percent=percent), percent + 1)
        allowed = {c for c in cohorts if holder.verdict(c).allowed}
        assert allowed_before <= allowed
        assert allowed == {c for c in cohorts if bucket(COMBAT, c) < percent}
        allowed_before = allowed
