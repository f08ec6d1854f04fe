"""Idempotency-Key rules: key validation, per-caller scoping, fingerprints, replay and conflicts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol
from urllib.parse import parse_qsl, urlencode

import msgspec

from gateway.problems import ProblemError, bad_request, conflict

__all__ = [
    "HEADER",
    "MAX_KEY_LENGTH",
    "MUTATING_METHODS",
    "REPLAYED_HEADER",
    "Fingerprint",
    "IdempotencyConfig",
    "IdempotencyError",
    "IdempotencyKeyReused",
    "IdempotencyRecord",
    "IdempotencyStore",
    "IdempotentResult",
    "InFlight",
    "InvalidIdempotencyKey",
    "Mismatch",
    "Mismatched",
    "MissingIdempotencyKey",
    "Proceed",
    "Replay",
    "RequestInFlight",
    "Settle",
    "StoredRecord",
    "StoredResponse",
    "begin",
    "canonical_json",
    "classify",
    "command_id",
    "complete",
    "decode_record",
    "diff",
    "encode_record",
    "fingerprint",
    "parse_key",
    "replay_headers",
    "run_idempotent",
    "should_remember",
    "storage_key",
]

HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
"""Set to ``true`` on a response that repeats a stored one."""
MAX_KEY_LENGTH: Final = 255
MUTATING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

COMMAND_ID_NAMESPACE: Final = uuid.UUID("5d0c4a1e-6f43-5b7e-9a51-2f9e3c1b7d20")
"""uuid5 namespace of command ids derived from idempotency keys; never change it."""

_SF_STRING = re.compile(r'^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$')
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_REPLAYABLE_HEADERS: Final = frozenset(
    {"content-type", "content-location", "location", "etag", "last-modified", "retry-after"}
)


class IdempotencyError(ProblemError):
    """Raised when a mutating request's idempotency key is missing, malformed, or conflicting."""


class MissingIdempotencyKey(IdempotencyError):
    """Raised when a mutating request carries no ``Idempotency-Key`` header (400)."""

    def __init__(self, method: str) -> None:
        super().__init__(
            bad_request(
                f"{method} requests need an {HEADER} header (a unique value per operation, "
                f"1-{MAX_KEY_LENGTH} characters, e.g. a UUID)",
                code="idempotency_key_missing",
            )
        )
        self.method = method


class InvalidIdempotencyKey(IdempotencyError):
    """Raised when the ``Idempotency-Key`` header is empty, too long, repeated or bad (400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(bad_request(f"invalid {HEADER}: {reason}", code="idempotency_key_invalid"))
        self.reason = reason


class ValueChange(msgspec.Struct, frozen=True):
    """A request attribute that differs: what the first request had, what this one has."""

    original: str
    received: str


class Mismatch(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How a request differs from the earlier one with the same key.

    ``fields`` names which of method, path and body differ; ``body`` lists JSON
    pointers (RFC 6901) to the differing body members (``""``: the whole body).
    """

    fields: tuple[Literal["method", "path", "body"], ...]
    method: ValueChange | None = None
    path: ValueChange | None = None
    body: tuple[str, ...] = ()


class IdempotencyKeyReused(IdempotencyError):
    """Raised when a key comes back with a different method, path or body (409)."""

    def __init__(self, mismatch: Mismatch) -> None:
        super().__init__(
            conflict(
                f"this {HEADER} was already used for a different request "
                f"({', '.join(mismatch.fields)} differ); use a new key for a new operation",
                code="idempotency_key_reused",
                mismatch=msgspec.to_builtins(mismatch),
            )
        )
        self.mismatch = mismatch


