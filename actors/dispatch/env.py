"""The policy environment a decision is made in: the tenant's control state and active bundle."""

from __future__ import annotations

import msgspec

from actors.dispatch.bundles.loader import Bundle, load_bundle
from actors.dispatch.errors import BundleHashMismatch
from schemas.dispatch.policy import PausedScope, TenantControl


class PolicyEnvironment(msgspec.Struct, frozen=True, kw_only=True):
    """What ticket and workflow decisions read besides their own state.

    ``bundle`` is the verified active bundle of ``control`` (None when the
    tenant has none, and every policy decision is then a DENY).
    """

    control: TenantControl
    bundle: Bundle | None = None

    def __post_init__(self) -> None:
        active = self.control.active
        if self.bundle is not None and (active is None or active.sha256 != self.bundle.sha256):
            raise BundleHashMismatch(
                source="tenant control",
                expected="none" if active is None else active.sha256,
                actual=self.bundle.sha256,
            )

    def paused(self, *, tenant: str, region: str, ticket: str) -> PausedScope | None:
        """The pause covering a ticket, broadest first: tenant, then region, then ticket.

        Asking about another tenant is a wiring fault, raised rather than answered
        with "not paused" (which would fail open).
        """
        if tenant != self.control.tenant:
            raise ValueError(
                f"the policy environment is tenant {self.control.tenant!r}'s, not {tenant!r}'s"
            )
        for pause in self.control.paused:
            if pause.scope.kind == "tenant":
                return pause
        for kind, ident in (("region", region), ("ticket", ticket)):
            for pause in self.control.paused:
                if pause.scope.kind == kind and pause.scope.id == ident:
                    return pause
        return None


def environment(control: TenantControl) -> PolicyEnvironment:
    """Load and verify the control's active bundle (the wiring caches this by sha256)."""
    files = control.active_files()
    if files is None or control.active is None:
        return PolicyEnvironment(control=control)
    bundle = load_bundle(files, expected_sha256=control.active.sha256)
    return PolicyEnvironment(control=control, bundle=bundle)


def empty(tenant: str) -> PolicyEnvironment:
    """A tenant with no active bundle and nothing paused."""
    return PolicyEnvironment(control=TenantControl(tenant=tenant))
