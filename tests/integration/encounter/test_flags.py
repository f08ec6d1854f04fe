"""The combat flag from the KV bucket: kill switch, rollout, allow-list, restarts, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable

import msgspec
import nats
import pytest

from actors.encounter.flags import bucket
from actors.encounter.flagstore import BUCKET, FlagHolder, FlagStore, FlagWatcher
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    EndEncounter,
    NextTurn,
    RollInitiative,
    StartEncounter,
)
from schemas.envelope import Outcome
from schemas.flags import COMBAT, FeatureFlag
from tests.integration.encounter.support import Client, until
from troupe.commands import flags as flags_command

pytestmark = pytest.mark.asyncio

WAIT = 20.0


def cohorts(inside: bool, percent: int, count: int = 1) -> list[str]:
    """Campaign ids whose bucket is below ``percent`` (``inside``) or not."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        candidate = f"camp-{n}"
        if (bucket(COMBAT, candidate) < percent) == inside:
            found.append(candidate)
        n += 1
    return found


async def write_flag(url: str, change: Callable[[FeatureFlag], FeatureFlag]) -> int:
    """Write the combat flag from a separate connection, as an operator would."""
    nc = await nats.connect(url)
    try:
        store = await FlagStore.open(nc.jetstream(), BUCKET)
        result = await store.write(COMBAT, change)
        return result.revision
    finally:
        await nc.close()


async def seen(flags: FlagHolder, revision: int) -> None:
    """Until the encounter actor's copy of the flag has reached ``revision``."""
    await until(lambda: flags.revision >= revision, what=f"flag revision {revision} seen")


def refused(outcome: Outcome) -> str:
    """The reason of a combat_disabled refusal (fails on anything else)."""
    assert outcome.status == "rejected", outcome
    assert outcome.rejection is not None
    assert (outcome.rejection.kind, outcome.rejection.code) == ("forbidden", "combat_disabled")
    return outcome.rejection.reason


async def begin(client: Client, key: str, campaign: str) -> None:
    for n, command in enumerate(
        (
            CreateEncounter(seed=3, campaign_id=campaign),
            AddCombatant(combatant_id="a", name="A"),
            AddCombatant(combatant_id="b", name="B"),
        )
    ):
        assert (await client.send(key, command, f"{key}-setup-{n}")).status == "applied"
    assert (await client.send(key, RollInitiative(), f"{key}-roll")).status == "applied"
    assert (await client.send(key, StartEncounter(), f"{key}-start")).status == "applied"


async def test_kill_switch_refuses_commands_but_not_end(
    pg_host: Host, client: Client, nats_server: EmbeddedNats, flags: FlagHolder
) -> None:
    await begin(client, "k-1", "camp-kill")
    revision = await write_flag(
        nats_server.url,
        lambda f: msgspec.structs.replace(
            f, enabled=True, rollout_percent=100, kill_switch=True, note="incident 7"
        ),
    )
    await seen(flags, revision)
    reason = refused(await client.send("k-1", NextTurn(expected_step=1), "k-1-next"))
    assert "camp-kill" in reason
    assert "kill switch is on (incident 7)" in reason
    refused(await client.send("k-2", CreateEncounter(seed=1, campaign_id="camp-kill"), "k-2-c"))
    # Ending stays possible, so a kill switch never strands a running encounter.
    ended = await client.send("k-1", EndEncounter(note="kill switch"), "k-1-end")
    assert ended.status == "applied"

    revision = await write_flag(
        nats_server.url, lambda f: msgspec.structs.replace(f, kill_switch=False)
    )
    await seen(flags, revision)
    created = await client.send("k-2", CreateEncounter(seed=1, campaign_id="camp-kill"), "k-2-c2")
    assert created.status == "applied"


async def test_rollout_percentage_and_allow_list(
    pg_host: Host, client: Client, nats_server: EmbeddedNats, flags: FlagHolder
) -> None:
    (inside,) = cohorts(True, 50)
    outside, beta = cohorts(False, 50, count=2)
    revision = await write_flag(
        nats_server.url,
        lambda f: msgspec.structs.replace(f, enabled=True, rollout_percent=50, allow=(beta,)),
    )
    await seen(flags, revision)
    ok = await client.send("r-in", CreateEncounter(seed=1, campaign_id=inside), "r-in")
    assert ok.status == "applied"
    reason = refused(
        await client.send("r-out", CreateEncounter(seed=1, campaign_id=outside), "r-out")
    )
    assert f"{outside} is outside the 50% rollout of combat" in reason
    allowed = await client.send("r-beta", CreateEncounter(seed=1, campaign_id=beta), "r-beta")
    assert allowed.status == "applied"

    # Commands on an existing encounter are judged by its campaign, not the caller.
    revision = await write_flag(
        nats_server.url, lambda f: msgspec.structs.replace(f, rollout_percent=0)
    )
    await seen(flags, revision)
    reason = refused(
        await client.send("r-in", AddCombatant(combatant_id="x", name="X"), "r-in-add")
    )
    assert f"{inside} is outside the 0% rollout" in reason
    kept = await client.send("r-beta", AddCombatant(combatant_id="x", name="X"), "r-beta-add")
    assert kept.status == "applied"

    # The master switch off refuses everyone, the allow-list included.
    revision = await write_flag(
        nats_server.url, lambda f: msgspec.structs.replace(f, enabled=False)
    )
    await seen(flags, revision)
    assert "combat flag is disabled" in refused(
        await client.send("r-beta", AddCombatant(combatant_id="y", name="Y"), "r-beta-add2")
    )


