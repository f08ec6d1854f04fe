"""Telemetry: lazy setup, no-op default, trace context across NATS hops, kernel metric names."""

from __future__ import annotations

import logging
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Metric,
    Sum,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from prometheus_client.parser import text_string_to_metric_families

from actors.kernel import telemetry
from actors.kernel.telemetry import KernelMetrics, Settings

ENV_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "TROUPE_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "TROUPE_SERVICE_NAME",
    "TROUPE_ENVIRONMENT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_RESOURCE_ATTRIBUTES",
    "TROUPE_METRICS_ADDR",
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def clean_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    telemetry.reset()
    yield
    telemetry.reset()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(settings=Settings(), tracer_provider=provider)
    return exporter


@pytest.fixture
def reader() -> InMemoryMetricReader:
    memory = InMemoryMetricReader()
    telemetry.configure(settings=Settings(), metric_readers=[memory])
    return memory


# --- setup -----------------------------------------------------------------------------------


def test_nothing_is_built_before_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = Settings.from_env

    def counting(environ: Any = None) -> Settings:
        calls.append(1)
        return original(environ)

    monkeypatch.setattr(Settings, "from_env", staticmethod(counting))
    telemetry.reset()
    assert calls == []
    telemetry.tracer("troupe.test")
    telemetry.meter("troupe.test")
    telemetry.kernel_metrics()
    assert len(calls) == 1


def test_concurrent_first_use_builds_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = Settings.from_env

    def counting(environ: Any = None) -> Settings:
        calls.append(1)
        return original(environ)

    monkeypatch.setattr(Settings, "from_env", staticmethod(counting))
    barrier = threading.Barrier(8)
    seen: list[telemetry.Telemetry] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(telemetry.get())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(seen) == 8
    assert all(state is seen[0] for state in seen)


def test_unconfigured_process_records_no_spans_and_starts_no_threads() -> None:
    before = threading.active_count()
    state = telemetry.get()
    assert state.recording is False
    with telemetry.tracer("troupe.test").start_as_current_span("work") as span:
        assert span.is_recording() is False
        assert telemetry.inject({}) == {}
        assert telemetry.current_trace_id() is None
    assert threading.active_count() == before


def test_unconfigured_hop_forwards_the_incoming_parent_unchanged() -> None:
    with telemetry.span_from_headers("process", {"traceparent": TRACEPARENT}) as span:
        assert span.is_recording() is False
        onward = telemetry.inject({})
        assert telemetry.current_trace_id() == "0af7651916cd43dd8448eb211c80319c"
    assert onward["traceparent"] == TRACEPARENT


def test_metrics_are_collectable_without_any_exporter() -> None:
    telemetry.kernel_metrics().applied("encounter", 2)
    body, content_type = telemetry.prometheus_text()
    assert content_type.startswith("text/plain")
    assert b'troupe_kernel_messages_applied_total{actor="encounter"} 2.0' in body


def test_settings_from_env_precedence() -> None:
    settings = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "TROUPE_OTLP_ENDPOINT": "http://other:4318",
            "OTEL_SERVICE_NAME": "troupe-encounter",
            "TROUPE_SERVICE_NAME": "ignored",
            "TROUPE_ENVIRONMENT": "staging",
        }
    )
    assert settings.otlp_endpoint == "http://collector:4318"
    assert settings.otlp_env_driven is True
    assert settings.service_name == "troupe-encounter"
    assert settings.environment == "staging"
    assert settings.traces_enabled
    assert settings.metrics_push_enabled


def test_settings_defaults_and_troupe_fallbacks() -> None:
    assert Settings.from_env({}).service_name == "troupe"
    assert Settings.from_env({}).environment == "development"
    assert Settings.from_env({}).traces_enabled is False
    fallback = Settings.from_env(
        {"TROUPE_OTLP_ENDPOINT": "http://c:4318/", "TROUPE_SERVICE_NAME": "troupe-relay"}
    )
    assert fallback.otlp_endpoint == "http://c:4318/"
    assert fallback.otlp_env_driven is False
    assert fallback.service_name == "troupe-relay"


@pytest.mark.parametrize(
    ("env", "traces", "metrics"),
    [
        ({"OTEL_TRACES_EXPORTER": "none"}, False, True),
        ({"OTEL_METRICS_EXPORTER": "none"}, True, False),
        ({"OTEL_SDK_DISABLED": "true"}, False, False),
    ],
)
def test_exporter_switches(env: dict[str, str], traces: bool, metrics: bool) -> None:
    settings = Settings.from_env({"TROUPE_OTLP_ENDPOINT": "http://c:4318", **env})
    assert settings.traces_enabled is traces
    assert settings.metrics_push_enabled is metrics


