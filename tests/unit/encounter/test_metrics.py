"""Turn-engine metrics and logs: names, bounded labels, previews and retries, alerts, dashboard."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families

from actors.effects import rules as effects_rules
from actors.effects.actor import decide as effects_decide
from actors.effects.rules import initial_state as effects_initial
from actors.encounter import metrics, rules
from actors.encounter.actor import make_decide
from actors.encounter.flagstore import FlagHolder
from actors.kernel import logs, telemetry
from actors.kernel.telemetry import Settings
from actors.mastery import rules as mastery_rules
from actors.mastery.actor import decide as mastery_decide
from actors.mastery.rules import initial_state as mastery_initial
from schemas.base import Context, Event, Rejection
from schemas.effects import ApplyEffect, EffectKind, Expiration, ExpirationsResolved
from schemas.encounter import NextTurn, TurnEnding
from schemas.flags import COMBAT, FeatureFlag
from schemas.mastery import MasteryResolved, RequestProc
from tests.unit.encounter.support import KEY, started

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "encounters.json"
OURS = re.compile(r"\b(troupe_(?:encounter|effects|mastery)_[a-z_]+)\b")

_seq = count(1)


def stored(key: str = KEY, message_id: str | None = None, *, seq: int | None = None) -> Context:
    """A context as the runtime builds it for a message read from a stream."""
    n = next(_seq)
    mid = message_id or f"m-{n}"
    return Context(
        key=key,
        message_id=mid,
        subject="test",
        received_at=datetime.now(UTC) - timedelta(milliseconds=5),
        correlation_id=mid,
        stream_seq=seq if seq is not None else n,
    )


def preview(key: str = KEY) -> Context:
    """A preview context: no stream sequence."""
    return Context(
        key=key,
        message_id="preview-1",
        subject="t",
        received_at=datetime.now(UTC),
        correlation_id="p",
    )


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    r = InMemoryMetricReader()
    telemetry.configure(settings=Settings(), metric_readers=[r])
    try:
        yield r
    finally:
        telemetry.reset()


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    out: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    p: Any = point
                    value = getattr(p, "value", None)
                    out.setdefault(metric.name, []).append(
                        (dict(p.attributes or {}), value if value is not None else p.count)
                    )
    return out


def value(found: dict[str, list[tuple[dict[str, Any], float]]], name: str, **labels: str) -> float:
    return sum(
        v for attrs, v in found.get(name, []) if all(attrs.get(k) == w for k, w in labels.items())
    )


def test_a_turn_step_is_counted_once_and_previews_not_at_all(reader: InMemoryMetricReader) -> None:
    decide = make_decide(FlagHolder(COMBAT))
    state = started()
    decide(state, NextTurn(expected_step=1), preview())
    ctx = stored()
    decision = decide(state, NextTurn(expected_step=1), ctx)
    decide(state, NextTurn(expected_step=1), ctx)  # the same stored message, a retried batch
    assert not isinstance(decision, Rejection)
    ending = rules.fold(state, [e for e in decision if isinstance(e, Event)])
    decide(ending, NextTurn(expected_step=1), stored())  # turn_ending conflict
    decide(ending, NextTurn(expected_step=0), stored())  # also turn_ending
    decide(ending, MasteryResolved(step=1), stored())
    found = points(reader)
    assert value(found, "troupe.encounter.next_turn.requests", outcome="accepted") == 1
    assert value(found, "troupe.encounter.next_turn.requests", outcome="conflict") == 2
    assert value(found, "troupe.encounter.next_turn.conflicts", code="turn_ending") == 2
    assert value(found, "troupe.encounter.turns.advanced", then="next_turn") == 1
    assert value(found, "troupe.encounter.next_turn.duration", phase="accepted") == 1
    assert value(found, "troupe.encounter.next_turn.duration", phase="completed") == 1


def test_flag_refusals_are_counted_by_verdict(reader: InMemoryMetricReader) -> None:
    holder = FlagHolder(COMBAT)
    holder.set(FeatureFlag(name=COMBAT, enabled=True, rollout_percent=100, kill_switch=True), 1)
    decision = make_decide(holder)(started(), NextTurn(expected_step=1), stored())
    assert isinstance(decision, Rejection)
    assert decision.code == "combat_disabled"
    found = points(reader)
    assert value(found, "troupe.encounter.flag.refusals", verdict="kill_switch") == 1
    assert value(found, "troupe.encounter.next_turn.requests", outcome="refused") == 1


def _resolved(step: int, *placed_by: str) -> ExpirationsResolved:
    return ExpirationsResolved(
        step=step,
        count=len(placed_by),
        expirations=tuple(
            Expiration(instance_id=f"i{n}", owner="b", placed_by=p, kind="BUFF", name="x")
            for n, p in enumerate(placed_by)
        ),
    )


def test_effects_and_mastery_counts(reader: InMemoryMetricReader) -> None:
    fx = effects_initial(KEY)
    kinds: tuple[EffectKind, ...] = ("BUFF", "BUFF", "DEBUFF")
    for n, kind in enumerate(kinds):
        apply = ApplyEffect(
            instance_id=f"e{n}", owner="b", placed_by="a", kind=kind, name="x", duration=1
        )
        decision = effects_decide(fx, apply, stored())
        assert not isinstance(decision, Rejection)
        fx = effects_rules.fold(fx, [e for e in decision if isinstance(e, Event)])
    effects_decide(fx, TurnEnding(step=1, round=1, combatant_id="a"), stored())

    ms = mastery_initial(KEY)
    for holder, n in (("a", 2), ("b", 1)):
        decision = mastery_decide(
            ms, RequestProc(holder=holder, mastery="rapid_response", count=n, step=1), stored()
        )
        assert not isinstance(decision, Rejection)
        ms = mastery_rules.fold(ms, [e for e in decision if isinstance(e, Event)])
    mastery_decide(ms, RequestProc(holder="a", mastery="nope", count=1, step=1), stored())
    mastery_decide(ms, _resolved(1, "a", "a"), stored())
    found = points(reader)
    assert value(found, "troupe.effects.expired", kind="BUFF") == 2
    assert value(found, "troupe.effects.expired", kind="DEBUFF") == 1
    assert value(found, "troupe.mastery.procs", mastery="rapid_response") == 2
    assert (
        value(found, "troupe.mastery.proc_rejections", stage="resolve", reason="holder_mismatch")
        == 1
    )
    assert (
        value(found, "troupe.mastery.proc_rejections", stage="request", reason="unknown_mastery")
        == 1
    )


def test_labels_stay_bounded(reader: InMemoryMetricReader) -> None:
    m = metrics.turn_metrics()
    for n in range(metrics.MAX_CODES + 10):
        m.proc_rejected("resolve", f"code_{n}")
    m.proc_rejected("resolve", "an error message with spaces")
    found = points(reader)
    reasons = {a["reason"] for a, _ in found["troupe.mastery.proc_rejections"]}
    assert len(reasons) == metrics.MAX_CODES + 1
    assert telemetry.OVERFLOW_LABEL in reasons


def test_logs_carry_the_encounter_and_combatant(reader: InMemoryMetricReader) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    parent = logging.getLogger("troupe")
    level = parent.level
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    try:
        decide = make_decide(FlagHolder(COMBAT))
        state = started()
        decision = decide(state, NextTurn(expected_step=1), stored())
        assert not isinstance(decision, Rejection)
        ending = rules.fold(state, [e for e in decision if isinstance(e, Event)])
        decide(ending, MasteryResolved(step=1), stored())
        decide(ending, NextTurn(expected_step=9), stored())
    finally:
        parent.removeHandler(handler)
        parent.setLevel(level)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    by_msg = {r["msg"]: r for r in records}
    for msg, combatant in (("turn ending", "a"), ("turn ended", "a"), ("turn started", "b")):
        assert by_msg[msg]["encounter_id"] == KEY
        assert by_msg[msg]["combatant_id"] == combatant
        assert by_msg[msg]["actor"] == "encounter"
    refused = next(r for r in records if r["msg"].startswith("next_turn refused"))
    assert refused["code"] == "turn_ending"
    assert refused["encounter_id"] == KEY


def exported_names() -> set[str]:
    """Every Prometheus sample name the turn engine exports once each instrument recorded."""
    telemetry.configure(settings=Settings())
    try:
        m = metrics.turn_metrics()
        m.next_turn("accepted")
        m.next_turn("conflict", "stale_step")
        m.turn_advanced("next_turn")
        m.next_turn_latency("completed", 0.1)
        m.flag_refusal("kill_switch")
        m.transition("created")
        m.effects_expired("BUFF", 1)
        m.procs("rapid_response", 1)
        m.proc_rejected("resolve", "count_mismatch")
        metrics.GAUGES.active, metrics.GAUGES.stuck = 1, 0
        text = telemetry.prometheus_text()[0].decode()
    finally:
        metrics.GAUGES.active = metrics.GAUGES.stuck = None
        telemetry.reset()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _our_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    (group,) = [g for g in groups if g["name"] == "troupe-encounters"]
    rules_: list[dict[str, Any]] = group["rules"]
    return rules_


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_alerts_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_names()
    exprs = [str(r["expr"]) for r in _our_rules()] + _dashboard_exprs()
    referenced = {name for expr in exprs for name in OURS.findall(expr)}
    assert {
        "troupe_encounter_active",
        "troupe_encounter_stuck_steps",
        "troupe_encounter_turns_advanced_total",
        "troupe_encounter_next_turn_duration_seconds_bucket",
        "troupe_encounter_next_turn_conflicts_total",
        "troupe_effects_expired_total",
        "troupe_mastery_procs_total",
        "troupe_mastery_proc_rejections_total",
    } <= referenced
    assert referenced <= exported, sorted(referenced - exported)


def test_the_dashboard_covers_every_turn_engine_metric() -> None:
    exported = {n for n in exported_names() if OURS.fullmatch(n)}
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported}
    shown = " ".join(_dashboard_exprs())
    missing = [f for f in sorted(families) if f not in shown]
    assert not missing, missing


PROMTOOL_TESTS = """
rule_files:
  - {alerts}
