"""The policy actor: one active bundle per tenant, audited activations, pauses and resumes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from actors.dispatch.bundles import Bundle, shipped_files
from actors.dispatch.bundles.registry import KEEP
from actors.dispatch.env import PolicyEnvironment, environment
from actors.dispatch.errors import BundleHashMismatch
from actors.policy.rules import decide, evolve, initial
from schemas.base import Command, Decision, Event, Rejection
from schemas.dispatch import (
    ActivateBundle,
    AutonomyPaused,
    AutonomyResumed,
    BundleActivated,
    BundleActivationRefused,
    PauseAutonomy,
    ResumeAutonomy,
    Scope,
    TenantControl,
)
from tests.unit.dispatch.builders import TENANT, context, make_bundle

ONE = make_bundle(version="v1")
TWO = make_bundle({"policy/nte.json": {"default": {"absolute_cents": 1}}}, version="v2")


class Tenant:
    """Drives one tenant's control entity."""

    def __init__(self) -> None:
        self.state: TenantControl = initial(TENANT)
        self.count = 0

    def send(self, command: Command, principal: str | None = "user:admin") -> Decision:
        self.count += 1
        ctx = context(
            TENANT, message_id=f"c-{self.count}", principal=principal, command=type(command)
        )
        out = decide(self.state, command, ctx)
        if not isinstance(out, Rejection):
            for event in out:
                assert isinstance(event, Event)
                self.state = evolve(self.state, event)
        return out


def activation(bundle: Bundle, **changes: object) -> ActivateBundle:
    fields: dict[str, object] = {
        "expected_sha256": bundle.sha256,
        "reason": "rollout",
        "files": bundle.files,
    }
    fields.update(changes)
    return ActivateBundle(**fields)  # type: ignore[arg-type]


def only(out: Decision) -> Event:
    assert isinstance(out, Sequence)
    assert len(out) == 1
    event = out[0]
    assert isinstance(event, Event)
    return event


def test_activating_makes_exactly_one_bundle_active() -> None:
    tenant = Tenant()
    first = only(tenant.send(activation(ONE)))
    assert isinstance(first, BundleActivated)
    assert (first.version, first.sha256, first.activated_by) == ("v1", ONE.sha256, "user:admin")
    assert first.previous_sha256 is None
    second = only(tenant.send(activation(TWO)))
    assert isinstance(second, BundleActivated)
    assert (second.previous_version, second.previous_sha256) == ("v1", ONE.sha256)
    assert tenant.state.active is not None
    assert tenant.state.active.sha256 == TWO.sha256
    assert tenant.state.revision == 2
    assert environment(tenant.state).bundle == TWO


def test_an_invalid_bundle_is_refused_on_the_record_and_the_previous_stays() -> None:
    tenant = Tenant()
    tenant.send(activation(ONE))
    tampered = dict(TWO.files)
    tampered["policy/nte.json"] = b'{"default": {"absolute_cents": 999999999}}'
    refused = only(tenant.send(activation(TWO, files=tampered)))
    assert isinstance(refused, BundleActivationRefused)
    assert refused.error_code == "bundle.tampered"
    assert "policy/nte.json" in refused.error
    assert (refused.active_version, refused.active_sha256) == ("v1", ONE.sha256)
    assert tenant.state.active is not None
    assert tenant.state.active.sha256 == ONE.sha256
    assert tenant.state.refusals == 1
    assert tenant.state.revision == 1


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"expected_sha256": "e" * 64}, "bundle.wrong_hash"),
        ({"files": {"policy/nte.json": b"{}"}}, "bundle.missing_manifest"),
        ({"files": None, "version": "v9"}, "bundle.unknown_version"),
    ],
)
def test_refusal_codes(changes: dict[str, object], code: str) -> None:
    tenant = Tenant()
    refused = only(tenant.send(activation(ONE, **changes)))
    assert isinstance(refused, BundleActivationRefused)
    assert refused.error_code == code
    assert tenant.state.active is None


def test_unknown_format_is_refused() -> None:
    files = dict(shipped_files("starter"))
    files["manifest.json"] = files["manifest.json"].replace(b'"format": 1', b'"format": 7')
    refused = only(Tenant().send(activation(ONE, files=files)))
    assert isinstance(refused, BundleActivationRefused)
    assert refused.error_code == "bundle.unknown_format"


