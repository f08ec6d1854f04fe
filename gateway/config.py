"""The gateway's settings, each documented where declared, read from TROUPE_GATEWAY_*."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

import msgspec

from gateway.idempotency import IdempotencyConfig

__all__ = ["GatewayConfigError", "GatewaySettings"]

_BUCKET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class GatewayConfigError(ValueError):
    """Raised when a TROUPE_GATEWAY_* or TROUPE_IDEMPOTENCY_* variable holds an unusable value."""


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the HTTP gateway behaves (``GatewaySettings.from_env`` reads the environment)."""

    outcome_wait_seconds: float = 5.0
    """How long a command request waits for the actor's outcome before answering 202."""
    max_outcome_wait_seconds: float = 30.0
    """The longest wait a client may ask for with ``Prefer: wait=N``."""
    request_timeout_seconds: float = 5.0
    """Deadline of the request/reply calls: preview and state."""
    idempotency: IdempotencyConfig = IdempotencyConfig()
    """Key retention, in-flight lease and retry wait (``TROUPE_IDEMPOTENCY_*``)."""
    idempotency_bucket: str = "gateway_idempotency"
    """The NATS KV bucket holding idempotency records and pending-command markers."""
    idempotency_storage: Literal["file", "memory"] = "file"
    """Where the bucket keeps records. ``memory`` spares two disk writes per command; a NATS
    restart then forgets keys (commands still apply once: their ids are derived from the keys,
    and JetStream and the ledger drop repeats), so a retry gets the command's real outcome
    rather than a replay, and a reused key with another body is no longer refused with 409."""
    events_page_default: int = 100
    """Records per page of ``GET /v1/events`` when the client names no ``limit``."""
    events_page_max: int = 1000
    """The largest ``limit`` a client may ask for."""
    live_batch: int = 256
    """Records fetched per pull by a WebSocket tail."""
    live_heartbeat_seconds: float = 15.0
    """A quiet WebSocket tail sends a heartbeat frame this often (keeps proxies from closing it)."""
    max_body_bytes: int = 1024 * 1024
    """Request bodies above this are refused with 413 (NATS's default max payload is 1 MiB)."""

    def __post_init__(self) -> None:
        if self.outcome_wait_seconds < 0:
            raise GatewayConfigError("the outcome wait must not be negative")
        if self.max_outcome_wait_seconds < self.outcome_wait_seconds:
            raise GatewayConfigError("the largest outcome wait must be at least the default wait")
        if timedelta(seconds=self.max_outcome_wait_seconds) >= self.idempotency.lease:
            # A request still waiting when its lease ends would let a retry run it a second time.
            raise GatewayConfigError(
                "the idempotency lease must be longer than the longest outcome wait"
            )
        if self.request_timeout_seconds <= 0:
            raise GatewayConfigError("the request timeout must be positive")
        if not _BUCKET.match(self.idempotency_bucket):
            raise GatewayConfigError(
                f"bucket name {self.idempotency_bucket!r} must be 1-64 letters, digits, '_' or '-'"
            )
        if not 1 <= self.events_page_default <= self.events_page_max <= 10_000:
            raise GatewayConfigError("events page sizes must satisfy 1 <= default <= max <= 10000")
        if not 1 <= self.live_batch <= 10_000:
            raise GatewayConfigError("live batch must be between 1 and 10000")
        if self.live_heartbeat_seconds <= 0:
            raise GatewayConfigError("the heartbeat interval must be positive")
        if self.max_body_bytes < 1024:
            raise GatewayConfigError("max body size must be at least 1024 bytes")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """Settings from ``TROUPE_GATEWAY_*`` (and ``TROUPE_IDEMPOTENCY_*``) variables."""
        env = os.environ if env is None else env
        names = {
            "TROUPE_GATEWAY_OUTCOME_WAIT": "outcome_wait_seconds",
            "TROUPE_GATEWAY_MAX_OUTCOME_WAIT": "max_outcome_wait_seconds",
            "TROUPE_GATEWAY_REQUEST_TIMEOUT": "request_timeout_seconds",
            "TROUPE_GATEWAY_IDEMPOTENCY_BUCKET": "idempotency_bucket",
            "TROUPE_GATEWAY_IDEMPOTENCY_STORAGE": "idempotency_storage",
            "TROUPE_GATEWAY_EVENTS_PAGE_DEFAULT": "events_page_default",
            "TROUPE_GATEWAY_EVENTS_PAGE_MAX": "events_page_max",
            "TROUPE_GATEWAY_LIVE_BATCH": "live_batch",
            "TROUPE_GATEWAY_LIVE_HEARTBEAT": "live_heartbeat_seconds",
            "TROUPE_GATEWAY_MAX_BODY_BYTES": "max_body_bytes",
        }
        raw: dict[str, Any] = {
            field: env[var].strip() for var, field in names.items() if env.get(var, "").strip()
        }
        try:
            idempotency = IdempotencyConfig.from_env(env)
            settings = msgspec.convert(raw, cls, strict=False)
        except (ValueError, msgspec.ValidationError) as exc:
            raise GatewayConfigError(f"invalid gateway configuration: {exc}") from exc
        try:
            return msgspec.structs.replace(settings, idempotency=idempotency)
        except ValueError as exc:
            raise GatewayConfigError(str(exc)) from exc