evaluation_interval: 1m
tests:
  - name: a stuck step pages after five minutes
    interval: 1m
    input_series:
      - series: 'troupe_encounter_stuck_steps{{instance="encounter",job="troupe-actor"}}'
        values: "0 0 1x10"
    alert_rule_test:
      - eval_time: 5m
        alertname: TroupeEncounterStepStuck
        exp_alerts: []
      - eval_time: 8m
        alertname: TroupeEncounterStepStuck
        exp_alerts:
          - exp_labels:
              severity: critical
            exp_annotations:
              summary: "1 encounter steps have been ending for over a minute"
              description: >-
                A next_turn was accepted (TurnEnding) but the step never ended: effects did not
                answer with ExpirationsResolved, mastery with MasteryResolved, or the encounter
                did not handle MasteryResolved. Players of those encounters cannot act. Follow
                the troubleshooting flowchart in docs/encounters.md (consumer lag, dlq.effects,
                dlq.mastery, dlq.encounter).
  - name: most next_turn commands conflicting warns after fifteen minutes
    interval: 1m
    input_series:
      - series: 'troupe_encounter_next_turn_requests_total{{outcome="accepted"}}'
        values: "0+10x40"
      - series: 'troupe_encounter_next_turn_requests_total{{outcome="conflict"}}'
        values: "0+30x40"
      - series: 'troupe_encounter_next_turn_conflicts_total{{code="stale_step"}}'
        values: "0+30x40"
    alert_rule_test:
      - eval_time: 10m
        alertname: TroupeEncounterConflictRatioHigh
        exp_alerts: []
      - eval_time: 30m
        alertname: TroupeEncounterConflictRatioHigh
        exp_alerts:
          - exp_labels:
              severity: warning
            exp_annotations:
              summary: "75% of next_turn commands are conflicts"
              description: >-
                Most next_turn commands name a step the encounter has left. A client retries
                without reading the current step (it is in the rejection) or several clients
                race for one table. No turn advances twice; players see refusals.
"""


def test_promtool_accepts_the_encounter_alerts(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    tests = tmp_path / "encounters.test.yml"
    tests.write_text(PROMTOOL_TESTS.format(alerts=ALERTS))
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", str(tests)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_complete() -> None:
    for rule in _our_rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", str(rule["for"]))
    assert msgspec.json.decode(DASHBOARD.read_bytes())["uid"] == "troupe-encounters"