class RequestInFlight(IdempotencyError):
    """Raised when the original request is still running after a retry waited its limit (409)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            conflict(
                f"a request with this {HEADER} is still being processed; retry in {retry_after}s",
                code="idempotency_in_flight",
            ),
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


def parse_key(values: Sequence[str], *, method: str, required: bool = True) -> str | None:
    """The idempotency key from the header's values, or ``None`` for non-mutating methods.

    Accepts a bare value or an RFC 8941 quoted string (the IETF draft's form);
    both spellings of one key are the same key.
    """
    method = method.upper()
    if method not in MUTATING_METHODS:
        return None
    if not values:
        if required:
            raise MissingIdempotencyKey(method)
        return None
    if len(values) > 1:
        raise InvalidIdempotencyKey(f"send exactly one {HEADER} header, got {len(values)}")
    raw = values[0].strip(" \t")
    if raw.startswith('"'):
        match = _SF_STRING.match(raw)
        if match is None:
            raise InvalidIdempotencyKey("a quoted key must be a valid quoted string")
        key = re.sub(r"\\(.)", r"\1", match[1])
    else:
        key = raw
    if not key:
        raise InvalidIdempotencyKey("the key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidIdempotencyKey(f"the key is {len(key)} characters; at most {MAX_KEY_LENGTH}")
    for position, char in enumerate(key):
        if unicodedata.category(char) == "Cc":
            raise InvalidIdempotencyKey(
                f"the key has a control character (U+{ord(char):04X}) at position {position}"
            )
    return key


def _scope_bytes(tenant: str, subject: str, key: str) -> bytes:
    # A JSON array keeps the parts apart whatever characters they contain.
    return msgspec.json.encode([tenant, subject, key])


def storage_key(tenant: str, subject: str, key: str) -> str:
    """Where the record lives (a NATS KV key): one caller's key never meets another's."""
    return "idem." + hashlib.sha256(_scope_bytes(tenant, subject, key)).hexdigest()


def command_id(tenant: str, subject: str, key: str) -> str:
    """The deterministic command id (``Nats-Msg-Id``) for this caller's key: retries share it."""
    return str(uuid.uuid5(COMMAND_ID_NAMESPACE, _scope_bytes(tenant, subject, key).decode()))


class Fingerprint(msgspec.Struct, frozen=True, kw_only=True):
    """What makes two requests "the same": method, target and canonical body.

    ``body`` keeps the canonical body (when small) so a mismatch can name the
    differing members; ``body_sha256`` decides equality either way.
    """

    method: str
    path: str
    body_sha256: str
    body: bytes | None = None
    json: bool = True


def canonical_json(body: bytes) -> bytes:
    """``body`` re-encoded with sorted keys and no whitespace; raises ``msgspec.DecodeError``."""
    return msgspec.json.encode(msgspec.json.decode(body), order="sorted")


def fingerprint(
    method: str, path: str, body: bytes, *, query: str = "", keep_body_up_to: int = 65536
) -> Fingerprint:
    """The fingerprint of a request; key order and whitespace in a JSON body do not matter."""
    is_json = True
    if body.strip():
        try:
            canonical = canonical_json(body)
        except msgspec.DecodeError:
            canonical, is_json = body, False
    else:
        canonical = b""
    target = path
    if query:
        target += "?" + urlencode(sorted(parse_qsl(query, keep_blank_values=True)))
    return Fingerprint(
        method=method.upper(),
        path=target,
        body_sha256=hashlib.sha256(canonical).hexdigest(),
        body=canonical if len(canonical) <= keep_body_up_to else None,
        json=is_json,
    )


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointers(original: Any, received: Any, at: str, out: list[str]) -> None:
    if type(original) is not type(received):
        out.append(at)
    elif isinstance(original, dict):
        for name in sorted(original.keys() | received.keys()):
            where = f"{at}/{_escape(name)}"
            if name not in original or name not in received:
                out.append(where)
            else:
                _pointers(original[name], received[name], where, out)
    elif isinstance(original, list):
        for index in range(max(len(original), len(received))):
            where = f"{at}/{index}"
            if index >= len(original) or index >= len(received):
                out.append(where)
            else:
                _pointers(original[index], received[index], where, out)
    elif original != received:
        out.append(at)


def _body_pointers(original: Fingerprint, received: Fingerprint) -> tuple[str, ...]:
    if original.body is None or received.body is None or not (original.json and received.json):
        return ("",)
    if not original.body or not received.body:
        return ("",)
    out: list[str] = []
    _pointers(msgspec.json.decode(original.body), msgspec.json.decode(received.body), "", out)
    return tuple(out) or ("",)


def diff(original: Fingerprint, received: Fingerprint) -> Mismatch | None:
    """What differs between two fingerprints, or ``None`` if they are the same request."""
    fields: list[Literal["method", "path", "body"]] = []
    method = path = None
    body: tuple[str, ...] = ()
    if original.method != received.method:
        fields.append("method")
        method = ValueChange(original.method, received.method)
    if original.path != received.path:
        fields.append("path")
        path = ValueChange(original.path, received.path)
    if original.body_sha256 != received.body_sha256:
        fields.append("body")
        body = _body_pointers(original, received)
    if not fields:
        return None
    return Mismatch(fields=tuple(fields), method=method, path=path, body=body)


class IdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True, tag="gateway.idempotency.v1"):
    """What is stored per scoped key: the request's fingerprint and, once done, its response."""

    state: Literal["in_flight", "completed"]
    command_id: str
    fingerprint: Fingerprint
    created_at: datetime
    expires_at: datetime
    lease_until: datetime | None = None
    """While in flight: after this, the original is presumed dead and a retry may take over."""
    completed_at: datetime | None = None
    status_code: int | None = None
    response_body: bytes = b""
    response_headers: tuple[tuple[str, str], ...] = ()