def test_resource_attributes() -> None:
    attributes = Settings(
        service_name="troupe-effects", service_version="1.2.3", environment="prod"
    ).resource()
    assert attributes.attributes["service.name"] == "troupe-effects"
    assert attributes.attributes["service.version"] == "1.2.3"
    assert attributes.attributes["deployment.environment"] == "prod"
    assert attributes.attributes["deployment.environment.name"] == "prod"
    telemetry.configure(settings=Settings(service_name="troupe-effects", environment="prod"))
    telemetry.kernel_metrics().applied("effects")
    body, _ = telemetry.prometheus_text()
    families = text_string_to_metric_families(body.decode())
    (info,) = [f for f in families if f.name in ("target", "target_info")]
    assert info.samples[0].labels["service_name"] == "troupe-effects"
    assert info.samples[0].labels["deployment_environment"] == "prod"


@dataclass
class _Received:
    path: str
    content_type: str
    body: bytes


@pytest.fixture
def collector() -> Iterator[tuple[str, list[_Received]]]:
    received: list[_Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(
                _Received(self.path, self.headers.get("Content-Type", ""), self.rfile.read(length))
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        # Exporters flush on shutdown; do it while the endpoint still answers.
        telemetry.reset()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_configured_endpoint_exports_spans_and_metrics_over_otlp(
    collector: tuple[str, list[_Received]],
) -> None:
    endpoint, received = collector
    state = telemetry.configure(
        settings=Settings.from_env(
            {"TROUPE_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "troupe-match"}
        )
    )
    assert state.recording is True
    with telemetry.tracer("troupe.test").start_as_current_span("decide"):
        trace_id = telemetry.current_trace_id()
    telemetry.kernel_metrics().applied("match", 1)
    state.force_flush()

    paths = {item.path for item in received}
    assert {"/v1/traces", "/v1/metrics"} <= paths
    (traces,) = [item for item in received if item.path == "/v1/traces"]
    assert traces.content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(traces.body)
    resource_spans = request.resource_spans[0]
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "troupe-match"
    span = resource_spans.scope_spans[0].spans[0]
    assert span.name == "decide"
    assert span.trace_id.hex() == trace_id


def test_reset_leaves_injected_providers_running() -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(settings=Settings(), tracer_provider=provider)
    telemetry.reset()
    provider.get_tracer("after").start_span("still-owned-by-caller").end()
    assert [s.name for s in exporter.get_finished_spans()] == ["still-owned-by-caller"]


# --- trace context -------------------------------------------------------------------------


def _by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_trace_joins_across_publish_and_consume_hops(spans: InMemorySpanExporter) -> None:
    tracer = telemetry.tracer("troupe.gateway")
    # Hop 1: the gateway publishes a command.
    with (
        tracer.start_as_current_span("POST /encounters/{key}/next_turn", kind=SpanKind.SERVER),
        tracer.start_as_current_span("publish cmd.encounter", kind=SpanKind.PRODUCER),
    ):
        command_headers = telemetry.inject({"Nats-Msg-Id": "cmd-1"})
        gateway_trace = telemetry.current_trace_id()

    # Hop 2: the encounter actor consumes it and publishes an event.
    with telemetry.span_from_headers(
        "process cmd.encounter", command_headers, SpanKind.CONSUMER
    ) as consume:
        assert telemetry.current_trace_id() == gateway_trace
        assert telemetry.current_span_id() == format_span_id(consume.get_span_context().span_id)
        with telemetry.tracer("troupe.kernel").start_as_current_span(
            "publish evt.encounter", kind=SpanKind.PRODUCER
        ):
            event_headers = telemetry.inject({})

    # Hop 3: the effects actor reacts to the event.
    with telemetry.span_from_headers("process evt.encounter", event_headers):
        pass
    assert telemetry.current_trace_id() is None

    recorded = _by_name(spans)
    assert len(recorded) == 5
    assert {format_trace_id(s.context.trace_id) for s in recorded.values()} == {gateway_trace}
    producer = recorded["publish cmd.encounter"]
    consumer = recorded["process cmd.encounter"]
    assert consumer.parent is not None
    assert consumer.parent.is_remote
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.kind is SpanKind.CONSUMER
    reaction = recorded["process evt.encounter"]
    assert reaction.parent is not None
    assert reaction.parent.span_id == recorded["publish evt.encounter"].context.span_id


def test_inject_adds_tracestate_when_the_parent_carries_one(spans: InMemorySpanExporter) -> None:
    incoming = {"traceparent": TRACEPARENT, "tracestate": "vendor=abc"}
    with telemetry.span_from_headers("process", incoming):
        onward = telemetry.inject({})
    assert onward["tracestate"] == "vendor=abc"
    assert onward["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


def test_extract_reads_header_names_in_any_case() -> None:
    from opentelemetry import trace

    context = telemetry.extract({"TraceParent": TRACEPARENT})
    span_context = trace.get_current_span(context).get_span_context()
    assert span_context.is_valid
    assert span_context.is_remote
    assert format_trace_id(span_context.trace_id) == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"traceparent": "not-a-traceparent"},
        {"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"},
    ],
)
def test_missing_or_invalid_traceparent_starts_a_new_trace(
    spans: InMemorySpanExporter, headers: dict[str, str] | None
) -> None:
    with telemetry.span_from_headers("process", headers):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert span.context.is_valid


def test_legacy_request_id_becomes_attribute_and_correlation_id(
    spans: InMemorySpanExporter,
) -> None:
    headers = {"X-Request-Id": "req-42", "X-Trace-Id": "legacy-trace-7"}
    assert telemetry.correlation_id(headers) == "req-42"
    with telemetry.span_from_headers("process", headers, attributes={"troupe.actor": "lobby"}):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert span.attributes is not None
    assert span.attributes["troupe.legacy.request_id"] == "req-42"
    assert span.attributes["troupe.legacy.trace_id"] == "legacy-trace-7"
    assert span.attributes["troupe.correlation_id"] == "req-42"
    assert span.attributes["troupe.actor"] == "lobby"


def test_legacy_headers_are_kept_beside_a_real_parent(spans: InMemorySpanExporter) -> None:
    headers = {"traceparent": TRACEPARENT, "x-trace-id": "old-7"}
    with telemetry.span_from_headers("process", headers):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is not None
    assert format_trace_id(span.context.trace_id) == "0af7651916cd43dd8448eb211c80319c"
    assert span.attributes is not None
    assert span.attributes["troupe.legacy.trace_id"] == "old-7"


def test_troupe_correlation_header_wins_over_legacy_ones() -> None:
    headers = {"Troupe-Correlation-Id": "corr-1", "X-Request-Id": "req-1"}
    assert telemetry.correlation_id(headers) == "corr-1"
    assert telemetry.correlation_id({"x-trace-id": "t-1"}) == "t-1"
    assert telemetry.correlation_id(None) is None


def test_exception_inside_consumer_span_is_recorded(spans: InMemorySpanExporter) -> None:
    with (
        pytest.raises(RuntimeError, match="handler failed"),
        telemetry.span_from_headers("process", {}),
    ):
        raise RuntimeError("handler failed")
    (span,) = spans.get_finished_spans()
    assert not span.status.is_ok
    assert [event.name for event in span.events] == ["exception"]


def test_messaging_attributes() -> None:
    attributes = telemetry.messaging_attributes(
        "cmd.encounter.e1.next_turn",
        operation="process",
        message_id="m-1",
        consumer="encounter",
        batch_size=3,
    )
    assert attributes == {
        "messaging.system": "nats",
        "messaging.destination.name": "cmd.encounter.e1.next_turn",
        "messaging.operation.type": "process",
        "messaging.message.id": "m-1",
        "messaging.consumer.group.name": "encounter",
        "messaging.batch.message_count": 3,
    }


# --- kernel metrics --------------------------------------------------------------------------


def _metrics(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def _points(metric: Metric) -> dict[tuple[tuple[str, Any], ...], Any]:
    assert isinstance(metric.data, Sum | Gauge | Histogram)
    return {
        tuple(sorted((point.attributes or {}).items())): point for point in metric.data.data_points
    }


@dataclass(frozen=True)
class Expect:
    name: str
    unit: str
    labels: dict[str, str]
    value: float
    prometheus: str


CASES: list[tuple[str, Callable[[KernelMetrics], None], list[Expect]]] = [
    (
        "applied",
        lambda k: k.applied("encounter", 3),
        [
            Expect(
                "troupe.kernel.messages.applied",
                "{message}",
                {"actor": "encounter"},
                3,
                "troupe_kernel_messages_applied_total",
            )
        ],
    ),
    (
        "duplicates",
        lambda k: k.duplicates("effects", 2),
        [
            Expect(
                "troupe.kernel.messages.duplicates",
                "{message}",
                {"actor": "effects"},
                2,
                "troupe_kernel_messages_duplicates_total",
            )
        ],
    ),
    (
        "dead_lettered",
        lambda k: k.dead_lettered("mastery", "decode"),
        [
            Expect(
                "troupe.kernel.messages.dead_lettered",
                "{message}",
                {"actor": "mastery", "kind": "decode"},
                1,
                "troupe_kernel_messages_dead_lettered_total",
            )
        ],
    ),
    (
        "rejected",
        lambda k: k.rejected("lobby", "conflict", 4),
        [
            Expect(
                "troupe.kernel.messages.rejected",
                "{message}",
                {"actor": "lobby", "kind": "conflict"},
                4,
                "troupe_kernel_messages_rejected_total",
            )
        ],
    ),
    (
        "redelivered",
        lambda k: k.redelivered("match", 5),
        [
            Expect(
                "troupe.kernel.messages.redelivered",
                "{message}",
                {"actor": "match"},
                5,
                "troupe_kernel_messages_redelivered_total",
            )
        ],
    ),
    (
        "batch",
        lambda k: k.batch("ratings", 12, 0.25, "rolled_back"),
        [
            Expect(
                "troupe.kernel.batch.size",
                "{message}",
                {"actor": "ratings", "outcome": "rolled_back"},
                12,
                "troupe_kernel_batch_size",
            ),
            Expect(
                "troupe.kernel.handler.duration",
                "s",
                {"actor": "ratings", "outcome": "rolled_back"},
                0.25,
                "troupe_kernel_handler_duration_seconds",
            ),
        ],
    ),
    (
        "outbox_unsent",
        lambda k: k.outbox_unsent("tickets", 40, 7.5),
        [
            Expect(
                "troupe.kernel.outbox.unsent",
                "{row}",
                {"actor": "tickets"},
                40,
                "troupe_kernel_outbox_unsent",
            ),
            Expect(
                "troupe.kernel.outbox.oldest_age",
                "s",
                {"actor": "tickets"},
                7.5,
                "troupe_kernel_outbox_oldest_age_seconds",
            ),
        ],
    ),
    (
        "outbox_published",
        lambda k: k.outbox_published("relay", 9, 1.5),
        [
            Expect(
                "troupe.kernel.outbox.published",
                "{row}",
                {"actor": "relay"},
                9,
                "troupe_kernel_outbox_published_total",
            ),
            Expect(
                "troupe.kernel.outbox.publish_lag",
                "s",
                {"actor": "relay"},
                1.5,
                "troupe_kernel_outbox_publish_lag_seconds",
            ),
        ],
    ),
    (
        "publish_failed",
        lambda k: k.publish_failed("policy", "timeout"),
        [
            Expect(
                "troupe.kernel.publish.failures",
                "{attempt}",
                {"actor": "policy", "kind": "timeout"},
                1,
                "troupe_kernel_publish_failures_total",
            )
        ],
    ),
]


def _value(point: Any) -> float:
    # Histograms are checked through their sum; one observation makes sum == value.
    return float(point.sum) if hasattr(point, "bucket_counts") else float(point.value)


@pytest.mark.parametrize(
    ("record", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_kernel_metric_names_labels_and_values(
    reader: InMemoryMetricReader,
    record: Callable[[KernelMetrics], None],
    expected: list[Expect],
) -> None:
    record(telemetry.kernel_metrics())
    recorded = _metrics(reader)
    assert set(recorded) == {e.name for e in expected}
    for expect in expected:
        metric = recorded[expect.name]
        assert metric.unit == expect.unit
        assert metric.description
        (point,) = _points(metric).values()
        assert dict(point.attributes or {}) == expect.labels
        assert _value(point) == pytest.approx(expect.value)
        if isinstance(metric.data, Histogram):
            assert point.count == 1

    families = {
        family.name: family
        for family in text_string_to_metric_families(telemetry.prometheus_text()[0].decode())
    }
    for expect in expected:
        samples = [
            sample
            for family in families.values()
            for sample in family.samples
            if sample.name
            in (expect.prometheus, f"{expect.prometheus}_sum", f"{expect.prometheus}_total")
            and sample.labels == expect.labels
        ]
        assert samples, f"{expect.prometheus} missing from /metrics"
        assert samples[0].value == pytest.approx(expect.value)


def test_counters_accumulate_and_ignore_non_positive_counts(reader: InMemoryMetricReader) -> None:
    kernel = telemetry.kernel_metrics()
    kernel.applied("encounter", 2)
    kernel.applied("encounter", 3)
    kernel.applied("encounter", 0)
    kernel.duplicates("encounter", -1)
    recorded = _metrics(reader)
    assert "troupe.kernel.messages.duplicates" not in recorded
    (point,) = _points(recorded["troupe.kernel.messages.applied"]).values()
    assert point.value == 5


def test_empty_outbox_reports_zero_age(reader: InMemoryMetricReader) -> None:
    telemetry.kernel_metrics().outbox_unsent("encounter", 0, 99.0)
    (point,) = _points(_metrics(reader)["troupe.kernel.outbox.oldest_age"]).values()
    assert point.value == 0.0


def test_dead_letter_kinds_are_separate_series(reader: InMemoryMetricReader) -> None:
    kernel = telemetry.kernel_metrics()
    kernel.dead_lettered("encounter", "decode")
    kernel.dead_lettered("encounter", "decode")
    kernel.dead_lettered("encounter", "handler")
    points = _points(_metrics(reader)["troupe.kernel.messages.dead_lettered"])
    assert {key: p.value for key, p in points.items()} == {
        (("actor", "encounter"), ("kind", "decode")): 2,
        (("actor", "encounter"), ("kind", "handler")): 1,
    }


def test_labels_are_bounded(reader: InMemoryMetricReader) -> None:
    kernel = telemetry.kernel_metrics()
    for i in range(telemetry.MAX_ACTORS + 5):
        kernel.applied(f"actor_{i}")
    kernel.applied("not a label value")
    points = _points(_metrics(reader)["troupe.kernel.messages.applied"])
    actors = {dict(key)["actor"] for key in points}
    assert len(actors) == telemetry.MAX_ACTORS + 1
    assert telemetry.OVERFLOW_LABEL in actors
    assert points[(("actor", telemetry.OVERFLOW_LABEL),)].value == 6


def test_http_server_metric_follows_semantic_conventions(reader: InMemoryMetricReader) -> None:
    http = telemetry.http_metrics()
    http.request("post", "/encounters/{key}/next_turn", 503, 0.2)
    http.request("BREW", "/encounters/{key}/next_turn", 200, 0.1)
    points = _points(_metrics(reader)["http.server.request.duration"])
    assert set(points) == {
        (
            ("http.request.method", "POST"),
            ("http.response.status_code", 503),
            ("http.route", "/encounters/{key}/next_turn"),
        ),
        (
            ("http.request.method", "_OTHER"),
            ("http.response.status_code", 200),
            ("http.route", "/encounters/{key}/next_turn"),
        ),
    }
    assert b"http_server_request_duration_seconds_count" in telemetry.prometheus_text()[0]


def test_kernel_facade_is_shared_within_a_configuration() -> None:
    assert telemetry.kernel_metrics() is telemetry.kernel_metrics()
    first = telemetry.kernel_metrics()
    telemetry.configure(settings=Settings())
    assert telemetry.kernel_metrics() is not first


def test_reconfiguring_replaces_prometheus_output() -> None:
    telemetry.kernel_metrics().applied("encounter")
    telemetry.configure(settings=Settings())
    assert b"troupe_kernel_messages_applied_total" not in telemetry.prometheus_text()[0]


# --- /metrics endpoint -----------------------------------------------------------------------


def test_metrics_server_serves_the_registry() -> None:
    server = telemetry.serve_metrics("127.0.0.1:0")
    try:
        telemetry.kernel_metrics().applied("workflow", 7)
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read()
            assert r.headers["Content-Type"].startswith("text/plain")
    finally:
        server.close()
    assert b'troupe_kernel_messages_applied_total{actor="workflow"} 7.0' in body


def test_metrics_server_from_env() -> None:
    assert telemetry.serve_metrics_from_env({}) is None
    server = telemetry.serve_metrics_from_env({"TROUPE_METRICS_ADDR": "127.0.0.1:0"})
    assert server is not None
    try:
        assert server.port > 0
    finally:
        server.close()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("0.0.0.0:9464", ("0.0.0.0", 9464)),
        (":9464", ("0.0.0.0", 9464)),
        ("[::1]:9100", ("::1", 9100)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert telemetry.parse_address(address) == expected


@pytest.mark.parametrize("address", ["9464", "host:", "host:http", "host:70000"])
def test_parse_address_rejects_bad_values(address: str) -> None:
    with pytest.raises(ValueError, match="metrics address"):
        telemetry.parse_address(address)


# --- docs ------------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[3] / "docs" / "observability.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_docs_examples_run(source: str) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        exec(compile(source, str(DOCS), "exec"), {"__name__": "docs_example"})
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
