"""The wiring around the rules: bundle archives, proposal records, metrics, the expiry scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors.dispatch import metrics
from actors.dispatch.bundles import SHIPPED, shipped, shipped_files
from actors.dispatch.bundles.sources import archive, read_path, unarchive
from actors.dispatch.errors import MalformedBundle
from actors.kernel import telemetry
from actors.tickets.actor import INTERVAL_ENV, expiry_request_id, interval_from_env
from actors.workflow.rules import evolve
from schemas.dispatch import ConfirmVisit, ProposalMade, ProposalSuppressed, Scope, WorkflowState


def test_a_bundle_archive_holds_every_file_and_reads_back_the_same(tmp_path: Path) -> None:
    files = shipped_files("strict")
    data = archive(files)
    assert unarchive(data) == files
    path = tmp_path / "strict.json"
    path.write_bytes(data)
    assert read_path(path) == files
    assert read_path(SHIPPED / "strict") == files
    with pytest.raises(MalformedBundle, match="not a bundle archive"):
        unarchive(b'{"type": "dispatch.bundle_archive.v1", "files": {"a": 1}}')
    with pytest.raises(MalformedBundle, match="neither"):
        read_path(tmp_path / "missing")


def test_the_workflow_keeps_each_proposal_as_a_record() -> None:
    at = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
    local = datetime.fromisoformat("2025-06-02T21:00:00-05:00")
    state = evolve(
        WorkflowState(ticket_id="t-1"),
        ProposalMade(
            trigger_id="evt-1",
            trigger_type="tickets.visit_proposed.v1",
            correlation_id="c",
            at=at,
            proposal_id="prp_1",
            kind="confirm_visit",
            summary="confirm v1",
            suggested=ConfirmVisit(visit_id="v1"),
            not_before=local,
        ),
    )
    state = evolve(
        state,
        ProposalSuppressed(
            trigger_id="evt-2",
            trigger_type="tickets.ticket_created.v1",
            correlation_id="c",
            at=at,
            proposal_id="prp_2",
            kind="find_technician",
            reason_code="autonomy.paused",
            scope=Scope(kind="tenant"),
        ),
    )
    made, stopped = state.proposals
    assert (made.suppressed, made.suggested, made.not_before) == (
        False,
        ConfirmVisit(visit_id="v1"),
        datetime(2025, 6, 3, 2, 0, tzinfo=UTC),
    )
    assert (stopped.suppressed, stopped.reason_code, stopped.scope) == (
        True,
        "autonomy.paused",
        Scope(kind="tenant"),
    )
    assert (state.made, state.suppressed) == (1, 1)
    assert state.has_proposal("prp_2")
    assert not state.has_proposal("prp_3")


@pytest.fixture
def fresh_telemetry() -> Iterator[None]:
    telemetry.configure()
    try:
        yield
    finally:
        telemetry.reset()


def test_dispatch_metrics_have_bounded_labels(fresh_telemetry: None) -> None:
    m = metrics.get()
    m.decision("DENY", "kill_switch")
    m.decision("MAYBE", "made_up")
    m.holds(pending=3, overdue=1, oldest_overdue_seconds=42.0)
    m.paused_scopes({"region": 2})
    body = telemetry.prometheus_text()[0].decode()
    assert 'troupe_dispatch_decisions_total{decision="DENY",rule="kill_switch"} 1.0' in body
    assert 'troupe_dispatch_decisions_total{decision="other",rule="other"} 1.0' in body
    assert "troupe_dispatch_approvals_oldest_overdue_age_seconds 42.0" in body
    assert 'troupe_dispatch_paused_scopes{scope="region"} 2.0' in body
    assert 'troupe_dispatch_paused_scopes{scope="tenant"} 0.0' in body


def test_expiry_ids_repeat_within_a_resend_period_only() -> None:
    noon = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    same = datetime(2025, 6, 2, 12, 4, tzinfo=UTC)
    later = datetime(2025, 6, 2, 12, 6, tzinfo=UTC)
    assert expiry_request_id("apr_1", noon) == expiry_request_id("apr_1", same)
    assert expiry_request_id("apr_1", noon) != expiry_request_id("apr_1", later)
    assert expiry_request_id("apr_1", noon) != expiry_request_id("apr_2", noon)


def test_the_expiry_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert interval_from_env() == 30.0
    monkeypatch.setenv(INTERVAL_ENV, "0")
    assert interval_from_env() == 0.0
    for bad in ("soon", "-1"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        with pytest.raises(ValueError, match=INTERVAL_ENV):
            interval_from_env()


def test_the_shipped_bundles_differ_only_where_documented() -> None:
    starter, strict = shipped("starter"), shipped("strict")
    assert starter.rules.evidence == strict.rules.evidence
    assert starter.rules.approvals.ttl_seconds == 86_400
    assert strict.rules.approvals.ttl_seconds == 28_800
