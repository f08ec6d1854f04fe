"""Evaluate a feature flag for one cohort: kill switch, master switch, allow-list, percentage."""

from __future__ import annotations

import hashlib

from schemas.flags import COMBAT, FeatureFlag, FlagVerdict

BUCKETS = 100

ALLOWED = FlagVerdict(allowed=True, code="default", reason="no flag restricts combat", flag=COMBAT)
"""The verdict rules assume when the caller passes none (no flag stored)."""


def bucket(flag_name: str, cohort_id: str) -> int:
    """The cohort's stable bucket 0..99 for ``flag_name``.

    sha256 rather than ``hash()``: the built-in is salted per process, so a cohort
    would flip in and out of a rollout between restarts and across actor instances.
    Hashing the flag name too keeps one flag's early cohorts from being every flag's.
    """
    digest = hashlib.sha256(f"{flag_name}:{cohort_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def evaluate(flag: FeatureFlag, cohort_id: str) -> FlagVerdict:
    """Whether ``flag`` lets ``cohort_id`` in; the first matching rule decides.

    1. kill switch on: refused for everyone, allow-list included;
    2. not enabled: refused for everyone;
    3. cohort on the allow-list: allowed;
    4. bucket below ``rollout_percent``: allowed, otherwise refused.
    Raising the percentage only ever adds cohorts, so a rollout never flaps.
    """
    name = flag.name
    if flag.kill_switch:
        note = f" ({flag.note})" if flag.note else ""
        return FlagVerdict(
            allowed=False,
            code="kill_switch",
            reason=f"the {name} kill switch is on{note}",
            flag=name,
            cohort=cohort_id,
        )
    if not flag.enabled:
        return FlagVerdict(
            allowed=False,
            code="disabled",
            reason=f"the {name} flag is disabled",
            flag=name,
            cohort=cohort_id,
        )
    if cohort_id in flag.allow:
        return FlagVerdict(
            allowed=True,
            code="allow_list",
            reason=f"{cohort_id} is on the {name} allow-list",
            flag=name,
            cohort=cohort_id,
        )
    b = bucket(name, cohort_id)
    if b < flag.rollout_percent:
        return FlagVerdict(
            allowed=True,
            code="in_rollout",
            reason=f"{cohort_id} is in the {flag.rollout_percent}% rollout of {name} (bucket {b})",
            flag=name,
            cohort=cohort_id,
            bucket=b,
        )
    return FlagVerdict(
        allowed=False,
        code="outside_rollout",
        reason=(
            f"{cohort_id} is outside the {flag.rollout_percent}% rollout of {name} (bucket {b})"
        ),
        flag=name,
        cohort=cohort_id,
        bucket=b,
    )
