"""`troupe dispatch`: bundle upload, activate, show and the shadow replay, against real servers."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import msgspec
import pytest

from actors.dispatch.bundles import SHIPPED, Bundle
from actors.policy.tables import activations, pauses
from schemas.dispatch import ChangeNte, Money, ShadowRecord, ShadowSummary
from tests.integration.dispatch.conftest import TENANT, Stack
from tests.unit.dispatch.builders import create_ticket
from troupe.cli import CliError
from troupe.commands import dispatch

pytestmark = pytest.mark.asyncio


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="troupe")
    dispatch.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


async def _run(stack: Stack, *argv: str) -> int:
    args = _args(*argv)
    code: int = await args.handler(args, stack.settings)
    return code


async def test_bundles_are_uploaded_activated_shown_and_replayed_from_the_command_line(
    stack: Stack,
    starter: Bundle,
    strict: Bundle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await _run(stack, "dispatch", "bundle", "upload", str(SHIPPED / "starter")) == 0
    assert await _run(stack, "dispatch", "bundle", "upload", str(SHIPPED / "strict")) == 0
    assert await _run(stack, "dispatch", "bundle", "show") == 0
    listed = capsys.readouterr().out
    assert starter.version in listed
    assert strict.version in listed

    code = await _run(
        stack,
        "dispatch", "bundle", "activate", f"object:{starter.version}",
        "--tenant", TENANT, "--as", "user:admin", "--reason", "first rollout",
    )  # fmt: skip
    assert code == 0
    await stack.ticket("t-1", create_ticket())
    await stack.ticket(
        "t-1", ChangeNte(nte=Money(cents=115_000, currency="USD"), reason="parts"), request_id="x"
    )

    tampered = tmp_path / "tampered"
    shutil.copytree(SHIPPED / "strict", tampered)
    rules = tampered / "policy" / "nte.json"
    rules.write_text(rules.read_text().replace("25000", "99999"))
    code = await _run(
        stack, "dispatch", "bundle", "activate", str(tampered), "--tenant", TENANT, "--as", "user:a"
    )
    assert code == 1
    assert "bundle.tampered" in capsys.readouterr().out
    assert [r.outcome for r in await stack.rows(activations, tenant=TENANT)] == [
        "activated",
        "refused",
    ]

    archive_file = tmp_path / "strict.json"
    archive_file.write_bytes(
        msgspec.json.encode({"type": "dispatch.bundle_archive.v1", "files": strict.files})
    )
    code = await _run(
        stack,
        "dispatch",
        "bundle",
        "activate",
        str(archive_file),
        "--tenant",
        TENANT,
        "--as",
        "user:a",
    )
    assert code == 0
    assert await _run(stack, "dispatch", "bundle", "show", "--tenant", TENANT) == 0
    shown = capsys.readouterr().out
    assert f"active {strict.version}" in shown
    assert "refused" in shown

    out = tmp_path / "replay.jsonl"
    code = await _run(
        stack, "dispatch", "shadow-replay", "--tenant", TENANT, "--out", str(out), "--flips-only"
    )
    assert code == 0
    lines = [
        msgspec.json.decode(line, type=ShadowRecord | ShadowSummary)
        for line in out.read_bytes().splitlines()
    ]
    [flipped, summary] = lines
    assert isinstance(flipped, ShadowRecord)
    assert (flipped.request_id, flipped.flip) == ("x", "ALLOW->REQUIRE_APPROVAL")
    assert flipped.bundle_sha256 == strict.sha256
    assert isinstance(summary, ShadowSummary)
    assert (summary.decisions, summary.flipped, summary.bundle_sha256) == (2, 1, strict.sha256)

    code = await _run(
        stack,
        "dispatch", "bundle", "activate", f"version:{starter.version}",
        "--tenant", TENANT, "--as", "user:admin", "--reason", "roll back",
    )  # fmt: skip
    assert code == 0
    assert f"activated {starter.version}" in capsys.readouterr().out


async def test_send_carries_tenant_and_principal_and_reports_conflicts(
    stack: Stack, starter: Bundle, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.activate(starter)
    await stack.ticket("t-9", create_ticket())
    held = await stack.ticket(
        "t-9", ChangeNte(nte=Money(cents=300_000, currency="USD"), reason="heater")
    )
    approval_id = msgspec.json.decode(held.outcome.events[1].data)["approval_id"]
    capsys.readouterr()
    body = msgspec.json.encode({"approval_id": approval_id, "outcome": "reject"}).decode()
    code = await _run(
        stack,
        "dispatch", "send", "tickets", "t-9", "record_approval_decision", body,
        "--tenant", TENANT, "--as", "user:approver", "--request-id", "reject-9",
    )  # fmt: skip
    assert code == 0
    outcome = msgspec.json.decode(capsys.readouterr().out.strip())
    assert [e["type"] for e in outcome["events"]] == [
        "tickets.decision_recorded.v1",
        "tickets.approval_resolved.v1",
    ]
    other = msgspec.json.encode({"approval_id": approval_id, "outcome": "approve"}).decode()
    with pytest.raises(CliError, match="reject-9 was already used"):
        await _run(
            stack,
            "dispatch", "send", "tickets", "t-9", "record_approval_decision", other,
            "--tenant", TENANT, "--as", "user:approver", "--request-id", "reject-9",
        )  # fmt: skip
    conflict = msgspec.json.decode(capsys.readouterr().out.strip())
    assert conflict["differences"] == [
        {"path": "$.parameters.outcome", "recorded": "reject", "requested": "approve"}
    ]
    pause = '{"scope": {"kind": "region", "id": "central"}, "reason": "storm"}'
    code = await _run(
        stack, "dispatch", "send", "policy", TENANT, "pause_autonomy", pause, "--as", "user:oncall"
    )
    assert code == 0
    [row] = await stack.rows(pauses, tenant=TENANT)
    assert (row.scope_id, row.paused_by) == ("central", "user:oncall")
