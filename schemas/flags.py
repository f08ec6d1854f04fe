"""Feature flags as data (rollout percentage, allow-list, kill switch) and a flag's verdict."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from schemas.base import Key, Text

COMBAT = "combat"
"""The flag that gates encounter commands, keyed by campaign (or guild) id."""

FlagName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Percent = Annotated[int, Meta(ge=0, le=100)]
VerdictCode = Literal[
    "kill_switch", "disabled", "allow_list", "in_rollout", "outside_rollout", "default"
]


class FeatureFlag(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="flags.feature_flag.v1",
    tag_field="type",
):
    """A flag as stored in the configuration bucket.

    Unknown fields are refused so a misspelt setting (``rollout_pct``) fails loudly
    instead of silently leaving a flag at its default.
    """

    name: FlagName
    enabled: bool = False
    """Master switch of the rollout: off means off for every cohort."""
    rollout_percent: Percent = 0
    """Share of cohorts (0..100) let in, chosen by a stable hash of flag name and cohort id."""
    allow: tuple[Key, ...] = ()
    """Cohorts let in whatever the percentage (beta campaigns, staff guilds)."""
    kill_switch: bool = False
    """Emergency stop: beats every other setting, the allow-list included."""
    note: Text | None = None
    """Why the flag is in its current state (who turned the kill switch, the incident)."""


class FlagVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a flag lets one cohort in, and why."""

    allowed: bool
    reason: str
    code: VerdictCode = "default"
    flag: str = COMBAT
    cohort: str | None = None
    bucket: int | None = None
    """The cohort's bucket 0..99 when the percentage decided."""
