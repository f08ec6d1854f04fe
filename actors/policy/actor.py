"""The policy actor: each tenant's one active bundle and kill switch (key: the tenant)."""

from __future__ import annotations

from actors.kernel.actor import Actor
from actors.policy import rules
from actors.policy.store import PolicyStore
from schemas.dispatch.policy import TenantControl

STORE = PolicyStore()

ACTOR: Actor[TenantControl] = Actor(
    name=rules.NAME,
    domain=rules.DOMAIN,
    state_type=TenantControl,
    initial=rules.initial,
    decide=rules.decide,
    evolve=rules.evolve,
    store=STORE,
    commands=rules.COMMANDS,
    emits=rules.EMITS,
    description=(
        "Per-tenant control plane of dispatch: verifies and activates policy bundles (refusals "
        "are audited events too) and pauses or resumes autonomy for a tenant, region or ticket."
    ),
)

__all__ = ["ACTOR", "STORE"]