def test_rollback_by_version_and_version_reuse() -> None:
    tenant = Tenant()
    tenant.send(activation(ONE))
    tenant.send(activation(TWO))
    back = only(tenant.send(activation(ONE, files=None, version="v1")))
    assert isinstance(back, BundleActivated)
    assert back.sha256 == ONE.sha256
    reused = make_bundle({"policy/nte.json": {"default": {"absolute_cents": 7}}}, version="v1")
    refused = only(tenant.send(activation(reused)))
    assert isinstance(refused, BundleActivationRefused)
    assert refused.error_code == "bundle.version_conflict"


def test_reactivating_the_active_bundle_is_a_conflict() -> None:
    tenant = Tenant()
    tenant.send(activation(ONE))
    again = tenant.send(activation(ONE))
    assert isinstance(again, Rejection)
    assert again.code == "bundle.already_active"


def test_kept_bundles_are_capped_and_the_active_one_is_kept() -> None:
    tenant = Tenant()
    for i in range(KEEP + 3):
        bundle = make_bundle(
            {"policy/nte.json": {"default": {"absolute_cents": i}}}, version=f"v{i}"
        )
        only(tenant.send(activation(bundle)))
    assert len(tenant.state.known) == KEEP
    assert tenant.state.known[0].version == f"v{KEEP + 2}"
    assert tenant.state.known_bundle(version="v0") is None


def test_control_commands_need_a_principal_and_the_tenant_itself() -> None:
    tenant = Tenant()
    anonymous = tenant.send(activation(ONE), principal=None)
    assert isinstance(anonymous, Rejection)
    assert anonymous.kind == "forbidden"
    ctx = context("globex", message_id="x", command=PauseAutonomy)
    foreign = decide(initial("globex"), PauseAutonomy(scope=Scope(kind="tenant"), reason="x"), ctx)
    assert isinstance(foreign, Rejection)
    assert foreign.code == "policy.tenant_mismatch"


def test_pause_and_resume_scopes() -> None:
    tenant = Tenant()
    west = Scope(kind="region", id="west")
    paused = only(tenant.send(PauseAutonomy(scope=west, reason="storm")))
    assert isinstance(paused, AutonomyPaused)
    assert paused.paused_by == "user:admin"
    twice = tenant.send(PauseAutonomy(scope=west, reason="again"))
    assert isinstance(twice, Rejection)
    assert twice.code == "autonomy.already_paused"
    env = PolicyEnvironment(control=tenant.state)
    assert env.paused(tenant=TENANT, region="west", ticket="t-1") is not None
    assert env.paused(tenant=TENANT, region="east", ticket="t-1") is None
    with pytest.raises(ValueError, match="tenant 'acme''s, not 'globex''s"):
        env.paused(tenant="globex", region="west", ticket="t-1")
    resumed = only(tenant.send(ResumeAutonomy(scope=west, reason="clear")))
    assert isinstance(resumed, AutonomyResumed)
    assert resumed.paused_at == paused.at
    assert tenant.state.paused == ()
    missing = tenant.send(ResumeAutonomy(scope=west, reason="again"))
    assert isinstance(missing, Rejection)
    assert missing.code == "autonomy.not_paused"
    assert tenant.state.revision == 2


def test_the_broadest_pause_explains_a_denial() -> None:
    tenant = Tenant()
    tenant.send(PauseAutonomy(scope=Scope(kind="ticket", id="t-1"), reason="customer dispute"))
    tenant.send(PauseAutonomy(scope=Scope(kind="tenant"), reason="incident"))
    pause = PolicyEnvironment(control=tenant.state).paused(tenant=TENANT, region="x", ticket="t-1")
    assert pause is not None
    assert pause.scope.kind == "tenant"


def test_an_environment_must_match_the_active_bundle() -> None:
    tenant = Tenant()
    tenant.send(activation(ONE))
    with pytest.raises(BundleHashMismatch):
        PolicyEnvironment(control=tenant.state, bundle=TWO)
