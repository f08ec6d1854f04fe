"""A training job over HTTP: started with the generic command route, listed while it runs,
and its agent registered when it completes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.e2e.conftest import TroupeUp, launch_troupe
from tests.integration.training.support import tiny_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _wait_job(client: httpx.Client, job: str, status: str) -> Any:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        response = client.get(f"/v1/training/jobs/{job}")
        if response.status_code == 200 and response.json()["status"] == status:
            return response.json()
        time.sleep(0.25)
    raise AssertionError(f"job {job} never reached {status}: {response.text}")


def test_start_list_and_register_a_tiny_job(tmp_path: Path) -> None:
    env = {"TROUPE_TRAINING_DIR": str(tmp_path / "training")}
    up: TroupeUp
    with (
        launch_troupe(tmp_path / "home", env) as up,
        httpx.Client(base_url=up.base_url, timeout=30) as client,
    ):
        assert client.get("/v1/training/jobs/nope").status_code == 404
        body = msgspec.json.encode({"config": tiny_config(), "name": "over http"})
        started = client.post(
            "/v1/cmd/training/tiny-http/start",
            content=body,
            headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
        )
        assert started.status_code == 200, started.text
        listed = client.get("/v1/training/jobs").json()
        assert [j["job_id"] for j in listed] == ["tiny-http"]
        done = _wait_job(client, "tiny-http", "completed")
        assert done["name"] == "over http"
        assert done["eval_mean"] is not None
        agents = client.get("/v1/training/agents").json()
        assert [a["agent_id"] for a in agents] == ["tiny-http"]
        assert client.get("/v1/training/jobs", params={"status": "failed"}).json() == []
