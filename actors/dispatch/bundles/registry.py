"""The bundle registry rules: one active bundle per tenant, activations as audited events."""

from __future__ import annotations

from datetime import UTC, datetime

from msgspec import structs

from actors.dispatch.bundles.loader import Bundle, load_bundle
from actors.dispatch.errors import (
    BundleError,
    BundleVersionConflict,
    MalformedBundle,
    UnknownBundleVersion,
)
from schemas.dispatch.policy import (
    ACTIVATIONS_KEPT,
    ActivateBundle,
    ActivationRecord,
    ActiveBundle,
    BundleActivated,
    BundleActivationRefused,
    KnownBundle,
    TenantControl,
)

KEEP = 10
"""How many bundles a tenant keeps for rollbacks (the active one is always kept)."""


def resolve(control: TenantControl, command: ActivateBundle) -> Bundle:
    """The verified bundle an activation names, or the ``BundleError`` that refuses it."""
    if command.files is not None:
        bundle = load_bundle(command.files, expected_sha256=command.expected_sha256)
        kept = control.known_bundle(version=bundle.version)
        if kept is not None and kept.sha256 != bundle.sha256:
            raise BundleVersionConflict(bundle.version, kept.sha256, bundle.sha256)
        return bundle
    if command.version is None:
        raise MalformedBundle("activation names neither files nor a version")
    kept = control.known_bundle(version=command.version)
    if kept is None:
        raise UnknownBundleVersion(command.version, [k.version for k in control.known])
    # Re-verify kept files too: the stored state is not trusted more than a new upload.
    return load_bundle(kept.files, expected_sha256=command.expected_sha256)


def activate(
    control: TenantControl, command: ActivateBundle, *, by: str, at: datetime
) -> BundleActivated | BundleActivationRefused:
    """The event an activation produces: activated, or refused with the precise error."""
    active = control.active
    try:
        bundle = resolve(control, command)
    except BundleError as err:
        return BundleActivationRefused(
            error_code=err.code,
            error=str(err),
            requested_by=by,
            reason=command.reason,
            expected_sha256=command.expected_sha256,
            at=at,
            version=command.version,
            active_version=None if active is None else active.version,
            active_sha256=None if active is None else active.sha256,
        )
    return BundleActivated(
        version=bundle.version,
        sha256=bundle.sha256,
        created_at=bundle.created_at,
        files=bundle.files,
        activated_by=by,
        reason=command.reason,
        at=at,
        previous_version=None if active is None else active.version,
        previous_sha256=None if active is None else active.sha256,
    )


def apply_activation(control: TenantControl, event: BundleActivated) -> TenantControl:
    """The control after an activation: the new bundle active and kept, the oldest dropped."""
    kept = KnownBundle(
        version=event.version,
        sha256=event.sha256,
        created_at=event.created_at.astimezone(UTC),
        files=event.files,
    )
    others = tuple(k for k in control.known if k.sha256 != event.sha256)
    known = (kept, *others)[:KEEP]
    record = ActivationRecord(
        seq=control.attempts + 1,
        outcome="activated",
        actor=event.activated_by,
        reason=event.reason,
        at=event.at.astimezone(UTC),
        expected_sha256=event.sha256,
        version=event.version,
        sha256=event.sha256,
        previous_version=event.previous_version,
        previous_sha256=event.previous_sha256,
    )
    return structs.replace(
        control,
        active=ActiveBundle(
            version=event.version,
            sha256=event.sha256,
            activated_at=event.at.astimezone(UTC),
            activated_by=event.activated_by,
        ),
        known=known,
        revision=control.revision + 1,
        attempts=record.seq,
        activations=(*control.activations, record)[-ACTIVATIONS_KEPT:],
    )


def apply_refusal(control: TenantControl, event: BundleActivationRefused) -> TenantControl:
    """The control after a refused activation: nothing in force changes, the attempt is kept."""
    record = ActivationRecord(
        seq=control.attempts + 1,
        outcome="refused",
        actor=event.requested_by,
        reason=event.reason,
        at=event.at.astimezone(UTC),
        expected_sha256=event.expected_sha256,
        version=event.version,
        previous_version=event.active_version,
        previous_sha256=event.active_sha256,
        error_code=event.error_code,
        error=event.error,
    )
    return structs.replace(
        control,
        refusals=control.refusals + 1,
        attempts=record.seq,
        activations=(*control.activations, record)[-ACTIVATIONS_KEPT:],
    )
