"""Prometheus, alert rules, the OTel collector and Grafana: consistent with each other and code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from actors.kernel import telemetry
from actors.kernel.telemetry import Settings

from .conftest import ACTORS, DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"

KERNEL_ALERTS = {
    "TroupeOutboxLagHigh",
    "TroupeOutboxBacklog",
    "TroupeDeadLettersRising",
    "TroupeHandlerLatencyP99High",
    "TroupePublishFailures",
    "TroupeRedeliveriesHigh",
    "TroupeActorDown",
    "TroupeGateway5xxRate",
    "TroupeNatsStreamBehind",
    "TroupeNatsAckPendingHigh",
}
DURATION = re.compile(r"^\d+[smhdw]$")
METRIC = re.compile(r"\b((?:troupe_kernel|http_server)_[a-z_]+)\b")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]


def _dashboards() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, json.loads(path.read_text()))
        for path in sorted((GRAFANA / "dashboards").rglob("*.json"))
    ]


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _exprs() -> list[str]:
    exprs = [str(rule["expr"]) for rule in _rules()]
    for _, dashboard in _dashboards():
        for panel in _panels(dashboard):
            exprs.extend(str(t["expr"]) for t in panel.get("targets", []) if "expr" in t)
    return exprs


# --- alert rules -------------------------------------------------------------------------------


def test_alert_rules_have_the_expected_names() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names))
    # Domains append their own groups; the kernel's alerts must all be there, each once.
    assert set(names) >= KERNEL_ALERTS


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: str(rule["alert"]))
def test_each_alert_is_complete(rule: dict[str, Any]) -> None:
    assert isinstance(rule["expr"], str)
    assert rule["expr"].strip()
    assert DURATION.match(str(rule["for"]))
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]


def test_metrics_named_in_alerts_and_dashboards_are_the_ones_troupe_exports() -> None:
    telemetry.configure(settings=Settings())
    try:
        kernel = telemetry.kernel_metrics()
        kernel.applied("encounter")
        kernel.duplicates("encounter")
        kernel.dead_lettered("encounter", "decode")
        kernel.rejected("encounter", "conflict")
        kernel.redelivered("encounter")
        kernel.batch("encounter", 3, 0.01)
        kernel.outbox_unsent("encounter", 2, 1.0)
        kernel.outbox_published("encounter", 2, 0.5)
        kernel.publish_failed("encounter", "timeout")
        telemetry.http_metrics().request("GET", "/encounters/{key}", 200, 0.01)
        text = telemetry.prometheus_text()[0].decode()
    finally:
        telemetry.reset()
    exported = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    referenced = {name for expr in _exprs() for name in METRIC.findall(expr)}
    assert referenced, "no Troupe metric referenced"
    assert referenced <= exported, sorted(referenced - exported)


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    return found


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    promtool = _promtool()
    for args in (
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ):
        done = subprocess.run(
            [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    promtool = _promtool()
    config = (PROMETHEUS / "prometheus.yml").read_text()
    # The config names the rule file by its path inside the container.
    config = config.replace("/etc/prometheus/alerts.yml", str(PROMETHEUS / "alerts.yml"))
    (tmp_path / "prometheus.yml").write_text(config)
    done = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- Prometheus scrape config --------------------------------------------------------------


def _jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in _yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]}


def _targets(job: dict[str, Any]) -> list[str]:
    return [target for config in job["static_configs"] for target in config["targets"]]


def test_prometheus_scrapes_every_actor_relay_and_gateway(compose: dict[str, Any]) -> None:
    jobs = _jobs()
    assert sorted(_targets(jobs["troupe-actor"])) == sorted(f"{a}:9464" for a in ACTORS)
    assert _targets(jobs["troupe-relay"]) == ["relay:9464"]
    assert _targets(jobs["troupe-gateway"]) == ["gateway:8000"]
    assert jobs["troupe-gateway"]["metrics_path"] == "/metrics"
    # The address each actor serves /metrics on is the one scraped.
    for actor in ACTORS:
        address = compose["services"][actor]["environment"]["TROUPE_METRICS_ADDR"]
        assert telemetry.parse_address(address)[1] == 9464


def test_every_scrape_target_is_a_compose_service(compose: dict[str, Any]) -> None:
    services = set(compose["services"]) | {"localhost"}
    for job in _jobs().values():
        for target in _targets(job):
            assert target.rsplit(":", 1)[0] in services, f"{job['job_name']}: {target}"


def test_alert_jobs_match_scrape_jobs() -> None:
    jobs = set(_jobs())
    for rule in _rules():
        for job_pattern in re.findall(r'job=~?"([^"]+)"', rule["expr"]):
            assert set(job_pattern.split("|")) <= jobs, rule["alert"]


def test_rule_file_is_mounted_where_prometheus_reads_it(compose: dict[str, Any]) -> None:
    rule_files = _yaml(PROMETHEUS / "prometheus.yml")["rule_files"]
    volumes = compose["services"]["prometheus"]["volumes"]
    assert rule_files == ["/etc/prometheus/alerts.yml"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes


# --- OpenTelemetry collector -------------------------------------------------------------------


def test_collector_pipelines_use_defined_components(compose: dict[str, Any]) -> None:
    config = _yaml(DEPLOY / "otel" / "collector.yaml")
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{name}: {kind} {component} undefined"
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"]
    pipelines = config["service"]["pipelines"]
    assert "prometheus" in pipelines["metrics"]["exporters"]
    assert "debug" in pipelines["metrics"]["exporters"]
    assert "debug" in pipelines["traces"]["exporters"]


def test_collector_listens_where_the_apps_send_and_prometheus_scrapes(
    compose: dict[str, Any],
) -> None:
    config = _yaml(DEPLOY / "otel" / "collector.yaml")
    endpoint = compose["services"]["encounter"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.rsplit(":", 1)[1] == str(urlsplit(endpoint).port)
    assert urlsplit(endpoint).hostname == "otel-collector"
    prometheus_port = config["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    assert f"otel-collector:{prometheus_port}" in _targets(_jobs()["otel-collector-pushed"])
    tempo_host = config["exporters"]["otlp/tempo"]["endpoint"].split(":")[0]
    assert tempo_host in compose["services"]


# --- Grafana -----------------------------------------------------------------------------------


def _datasources() -> dict[str, dict[str, Any]]:
    config = _yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yaml")
    return {source["uid"]: source for source in config["datasources"]}


def _datasource_refs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        reference = node.get("datasource")
        if isinstance(reference, dict):
            yield reference
        for value in node.values():
            yield from _datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_refs(item)


def test_datasources_point_at_compose_services(compose: dict[str, Any]) -> None:
    sources = _datasources()
    assert sum(1 for s in sources.values() if s.get("isDefault")) == 1
    for source in sources.values():
        assert urlsplit(source["url"]).hostname in compose["services"]
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["tempo"]["type"] == "tempo"


def test_there_are_dashboards_and_each_parses_with_a_unique_uid() -> None:
    dashboards = _dashboards()
    assert dashboards
    uids = [dashboard["uid"] for _, dashboard in dashboards]
    assert len(uids) == len(set(uids))
    for path, dashboard in dashboards:
        assert dashboard["title"], path
        assert dashboard["panels"], path


def test_every_dashboard_references_a_provisioned_datasource() -> None:
    sources = _datasources()
    for path, dashboard in _dashboards():
        references = list(_datasource_refs(dashboard))
        assert references, path
        for reference in references:
            assert reference["uid"] in sources, f"{path.name}: unknown datasource {reference}"
            assert reference["type"] == sources[reference["uid"]]["type"]


def test_panels_do_not_overlap() -> None:
    for path, dashboard in _dashboards():
        taken: set[tuple[int, int]] = set()
        for panel in _panels(dashboard):
            grid = panel["gridPos"]
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert grid["x"] + grid["w"] <= 24, f"{path.name}: {panel['title']} too wide"
            assert not cells & taken, f"{path.name}: {panel['title']} overlaps"
            taken |= cells


def test_kernel_dashboard_covers_the_kernel_metrics() -> None:
    (kernel,) = [d for _, d in _dashboards() if d["uid"] == "troupe-kernel"]
    exprs = " ".join(
        str(target["expr"]) for panel in _panels(kernel) for target in panel.get("targets", [])
    )
    for metric in (
        "troupe_kernel_messages_applied_total",
        "troupe_kernel_messages_duplicates_total",
        "troupe_kernel_messages_dead_lettered_total",
        "troupe_kernel_batch_size_bucket",
        "troupe_kernel_handler_duration_seconds_bucket",
        "troupe_kernel_outbox_oldest_age_seconds",
        "troupe_kernel_outbox_unsent",
    ):
        assert metric in exprs


def test_dashboard_provider_reads_the_mounted_folder(compose: dict[str, Any]) -> None:
    provider = _yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml")
    (entry,) = provider["providers"]
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{entry['options']['path']}:ro" in volumes
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
