"""Operators' commands on real servers: send, replay, audit, dlq, status, relay, migrate."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from actors.kernel import migrate
from actors.kernel.config import Settings
from actors.kernel.db import create_engine
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from tests.support.accounts import ACCOUNTS

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parents[3]


async def troupe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a thread, so the actors hosted by this test's event loop keep running."""
    return await asyncio.to_thread(_run, env, *args)


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "troupe.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def running(nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[dict[str, str]]:
    settings = Settings(database_url=database_url, nats_url=nats_server.url)
    host = Host(settings, [ACCOUNTS], nats_url=nats_server.url)
    await host.start()
    await host.wait_ready()
    try:
        yield {
            "TROUPE_NATS_URL": nats_server.url,
            "TROUPE_DATABASE_URL": database_url,
            "TROUPE_EXTRA_ACTORS": "tests.support.accounts:ACCOUNTS",
            "TROUPE_LOG_LEVEL": "WARNING",
        }
    finally:
        await host.stop()


async def test_send_replay_audit_and_status(running: dict[str, str], database_url: str) -> None:
    opened = await troupe(running, "send", "acct", "c1", "open", '{"owner": "ada"}', "--id", "s-1")
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["status"] == "applied"
    deposit = await troupe(running, "send", "acct", "c1", "deposit", '{"amount": 12}')
    assert deposit.returncode == 0, deposit.stderr
    refused = await troupe(running, "send", "acct", "c1", "withdraw", '{"amount": 99}')
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["rejection"]["code"] == "insufficient_funds"
    preview = await troupe(running, "send", "acct", "c1", "deposit", '{"amount": 1}', "--preview")
    assert json.loads(preview.stdout)["status"] == "preview"

    replay = await troupe(running, "replay", "evt.acct.c1.>")
    assert replay.returncode == 0, replay.stderr
    lines = [json.loads(line) for line in replay.stdout.splitlines()]
    assert [r["data"]["type"] for r in lines] == ["acct.opened.v1", "acct.deposited.v1"]
    assert lines[0]["seq"] < lines[1]["seq"]
    later = await troupe(running, "replay", "evt.acct.c1.>", "--from-seq", str(lines[1]["seq"]))
    assert len(later.stdout.splitlines()) == 1

    audit = await troupe(running, "audit", "acct", "c1")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "matches" in audit.stdout

    # Tamper with the stored state: audit must notice and exit 1.
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE actor_state SET state = :s WHERE actor = 'accounts' AND key = 'c1'"),
            {"s": '{"owner":"ada","balance":1000,"n":1}'},
        )
    await engine.dispose()
    tampered = await troupe(running, "audit", "acct", "c1", "--json")
    assert tampered.returncode == 1
    report = json.loads(tampered.stdout)
    assert report["differences"] == [{"path": "$.balance", "stored": 1000, "folded": 12}]

    status = await troupe(running, "status")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["ok"] is True


async def test_dlq_list_and_redrive(running: dict[str, str]) -> None:
    bad = await troupe(
        running, "send", "acct", "d1", "deposit", '{"amount": "lots"}', "--wait", "15"
    )
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["status"] == "dead_lettered"
    listed = await troupe(running, "dlq", "list", "--json")
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(letters) == 1
    assert letters[0]["kind"] == "schema"
    assert "$.amount" in letters[0]["reason"]
    human = await troupe(running, "dlq", "list")
    assert "cmd.acct.d1.deposit" in human.stdout
    redriven = await troupe(running, "dlq", "redrive", "--seq", str(letters[0]["seq"]))
    assert redriven.returncode == 0, redriven.stderr
    # Still malformed, so the redriven message is dead-lettered again, same identity, new seq.
    async with asyncio.timeout(30):
        while True:
            again = await troupe(running, "dlq", "list", "--json")
            relisted = [json.loads(line) for line in again.stdout.splitlines()]
            if relisted and relisted[0]["seq"] != letters[0]["seq"]:
                break
            await asyncio.sleep(0.2)
    assert len(relisted) == 1
    identity = "Troupe-Message-Id"
    assert relisted[0]["headers"][identity] == letters[0]["headers"][identity]
    nothing = await troupe(running, "dlq", "redrive", "--seq", "999999")
    assert nothing.returncode == 2
    assert "nothing to redrive" in nothing.stderr


async def test_migrate_and_relay_once(running: dict[str, str]) -> None:
    migrated = await troupe(running, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert all(head in migrated.stdout for head in migrate.heads())
    relay = await troupe(running, "relay", "--once")
    assert relay.returncode == 0, relay.stderr
    assert "published 0" in relay.stdout


async def test_helpful_errors_exit_2(tmp_path: Path) -> None:
    env = {"TROUPE_HOME": str(tmp_path), "TROUPE_NATS_URL": ""}
    missing = await troupe(env, "replay", "evt.>")
    assert missing.returncode == 2
    assert "TROUPE_NATS_URL" in missing.stderr
    bad_config = await troupe({"TROUPE_BATCH_SIZE": "many"}, "status")
    assert bad_config.returncode == 2
    assert "batch_size" in bad_config.stderr
    unknown = await troupe({}, "actor", "nobody")
    assert unknown.returncode == 2
    assert "no actor named 'nobody'" in unknown.stderr
