"""Idempotency-Key rules: parsing, scoping, fingerprints, classification and the protocol flow."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.idempotency import (
    MAX_KEY_LENGTH,
    REPLAYED_HEADER,
    Fingerprint,
    IdempotencyConfig,
    IdempotencyKeyReused,
    IdempotencyRecord,
    IdempotencyStore,
    InFlight,
    InvalidIdempotencyKey,
    Mismatch,
    Mismatched,
    MissingIdempotencyKey,
    Proceed,
    Replay,
    RequestInFlight,
    StoredRecord,
    StoredResponse,
    ValueChange,
    begin,
    canonical_json,
    classify,
    command_id,
    complete,
    decode_record,
    diff,
    encode_record,
    fingerprint,
    parse_key,
    replay_headers,
    run_idempotent,
    should_remember,
    storage_key,
)

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = IdempotencyConfig()
NATS_KV_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")


# The header


@pytest.mark.parametrize("method", ["POST", "put", "PATCH", "DELETE"])
def test_missing_key_on_mutating_requests(method: str) -> None:
    with pytest.raises(MissingIdempotencyKey) as caught:
        parse_key([], method=method)
    assert caught.value.problem.status == 400
    assert caught.value.problem.code == "idempotency_key_missing"


def test_key_optional_when_not_required() -> None:
    assert parse_key([], method="POST", required=False) is None


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_ignore_the_key(method: str) -> None:
    assert parse_key(["anything"], method=method) is None


def test_valid_keys() -> None:
    key = str(uuid.uuid4())
    assert parse_key([key], method="POST") == key
    assert parse_key([f"  {key}\t"], method="POST") == key
    assert parse_key(["k" * MAX_KEY_LENGTH], method="POST") == "k" * MAX_KEY_LENGTH
    assert parse_key(["ключ-1"], method="POST") == "ключ-1"


def test_quoted_key_is_the_same_key() -> None:
    assert parse_key(['"abc-123"'], method="POST") == "abc-123"
    assert parse_key([r'"a\"b\\c"'], method="POST") == 'a"b\\c'


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([""], "the key is empty"),
        (["   "], "the key is empty"),
        (['""'], "the key is empty"),
        (["k" * (MAX_KEY_LENGTH + 1)], "256 characters; at most 255"),
        (["a", "b"], "send exactly one Idempotency-Key header, got 2"),
        (["ab\x00c"], r"control character \(U\+0000\) at position 2"),
        (["a\nb"], r"U\+000A"),
        (["a\tb"], r"U\+0009"),
        (["a\x7f"], r"U\+007F"),
        (["a\x85"], r"U\+0085"),
        (['"unterminated'], "quoted string"),
        (['"bad \\x escape"'], "quoted string"),
    ],
)
def test_invalid_keys(values: list[str], reason: str) -> None:
    with pytest.raises(InvalidIdempotencyKey, match=reason) as caught:
        parse_key(values, method="POST")
    assert caught.value.problem.status == 400
    assert caught.value.problem.code == "idempotency_key_invalid"


# Scoping


def test_scoped_storage_key_and_command_id_are_deterministic() -> None:
    assert storage_key("t", "alice", "k") == storage_key("t", "alice", "k")
    assert command_id("t", "alice", "k") == command_id("t", "alice", "k")
    assert uuid.UUID(command_id("t", "alice", "k")).version == 5
    assert NATS_KV_KEY.match(storage_key("t", "alice", "k/../\x00 é"))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("t", "alice", "k"), ("t", "bob", "k")),
        (("t1", "alice", "k"), ("t2", "alice", "k")),
        (("t", "alice", "k1"), ("t", "alice", "k2")),
        # Joining with a separator would make these collide.
        (("t", "a|b", "c"), ("t", "a", "b|c")),
        (("t", 'a","b', "c"), ("t", "a", 'b","c')),
    ],
)
def test_one_callers_key_never_meets_anothers(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    assert storage_key(*a) != storage_key(*b)
    assert command_id(*a) != command_id(*b)


# Fingerprints and differences


def test_fingerprint_ignores_key_order_and_whitespace() -> None:
    one = fingerprint("post", "/v1/x", b'{"a": 1, "b": {"d": [1, 2], "c": "z"}}')
    two = fingerprint("POST", "/v1/x", b'{"b":{"c":"z","d":[1,2]},"a":1}')
    assert one == two
    assert one.method == "POST"
    assert one.body == b'{"a":1,"b":{"c":"z","d":[1,2]}}'


def test_fingerprint_sorts_the_query() -> None:
    assert fingerprint("POST", "/p", b"", query="b=2&a=1") == fingerprint(
        "POST", "/p", b"", query="a=1&b=2"
    )
    assert fingerprint("POST", "/p", b"", query="a=1").path == "/p?a=1"


def test_empty_body_differs_from_null() -> None:
    assert fingerprint("DELETE", "/p", b"") != fingerprint("DELETE", "/p", b"null")


def test_non_json_body_is_fingerprinted_raw() -> None:
    fp = fingerprint("POST", "/p", b"name=x")
    assert not fp.json
    assert fp.body == b"name=x"
    assert diff(fp, fingerprint("POST", "/p", b"name=y")) == Mismatch(fields=("body",), body=("",))


def test_large_bodies_keep_only_the_digest() -> None:
    big = msgspec.json.encode({"blob": "x" * 100})
    fp = fingerprint("POST", "/p", big, keep_body_up_to=50)
    assert fp.body is None
    other = fingerprint("POST", "/p", msgspec.json.encode({"blob": "y" * 100}), keep_body_up_to=50)
    assert diff(fp, other) == Mismatch(fields=("body",), body=("",))


def test_diff_names_method_path_and_body_pointers() -> None:
    original = fingerprint(
        "POST",
        "/v1/encounters/e1/next_turn",
        msgspec.json.encode(
            {
                "expected_step": 7,
                "meta": {"a/b": 1, "t~": 2, "same": True},
                "list": [1, 2, 3],
                "gone": 1,
                "kind": 1,
            }
        ),
    )
    received = fingerprint(
        "PUT",
        "/v1/encounters/e2/next_turn",
        msgspec.json.encode(
            {
                "expected_step": 8,
                "meta": {"a/b": 2, "t~": 3, "same": True},
                "list": [1, 9],
                "new": 1,
                "kind": 1.0,
            }
        ),
    )
    mismatch = diff(original, received)
    assert mismatch == Mismatch(
        fields=("method", "path", "body"),
        method=ValueChange("POST", "PUT"),
        path=ValueChange("/v1/encounters/e1/next_turn", "/v1/encounters/e2/next_turn"),
        body=(
            "/expected_step",
            "/gone",
            "/kind",
            "/list/1",
            "/list/2",
            "/meta/a~1b",
            "/meta/t~0",
            "/new",
        ),
    )


def test_diff_of_the_same_request_is_none() -> None:
    fp = fingerprint("POST", "/p", b'{"a": 1}')
    assert diff(fp, fp) is None


def test_diff_of_a_different_top_level_type() -> None:
    a = fingerprint("POST", "/p", b"[1]")
    b = fingerprint("POST", "/p", b'{"a": 1}')
    assert diff(a, b) == Mismatch(fields=("body",), body=("",))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5), st.randoms())
def test_key_order_never_changes_the_fingerprint(body: dict[str, Any], rng: Any) -> None:
    items = list(body.items())
    rng.shuffle(items)
    shuffled = dict(items)
    one = fingerprint("POST", "/p", msgspec.json.encode(body))
    two = fingerprint("POST", "/p", msgspec.json.encode(shuffled))
    assert one == two
    assert diff(one, two) is None


@settings(max_examples=60, deadline=None)
@given(json_values, json_values)
def test_diff_finds_a_difference_iff_the_canonical_bodies_differ(a: Any, b: Any) -> None:
    fa = fingerprint("POST", "/p", msgspec.json.encode(a))
    fb = fingerprint("POST", "/p", msgspec.json.encode(b))
    mismatch = diff(fa, fb)
    assert (mismatch is None) == (canonical_json(msgspec.json.encode(a)) == fa.body == fb.body)
    if mismatch is not None:
        assert mismatch.fields == ("body",)
        assert mismatch.body


# Records and classification


def request(body: bytes = b'{"expected_step": 7}') -> Fingerprint:
    return fingerprint("POST", "/v1/encounters/e1/next_turn", body)


def test_record_round_trips_and_is_versioned() -> None:
    record = complete(
        begin(request(), "cmd-1", T0, CONFIG),
        201,
        b'{"ok": true}',
        [("Content-Type", "application/json"), ("Set-Cookie", "x"), ("Date", "now")],
        T0 + timedelta(seconds=1),
    )
    data = encode_record(record)
    assert msgspec.json.decode(data)["type"] == "gateway.idempotency.v1"
    assert decode_record(data) == record
    assert record.response_headers == (("content-type", "application/json"),)
    assert record.expires_at == T0 + timedelta(hours=24)
    assert record.lease_until is None


def test_begin_sets_retention_and_lease() -> None:
    record = begin(request(), "cmd-1", T0, IdempotencyConfig(retention=timedelta(hours=1)))
    assert record.state == "in_flight"
    assert record.expires_at == T0 + timedelta(hours=1)
    assert record.lease_until == T0 + timedelta(seconds=60)


def test_classify() -> None:
    in_flight = begin(request(), "cmd-1", T0, CONFIG)
    done = complete(in_flight, 201, b"{}", [], T0)
    assert classify(None, request(), T0) == Proceed("new")
    assert classify(done, request(), T0 + timedelta(hours=1)) == Replay(done)
    assert classify(done, request(), T0 + timedelta(hours=24)) == Proceed("expired")
    assert classify(in_flight, request(), T0 + timedelta(seconds=5)) == InFlight(in_flight)
    assert classify(in_flight, request(), T0 + timedelta(seconds=60)) == Proceed("abandoned")
    other = request(b'{"expected_step": 8}')
    outcome = classify(done, other, T0)
    assert isinstance(outcome, Mismatched)
    assert outcome.mismatch.body == ("/expected_step",)
    # A different request is refused even while the original is still running.
    assert isinstance(classify(in_flight, other, T0), Mismatched)


@pytest.mark.parametrize(
    ("status", "remember"),
    [
        (200, True),
        (201, True),
        (204, True),
        (400, True),
        (404, True),
        (409, True),
        (422, True),
        (408, False),
        (429, False),
        (500, False),
        (503, False),
        (504, False),
    ],
)
def test_should_remember(status: int, remember: bool) -> None:
    assert should_remember(status) is remember


def test_replay_headers_keep_only_safe_ones() -> None:
    headers = [
        ("Location", "/v1/x/1"),
        ("ETag", '"3"'),
        ("Connection", "close"),
        ("Set-Cookie", "s=1"),
        ("Content-Type", "application/json"),
    ]
    assert replay_headers(headers) == (
        ("location", "/v1/x/1"),
        ("etag", '"3"'),
        ("content-type", "application/json"),
    )


def test_config_from_env() -> None:
    config = IdempotencyConfig.from_env(
        {
            "TROUPE_IDEMPOTENCY_RETENTION": "48h",
            "TROUPE_IDEMPOTENCY_LEASE": "90s",
            "TROUPE_IDEMPOTENCY_WAIT": "10",
        }
    )
    assert config.retention == timedelta(hours=48)
    assert config.lease == timedelta(seconds=90)
    assert config.wait == timedelta(seconds=10)
    assert IdempotencyConfig.from_env({}) == IdempotencyConfig()
    with pytest.raises(ValueError, match="not a duration"):
        IdempotencyConfig.from_env({"TROUPE_IDEMPOTENCY_RETENTION": "a day"})
    with pytest.raises(ValueError, match="must be positive"):
        IdempotencyConfig(retention=timedelta(0))
    with pytest.raises(ValueError, match="lease must not exceed"):
        IdempotencyConfig(retention=timedelta(seconds=10), lease=timedelta(seconds=20))


def test_mismatch_error_is_a_409_with_machine_readable_details() -> None:
    mismatch = diff(request(), fingerprint("PUT", "/v1/other", b'{"expected_step": 8}'))
    assert mismatch is not None
    error = IdempotencyKeyReused(mismatch)
    assert error.problem.status == 409
    assert error.problem.code == "idempotency_key_reused"
    wire = msgspec.json.decode(msgspec.json.encode(error.problem))
    assert wire["mismatch"] == {
        "fields": ["method", "path", "body"],
        "method": {"original": "POST", "received": "PUT"},
        "path": {"original": "/v1/encounters/e1/next_turn", "received": "/v1/other"},
        "body": ["/expected_step"],
    }


# The flow against a store


class MemoryStore:
    """An in-process ``IdempotencyStore`` with the same compare-and-set contract as NATS KV."""

    def __init__(self) -> None:
        self.items: dict[str, StoredRecord] = {}
        self.revision = 0
        self.changed = asyncio.Condition()
        self.waiting = 0

    async def get(self, key: str) -> StoredRecord | None:
        return self.items.get(key)

    async def _put(self, key: str, record: IdempotencyRecord) -> int:
        self.revision += 1
        self.items[key] = StoredRecord(record, self.revision)
        async with self.changed:
            self.changed.notify_all()
        return self.revision

    async def create(self, key: str, record: IdempotencyRecord) -> int | None:
        if key in self.items:
            return None
        return await self._put(key, record)

    async def replace(self, key: str, record: IdempotencyRecord, revision: int) -> int | None:
        current = self.items.get(key)
        if current is None or current.revision != revision:
            return None
        return await self._put(key, record)

    async def delete(self, key: str, revision: int) -> bool:
        current = self.items.get(key)
        if current is None or current.revision != revision:
            return False
        del self.items[key]
        async with self.changed:
            self.changed.notify_all()
        return True

    async def wait_for_change(self, key: str, revision: int) -> None:
        self.waiting += 1
        try:
            async with self.changed:
                await self.changed.wait_for(
                    lambda: (item := self.items.get(key)) is None or item.revision != revision
                )
        finally:
            self.waiting -= 1


def test_memory_store_satisfies_the_protocol() -> None:
    store: IdempotencyStore = MemoryStore()
    assert store is not None


class Backend:
    """Stands in for publishing a command and awaiting its outcome."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, command: str) -> StoredResponse:
        self.calls.append(command)
        await self.release.wait()
        body = msgspec.json.encode({"command_id": command, "call": len(self.calls)})
        return StoredResponse(
            status_code=self.status, body=body, headers=(("content-type", "application/json"),)
        )


