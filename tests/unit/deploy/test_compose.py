"""docker-compose.yml and the cluster override: schema-valid, and wired the way Troupe needs."""

from __future__ import annotations

import copy
import json
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import pytest

from tests.support.compose_schema import (
    InterpolationError,
    interpolate,
    merge_compose,
    schema_errors,
)

from .conftest import ACTORS, APP_SERVICES, CLUSTER_FILE, COMPOSE_FILE

REQUIRED_ENV = {
    "TROUPE_NATS_URL": "nats://nats:4222",
    "TROUPE_DATABASE_URL": "postgresql+asyncpg://troupe:troupe@postgres:5432/troupe",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318",
}


def _services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = document["services"]
    return services


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return {name: {"condition": "service_started"} for name in raw}
    result: dict[str, dict[str, Any]] = raw
    return result


def _volume_source(entry: Any) -> str:
    return str(entry["source"]) if isinstance(entry, dict) else str(entry).split(":")[0]


# --- the Compose Specification ---------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    assert schema_errors(compose, schema) == []


def test_cluster_override_matches_the_compose_specification(
    cluster_override: dict[str, Any], cluster: dict[str, Any], schema: dict[str, Any]
) -> None:
    assert schema_errors(cluster_override, schema) == []
    assert schema_errors(cluster, schema) == []


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("services", "nats", "imagee"), "nats", "services/nats"),
        (
            ("services", "encounter", "depends_on", "migrate", "condition"),
            "service_done",
            "services/encounter/depends_on",
        ),
        (("services", "postgres", "healthcheck", "retries"), [3], "services/postgres/healthcheck"),
        (("volumes", "pgdata"), "not-a-mapping", "volumes/pgdata"),
    ],
)
def test_the_schema_catches_mistakes(
    compose: dict[str, Any],
    schema: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
    where: str,
) -> None:
    broken = copy.deepcopy(compose)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    errors = schema_errors(broken, schema)
    assert any(error.startswith(f"{where}") for error in errors), errors


# --- one image, one block of settings ----------------------------------------------------------


def test_app_services_are_exactly_the_troupe_processes(compose: dict[str, Any]) -> None:
    uses_build = {name for name, service in _services(compose).items() if "build" in service}
    assert uses_build == set(APP_SERVICES)


def test_every_app_service_runs_the_same_image_and_build(compose: dict[str, Any]) -> None:
    services = _services(compose)
    images = {services[name]["image"] for name in APP_SERVICES}
    builds = {json.dumps(services[name]["build"], sort_keys=True) for name in APP_SERVICES}
    assert len(images) == 1
    assert builds == {json.dumps({"context": ".", "dockerfile": "deploy/Dockerfile"})}


def test_app_services_come_from_one_anchored_block() -> None:
    raw = COMPOSE_FILE.read_text()
    assert re.search(r"^x-app: &app$", raw, re.MULTILINE)
    assert re.search(r"^x-app-environment: &app-environment$", raw, re.MULTILINE)
    for name in APP_SERVICES:
        block = re.search(rf"^  {name}:\n((?:    .*\n|\s*\n)+)", raw, re.MULTILINE)
        assert block, f"service {name} not found"
        assert "<<: *app\n" in block.group(1), f"{name} does not merge the x-app block"
        assert "<<: *app-environment" in block.group(1), f"{name} repeats its environment"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_reach_nats_postgres_and_the_collector(
    compose: dict[str, Any], name: str
) -> None:
    environment = _services(compose)[name]["environment"]
    for variable, value in REQUIRED_ENV.items():
        assert environment[variable] == value
    assert environment["OTEL_SERVICE_NAME"] == f"troupe-{name}"


@pytest.mark.parametrize("actor", ACTORS)
def test_every_actor_has_its_own_service(compose: dict[str, Any], actor: str) -> None:
    service = _services(compose)[actor]
    assert service["command"] == ["actor", actor]
    assert service["environment"]["TROUPE_METRICS_ADDR"] == "0.0.0.0:9464"


