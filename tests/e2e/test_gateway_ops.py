"""Operational routes of a real ``troupe up``, ``troupe gateway`` alone, and refusals at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.kernel.embedded import free_port
from tests.e2e.conftest import ROOT, TroupeUp, troupe_environment, wait_ready
from tests.support.schemas import asyncapi_schema, validator_for_bundle

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def http(troupe_up: TroupeUp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=troupe_up.base_url, timeout=30) as client:
        yield client


def test_health_and_status(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    status = http.get("/status")
    assert status.status_code == 200
    body = status.json()
    assert body["ok"] is True
    assert body["version"]
    assert body["build"]
    assert body["uptime_seconds"] >= 0
    names = {check["name"] for check in body["checks"]}
    assert {"database", "nats", "stream:EVENTS", "stream:OUTCOMES", "idempotency"} <= names


def test_metrics_show_route_latency_and_kernel_counters(http: httpx.Client) -> None:
    response = http.post(
        f"/v1/cmd/acct/m{uuid.uuid4().hex[:8]}/open",
        json={"owner": "ada"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 200
    http.get("/no/such/route")
    text = http.get("/metrics").text
    assert (
        'http_server_request_duration_seconds_count{http_request_method="POST",'
        'http_response_status_code="200",http_route="/v1/cmd/acct/{key}/open"}'
    ) in text
    # Unknown paths are counted under one label, never one series per path.
    assert 'http_route="other"' in text
    assert "/no/such/route" not in text
    assert 'troupe_kernel_messages_applied_total{actor="accounts"}' in text
    assert 'troupe_gateway_commands_total{domain="acct",result="applied"}' in text


def test_openapi_documents_each_command_body(http: httpx.Client) -> None:
    document = http.get("/schema/openapi.json").json()
    assert document["openapi"].startswith("3.")
    operation = document["paths"]["/v1/cmd/acct/{key}/deposit"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["amount"] == {"type": "integer", "exclusiveMinimum": 0}
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["amount"]
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["required"] is True
    assert {"200", "202", "400", "409", "422"} <= set(operation["responses"])
    state = document["paths"]["/v1/state/acct/{key}"]["get"]["responses"]["200"]
    reply = state["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(document["components"]["schemas"][reply]["properties"]) == {
        "domain",
        "key",
        "exists",
        "version",
        "state",
    }


def test_asyncapi_document_is_valid_asyncapi_3(http: httpx.Client) -> None:
    document = http.get("/asyncapi.json").json()
    errors = [
        e.message for e in validator_for_bundle(asyncapi_schema("3.0.0")).iter_errors(document)
    ]
    assert errors == []
    assert "cmd.acct.deposit" in document["channels"]
    assert document["channels"]["cmd.acct.deposit"]["address"] == "cmd.acct.{key}.deposit"
    assert "evt.acct.deposited" in document["channels"]
    assert "out.acct" in document["channels"]


def _start_gateway(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "troupe.cli", "gateway", "--http", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_troupe_gateway_serves_alone_against_configured_services(
    troupe_up: TroupeUp, tmp_path: Path
) -> None:
    port = free_port()
    env = troupe_environment(
        {
            "TROUPE_EXTRA_ACTORS": "tests.support.accounts:ACCOUNTS,tests.support.accounts:TALLY",
            "TROUPE_NATS_URL": troupe_up.nats_url,
            "TROUPE_DATABASE_URL": f"sqlite+aiosqlite:///{troupe_up.home / 'troupe.db'}",
        }
    )
    log = tmp_path / "gateway.log"
    process = _start_gateway(env, port, log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(process, base, log, time.monotonic() + 60)
        key = f"g{uuid.uuid4().hex[:8]}"
        with httpx.Client(base_url=base, timeout=30) as client:
            response = client.post(
                f"/v1/cmd/acct/{key}/open",
                json={"owner": "ada"},
                headers={"Idempotency-Key": "one"},
            )
            assert response.status_code == 200, response.text
        # The actors of `troupe up` applied it: its own gateway shows the state.
        with httpx.Client(base_url=troupe_up.base_url, timeout=30) as client:
            assert client.get(f"/v1/state/acct/{key}").json()["state"]["owner"] == "ada"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
    assert code == 0, log.read_text()
    assert "AUTH IS OFF" in log.read_text()


def _run_up(args: list[str], env: dict[str, Any], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "troupe.cli", "up", "--nats-port", "0", "--home", str(home), *args],
        cwd=ROOT,
        env=troupe_environment(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_public_address_without_auth_is_refused(tmp_path: Path) -> None:
    result = _run_up(["--http", f"0.0.0.0:{free_port()}"], {}, tmp_path / "home")
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without authentication" in result.stderr
    assert not (tmp_path / "home" / "nats.url").exists()


def test_a_partial_auth_configuration_is_refused(tmp_path: Path) -> None:
    result = _run_up(
        ["--http", f"127.0.0.1:{free_port()}"],
        {"TROUPE_AUTH_ISSUER": "https://issuer.test/"},
        tmp_path / "home",
    )
    assert result.returncode == 2
    assert "TROUPE_AUTH_AUDIENCE" in result.stderr


def test_troupe_gateway_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    env = troupe_environment({"TROUPE_NATS_URL": "nats://127.0.0.1:1"})
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "gateway", "--http", f"0.0.0.0:{free_port()}"],
        cwd=ROOT,
        env={**env, "TROUPE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "--insecure" in result.stderr
    assert os.path.exists(tmp_path)
