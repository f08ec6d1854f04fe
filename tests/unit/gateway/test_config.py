"""Gateway settings from the environment, and the combinations refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.config import GatewayConfigError, GatewaySettings
from gateway.idempotency import IdempotencyConfig


def test_defaults() -> None:
    settings = GatewaySettings.from_env({})
    assert settings == GatewaySettings()
    assert settings.outcome_wait_seconds == 5.0
    assert settings.idempotency.retention == timedelta(hours=24)
    assert settings.idempotency_storage == "file"


def test_from_env() -> None:
    settings = GatewaySettings.from_env(
        {
            "TROUPE_GATEWAY_OUTCOME_WAIT": "2.5",
            "TROUPE_GATEWAY_EVENTS_PAGE_MAX": "50",
            "TROUPE_GATEWAY_EVENTS_PAGE_DEFAULT": "20",
            "TROUPE_GATEWAY_IDEMPOTENCY_BUCKET": "idem-2",
            "TROUPE_GATEWAY_IDEMPOTENCY_STORAGE": "memory",
            "TROUPE_IDEMPOTENCY_RETENTION": "48h",
        }
    )
    assert settings.outcome_wait_seconds == 2.5
    assert (settings.events_page_default, settings.events_page_max) == (20, 50)
    assert settings.idempotency_bucket == "idem-2"
    assert settings.idempotency_storage == "memory"
    assert settings.idempotency.retention == timedelta(hours=48)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"TROUPE_GATEWAY_OUTCOME_WAIT": "soon"}, "outcome_wait_seconds"),
        ({"TROUPE_GATEWAY_OUTCOME_WAIT": "-1"}, "must not be negative"),
        ({"TROUPE_GATEWAY_OUTCOME_WAIT": "60"}, "largest outcome wait"),
        ({"TROUPE_GATEWAY_IDEMPOTENCY_BUCKET": "no.dots"}, "bucket name"),
        ({"TROUPE_GATEWAY_IDEMPOTENCY_STORAGE": "disk"}, "idempotency_storage"),
        ({"TROUPE_GATEWAY_EVENTS_PAGE_DEFAULT": "5000"}, "page sizes"),
        ({"TROUPE_IDEMPOTENCY_RETENTION": "forever"}, "duration"),
        ({"TROUPE_IDEMPOTENCY_LEASE": "20s"}, "lease must be longer"),
    ],
)
def test_unusable_values_are_refused_with_the_reason(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(GatewayConfigError, match=fragment):
        GatewaySettings.from_env(env)


def test_a_lease_shorter_than_the_longest_wait_is_refused() -> None:
    with pytest.raises(GatewayConfigError, match="lease"):
        GatewaySettings(idempotency=IdempotencyConfig(lease=timedelta(seconds=10)))