def test_relay_and_gateway_commands(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert services["relay"]["command"] == ["relay"]
    gateway = services["gateway"]
    assert gateway["command"] == ["gateway", "--http", "0.0.0.0:8000", "--insecure"]
    # Published on the host's loopback only: --insecure must not mean exposed.
    assert "127.0.0.1:8000:8000" in gateway["ports"]


# --- start-up order ----------------------------------------------------------------------------


def test_migrate_is_a_one_shot_after_postgres_is_healthy(compose: dict[str, Any]) -> None:
    migrate = _services(compose)["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert _depends_on(migrate)["postgres"] == {"condition": "service_healthy"}
    assert "migrate" not in _depends_on(migrate)


@pytest.mark.parametrize("name", [s for s in APP_SERVICES if s != "migrate"])
def test_app_services_wait_for_migrations_and_healthy_nats(
    compose: dict[str, Any], name: str
) -> None:
    depends = _depends_on(_services(compose)[name])
    assert depends["migrate"] == {"condition": "service_completed_successfully"}
    assert depends["nats"] == {"condition": "service_healthy"}


def test_dependencies_exist_and_conditions_can_be_met(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, service in services.items():
        for target, spec in _depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not a one-shot"


def test_dependency_graph_has_no_cycle(compose: dict[str, Any]) -> None:
    graph = {name: set(_depends_on(s)) for name, s in _services(compose).items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the assertion below reports it
        pytest.fail(f"depends_on cycle: {exc.args[1]}")
    assert order.index("postgres") < order.index("migrate") < order.index("encounter")


# --- infrastructure ----------------------------------------------------------------------------


def test_nats_is_the_official_image_with_jetstream_config(compose: dict[str, Any]) -> None:
    nats = _services(compose)["nats"]
    match = re.fullmatch(r"nats:(\d+)\.(\d+)(?:\.\d+)?(?:-alpine)?", nats["image"])
    assert match, nats["image"]
    assert (int(match[1]), int(match[2])) >= (2, 10)
    assert nats["command"] == ["-c", "/etc/nats/single.conf"]
    assert "./deploy/nats/single.conf:/etc/nats/single.conf:ro" in nats["volumes"]
    assert "nats-data:/data" in nats["volumes"]
    test = nats["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert any("127.0.0.1:8222/healthz" in part for part in test)


def test_postgres_16_with_a_named_volume_and_pg_isready(compose: dict[str, Any]) -> None:
    postgres = _services(compose)["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)*(-\w+)?", postgres["image"])
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    env = postgres["environment"]
    user, password, database = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
    expected = f"postgresql+asyncpg://{user}:{password}@postgres:5432/{database}"
    assert expected == REQUIRED_ENV["TROUPE_DATABASE_URL"]


def test_observability_stack_is_present(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name in ("otel-collector", "prometheus", "grafana", "tempo", "nats-exporter"):
        assert name in services
    assert services["otel-collector"]["image"].startswith("otel/opentelemetry-collector")


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in _services(compose).items():
        for entry in service.get("volumes", []):
            source = _volume_source(entry)
            if source.startswith((".", "/")):
                continue
            assert source in declared, f"{name} mounts undeclared volume {source}"
            used.add(source)
    assert used == declared


def test_bind_mounted_files_exist(compose: dict[str, Any], repo_root: Path) -> None:
    for name, service in _services(compose).items():
        for entry in service.get("volumes", []):
            source = _volume_source(entry)
            if source.startswith("."):
                assert (repo_root / source).exists(), f"{name} mounts missing {source}"


def test_published_host_ports_do_not_clash(compose: dict[str, Any]) -> None:
    published = [
        port.rsplit(":", 1)[0]
        for service in _services(compose).values()
        for port in service.get("ports", [])
    ]
    assert len(published) == len(set(published))


def test_interpolation_follows_compose_rules() -> None:
    environ = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d}/${UNSET:-d}/${EMPTY:-d}/${EMPTY-d}", environ) == "x/d/d/"
    assert interpolate("$SET-$$HOME-${SET:+alt}-${UNSET:+alt}", environ) == "x-$HOME-alt-"
    assert interpolate({"a": ["${SET}"]}, environ) == {"a": ["x"]}
    with pytest.raises(InterpolationError, match="UNSET: give it"):
        interpolate("${UNSET:?give it}", environ)


def test_port_defaults_can_be_overridden() -> None:
    from tests.support.compose_schema import load_compose

    document = load_compose(COMPOSE_FILE, {"TROUPE_HTTP_PORT": "18000"})
    assert "127.0.0.1:18000:8000" in document["services"]["gateway"]["ports"]


# --- the cluster variant -----------------------------------------------------------------------


NODES = ("nats", "nats-n2", "nats-n3")


def test_cluster_adds_two_nodes_with_their_own_storage(cluster: dict[str, Any]) -> None:
    services = _services(cluster)
    data_volumes = []
    for node in NODES:
        volumes = [_volume_source(v) for v in services[node]["volumes"]]
        data = [v for v in volumes if not v.startswith(".")]
        assert len(data) == 1, volumes
        data_volumes.append(data[0])
        assert data[0] in cluster["volumes"]
        assert "healthcheck" in services[node]
    assert len(set(data_volumes)) == 3


@pytest.mark.parametrize(("node", "conf"), list(zip(NODES, ("n1", "n2", "n3"), strict=True)))
def test_each_node_runs_its_own_config(
    cluster: dict[str, Any], repo_root: Path, node: str, conf: str
) -> None:
    service = _services(cluster)[node]
    assert service["command"] == ["-c", f"/etc/nats/cluster/{conf}.conf"]
    assert "./deploy/nats/cluster:/etc/nats/cluster:ro" in service["volumes"]
    assert (repo_root / "deploy" / "nats" / "cluster" / f"{conf}.conf").is_file()


def test_cluster_routes_name_reachable_hosts(cluster: dict[str, Any], repo_root: Path) -> None:
    services = _services(cluster)
    hosts = set(services)
    for service in services.values():
        for network in (service.get("networks") or {}).values():
            hosts.update((network or {}).get("aliases", []))
    for conf in ("n1", "n2", "n3"):
        text = (repo_root / "deploy" / "nats" / "cluster" / f"{conf}.conf").read_text()
        routes = re.findall(r"nats-route://([\w-]+):6222", text)
        assert len(routes) == 3
        assert set(routes) <= hosts


@pytest.mark.parametrize("name", APP_SERVICES)
def test_cluster_clients_know_every_node_and_use_three_replicas(
    cluster: dict[str, Any], name: str
) -> None:
    environment = _services(cluster)[name]["environment"]
    urls = environment["TROUPE_NATS_URL"].split(",")
    assert urls == ["nats://nats-n1:4222", "nats://nats-n2:4222", "nats://nats-n3:4222"]
    assert environment["TROUPE_STREAM_REPLICAS"] == "3"
    # Everything else still comes from the base file.
    assert environment["TROUPE_DATABASE_URL"] == REQUIRED_ENV["TROUPE_DATABASE_URL"]
    assert environment["OTEL_SERVICE_NAME"] == f"troupe-{name}"


def test_cluster_override_only_touches_known_services(
    compose: dict[str, Any], cluster_override: dict[str, Any]
) -> None:
    new = set(_services(cluster_override)) - set(_services(compose))
    assert new == {"nats-n2", "nats-n3"}
    assert CLUSTER_FILE.parent.name == "deploy"


def test_merge_replaces_commands_and_merges_volumes_by_target() -> None:
    base = {"services": {"a": {"command": ["x"], "volumes": ["v:/data", "./c:/etc/c:ro"]}}}
    override = {"services": {"a": {"command": ["y"], "volumes": ["w:/data"]}}}
    merged = merge_compose(base, override)["services"]["a"]
    assert merged["command"] == ["y"]
    assert merged["volumes"] == ["w:/data", "./c:/etc/c:ro"]
