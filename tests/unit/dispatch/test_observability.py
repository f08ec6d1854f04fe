"""The dispatch alerts and dashboard name only series the dispatch code exports, and fire right."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from actors.dispatch import metrics
from actors.kernel import telemetry

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "dispatch.json"
METRIC = re.compile(r"\b((?:troupe_dispatch|troupe_kernel)_[a-z_]+)\b")


def _group() -> dict[str, Any]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    [group] = [g for g in groups if g["name"] == "dispatch"]
    return dict(group)


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


@pytest.fixture
def exported() -> set[str]:
    telemetry.configure()
    try:
        m = metrics.get()
        m.decision("DENY", "kill_switch")
        m.approval_resolved("expired")
        m.activation("refused")
        m.proposal("close_out", suppressed=False)
        m.holds(1, 1, 5.0)
        m.paused_scopes({"tenant": 1})
        m.expiries_sent(1)
        kernel = telemetry.kernel_metrics()
        kernel.applied("tickets")
        kernel.batch("tickets", 3, 0.01)
        kernel.outbox_unsent("tickets", 1, 1.0)
        text = telemetry.prometheus_text()[0].decode()
    finally:
        telemetry.reset()
    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    return names


def test_every_dispatch_series_referenced_is_exported(exported: set[str]) -> None:
    exprs = [str(r["expr"]) for r in _group()["rules"]] + _dashboard_exprs()
    referenced = {name for expr in exprs for name in METRIC.findall(expr)}
    assert {n for n in referenced if n.startswith("troupe_dispatch")}, "no dispatch series used"
    assert referenced <= exported, sorted(referenced - exported)


def test_the_dashboard_shows_every_dispatch_series(exported: set[str]) -> None:
    shown = " ".join(_dashboard_exprs())
    for name in sorted(n for n in exported if n.startswith("troupe_dispatch")):
        base = name.removesuffix("_created")
        assert base in shown or name.endswith("_created"), name


def test_each_dispatch_alert_is_complete_and_points_somewhere_useful() -> None:
    for rule in _group()["rules"]:
        assert rule["alert"].startswith("Dispatch")
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in {**labels, "job": "troupe-actor"}.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def _expect(alert: str, summary: str, **labels: str) -> dict[str, Any]:
    [rule] = [r for r in _group()["rules"] if r["alert"] == alert]
    return {
        "exp_labels": {"severity": rule["labels"]["severity"], **labels},
        "exp_annotations": {
            "summary": summary,
            "description": rule["annotations"]["description"],
        },
    }


def _unit_tests() -> dict[str, Any]:
    decisions = "troupe_dispatch_decisions_total"
    return {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "overdue holds alert after ten minutes",
                "interval": "1m",
                "input_series": [
                    _series("troupe_dispatch_approvals_overdue", "0 2x15", instance="tickets")
                ],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "DispatchApprovalsOverdue", "exp_alerts": []},
                    {
                        "eval_time": "12m",
                        "alertname": "DispatchApprovalsOverdue",
                        "exp_alerts": [
                            _expect(
                                "DispatchApprovalsOverdue",
                                "2 held commands are past their approval deadline",
                            )
                        ],
                    },
                ],
            },
            {
                "name": "a refused activation alerts at once",
                "interval": "1m",
                "input_series": [
                    _series(
                        "troupe_dispatch_bundle_activations_total",
                        "0 0 1 1 1",
                        outcome="refused",
                        instance="policy",
                    )
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": "DispatchBundleActivationRefused",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "3m",
                        "alertname": "DispatchBundleActivationRefused",
                        "exp_alerts": [
                            _expect(
                                "DispatchBundleActivationRefused",
                                "A policy bundle activation was refused",
                            )
                        ],
                    },
                ],
            },
            {
                "name": "mostly denied traffic alerts",
                "interval": "1m",
                "input_series": [
                    _series(decisions, "0+60x40", decision="DENY", rule="kill_switch"),
                    _series(decisions, "0+10x40", decision="ALLOW", rule="default"),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "DispatchDenialRateHigh",
                        "exp_alerts": [
                            _expect(
                                "DispatchDenialRateHigh",
                                "85.71% of ticket commands are denied by policy",
                            )
                        ],
                    }
                ],
            },
            {
                "name": "an idle system does not alert on its denial share",
                "interval": "1m",
                "input_series": [
                    _series(decisions, "0+1x40", decision="DENY", rule="kill_switch"),
                ],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "DispatchDenialRateHigh", "exp_alerts": []}
                ],
            },
            {
                "name": "the dispatch outbox lag alerts per consumer, other actors' does not",
                "interval": "1m",
                "input_series": [
                    _series(
                        "troupe_kernel_outbox_oldest_age_seconds",
                        "20x5",
                        actor="tickets-p1",
                        instance="a",
                    ),
                    _series(
                        "troupe_kernel_outbox_oldest_age_seconds",
                        "20x5",
                        actor="encounter",
                        instance="b",
                    ),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "4m",
                        "alertname": "DispatchTicketsOutboxLag",
                        "exp_alerts": [
                            _expect(
                                "DispatchTicketsOutboxLag",
                                "tickets-p1: dispatch events wait 20s to publish",
                                actor="tickets-p1",
                            )
                        ],
                    }
                ],
            },
        ],
    }


def test_promtool_runs_the_dispatch_alert_unit_tests(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    tests = tmp_path / "dispatch.test.yml"
    tests.write_text(yaml.safe_dump(_unit_tests(), sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
