"""The Battleship dashboard and alert rules name only metrics the code exports."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from actors.battleship import telemetry as bt
from actors.battleship.engine import Rules
from actors.battleship.env import BattleshipEnv
from actors.battleship.vector import BattleshipVectorEnv
from actors.kernel import telemetry
from actors.kernel.telemetry import Settings

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "battleship.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
HERE = Path(__file__).parent
METRIC = re.compile(r"\b((?:battleship|troupe_kernel)_[a-z_]+)\b")


def _group() -> dict[str, Any]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    (group,) = [g for g in groups if g["name"] == "battleship"]
    return dict(group)


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [str(rule["expr"]) for rule in _group()["rules"]]
    for panel in dashboard["panels"]:
        exprs += [str(t["expr"]) for t in panel.get("targets", [])]
    return exprs


def _exported() -> set[str]:
    telemetry.configure(settings=Settings())
    try:
        with bt.InstrumentedGame(Rules.of(4, 4, (2,)), game_id="x") as game:
            game.setup_random(0, random.Random(0))
            game.setup_random(1, random.Random(1))
            game.fire(0, 0, 0)
        env = bt.InstrumentedEnv(BattleshipEnv(4, 4, (2,)), time_every=1)
        env.reset(seed=0)
        env.step(0)
        env.close()  # the episode's counts are added when it ends
        vector = bt.InstrumentedVectorEnv(BattleshipVectorEnv(2, 4, 4, (2,)))
        vector.reset(seed=0)
        vector.step([0, 0])
        kernel = telemetry.kernel_metrics()
        kernel.applied("match")
        kernel.rejected("match", "unavailable")
        kernel.batch("match", 1, 0.01)
        text = telemetry.prometheus_text()[0].decode()
    finally:
        telemetry.reset()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_every_metric_referenced_is_exported() -> None:
    referenced = {name for expr in _exprs() for name in METRIC.findall(expr)}
    assert {n for n in referenced if n.startswith("battleship_")}
    assert referenced <= _exported(), sorted(referenced - _exported())


def test_the_dashboard_covers_the_battleship_metrics() -> None:
    exprs = " ".join(_exprs())
    for metric in (
        "battleship_game_started_total",
        "battleship_game_completed_total",
        "battleship_shots_total",
        "battleship_game_duration_seconds_bucket",
        "battleship_env_actions_total",
        "battleship_env_resets_total",
        "battleship_env_step_duration_seconds_bucket",
        "battleship_env_reward_value",
    ):
        assert metric in exprs, metric
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "troupe-battleship"


def test_each_battleship_alert_is_complete() -> None:
    rules = _group()["rules"]
    assert [r["alert"] for r in rules] == [
        "BattleshipAgentUnavailable",
        "BattleshipMatchesNotFinishing",
        "BattleshipEnvInvalidActionsHigh",
    ]
    for rule in rules:
        assert re.match(r"^\d+[smh]$", str(rule["for"]))
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_promtool_unit_tests_of_the_battleship_alerts() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    done = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
