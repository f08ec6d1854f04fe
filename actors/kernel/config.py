"""Runtime settings: every knob documented where it is declared, read from TROUPE_* variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

SyncPolicy = Literal["always", "default"]


class StreamSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the four JetStream streams are declared (file storage, idempotently at start)."""

    prefix: str = ""
    """Prepended to stream and consumer names, so tests and tenants can share one server."""
    replicas: int = 1
    """R1 for one server; R3 on a three-node cluster."""
    duplicate_window_seconds: float = 120.0
    """JetStream drops a repeated Nats-Msg-Id within this window; ledgers cover the rest."""
    commands_max_age_seconds: float = 30 * 86400.0
    """Commands are kept 30 days for audit and redrive; 0 keeps them forever."""
    events_max_age_seconds: float = 0.0
    """Events are the audit history: kept forever by default."""
    outcomes_max_age_seconds: float = 86400.0
    """Command outcomes answer status URLs and idempotent retries for this long."""
    deadletter_max_age_seconds: float = 30 * 86400.0
    partitions: int = 1
    """Partitions per domain; above 1 a subject transform appends partition(n, key)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the runtime needs. ``from_env`` fills it from TROUPE_* variables."""

    home: str = ".troupe"
    """State directory of the embedded default: nats store, SQLite file, locks, caches."""
    nats_url: str | None = None
    """A NATS server with JetStream; None starts an embedded nats-server from the wheel."""
    database_url: str | None = None
    """postgresql+asyncpg://... or sqlite+aiosqlite:///...; None uses SQLite under ``home``."""
    nats_port: int = 4223
    """Port of the embedded nats-server (loopback only); 0 picks a free one."""
    nats_sync: SyncPolicy = "always"
    """Embedded JetStream sync_interval: fsync every write ("always") or the server default."""
    streams: StreamSettings = StreamSettings()
    batch_size: int = 1024
    """Messages fetched and applied per database transaction (at most: a fetch returns
    what is waiting, so a quiet consumer applies small batches with no added latency)."""
    fetch_timeout_seconds: float = 1.0
    ack_wait_seconds: float = 30.0
    max_ack_pending: int = 4096
    handler_attempts: int = 3
    """A message whose handler keeps failing is dead-lettered after this many attempts."""
    retry_backoff_seconds: float = 0.05
    retry_backoff_max_seconds: float = 5.0
    publish_timeout_seconds: float = 5.0
    relay_interval_seconds: float = 1.0
    relay_grace_seconds: float = 10.0
    """The relay leaves rows younger than this to the actor that wrote them."""
    outbox_retention_seconds: float = 7 * 86400.0
    """Published outbox rows are pruned after this long."""
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout_seconds: float = 30.0
    pool_pre_ping: bool = True
    command_timeout_seconds: float = 60.0
    """A PostgreSQL statement that gets no answer this long fails (and the batch is retried)."""
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """WAL + NORMAL survives process crashes; FULL also survives power loss."""
    lease_poll_seconds: float = 0.5
    http: str = "127.0.0.1:8000"
    """Gateway address for ``troupe up`` and ``troupe gateway``."""

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home_path / 'troupe.db').resolve()}"

    @property
    def is_embedded_nats(self) -> bool:
        return self.nats_url is None

    def stream_name(self, base: str) -> str:
        """Stream names carry the configured prefix (``COMMANDS`` or ``T1_COMMANDS``)."""
        return f"{self.streams.prefix}{base}"


_ENV: Mapping[str, str] = {
    "TROUPE_HOME": "home",
    "TROUPE_NATS_URL": "nats_url",
    "TROUPE_DATABASE_URL": "database_url",
    "TROUPE_NATS_PORT": "nats_port",
    "TROUPE_NATS_SYNC": "nats_sync",
    "TROUPE_BATCH_SIZE": "batch_size",
    "TROUPE_FETCH_TIMEOUT": "fetch_timeout_seconds",
    "TROUPE_ACK_WAIT": "ack_wait_seconds",
    "TROUPE_HANDLER_ATTEMPTS": "handler_attempts",
    "TROUPE_RELAY_GRACE": "relay_grace_seconds",
    "TROUPE_POOL_SIZE": "pool_size",
    "TROUPE_MAX_OVERFLOW": "max_overflow",
    "TROUPE_POOL_TIMEOUT": "pool_timeout_seconds",
    "TROUPE_POOL_PRE_PING": "pool_pre_ping",
    "TROUPE_COMMAND_TIMEOUT": "command_timeout_seconds",
    "TROUPE_SQLITE_SYNCHRONOUS": "sqlite_synchronous",
    "TROUPE_HTTP": "http",
}
_STREAM_ENV: Mapping[str, str] = {
    "TROUPE_STREAM_PREFIX": "prefix",
    "TROUPE_STREAM_REPLICAS": "replicas",
    "TROUPE_DUPLICATE_WINDOW": "duplicate_window_seconds",
    "TROUPE_COMMANDS_MAX_AGE": "commands_max_age_seconds",
    "TROUPE_EVENTS_MAX_AGE": "events_max_age_seconds",
    "TROUPE_OUTCOMES_MAX_AGE": "outcomes_max_age_seconds",
    "TROUPE_PARTITIONS": "partitions",
}


class ConfigError(ValueError):
    """Raised when a TROUPE_* variable does not hold a valid value; names the variable."""


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from TROUPE_* variables, then ``overrides`` (command-line flags)."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {field: env[var] for var, field in _ENV.items() if env.get(var)}
    streams = {field: env[var] for var, field in _STREAM_ENV.items() if env.get(var)}
    if streams:
        raw["streams"] = streams
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
