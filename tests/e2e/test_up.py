"""``troupe up`` as a user runs it: the README's first commands, raw NATS, Ctrl-C, and resuming."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import pytest

from schemas import subjects
from schemas.headers import Header
from tests.e2e.conftest import ROOT, launch_troupe, troupe_environment

pytestmark = pytest.mark.e2e


def readme_commands() -> list[str]:
    """The shell lines of the README's "A first command" block."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## A first command", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def run_line(line: str, home: Path, base_url: str) -> subprocess.CompletedProcess[str]:
    """A README line as the user would type it, pointed at this test's troupe up."""
    line = line.replace("http://127.0.0.1:8000", base_url)
    argv = shlex.split(line)
    if argv[0] == ".venv/bin/troupe":
        argv = [sys.executable, "-m", "troupe.cli", *argv[1:]]
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=troupe_environment({"TROUPE_HOME": str(home)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_readme_first_commands_then_ctrl_c_and_resume(tmp_path: Path) -> None:
    home = tmp_path / "home"
    lines = readme_commands()
    assert any("troupe send" in line for line in lines)
    with launch_troupe(home) as up:
        outputs = [run_line(line, home, up.base_url) for line in lines]
        for line, out in zip(lines, outputs, strict=True):
            assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
        sent = json.loads(outputs[0].stdout)
        assert sent["status"] == "applied"
        assert sent["events"][0]["type"] == "encounter.encounter_created.v1"
        replayed = [json.loads(x) for x in outputs[1].stdout.splitlines()]
        assert [r["data"]["type"] for r in replayed] == ["encounter.encounter_created.v1"]
        assert json.loads(outputs[2].stdout)["ok"] is True

        # The same entity driven by raw NATS (what `nats pub` does) and read over HTTP.
        asyncio.run(publish_add_combatant(up.nats_url))
        state = wait_for_version(up.base_url, "encounter", "e1", 2)
        assert [c["combatant_id"] for c in state["state"]["combatants"]] == ["ada"]
    assert up.process.returncode == 0  # Ctrl-C (SIGINT) stopped it cleanly
    assert not (home / "nats.url").exists()

    with launch_troupe(home) as up:
        state = wait_for_version(up.base_url, "encounter", "e1", 2)
        assert state["version"] == 2  # everything applied before Ctrl-C is still there, once
        add_bo = json.dumps({"combatant_id": "bo", "name": "Bo"})
        again = run_line(
            f".venv/bin/troupe send encounter e1 add_combatant '{add_bo}'", home, up.base_url
        )
        assert again.returncode == 0, again.stderr
        state = wait_for_version(up.base_url, "encounter", "e1", 3)
        names = sorted(c["combatant_id"] for c in state["state"]["combatants"])
        assert names == ["ada", "bo"]
        replay = run_line(".venv/bin/troupe replay 'evt.encounter.e1.>'", home, up.base_url)
        types = [json.loads(x)["data"]["type"] for x in replay.stdout.splitlines()]
        assert types == [
            "encounter.encounter_created.v1",
            "encounter.combatant_added.v1",
            "encounter.combatant_added.v1",
        ]


async def publish_add_combatant(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(
            subjects.command_subject("encounter", "e1", "add_combatant"),
            msgspec.json.encode({"combatant_id": "ada", "name": "Ada", "dexterity_modifier": 3}),
            headers={Header.MSG_ID: "raw-add-ada"},
        )
    finally:
        await nc.close()


def wait_for_version(base_url: str, domain: str, key: str, version: int) -> Any:
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            response = client.get(f"{base_url}/v1/state/{domain}/{key}")
            if response.status_code == 200 and response.json()["version"] >= version:
                return response.json()
            time.sleep(0.1)
    raise AssertionError(f"{domain} {key} never reached version {version}")


def test_a_public_address_without_auth_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "up", "--http", "0.0.0.0:0", "--home", str(tmp_path)],
        cwd=ROOT,
        env=troupe_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert re.search(r"without authentication|--insecure", result.stderr)
