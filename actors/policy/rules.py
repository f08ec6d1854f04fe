"""Pure rules of the policy actor: bundle activation (audited, fail closed) and the kill switch."""

from __future__ import annotations

from datetime import UTC

from msgspec import structs

from actors.dispatch.bundles.registry import activate, apply_activation, apply_refusal
from schemas.base import Command, Context, Decision, Event, Rejection
from schemas.dispatch.policy import (
    POLICY_COMMANDS,
    POLICY_EVENTS,
    ActivateBundle,
    AutonomyPaused,
    AutonomyResumed,
    BundleActivated,
    BundleActivationRefused,
    PauseAutonomy,
    PausedScope,
    ResumeAutonomy,
    TenantControl,
)

NAME = "policy"
DOMAIN = "policy"
COMMANDS = POLICY_COMMANDS
EMITS = POLICY_EVENTS


def initial(key: str) -> TenantControl:
    """A tenant with no active bundle (every policy decision denies) and nothing paused."""
    return TenantControl(tenant=key)


def decide(state: TenantControl, message: Command, ctx: Context) -> Decision:
    """Decide one control command; the entity key is the tenant."""
    if ctx.tenant != ctx.key:
        return Rejection(
            code="policy.tenant_mismatch",
            reason=f"tenant {ctx.tenant} cannot change the controls of tenant {ctx.key}",
            kind="forbidden",
        )
    principal = ctx.principal
    if principal is None or not principal.strip():
        return Rejection(
            code="normalize.missing_field",
            reason="actor is required: control commands must come from an authenticated principal",
            kind="forbidden",
        )
    now = ctx.received_at
    match message:
        case ActivateBundle():
            active = state.active
            if active is not None and active.sha256 == message.expected_sha256:
                return Rejection(
                    code="bundle.already_active",
                    reason=f"bundle {active.version} ({active.sha256}) is already active",
                    kind="conflict",
                )
            return [activate(state, message, by=principal, at=now)]
        case PauseAutonomy():
            current = state.pause_of(message.scope)
            if current is not None:
                return Rejection(
                    code="autonomy.already_paused",
                    reason=f"{message.scope.label()} is paused since "
                    f"{current.paused_at.isoformat()} by {current.paused_by}",
                    kind="conflict",
                )
            return [
                AutonomyPaused(
                    scope=message.scope, paused_by=principal, reason=message.reason, at=now
                )
            ]
        case ResumeAutonomy():
            current = state.pause_of(message.scope)
            if current is None:
                return Rejection(
                    code="autonomy.not_paused",
                    reason=f"{message.scope.label()} is not paused",
                    kind="conflict",
                )
            return [
                AutonomyResumed(
                    scope=message.scope,
                    resumed_by=principal,
                    reason=message.reason,
                    at=now,
                    paused_at=current.paused_at,
                )
            ]
        case _:
            return Rejection(
                code="policy.unknown_command",
                reason=f"{type(message).__qualname__} is not a policy command",
            )


def evolve(state: TenantControl, event: Event) -> TenantControl:
    """The control after one of its events; every change bumps the revision."""
    match event:
        case BundleActivated():
            return apply_activation(state, event)
        case BundleActivationRefused():
            return apply_refusal(state, event)
        case AutonomyPaused():
            pause = PausedScope(
                scope=event.scope,
                paused_by=event.paused_by,
                paused_at=event.at.astimezone(UTC),
                reason=event.reason,
                revision=state.revision + 1,
            )
            return structs.replace(
                state, paused=(*state.paused, pause), revision=state.revision + 1
            )
        case AutonomyResumed():
            kept = tuple(p for p in state.paused if p.scope != event.scope)
            return structs.replace(state, paused=kept, revision=state.revision + 1)
        case _:
            return state
