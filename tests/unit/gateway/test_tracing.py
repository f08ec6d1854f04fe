"""One span per request, the trace id on every response, route latency with bounded labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from actors.kernel import telemetry
from actors.kernel.telemetry import Settings
from gateway.problems import exception_handlers
from gateway.tracing import TRACE_ID_HEADER, TRACERESPONSE_HEADER, RequestTelemetry
from schemas.headers import Header

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def clean_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "TROUPE_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    telemetry.reset()
    yield
    telemetry.reset()


def app() -> Litestar:
    @get("/things/{key:str}", sync_to_thread=False)
    def thing(key: FromPath[str]) -> dict[str, Any]:
        # What a handler puts on the bus carries the request's trace.
        headers: dict[str, str] = {}
        telemetry.inject(headers)
        return {"key": key, "outgoing": headers.get(Header.TRACEPARENT.value)}

    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("broken")

    application = Litestar([thing, boom], exception_handlers=exception_handlers())
    application.asgi_handler = RequestTelemetry(application.asgi_handler)
    return application


def test_without_tracing_a_trace_id_is_still_minted_and_forwarded() -> None:
    with TestClient(app()) as client:
        response = client.get("/things/a")
        again = client.get("/things/b")
    trace_id = response.headers[TRACE_ID_HEADER]
    assert len(trace_id) == 32
    assert trace_id != again.headers[TRACE_ID_HEADER]
    version, traced, span, flags = response.headers[TRACERESPONSE_HEADER].split("-")
    assert (version, traced, flags) == ("00", trace_id, "00")
    assert response.json()["outgoing"] == f"00-{trace_id}-{span}-00"


def test_without_tracing_the_callers_trace_passes_through() -> None:
    with TestClient(app()) as client:
        response = client.get("/things/a", headers={"traceparent": TRACEPARENT})
    assert response.headers[TRACE_ID_HEADER] == "0af7651916cd43dd8448eb211c80319c"
    assert response.json()["outgoing"] == TRACEPARENT


def test_with_tracing_one_server_span_joins_the_callers_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(settings=Settings(), tracer_provider=provider)
    with TestClient(app()) as client:
        response = client.get("/things/a", headers={"traceparent": TRACEPARENT})
    (span,) = exporter.get_finished_spans()
    context = span.get_span_context()
    assert context is not None
    assert format(context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert span.kind is SpanKind.SERVER
    assert span.name == "GET /things/{key}"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/things/{key}"
    assert span.attributes["http.response.status_code"] == 200
    assert response.json()["outgoing"].split("-")[2] == format(context.span_id, "016x")


def test_failures_are_problems_carrying_the_trace_id() -> None:
    with TestClient(app()) as client:
        response = client.get("/boom", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 500
    assert response.json()["trace_id"] == response.headers[TRACE_ID_HEADER]


def _points(reader: InMemoryMetricReader) -> list[dict[str, Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        dict(point.attributes or {}) | {"count": point.count}
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "http.server.request.duration"
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    ]


def test_route_latency_is_labelled_by_template_and_unknown_paths_collapse() -> None:
    reader = InMemoryMetricReader()
    telemetry.configure(settings=Settings(), metric_readers=[reader])
    with TestClient(app()) as client:
        for key in ("a", "b", "c"):
            client.get(f"/things/{key}")
        client.get("/nothing/here")
        client.get("/nothing/else")
    points = {
        (p["http.route"], p["http.response.status_code"]): p["count"] for p in _points(reader)
    }
    assert points == {("/things/{key}", 200): 3, ("other", 404): 2}
