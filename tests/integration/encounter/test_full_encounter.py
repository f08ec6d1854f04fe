"""A whole encounter through the three actors: previews, snapshots, order, audit, tables, metrics.

Every transition of ``scenario.STEPS`` is previewed, applied, and recorded as a JSON snapshot
of the three actors' states before and after it, with the events it caused (read back from
JetStream). The snapshots are compared with ``snapshots/full_encounter.json``; set
``TROUPE_UPDATE_SNAPSHOTS=1`` to rewrite it after an intended change.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sqlalchemy import select

from actors.effects.actor import ACTOR as EFFECTS
from actors.encounter.tables import combatants, encounters, initiative
from actors.kernel import history, telemetry
from actors.kernel.host import Host
from actors.kernel.telemetry import Settings as TelemetrySettings
from actors.mastery.actor import ACTOR as MASTERY
from schemas.base import tag_of
from schemas.effects import EffectExpired
from schemas.envelope import Outcome
from schemas.mastery import MasteryProc, ProcRequestRejected
from tests.integration.encounter import scenario
from tests.integration.encounter.support import (
    Client,
    assert_turn_order,
    metric_points,
    metric_value,
    of_type,
)

pytestmark = pytest.mark.asyncio

SNAPSHOT = Path(__file__).parent / "snapshots" / "full_encounter.json"
DOMAINS = ("encounter", "effects", "mastery")


@pytest.fixture
def metric_reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    telemetry.configure(settings=TelemetrySettings(), metric_readers=[reader])
    try:
        yield reader
    finally:
        telemetry.reset()


def _events(outcome: Outcome) -> list[tuple[str, str, str, bytes]]:
    return [(e.id, e.subject, e.type, bytes(e.data)) for e in outcome.events]


async def _states(client: Client) -> dict[str, Any]:
    return {d: await client.state_json(d, scenario.KEY) for d in DOMAINS}


def _recorded(data: bytes) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.json.decode(data)
    return {"type": body.pop("type"), "data": body}


def _normalised(transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Transitions with each one's events grouped by domain, keeping each domain's order.

    Reactions of different actors to one event (effects and mastery both close on
    EncounterEnded) interleave freely in the stream; each actor's own events do not.
    """
    return [
        {
            **t,
            "events": sorted(t["events"], key=lambda e: DOMAINS.index(e["subject"].split(".")[1])),
        }
        for t in transitions
    ]


