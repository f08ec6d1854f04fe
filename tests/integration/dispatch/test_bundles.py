"""Bundles: one active per tenant, activation audited, tampering refused, the object store."""

from __future__ import annotations

import msgspec
import pytest

from actors.dispatch.bundles import Bundle, seal, shipped_files
from actors.dispatch.bundles.sources import (
    UnknownBundleObject,
    archive,
    bucket,
    download,
    listing,
    upload,
)
from actors.dispatch.errors import BundleHashMismatch, TamperedBundle
from actors.policy.tables import activations, bundles, controls
from actors.tickets.tables import decisions
from schemas.dispatch import ActivateBundle, BundleActivationRefused, ChangeNte, Money
from schemas.dispatch.policy import TenantControl
from tests.integration.dispatch.conftest import ADMIN, TENANT, Stack
from tests.unit.dispatch.builders import create_ticket, utc

pytestmark = pytest.mark.asyncio


def _tampered(bundle: Bundle) -> dict[str, bytes]:
    files = dict(bundle.files)
    files["policy/nte.json"] = files["policy/nte.json"].replace(b"2500000", b"9900000")
    return files


async def test_a_tampered_bundle_is_refused_on_the_record_and_the_active_one_stays(
    stack: Stack, starter: Bundle, strict: Bundle
) -> None:
    await stack.activate(starter)
    refused = await stack.control(
        ActivateBundle(
            expected_sha256=strict.sha256, reason="tighter rules", files=_tampered(strict)
        )
    )
    assert refused.outcome.status == "applied"  # the refusal is an audited event
    event = msgspec.json.decode(refused.outcome.events[0].data, type=BundleActivationRefused)
    assert event.error_code == "bundle.tampered"
    assert (event.active_version, event.active_sha256) == (starter.version, starter.sha256)

    [control] = await stack.rows(controls, tenant=TENANT)
    assert (control.active_sha256, control.revision, control.refusals) == (starter.sha256, 1, 1)
    log = await stack.rows(activations, tenant=TENANT)
    assert [(r.seq, r.outcome, r.error_code, r.actor) for r in log] == [
        (1, "activated", None, ADMIN),
        (2, "refused", "bundle.tampered", ADMIN),
    ]
    # Decisions keep being made, and stamped, under the bundle that stayed active.
    await stack.ticket("t-1", create_ticket())
    [row] = await stack.rows(decisions, ticket_id="t-1")
    assert (row.bundle_version, row.bundle_sha256) == (starter.version, starter.sha256)


async def test_exactly_one_bundle_is_active_and_a_rollback_names_a_kept_version(
    stack: Stack, starter: Bundle, strict: Bundle
) -> None:
    await stack.activate(starter)
    await stack.activate(strict)
    state = await stack.state("policy", TENANT, TenantControl)
    assert state.active is not None
    assert state.active.sha256 == strict.sha256
    assert [k.version for k in state.known] == [strict.version, starter.version]
    stored = {r.sha256: r.kept_rank for r in await stack.rows(bundles, tenant=TENANT)}
    assert stored == {strict.sha256: 0, starter.sha256: 1}

    # A 15 % raise: the starter bundle (20 %) would allow it, the active strict one (10 %)
    # holds it for approval.
    await stack.ticket("t-2", create_ticket())
    await stack.ticket(
        "t-2", ChangeNte(nte=Money(cents=115_000, currency="USD"), reason="parts"), request_id="r1"
    )
    [row] = await stack.rows(decisions, request_id="r1")
    assert (row.decision, row.bundle_sha256) == ("REQUIRE_APPROVAL", strict.sha256)

    rollback = await stack.control(
        ActivateBundle(expected_sha256=starter.sha256, reason="too strict", version=starter.version)
    )
    assert rollback.outcome.events[0].type == "policy.bundle_activated.v1"
    [control] = await stack.rows(controls, tenant=TENANT)
    assert (control.active_version, control.revision) == (starter.version, 3)
    stored = {r.sha256: r.kept_rank for r in await stack.rows(bundles, tenant=TENANT)}
    assert stored == {starter.sha256: 0, strict.sha256: 1}
    already = await stack.control(
        ActivateBundle(expected_sha256=starter.sha256, reason="again", version=starter.version)
    )
    assert already.outcome.rejection is not None
    assert already.outcome.rejection.code == "bundle.already_active"


async def test_bundles_round_trip_through_the_object_store_and_tampering_is_caught(
    stack: Stack, starter: Bundle, strict: Bundle
) -> None:
    js = stack.nc.jetstream()
    with pytest.raises(UnknownBundleObject):
        await download(js, starter.sha256)
    stored = await upload(js, starter.files)
    assert (stored.name, stored.version) == (starter.sha256, starter.version)
    again = await upload(js, starter.files)
    assert again.digest == stored.digest
    assert [s.name for s in await listing(js)] == [starter.sha256]
    assert await download(js, f"object:{starter.sha256}") == starter
    assert await download(js, starter.version) == starter

    # An object whose content is not the bundle its name says: refused, never returned.
    store = await bucket(js)
    await store.put(strict.sha256, archive(starter.files))
    with pytest.raises(BundleHashMismatch):
        await download(js, strict.sha256)
    # A bundle whose files do not match its manifest cannot even be uploaded.
    with pytest.raises(TamperedBundle):
        await upload(js, _tampered(strict))


async def test_a_version_reused_for_other_content_is_refused(stack: Stack, starter: Bundle) -> None:
    await stack.activate(starter)
    content = {p: d for p, d in shipped_files("strict").items() if p != "manifest.json"}
    impostor = seal(content, version=starter.version, created_at=utc(2025, 7, 1))
    sent = await stack.control(
        ActivateBundle(
            expected_sha256=msgspec.json.decode(impostor["manifest.json"])["sha256"],
            reason="same name, new rules",
            files=impostor,
        )
    )
    refused = msgspec.json.decode(sent.outcome.events[0].data, type=BundleActivationRefused)
    assert refused.error_code == "bundle.version_conflict"