async def test_flag_watch_survives_a_nats_restart(
    pg_host: Host, nats_server: EmbeddedNats, flags: FlagHolder
) -> None:
    client = await Client.connect(nats_server.url)
    try:
        created = await client.send("w-1", CreateEncounter(seed=2, campaign_id="camp-w"), "w-1-c")
        assert created.status == "applied"
    finally:
        await client.close()
    assert pg_host.bus is not None
    reconnects = pg_host.bus.nc.stats["reconnects"]

    nats_server.kill()
    nats_server.start()
    nc = pg_host.bus.nc
    await until(
        lambda: nc.stats["reconnects"] > reconnects and nc.is_connected, what="host reconnected"
    )

    revision = await write_flag(
        nats_server.url,
        lambda f: msgspec.structs.replace(f, enabled=True, rollout_percent=100, kill_switch=True),
    )
    client = await Client.connect(nats_server.url)
    try:
        # The actor obeys the change made after the restart: a create on the existing
        # encounter goes from already_exists (allowed) to combat_disabled (refused).
        async with asyncio.timeout(WAIT):
            attempt = 0
            while True:
                attempt += 1
                outcome = await client.send(
                    "w-1", CreateEncounter(seed=2, campaign_id="camp-w"), f"w-1-probe-{attempt}"
                )
                assert outcome.rejection is not None
                if outcome.rejection.code == "combat_disabled":
                    break
                assert outcome.rejection.code == "already_exists"
                await asyncio.sleep(0.1)
    finally:
        await client.close()
    assert flags.revision >= revision
    assert flags.flag is not None
    assert flags.flag.kill_switch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="troupe")
    flags_command.register(parser.add_subparsers(dest="command", required=True))
    return parser


async def _run(
    settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str
) -> dict[str, object]:
    args = _parser().parse_args(["flags", *argv, "--json"])
    assert await args.handler(args, settings) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


async def test_flags_cli_show_set_kill_are_idempotent(
    nats_server: EmbeddedNats, capsys: pytest.CaptureFixture[str]
) -> None:
    from troupe.cli import CliError

    settings = Settings(nats_url=nats_server.url)
    shown = await _run(settings, capsys, "show", "--cohort", "camp-a")
    assert shown["flag"] is None
    assert shown["revision"] == 0

    first = await _run(settings, capsys, "set", "--enable", "--percent", "10", "--allow", "beta")
    assert first["changed"] is True
    again = await _run(settings, capsys, "set", "--enable", "--percent", "10", "--allow", "beta")
    assert again["changed"] is False
    assert again["revision"] == first["revision"]

    killed = await _run(settings, capsys, "kill", "--note", "incident 9")
    assert killed["changed"] is True
    killed_again = await _run(settings, capsys, "kill", "--note", "incident 9")
    assert killed_again["changed"] is False
    assert killed_again["revision"] == killed["revision"]

    shown = await _run(settings, capsys, "show", "--cohort", "beta")
    flag = msgspec.convert(shown["flag"], FeatureFlag)
    assert flag == FeatureFlag(
        name=COMBAT,
        enabled=True,
        rollout_percent=10,
        allow=("beta",),
        kill_switch=True,
        note="incident 9",
    )
    verdicts = shown["verdicts"]
    assert isinstance(verdicts, dict)
    assert verdicts["beta"]["code"] == "kill_switch"

    released = await _run(settings, capsys, "set", "--kill-switch", "off", "--disallow", "beta")
    assert released["changed"] is True
    assert released["flag"]["allow"] == []  # type: ignore[index]

    args = _parser().parse_args(["flags", "set", "--allow", "not a key"])
    with pytest.raises(CliError, match="invalid flag combat"):
        await args.handler(args, settings)
    args = _parser().parse_args(["flags", "set"])
    with pytest.raises(CliError, match="nothing to set"):
        await args.handler(args, settings)
    with pytest.raises(SystemExit):
        _parser().parse_args(["flags", "set", "--percent", "101"])


def current(holder: FlagHolder) -> FeatureFlag | None:
    """The holder's flag now (a call, so type narrowing does not outlive an await)."""
    return holder.flag


async def test_the_watch_delivers_each_change_without_polling(nats_server: EmbeddedNats) -> None:
    nc = await nats.connect(nats_server.url)
    holder = FlagHolder(COMBAT)
    # A resync far beyond the test: whatever arrives comes through the watch.
    watcher = FlagWatcher(nc, nc.jetstream(), BUCKET, holder, resync_seconds=600)
    await watcher.start()
    try:
        assert current(holder) is None
        revision = await write_flag(
            nats_server.url, lambda f: msgspec.structs.replace(f, enabled=True, rollout_percent=20)
        )
        await until(lambda: holder.revision == revision, what="the change delivered")
        flag = current(holder)
        assert flag is not None
        assert flag.rollout_percent == 20

        # A hand-written value with a typo is refused; the last good flag stays in force.
        store = await FlagStore.open(nc.jetstream(), BUCKET)
        bad = await store.kv.put(
            COMBAT, b'{"type": "flags.feature_flag.v1", "name": "combat", "rollout_pct": 90}'
        )
        await until(lambda: holder.revision == bad, what="the bad revision seen")
        assert holder.error is not None
        assert current(holder) == flag

        # Deleting the key (troupe flags never does) leaves nothing restricting combat.
        await store.kv.delete(COMBAT)
        await until(lambda: holder.flag is None and holder.revision > bad, what="the deletion seen")
    finally:
        await watcher.stop()
        await nc.close()
    assert watcher.subscriptions == 1
