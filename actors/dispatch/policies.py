"""The starter policies and ``decide_policy``: pure, deterministic, explained decisions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from fnmatch import fnmatchcase

from actors.dispatch.bundles.loader import Bundle
from actors.dispatch.normalize import command_of
from actors.dispatch.quiet_hours import quiet_status
from schemas.dispatch.bundle import NteThresholds, QuietHoursProfile, QuietWindow
from schemas.dispatch.common import Channel, Money
from schemas.dispatch.policy import PausedScope
from schemas.dispatch.records import DecisionValue, DispatchCommand, InputValue, PolicyDecision
from schemas.dispatch.tickets import (
    AttachEvidence,
    ChangeNte,
    CloseOut,
    ConfirmVisit,
    CreateTicket,
    ExpireApproval,
    ManualOverride,
    ProposeVisit,
    RecordApprovalDecision,
    SendComms,
    TicketState,
)

GATED_INTENTS = frozenset(
    {"propose_visit", "confirm_visit", "send_comms", "change_nte", "close_out"}
)
"""Intents that act on the world: the kill switch stops these and approvals may hold them."""
POLICY_RULES = frozenset(
    {
        "quiet_hours",
        "nte_threshold",
        "closeout_evidence",
        "approvals",
        "override",
        "templates",
        "default",
    }
)
"""Rules whose outcome depends on the bundle (what shadow replay re-evaluates)."""


def decision(
    bundle: Bundle | None,
    value: DecisionValue,
    reason_code: str,
    explanation: str,
    *,
    rule: str,
    inputs: dict[str, InputValue] | None = None,
) -> PolicyDecision:
    """A decision stamped with the bundle it was made under."""
    return PolicyDecision(
        decision=value,
        reason_code=reason_code,
        explanation=explanation,
        rule=rule,
        bundle_version="" if bundle is None else bundle.version,
        bundle_sha256="" if bundle is None else bundle.sha256,
        inputs=dict(sorted((inputs or {}).items())),
    )


def no_bundle(intent: str) -> PolicyDecision:
    """Fail closed: without an active bundle nothing policy-governed is allowed."""
    return decision(
        None,
        "DENY",
        "bundle.none_active",
        f"{intent} needs a policy decision and the tenant has no active policy bundle; "
        "activate one with policy.activate_bundle",
        rule="bundle",
        inputs={"intent": intent},
    )


def paused(bundle: Bundle | None, intent: str, pause: PausedScope) -> PolicyDecision:
    """The kill switch's refusal."""
    return decision(
        bundle,
        "DENY",
        "autonomy.paused",
        f"{intent} is stopped: autonomy is paused for {pause.scope.label()} since "
        f"{_utc(pause.paused_at)} by {pause.paused_by} ({pause.reason}); resume the scope "
        "or use a manual override",
        rule="kill_switch",
        inputs={
            "scope": pause.scope.label(),
            "paused_by": pause.paused_by,
            "paused_at": _utc(pause.paused_at),
        },
    )


def decide_policy(
    bundle: Bundle, command: DispatchCommand, ticket: TicketState, now: datetime
) -> PolicyDecision:
    """What the bundle says about a normalized command against the ticket as it stands.

    Pure and deterministic: the same bundle, command, state and ``now`` (the
    message's ``received_at``) give the same decision on every retry.
    """
    typed = command_of(command)
    match typed:
        case CreateTicket():
            return _create(bundle, typed)
        case ConfirmVisit():
            return quiet_hours(
                bundle, command.tenant, ticket.region, ticket.priority, now, "confirm_visit", None
            )
        case SendComms():
            return quiet_hours(
                bundle,
                command.tenant,
                ticket.region,
                ticket.priority,
                now,
                "send_comms",
                typed.envelope.channel,
            )
        case ChangeNte():
            return nte_change(bundle, command.tenant, ticket.nte, typed.nte)
        case CloseOut():
            return closeout_evidence(bundle, ticket, typed.evidence_ids)
        case RecordApprovalDecision():
            return approver(bundle, ticket, command.actor, typed.approval_id)
        case ManualOverride():
            return override(bundle, command.actor)
        case ProposeVisit() | AttachEvidence() | ExpireApproval():
            return decision(
                bundle,
                "ALLOW",
                "default.allowed",
                f"no starter policy restricts {command.intent}",
                rule="default",
            )


# Quiet hours ---------------------------------------------------------------------


def quiet_profile(
    bundle: Bundle, tenant: str, region: str
) -> tuple[QuietHoursProfile, str, tuple[QuietWindow, ...]]:
    """The tenant's profile and the time zone and windows that apply in ``region``."""
    policy = bundle.rules.quiet_hours
    profile = policy.tenants.get(tenant, policy.default)
    zone, windows = profile.time_zone, profile.windows
    override = profile.regions.get(region)
    if override is not None:
        zone = override.time_zone or zone
        windows = windows if override.windows is None else override.windows
    return profile, zone, windows


