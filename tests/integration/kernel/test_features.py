"""Preview, state queries, optimistic concurrency, tracing and per-key order, on real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import msgspec
import nats
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors.kernel import history, ledger, telemetry
from actors.kernel.bus import EVENTS
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from schemas import subjects
from schemas.envelope import ErrorReply, Outcome, StateReply
from schemas.headers import Header
from tests.support.accounts import ACCOUNTS, TALLY, Deposit, Open, Withdraw

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def host(nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Host]:
    settings = Settings(database_url=database_url, nats_url=nats_server.url, batch_size=32)
    h = Host(settings, [ACCOUNTS, TALLY], nats_url=nats_server.url)
    await h.start()
    await h.wait_ready()
    try:
        yield h
    finally:
        await h.stop()


async def _send(js: nats.js.JetStreamContext, key: str, cmd: msgspec.Struct, mid: str) -> None:
    await js.publish(
        subjects.command_subject_for(type(cmd), key),  # type: ignore[arg-type]
        msgspec.json.encode(cmd),
        headers={Header.MSG_ID: mid, Header.WANT_OUTCOME: "1"},
    )


async def _state(nc: nats.NATS, domain: str, key: str) -> StateReply:
    reply = await nc.request(subjects.query_subject(domain, key), b"", timeout=5)
    return msgspec.json.decode(reply.data, type=StateReply)


async def _wait_version(nc: nats.NATS, domain: str, key: str, version: int) -> StateReply:
    async with asyncio.timeout(20):
        while True:
            state = await _state(nc, domain, key)
            if state.version >= version:
                return state
            await asyncio.sleep(0.05)


async def test_preview_answers_the_events_apply_would_emit_and_changes_nothing(
    host: Host, nats_server: EmbeddedNats
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await _send(js, "v1", Deposit(amount=10), "d-1")
        await _wait_version(nc, "acct", "v1", 1)
        preview = await nc.request(
            subjects.preview_subject("acct", "v1", "deposit"),
            msgspec.json.encode(Deposit(amount=5)),
            timeout=5,
            headers={Header.MESSAGE_ID: "d-2"},
        )
        outcome = msgspec.json.decode(preview.data, type=Outcome)
        assert outcome.status == "preview"
        assert [e.type for e in outcome.events] == ["acct.deposited.v1", "auditlog.noted.v1"]
        assert msgspec.json.decode(outcome.events[0].data) == {
            "type": "acct.deposited.v1",
            "amount": 5,
            "balance": 15,
            "n": 2,
        }

        # Applying the same command reproduces exactly the previewed events, ids included.
        sub = await nc.subscribe(subjects.outcome_subject("acct", "d-2"))
        await _send(js, "v1", Deposit(amount=5), "d-2")
        applied = msgspec.json.decode((await sub.next_msg(timeout=10)).data, type=Outcome)
        assert [(e.id, bytes(e.data)) for e in applied.events] == [
            (e.id, bytes(e.data)) for e in outcome.events
        ]

        rejected = await nc.request(
            subjects.preview_subject("acct", "v1", "withdraw"),
            msgspec.json.encode(Withdraw(amount=1000)),
            timeout=5,
        )
        refusal = msgspec.json.decode(rejected.data, type=Outcome)
        assert refusal.status == "rejected"
        assert refusal.rejection is not None
        assert refusal.rejection.code == "insufficient_funds"

        invalid = await nc.request(
            subjects.preview_subject("acct", "v1", "deposit"), b'{"amount": 0}', timeout=5
        )
        error = msgspec.json.decode(invalid.data, type=ErrorReply)
        assert error.error.code == "schema"
        assert "$.amount" in error.error.reason
        assert (await _state(nc, "acct", "v1")).version == 2
    finally:
        await nc.close()


async def test_expected_version_header_guards_against_lost_updates(
    host: Host, nats_server: EmbeddedNats
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await _send(js, "v2", Open(owner="ann"), "o-1")
        await _wait_version(nc, "acct", "v2", 1)
        sub = await nc.subscribe(subjects.outcome_subject("acct", "w-1"))
        await js.publish(
            subjects.command_subject("acct", "v2", "deposit"),
            msgspec.json.encode(Deposit(amount=3)),
            headers={
                Header.MSG_ID: "w-1",
                Header.WANT_OUTCOME: "1",
                Header.EXPECTED_VERSION: "0",
            },
        )
        outcome = msgspec.json.decode((await sub.next_msg(timeout=10)).data, type=Outcome)
        assert outcome.status == "rejected"
        assert outcome.rejection is not None
        assert outcome.rejection.kind == "conflict"
        assert outcome.rejection.details == {"expected": 0, "actual": 1}
    finally:
        await nc.close()


async def test_per_key_order_holds_across_many_keys_read_back_from_the_stream(
    host: Host, nats_server: EmbeddedNats
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        keys = [f"o{i}" for i in range(8)]
        for round_ in range(25):
            for key in keys:
                await _send(js, key, Deposit(amount=round_ + 1), f"{key}-{round_}")
        for key in keys:
            await _wait_version(nc, "acct", key, 25)
        by_key: dict[str, list[tuple[int, int]]] = {k: [] for k in keys}
        last_seq = 0
        async for record in history.read(js, EVENTS, "evt.acct.*.deposited"):
            assert record.seq > last_seq
            last_seq = record.seq
            body = msgspec.json.decode(record.data)
            by_key[record.subject.split(".")[2]].append((body["n"], body["amount"]))
        for key in keys:
            assert by_key[key] == [(n, n) for n in range(1, 26)]
    finally:
        await nc.close()
    assert host.engine is not None
    async with host.engine.connect() as conn:
        assert await ledger.count(conn, "accounts") == 200


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(tracer_provider=provider)
    try:
        yield exporter
    finally:
        telemetry.reset()


async def test_one_trace_runs_from_the_command_through_every_actor_it_touches(
    spans: InMemorySpanExporter, host: Host, nats_server: EmbeddedNats
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await js.publish(
            subjects.command_subject("acct", "tr1", "deposit"),
            msgspec.json.encode(Deposit(amount=4)),
            headers={
                Header.MSG_ID: "traced-1",
                Header.TRACEPARENT: f"00-{trace_id}-00f067aa0ba902b7-01",
            },
        )
        await _wait_version(nc, "tally", "tr1", 1)
        deposited = [r async for r in history.read(js, EVENTS, "evt.acct.tr1.deposited")]
        counted = [r async for r in history.read(js, EVENTS, "evt.tally.tr1.counted")]
    finally:
        await nc.close()
    assert deposited[0].headers[Header.TRACEPARENT].split("-")[1] == trace_id
    assert counted[0].headers[Header.TRACEPARENT].split("-")[1] == trace_id
    finished = spans.get_finished_spans()
    process = [s for s in finished if s.name.startswith("process ")]
    assert {s.name for s in process} >= {
        "process cmd.acct.tr1.deposit",
        "process evt.acct.tr1.deposited",
    }
    assert all(format(s.context.trace_id, "032x") == trace_id for s in process)
    by_name = {s.name: s for s in process}
    reaction = by_name["process evt.acct.tr1.deposited"]
    command = by_name["process cmd.acct.tr1.deposit"]
    assert reaction.parent is not None
    assert reaction.parent.span_id == command.context.span_id


async def test_kernel_metrics_count_what_the_runtime_did(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    telemetry.configure(metric_readers=[reader])
    settings = Settings(database_url=database_url, nats_url=nats_server.url)
    host = Host(settings, [ACCOUNTS], nats_url=nats_server.url)
    await host.start()
    await host.wait_ready()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await _send(js, "m1", Deposit(amount=1), "m-1")
        await _send(js, "m1", Withdraw(amount=50), "m-2")
        await js.publish("cmd.acct.m1.deposit", b"{oops", headers={Header.MSG_ID: "m-3"})
        await _send(js, "m1", Deposit(amount=2), "m-4")
        await _wait_version(nc, "acct", "m1", 2)
        await host.stop()
        points: dict[str, float] = {}
        data = reader.get_metrics_data()
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        attrs = dict(point.attributes or {})
                        label = ",".join(f"{k}={v}" for k, v in sorted(attrs.items()))
                        value = getattr(point, "value", None)
                        if value is None:
                            value = getattr(point, "count", 0)
                        points[f"{metric.name}[{label}]"] = float(value)
        assert points["troupe.kernel.messages.applied[actor=accounts]"] == 2
        assert points["troupe.kernel.messages.rejected[actor=accounts,kind=invalid]"] == 1
        assert points["troupe.kernel.messages.dead_lettered[actor=accounts,kind=decode]"] == 1
        assert points["troupe.kernel.batch.size[actor=accounts,outcome=committed]"] >= 1
        text, _ = telemetry.prometheus_text()
        assert b"troupe_kernel_messages_applied_total" in text
    finally:
        await nc.close()
        await host.stop()
        telemetry.reset()
