"""Commands, events and state of the ``policy`` actor (key: the tenant): bundles and kill switch."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from schemas.base import Command, Event, Name
from schemas.dispatch.common import AwareDatetime, Principal, Scope, Sha256Hex

BundleVersion = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]
BundleFiles = Annotated[
    dict[str, bytes],
    Meta(description="Relative path -> file bytes (base64 in JSON), manifest.json included."),
]

# Commands ------------------------------------------------------------------


class ActivateBundle(Command, frozen=True, tag="policy.activate_bundle.v1"):
    """Make a bundle the tenant's one active bundle.

    Either ``files`` (a new bundle, verified on arrival) or ``version`` (one the
    tenant activated before, for a rollback). ``expected_sha256`` must match the
    bundle's computed hash either way.
    """

    expected_sha256: Sha256Hex
    reason: Name
    files: BundleFiles | None = None
    version: BundleVersion | None = None

    def __post_init__(self) -> None:
        if (self.files is None) == (self.version is None):
            raise ValueError("activate_bundle takes either files or a version, not both or none")


class PauseAutonomy(Command, frozen=True, tag="policy.pause_autonomy.v1"):
    """Stop gated ticket commands in a scope until it is resumed (the kill switch)."""

    scope: Scope
    reason: Name


class ResumeAutonomy(Command, frozen=True, tag="policy.resume_autonomy.v1"):
    """Lift a pause."""

    scope: Scope
    reason: Name


PolicyCommand = ActivateBundle | PauseAutonomy | ResumeAutonomy
POLICY_COMMANDS: tuple[type[Command], ...] = (ActivateBundle, PauseAutonomy, ResumeAutonomy)

# Events --------------------------------------------------------------------


class BundleActivated(Event, frozen=True, tag="policy.bundle_activated.v1"):
    """A verified bundle became the tenant's active bundle; the previous one stepped down."""

    version: str
    sha256: str
    created_at: AwareDatetime
    files: dict[str, bytes]
    activated_by: Principal
    reason: str
    at: AwareDatetime
    previous_version: str | None = None
    previous_sha256: str | None = None


class BundleActivationRefused(Event, frozen=True, tag="policy.bundle_activation_refused.v1"):
    """A bundle failed verification; the active bundle did not change."""

    error_code: str
    error: str
    requested_by: Principal
    reason: str
    expected_sha256: str
    at: AwareDatetime
    version: str | None = None
    active_version: str | None = None
    active_sha256: str | None = None


class AutonomyPaused(Event, frozen=True, tag="policy.autonomy_paused.v1"):
    """A scope was paused."""

    scope: Scope
    paused_by: Principal
    reason: str
    at: AwareDatetime


class AutonomyResumed(Event, frozen=True, tag="policy.autonomy_resumed.v1"):
    """A paused scope was resumed."""

    scope: Scope
    resumed_by: Principal
    reason: str
    at: AwareDatetime
    paused_at: AwareDatetime | None = None


PolicyEventType = BundleActivated | BundleActivationRefused | AutonomyPaused | AutonomyResumed
POLICY_EVENTS: tuple[type[Event], ...] = (
    BundleActivated,
    BundleActivationRefused,
    AutonomyPaused,
    AutonomyResumed,
)

# State ---------------------------------------------------------------------


class KnownBundle(Struct, frozen=True, kw_only=True):
    """A bundle the tenant activated at some point, kept for rollbacks."""

    version: str
    sha256: str
    created_at: AwareDatetime
    files: dict[str, bytes]


class ActiveBundle(Struct, frozen=True, kw_only=True):
    """Which bundle is active, since when, by whom."""

    version: str
    sha256: str
    activated_at: AwareDatetime
    activated_by: str


class PausedScope(Struct, frozen=True, kw_only=True):
    """A pause in force."""

    scope: Scope
    paused_by: str
    paused_at: AwareDatetime
    reason: str
    revision: int = 0
    """The control revision the pause made: pauses stay in the order they were made."""


ActivationOutcome = Literal["activated", "refused"]


class ActivationRecord(Struct, frozen=True, kw_only=True):
    """One activation attempt, kept on the control so its audit row can be written and read."""

    seq: int
    """1 for the tenant's first attempt, counting refusals too."""
    outcome: ActivationOutcome
    actor: str
    reason: str
    at: AwareDatetime
    expected_sha256: str
    version: str | None = None
    sha256: str | None = None
    previous_version: str | None = None
    previous_sha256: str | None = None
    error_code: str | None = None
    error: str | None = None


class TenantControl(Struct, frozen=True, kw_only=True):
    """A tenant's control plane: its one active bundle and its paused scopes.

    ``revision`` counts the changes; every ticket decision records the revision
    it was made under.
    """

    tenant: str
    active: ActiveBundle | None = None
    known: tuple[KnownBundle, ...] = ()
    paused: tuple[PausedScope, ...] = ()
    revision: int = 0
    refusals: int = 0
    attempts: int = 0
    """Activation attempts so far, refused ones included (the last ``seq``)."""
    activations: tuple[ActivationRecord, ...] = ()
    """The most recent attempts, oldest first (at most ``ACTIVATIONS_KEPT``)."""

    def known_bundle(
        self, *, sha256: str | None = None, version: str | None = None
    ) -> KnownBundle | None:
        """A kept bundle by hash or by version."""
        for bundle in self.known:
            if sha256 is not None and bundle.sha256 == sha256:
                return bundle
            if version is not None and bundle.version == version:
                return bundle
        return None

    def active_files(self) -> dict[str, bytes] | None:
        """The files of the active bundle, if any."""
        if self.active is None:
            return None
        kept = self.known_bundle(sha256=self.active.sha256)
        return None if kept is None else kept.files

    def pause_of(self, scope: Scope) -> PausedScope | None:
        """The pause in force on exactly this scope, if any."""
        return next((p for p in self.paused if p.scope == scope), None)


ACTIVATIONS_KEPT = 50
"""How many activation attempts a tenant's control keeps in its state (all are events)."""

__all__ = [
    "ACTIVATIONS_KEPT",
    "POLICY_COMMANDS",
    "POLICY_EVENTS",
    "ActivateBundle",
    "ActivationOutcome",
    "ActivationRecord",
    "ActiveBundle",
    "AutonomyPaused",
    "AutonomyResumed",
    "BundleActivated",
    "BundleActivationRefused",
    "BundleFiles",
    "BundleVersion",
    "KnownBundle",
    "PauseAutonomy",
    "PausedScope",
    "PolicyCommand",
    "PolicyEventType",
    "ResumeAutonomy",
    "TenantControl",
]