async def test_full_encounter(
    any_host: Host, client: Client, metric_reader: InMemoryMetricReader
) -> None:
    key = scenario.KEY
    transitions: list[dict[str, Any]] = []
    seen = 0
    for step in scenario.STEPS:
        before = await _states(client)
        preview = await client.preview(key, step.command, step.command_id)
        assert await _states(client) == before, f"preview of {step.name} changed state"
        outcome = await client.send(key, step.command, step.command_id)
        code = outcome.rejection.code if outcome.rejection else None
        assert (outcome.status, code) == (step.status, step.code), (step.name, outcome)
        # Preview decides exactly what apply then did: same ids, subjects and bodies.
        if outcome.status == "applied":
            assert preview.status == "preview", (step.name, preview)
            assert _events(preview) == _events(outcome), step.name
            assert preview.version == outcome.version
        else:
            assert preview.status == "rejected"
            assert preview.rejection == outcome.rejection
        await client.settled(key)
        records = await client.records(key)
        caused = [r for r in records if r.seq > seen]
        seen = records[-1].seq if records else seen
        transitions.append(
            {
                "transition": step.name,
                "command": {
                    "type": tag_of(type(step.command)),
                    "id": step.command_id,
                    "body": msgspec.to_builtins(step.command),
                },
                "outcome": {
                    "status": outcome.status,
                    "rejection": msgspec.to_builtins(outcome.rejection),
                    "version": outcome.version,
                },
                "events": [{"subject": r.subject, **_recorded(bytes(r.data))} for r in caused],
                "before": before,
                "after": await _states(client),
            }
        )

    text = json.dumps(transitions, indent=2, sort_keys=True) + "\n"
    if os.environ.get("TROUPE_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text)
    assert _normalised(json.loads(SNAPSHOT.read_text())) == _normalised(transitions), (
        f"the transitions differ from {SNAPSHOT.name}; if the change is intended, re-run with "
        "TROUPE_UPDATE_SNAPSHOTS=1 and review the diff"
    )

    # The order contract, read back from JetStream in stream sequence.
    logged = await assert_turn_order(client, key)
    procs = of_type(logged, MasteryProc)
    assert [(p.holder, p.instance_id, p.step) for p in procs] == [
        ("ada", "bless", 1),
        ("ada", "haste", 1),
        ("bryn", "aid", 3),
    ]
    refused = of_type(logged, ProcRequestRejected)
    assert [(r.holder, r.code, r.expected, r.requested) for r in refused] == [
        ("bryn", "holder_mismatch", 0, 1),
        ("ogre", "count_mismatch", 1, 2),
        ("goblin", "encounter_ended", 0, 1),
    ]
    expired = of_type(logged, EffectExpired)
    assert [(e.instance_id, e.step) for e in expired] == [
        ("bless", 1),
        ("haste", 1),
        ("hex", 1),
        ("shield", 2),
        ("aid", 3),
    ]

    # Every actor's stored state is the fold of its own events.
    assert any_host.bus is not None
    assert any_host.read_engine is not None
    encounter_actor = next(r.actor for r in any_host.runners if r.actor.name == "encounter")
    for actor in (encounter_actor, EFFECTS, MASTERY):
        report = await history.audit(any_host.bus.js, any_host.read_engine, actor, key)
        assert report.ok, (actor.name, report.differences)
        assert report.events > 0

    # The relational rows the encounter store wrote.
    async with any_host.read_engine.connect() as conn:
        head = (
            await conn.execute(select(encounters).where(encounters.c.encounter_id == key))
        ).one()
        assert (head.status, head.active_combatant_id, head.step, bool(head.ending)) == (
            "ended",
            None,
            4,
            False,
        )
        roster = (
            await conn.execute(
                select(combatants.c.combatant_id, combatants.c.defeated)
                .where(combatants.c.encounter_id == key)
                .order_by(combatants.c.position)
            )
        ).all()
        assert [(r.combatant_id, bool(r.defeated)) for r in roster] == [
            ("ada", False),
            ("bryn", False),
            ("goblin", False),
            ("ogre", True),
        ]
        placed = (
            await conn.execute(
                select(initiative.c.combatant_id).where(initiative.c.encounter_id == key)
            )
        ).all()
        assert sorted(r.combatant_id for r in placed) == ["ada", "bryn", "goblin", "ogre"]

    # Metrics recorded at the actors' edge.
    points = metric_points(metric_reader)
    assert metric_value(points, "troupe.encounter.next_turn.requests", outcome="accepted") == 3
    assert metric_value(points, "troupe.encounter.next_turn.conflicts", code="stale_step") == 1
    assert metric_value(points, "troupe.encounter.next_turn.conflicts", code="encounter_ended") == 1
    assert metric_value(points, "troupe.encounter.turns.advanced", then="next_turn") == 3
    assert metric_value(points, "troupe.encounter.next_turn.duration", phase="completed") == 3
    assert metric_value(points, "troupe.effects.expired", kind="BUFF") == 4
    assert metric_value(points, "troupe.effects.expired", kind="DEBUFF") == 1
    assert metric_value(points, "troupe.mastery.procs", mastery="rapid_response") == 3
    for stage, reason in (
        ("resolve", "holder_mismatch"),
        ("resolve", "count_mismatch"),
        ("resolve", "encounter_ended"),
        ("request", "duplicate_request"),
        ("request", "unknown_mastery"),
        ("request", "step_resolved"),
        ("request", "encounter_ended"),
    ):
        assert (
            metric_value(points, "troupe.mastery.proc_rejections", stage=stage, reason=reason) == 1
        ), (stage, reason)
    assert metric_value(points, "troupe.encounter.transitions", transition="ended_ended") == 1


async def test_troupe_audit_reproduces_the_database(
    pg_host: Host, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    from troupe.cli import cmd_audit

    key = scenario.KEY
    for step in scenario.STEPS[:24]:
        await client.send(key, step.command, step.command_id)
        await client.settled(key)
    for domain in DOMAINS:
        args = argparse.Namespace(domain=domain, key=key, json=True)
        assert await cmd_audit(args, pg_host.settings) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["differences"] == [], report
        assert report["stored"] == report["folded"]
        assert report["stored_version"] == report["folded_version"] > 0