_RECORD_DECODER = msgspec.json.Decoder(IdempotencyRecord)


def encode_record(record: IdempotencyRecord) -> bytes:
    """The stored form of a record (JSON, readable with ``nats kv get``)."""
    return msgspec.json.encode(record)


def decode_record(data: bytes) -> IdempotencyRecord:
    """A stored record back from its bytes."""
    return _RECORD_DECODER.decode(data)


def _parse_duration(name: str, text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{name}={text!r} is not a duration like 86400, 90s, 30m, 24h or 7d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


class IdempotencyConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How long keys are remembered and how long a retry waits for an in-flight original."""

    retention: timedelta = timedelta(hours=24)
    """A key and its response are kept this long after the first request."""
    lease: timedelta = timedelta(seconds=60)
    """An in-flight record older than this is presumed abandoned (its gateway died)."""
    wait: timedelta = timedelta(seconds=30)
    """How long a retry waits for an in-flight original before answering 409 + Retry-After."""

    def __post_init__(self) -> None:
        for name in ("retention", "lease", "wait"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"idempotency {name} must be positive")
        if self.lease > self.retention:
            raise ValueError("idempotency lease must not exceed the retention")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IdempotencyConfig:
        """Read ``TROUPE_IDEMPOTENCY_RETENTION``, ``_LEASE`` and ``_WAIT`` (``90s``, ``24h``)."""
        env = os.environ if env is None else env
        fields: dict[str, timedelta] = {}
        for name in ("retention", "lease", "wait"):
            variable = f"TROUPE_IDEMPOTENCY_{name.upper()}"
            if text := env.get(variable, "").strip():
                fields[name] = _parse_duration(variable, text)
        return cls(**fields)


def begin(
    fp: Fingerprint, command: str, now: datetime, config: IdempotencyConfig
) -> IdempotencyRecord:
    """The in-flight record written before the command is sent."""
    return IdempotencyRecord(
        state="in_flight",
        command_id=command,
        fingerprint=fp,
        created_at=now,
        expires_at=now + config.retention,
        lease_until=now + config.lease,
    )


def replay_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The response headers worth repeating on a replay (no Date, cookies, or hop-by-hop ones)."""
    return tuple(
        (name.lower(), value) for name, value in headers if name.lower() in _REPLAYABLE_HEADERS
    )


def complete(
    record: IdempotencyRecord,
    status_code: int,
    body: bytes,
    headers: Iterable[tuple[str, str]],
    now: datetime,
) -> IdempotencyRecord:
    """The record once the response is known; it keeps the original expiry."""
    return msgspec.structs.replace(
        record,
        state="completed",
        lease_until=None,
        completed_at=now,
        status_code=status_code,
        response_body=body,
        response_headers=replay_headers(headers),
    )


def should_remember(status_code: int) -> bool:
    """Whether a response is final for its key.

    Success and the actor's own refusals are (a retry must see the same
    answer); 5xx, timeouts and rate limiting are not, so the retry runs again
    with the same command id and JetStream plus the ledger keep it single.
    """
    return 200 <= status_code < 500 and status_code not in (408, 425, 429)


class Proceed(msgspec.Struct, frozen=True):
    """No live record: run the request (``abandoned``: take over a dead in-flight one)."""

    reason: Literal["new", "expired", "abandoned"]


class Replay(msgspec.Struct, frozen=True):
    """The same request completed before: answer with its stored response."""

    record: IdempotencyRecord


class InFlight(msgspec.Struct, frozen=True):
    """The same request is running now: wait for its outcome."""

    record: IdempotencyRecord


class Mismatched(msgspec.Struct, frozen=True):
    """The key was used for a different request: 409 with what differs."""

    record: IdempotencyRecord
    mismatch: Mismatch


Outcome = Proceed | Replay | InFlight | Mismatched


def classify(record: IdempotencyRecord | None, received: Fingerprint, now: datetime) -> Outcome:
    """What to do with a request given the record stored under its scoped key."""
    if record is None:
        return Proceed("new")
    if record.expires_at <= now:
        return Proceed("expired")
    mismatch = diff(record.fingerprint, received)
    if mismatch is not None:
        return Mismatched(record, mismatch)
    if record.state == "completed":
        return Replay(record)
    if record.lease_until is not None and record.lease_until <= now:
        return Proceed("abandoned")
    return InFlight(record)


class StoredRecord(msgspec.Struct, frozen=True):
    """A record with the store's revision, for compare-and-set updates."""

    record: IdempotencyRecord
    revision: int


class IdempotencyStore(Protocol):
    """Keyed records with atomic create and revision-checked updates (a NATS KV bucket).

    The bucket's max age should be at least the retention; records also carry
    their own ``expires_at``, which ``classify`` honours.
    """

    async def get(self, key: str) -> StoredRecord | None:
        """The record under ``key``, or ``None``."""
        ...

    async def create(self, key: str, record: IdempotencyRecord) -> int | None:
        """Store ``record`` only if ``key`` is absent; its revision, or ``None`` if present."""
        ...

    async def replace(self, key: str, record: IdempotencyRecord, revision: int) -> int | None:
        """Overwrite only at ``revision``; the new revision, or ``None`` if it moved."""
        ...

    async def delete(self, key: str, revision: int) -> bool:
        """Remove only at ``revision``; False if it moved."""
        ...

    async def wait_for_change(self, key: str, revision: int) -> None:
        """Return once ``key`` moves past ``revision`` or is deleted (callers bound the wait)."""
        ...


class StoredResponse(msgspec.Struct, frozen=True, kw_only=True):
    """An HTTP response as the gateway sends and replays it."""

    status_code: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class IdempotentResult(msgspec.Struct, frozen=True, kw_only=True):
    """A response and whether it was replayed from an earlier identical request."""

    response: StoredResponse
    replayed: bool
    command_id: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


Settle = Callable[[Coroutine[Any, Any, Any]], object]
"""Runs a record update without the response waiting for it (e.g. by spawning a task)."""


async def run_idempotent(
    store: IdempotencyStore,
    *,
    tenant: str,
    subject: str,
    key: str,
    request: Fingerprint,
    execute: Callable[[str], Awaitable[StoredResponse]],
    config: IdempotencyConfig | None = None,
    now: Callable[[], datetime] = _utcnow,
    settle: Settle | None = None,
) -> IdempotentResult:
    """Run ``execute(command_id)`` at most once per scoped key, replaying its response after.

    Concurrent identical requests: one creates the record and runs; the others
    wait for its outcome (up to ``config.wait``) and replay it. A different
    request under the same key raises ``IdempotencyKeyReused`` at once.

    ``settle``: the final record update (completed, or freed) is handed to it
    instead of being awaited, so the response leaves one store write sooner.
    A retry arriving meanwhile sees the record in flight and waits for that
    write, as it would for a slow original.
    """
    config = config or IdempotencyConfig()
    where = storage_key(tenant, subject, key)
    command = command_id(tenant, subject, key)
    deadline = time.monotonic() + config.wait.total_seconds()
    # Most keys are new: try the atomic create first and read only if the key exists.
    record = begin(request, command, now(), config)
    revision = await store.create(where, record)
    if revision is not None:
        return await _execute(store, where, record, revision, execute, now, settle)
    while True:
        stored = await store.get(where)
        match classify(None if stored is None else stored.record, request, now()):
            case Replay(record):
                return IdempotentResult(
                    response=StoredResponse(
                        status_code=record.status_code or 200,
                        body=record.response_body,
                        headers=(*record.response_headers, (REPLAYED_HEADER.lower(), "true")),
                    ),
                    replayed=True,
                    command_id=record.command_id,
                )
            case Mismatched(_, mismatch):
                raise IdempotencyKeyReused(mismatch)
            case InFlight(record):
                assert stored is not None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestInFlight(max(1, round(config.wait.total_seconds() / 2)))
                until_lease = remaining
                if record.lease_until is not None:
                    until_lease = (record.lease_until - now()).total_seconds()
                # Wake up at the deadline, or when the lease ends so an abandoned key is taken over.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.01, min(remaining, until_lease))):
                        await store.wait_for_change(where, stored.revision)
            case Proceed():
                record = begin(request, command, now(), config)
                if stored is None:
                    revision = await store.create(where, record)
                else:
                    revision = await store.replace(where, record, stored.revision)
                if revision is None:
                    continue  # another request claimed the key first: look again
                return await _execute(store, where, record, revision, execute, now, settle)


async def _execute(
    store: IdempotencyStore,
    where: str,
    record: IdempotencyRecord,
    revision: int,
    execute: Callable[[str], Awaitable[StoredResponse]],
    now: Callable[[], datetime],
    settle: Settle | None,
) -> IdempotentResult:
    try:
        response = await execute(record.command_id)
    except BaseException:
        # Free the key so a retry runs again (with the same command id) instead of waiting.
        await asyncio.shield(store.delete(where, revision))
        raise
    update: Coroutine[Any, Any, Any]
    if should_remember(response.status_code):
        done = complete(record, response.status_code, response.body, response.headers, now())
        update = store.replace(where, done, revision)
    else:
        update = store.delete(where, revision)
    if settle is None:
        await update
    else:
        settle(update)
    return IdempotentResult(response=response, replayed=False, command_id=record.command_id)
