"""Shared fixtures for the deployment checks: parsed Compose files and the Compose schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.compose_schema import (
    REPO_ROOT,
    SchemaUnavailable,
    compose_schema,
    load_compose,
    merge_compose,
)

DEPLOY = REPO_ROOT / "deploy"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CLUSTER_FILE = DEPLOY / "docker-compose.cluster.yml"

ACTORS = (
    "encounter",
    "effects",
    "mastery",
    "lobby",
    "match",
    "ratings",
    "training",
    "tickets",
    "policy",
    "workflow",
)
"""Every actor that runs as its own container."""
APP_SERVICES = (*ACTORS, "migrate", "relay", "gateway")
"""Services that run the Troupe image."""


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose reads it with no variables set (defaults apply)."""
    return load_compose(COMPOSE_FILE)


@pytest.fixture(scope="session")
def cluster_override() -> dict[str, Any]:
    return load_compose(CLUSTER_FILE)


@pytest.fixture(scope="session")
def cluster(compose: dict[str, Any], cluster_override: dict[str, Any]) -> dict[str, Any]:
    """The base file with the cluster override applied."""
    return merge_compose(compose, cluster_override)


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    try:
        return compose_schema()
    except SchemaUnavailable as exc:
        pytest.fail(f"the Compose Specification schema could not be obtained: {exc}")