def quiet_hours(
    bundle: Bundle,
    tenant: str,
    region: str,
    priority: str,
    now: datetime,
    intent: str,
    channel: Channel | None,
) -> PolicyDecision:
    """Hold back customer contact during the tenant's quiet hours (visit confirmations and
    outbound messages on gated channels); emergencies may be exempt."""
    profile, zone, windows = quiet_profile(bundle, tenant, region)
    status = quiet_status(windows, zone, now)
    local = status.local.strftime("%a %Y-%m-%d %H:%M:%S %Z")
    inputs: dict[str, InputValue] = {
        "time_zone": zone,
        "local_time": local,
        "region": region,
        "priority": priority,
        "channel": channel,
    }
    what = "visit confirmation" if channel is None else f"outbound {channel}"
    if channel is not None and channel not in profile.gated_channels:
        return decision(
            bundle,
            "ALLOW",
            "quiet_hours.channel_not_gated",
            f"quiet hours do not apply to {channel}",
            rule="quiet_hours",
            inputs=inputs,
        )
    if not status.quiet or status.occurrence is None or status.until is None:
        return decision(
            bundle,
            "ALLOW",
            "quiet_hours.clear",
            f"{what} allowed: {local} is outside quiet hours "
            f"({', '.join(w.label() for w in windows) or 'none'})",
            rule="quiet_hours",
            inputs=inputs,
        )
    inputs["window"] = status.occurrence.window.label()
    inputs["quiet_until"] = _utc(status.until)
    if priority in profile.exempt_priorities:
        return decision(
            bundle,
            "ALLOW",
            "quiet_hours.exempt_priority",
            f"{what} allowed during quiet hours {status.occurrence.window.label()} ({zone}): "
            f"{priority} tickets are exempt",
            rule="quiet_hours",
            inputs=inputs,
        )
    resume = status.until.astimezone(status.local.tzinfo)
    return decision(
        bundle,
        "DENY",
        "quiet_hours.active",
        f"{what} held back: {local} is inside quiet hours {status.occurrence.window.label()} "
        f"({zone}); retry at {resume.strftime('%Y-%m-%d %H:%M %Z')} ({_utc(status.until)})",
        rule="quiet_hours",
        inputs=inputs,
    )


# NTE ---------------------------------------------------------------------------------


def nte_thresholds(bundle: Bundle, tenant: str) -> NteThresholds:
    """The tenant's NTE thresholds."""
    return bundle.rules.nte.tenants.get(tenant, bundle.rules.nte.default)


def nte_change(bundle: Bundle, tenant: str, current: Money | None, new: Money) -> PolicyDecision:
    """Increases strictly above a threshold (absolute or percent) need an approval; an
    increase exactly at the threshold does not. A new NTE above the ceiling is denied."""
    limits = nte_thresholds(bundle, tenant)
    base = 0 if current is None else current.cents
    delta = new.cents - base
    inputs: dict[str, InputValue] = {
        "currency": new.currency,
        "current_cents": base,
        "requested_cents": new.cents,
        "delta_cents": delta,
        "threshold_absolute_cents": limits.absolute_cents,
        "threshold_percent": limits.percent,
        "ceiling_cents": limits.ceiling_cents,
    }
    change = f"NTE {Money(cents=base, currency=new.currency).text()} -> {new.text()}"
    if limits.ceiling_cents is not None and new.cents > limits.ceiling_cents:
        ceiling = Money(cents=limits.ceiling_cents, currency=new.currency).text()
        return decision(
            bundle,
            "DENY",
            "nte.above_ceiling",
            f"{change} is above the ceiling of {ceiling}",
            rule="nte_threshold",
            inputs=inputs,
        )
    if delta <= 0:
        return decision(
            bundle,
            "ALLOW",
            "nte.not_increased",
            f"{change} is not an increase",
            rule="nte_threshold",
            inputs=inputs,
        )
    exceeded = []
    if limits.absolute_cents is not None and delta > limits.absolute_cents:
        exceeded.append(
            f"more than {Money(cents=limits.absolute_cents, currency=new.currency).text()}"
        )
    percent = limits.percent_value()
    # Exact integer-and-Decimal arithmetic: delta/base > percent/100 without division.
    if percent is not None and Decimal(delta) * 100 > percent * Decimal(base):
        exceeded.append(f"more than {limits.percent}% of the current NTE")
    if exceeded:
        return decision(
            bundle,
            "REQUIRE_APPROVAL",
            "nte.approval_required",
            f"{change} increases it by {Money(cents=delta, currency=new.currency).text()}, "
            f"{' and '.join(exceeded)}: an approval is required",
            rule="nte_threshold",
            inputs=inputs,
        )
    return decision(
        bundle,
        "ALLOW",
        "nte.within_threshold",
        f"{change} is within the thresholds",
        rule="nte_threshold",
        inputs=inputs,
    )