async def call(
    store: MemoryStore,
    backend: Backend,
    body: bytes = b'{"expected_step": 7}',
    *,
    subject: str = "alice",
    key: str = "key-1",
    config: IdempotencyConfig = CONFIG,
) -> Any:
    return await run_idempotent(
        store,
        tenant="acme",
        subject=subject,
        key=key,
        request=request(body),
        execute=backend,
        config=config,
    )


async def poll(condition: Any, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def test_first_request_runs_and_a_retry_replays() -> None:
    store, backend = MemoryStore(), Backend()
    first = await call(store, backend)
    again = await call(store, backend, b'{ "expected_step" : 7 }')
    assert not first.replayed
    assert again.replayed
    assert backend.calls == [command_id("acme", "alice", "key-1")]
    assert again.response.status_code == first.response.status_code == 201
    assert again.response.body == first.response.body
    assert (REPLAYED_HEADER.lower(), "true") in again.response.headers
    assert first.command_id == again.command_id


async def test_rejections_are_replayed_too() -> None:
    store, backend = MemoryStore(), Backend(status=409)
    await call(store, backend)
    assert (await call(store, backend)).response.status_code == 409
    assert len(backend.calls) == 1


async def test_different_body_with_the_same_key_is_a_409() -> None:
    store, backend = MemoryStore(), Backend()
    await call(store, backend)
    with pytest.raises(IdempotencyKeyReused) as caught:
        await call(store, backend, b'{"expected_step": 8}')
    assert caught.value.mismatch.body == ("/expected_step",)
    assert len(backend.calls) == 1


async def test_other_callers_with_the_same_key_run_separately() -> None:
    store, backend = MemoryStore(), Backend()
    alice = await call(store, backend, subject="alice")
    bob = await call(store, backend, subject="bob")
    assert not alice.replayed
    assert not bob.replayed
    assert alice.command_id != bob.command_id
    assert len(backend.calls) == 2


async def test_server_errors_are_not_remembered() -> None:
    store, backend = MemoryStore(), Backend(status=504)
    await call(store, backend)
    assert store.items == {}
    backend.status = 201
    retry = await call(store, backend)
    assert not retry.replayed
    # The retry reuses the command id, so the bus and the ledger keep the effect single.
    assert backend.calls == [command_id("acme", "alice", "key-1")] * 2


async def test_a_failing_execution_frees_the_key() -> None:
    store = MemoryStore()

    async def explode(command: str) -> StoredResponse:
        raise ConnectionError("bus down")

    with pytest.raises(ConnectionError):
        await run_idempotent(
            store, tenant="acme", subject="alice", key="k", request=request(), execute=explode
        )
    assert store.items == {}


async def test_fifty_concurrent_identical_requests_run_once() -> None:
    store, backend = MemoryStore(), Backend()
    backend.release.clear()
    tasks = [asyncio.create_task(call(store, backend)) for _ in range(50)]
    # Hold the original in flight until every other request is waiting on it.
    await poll(lambda: len(backend.calls) == 1 and store.waiting == 49)
    backend.release.set()
    results = await asyncio.gather(*tasks)
    assert len(backend.calls) == 1
    assert sum(not r.replayed for r in results) == 1
    assert {r.response.body for r in results} == {results[0].response.body}
    assert {r.response.status_code for r in results} == {201}


async def test_concurrent_different_request_is_refused_at_once() -> None:
    store, backend = MemoryStore(), Backend()
    backend.release.clear()
    original = asyncio.create_task(call(store, backend))
    await poll(lambda: len(backend.calls) == 1)
    with pytest.raises(IdempotencyKeyReused):
        await call(store, backend, b'{"expected_step": 99}')
    backend.release.set()
    assert not (await original).replayed


async def test_retry_gives_up_waiting_with_409_and_retry_after() -> None:
    store, backend = MemoryStore(), Backend()
    backend.release.clear()
    config = IdempotencyConfig(wait=timedelta(seconds=0.2))
    original = asyncio.create_task(call(store, backend, config=config))
    await poll(lambda: len(backend.calls) == 1)
    with pytest.raises(RequestInFlight) as caught:
        await call(store, backend, config=config)
    assert caught.value.problem.status == 409
    assert caught.value.headers["Retry-After"] == "1"
    backend.release.set()
    await original


async def test_abandoned_in_flight_record_is_taken_over() -> None:
    store, backend = MemoryStore(), Backend()
    where = storage_key("acme", "alice", "key-1")
    stale = begin(
        request(), command_id("acme", "alice", "key-1"), T0 - timedelta(minutes=5), CONFIG
    )
    await store.create(where, stale)
    result = await call(store, backend)
    assert not result.replayed
    assert len(backend.calls) == 1
    stored = store.items[where].record
    assert stored.state == "completed"
