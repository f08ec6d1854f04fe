"""One span per request, the trace id on every response, and route latency with bounded labels.

``RequestTelemetry`` wraps the whole ASGI app (outside routing), so every
response carries ``Troupe-Trace-Id`` and ``traceresponse`` headers, unmatched
routes are measured too (as route ``other``), and the span is current while the
handler publishes: ``telemetry.inject`` then continues the trace onto the bus.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from actors.kernel import logs, telemetry

__all__ = ["TRACERESPONSE_HEADER", "TRACE_ID_HEADER", "RequestTelemetry"]

TRACE_ID_HEADER: Final = "troupe-trace-id"
"""The request's trace id (32 hex digits): quote it when reporting a problem."""
TRACERESPONSE_HEADER: Final = "traceresponse"
"""W3C Trace Context Level 2: version-traceid-spanid-flags of the server's span."""


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }


def _minted() -> SpanContext:
    # Tracing is off and the client sent no traceparent: ids are still minted, so the client,
    # the logs and the bus share one trace id even without an exporter.
    return SpanContext(
        trace_id=int.from_bytes(secrets.token_bytes(16), "big") or 1,
        span_id=int.from_bytes(secrets.token_bytes(8), "big") or 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )


class RequestTelemetry:
    """The outermost ASGI layer of the gateway."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Litestar answers lifespan events itself; only HTTP and WebSocket scopes get here.
        kind = scope["type"]
        headers = _headers(scope)
        method = str(scope.get("method", "GET")) if kind == ScopeType.HTTP else "GET"
        started = time.perf_counter()
        tracer = telemetry.tracer(telemetry.HTTP_SCOPE)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": str(scope.get("path", "")),
            "network.protocol.name": "http" if kind == ScopeType.HTTP else "websocket",
        }
        status = [500]
        with tracer.start_as_current_span(
            method,
            context=telemetry.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            span_context = span.get_span_context()
            token = None
            if not span_context.is_valid:
                span_context = _minted()
                token = otel_context.attach(
                    trace.set_span_in_context(NonRecordingSpan(span_context))
                )
            trace_id = format(span_context.trace_id, "032x")
            response_headers = [
                (TRACE_ID_HEADER.encode(), trace_id.encode()),
                (
                    TRACERESPONSE_HEADER.encode(),
                    f"00-{trace_id}-{span_context.span_id:016x}-"
                    f"{int(span_context.trace_flags):02x}".encode(),
                ),
            ]

            async def send_with_trace(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = int(message["status"])
                    message = {
                        **message,
                        "headers": [*message.get("headers", ()), *response_headers],
                    }
                elif message["type"] == "websocket.accept":
                    message = {
                        **message,
                        "headers": [*message.get("headers", ()), *response_headers],
                    }
                await send(message)

            correlation = telemetry.correlation_id(headers)
            try:
                with logs.bind(correlation_id=correlation):
                    await self.app(scope, receive, send_with_trace)
            finally:
                if token is not None:
                    otel_context.detach(token)
                route = str(scope.get("path_template") or "")
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                if kind == ScopeType.HTTP:
                    span.set_attribute("http.response.status_code", status[0])
                    if status[0] >= 500:
                        span.set_status(trace.Status(trace.StatusCode.ERROR))
                    telemetry.http_metrics().request(
                        method, route, status[0], time.perf_counter() - started
                    )