# Closeout evidence ------------------------------------------------------------------------


def closeout_evidence(
    bundle: Bundle, ticket: TicketState, evidence_ids: tuple[str, ...]
) -> PolicyDecision:
    """A closeout must cite attached evidence covering its incident template's requirements."""
    template = ticket.incident_template
    requirement = bundle.rules.evidence.templates.get(template)
    inputs: dict[str, InputValue] = {"template": template, "cited": sorted(set(evidence_ids))}
    if requirement is None:
        return decision(
            bundle,
            "DENY",
            "closeout.unknown_template",
            f"incident template {template!r} is not in the bundle, so its evidence "
            "requirements are unknown",
            rule="closeout_evidence",
            inputs=inputs,
        )
    unknown = sorted({e for e in evidence_ids if ticket.evidence_by_id(e) is None})
    if unknown:
        inputs["unknown"] = unknown
        return decision(
            bundle,
            "DENY",
            "closeout.unknown_evidence",
            f"closeout cites evidence not attached to the ticket: {', '.join(unknown)}",
            rule="closeout_evidence",
            inputs=inputs,
        )
    have = Counter(
        record.kind
        for e in sorted(set(evidence_ids))
        if (record := ticket.evidence_by_id(e)) is not None
    )
    required = dict(sorted(requirement.required.items()))
    missing = {k: n - have[k] for k, n in required.items() if have[k] < n}
    inputs["required"] = [f"{k}={n}" for k, n in required.items()]
    inputs["present"] = [f"{k}={n}" for k, n in sorted(have.items())]
    if missing:
        inputs["missing"] = [f"{k}={n}" for k, n in missing.items()]
        listed = ", ".join(f"{n} x {k}" for k, n in missing.items())
        return decision(
            bundle,
            "DENY",
            "closeout.missing_evidence",
            f"closeout of a {template} ticket still needs {listed}",
            rule="closeout_evidence",
            inputs=inputs,
        )
    return decision(
        bundle,
        "ALLOW",
        "closeout.evidence_complete",
        f"the cited evidence covers every {template} requirement",
        rule="closeout_evidence",
        inputs=inputs,
    )


# Approvals and overrides --------------------------------------------------------------


def principal_matches(principal: str, patterns: tuple[str, ...]) -> bool:
    """True if the principal matches one of the bundle's patterns (``fnmatch``, case-sensitive)."""
    return any(fnmatchcase(principal, p) for p in patterns)


def approver(bundle: Bundle, ticket: TicketState, actor: str, approval_id: str) -> PolicyDecision:
    """Who may decide an approval: a listed approver, and not its requester unless allowed."""
    policy = bundle.rules.approvals
    held = ticket.approval(approval_id)
    inputs: dict[str, InputValue] = {"approver": actor, "approval_id": approval_id}
    if held is not None:
        inputs["requested_by"] = held.requested_by
    if not principal_matches(actor, policy.approver_principals):
        return decision(
            bundle,
            "DENY",
            "approval.not_permitted",
            f"{actor} is not an approver ({', '.join(policy.approver_principals) or 'nobody'})",
            rule="approvals",
            inputs=inputs,
        )
    if held is not None and held.requested_by == actor and not policy.allow_self_approval:
        return decision(
            bundle,
            "DENY",
            "approval.self_approval",
            f"{actor} requested {approval_id} and may not approve or reject it too",
            rule="approvals",
            inputs=inputs,
        )
    return decision(
        bundle,
        "ALLOW",
        "approval.permitted",
        f"{actor} may decide {approval_id}",
        rule="approvals",
        inputs=inputs,
    )


def override(bundle: Bundle, actor: str) -> PolicyDecision:
    """Only the bundle's override principals may override."""
    patterns = bundle.rules.approvals.override_principals
    inputs: dict[str, InputValue] = {"actor": actor}
    if not principal_matches(actor, patterns):
        return decision(
            bundle,
            "DENY",
            "override.not_permitted",
            f"{actor} may not override ({', '.join(patterns) or 'nobody may'})",
            rule="override",
            inputs=inputs,
        )
    return decision(
        bundle,
        "ALLOW",
        "override.permitted",
        f"{actor} may override",
        rule="override",
        inputs=inputs,
    )


def _create(bundle: Bundle, command: CreateTicket) -> PolicyDecision:
    template = command.incident_template
    if template not in bundle.rules.evidence.templates:
        known = ", ".join(sorted(bundle.rules.evidence.templates))
        return decision(
            bundle,
            "DENY",
            "ticket.unknown_template",
            f"incident template {template!r} is not in the bundle (known: {known})",
            rule="templates",
            inputs={"template": template},
        )
    return decision(
        bundle,
        "ALLOW",
        "ticket.template_known",
        f"incident template {template!r} is known",
        rule="templates",
        inputs={"template": template},
    )


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
