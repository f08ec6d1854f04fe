"""OpenTelemetry for the whole process: providers, W3C trace context over NATS headers, metrics."""

from __future__ import annotations

import atexit
import os
import re
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Final, Literal, Protocol
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.exposition import start_http_server

from schemas.base import RejectionKind
from schemas.envelope import DeadLetterKind
from schemas.headers import Header

__all__ = [
    "LEGACY_REQUEST_ID",
    "LEGACY_TRACE_ID",
    "HttpServerMetrics",
    "KernelMetrics",
    "MetricsServer",
    "Settings",
    "Telemetry",
    "configure",
    "correlation_id",
    "current_span_id",
    "current_trace_id",
    "extract",
    "get",
    "http_metrics",
    "inject",
    "kernel_metrics",
    "messaging_attributes",
    "meter",
    "prometheus_text",
    "registry",
    "reset",
    "serve_metrics",
    "serve_metrics_from_env",
    "shutdown",
    "span_from_headers",
    "tracer",
]

DEFAULT_SERVICE_NAME: Final = "troupe"
DEFAULT_ENVIRONMENT: Final = "development"
KERNEL_SCOPE: Final = "troupe.kernel"
HTTP_SCOPE: Final = "troupe.gateway"

LEGACY_REQUEST_ID: Final = "X-Request-Id"
"""Correlation header of HTTP-era clients; kept as a span attribute and correlation id."""
LEGACY_TRACE_ID: Final = "X-Trace-Id"
"""Pre-W3C trace header; kept as a span attribute and, failing a request id, a correlation id."""

LEGACY_REQUEST_ID_ATTRIBUTE: Final = "troupe.legacy.request_id"
LEGACY_TRACE_ID_ATTRIBUTE: Final = "troupe.legacy.trace_id"
CORRELATION_ID_ATTRIBUTE: Final = "troupe.correlation_id"

OVERFLOW_LABEL: Final = "other"
"""Label value recorded once a label has seen its limit of distinct values."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ROUTE_VALUE = re.compile(r"^[A-Za-z0-9_.:/{}*-]{1,200}$")


def _package_version() -> str:
    try:
        return metadata.version("troupe")
    except metadata.PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the process exports and how it names itself, read from the environment."""

    service_name: str = DEFAULT_SERVICE_NAME
    """``OTEL_SERVICE_NAME``, else ``TROUPE_SERVICE_NAME``: one per actor in a deployment."""
    service_version: str = field(default_factory=_package_version)
    environment: str = DEFAULT_ENVIRONMENT
    """``TROUPE_ENVIRONMENT``: becomes the ``deployment.environment`` resource attribute."""
    otlp_endpoint: str | None = None
    """Base OTLP/HTTP URL (``http://collector:4318``); None keeps tracing a no-op."""
    otlp_env_driven: bool = False
    """The endpoint came from ``OTEL_EXPORTER_OTLP_ENDPOINT``: exporters then read every other
    ``OTEL_EXPORTER_OTLP_*`` variable (headers, per-signal endpoints, timeouts) themselves."""
    export_traces: bool = True
    """False when ``OTEL_TRACES_EXPORTER=none``."""
    export_metrics: bool = True
    """False when ``OTEL_METRICS_EXPORTER=none`` (Prometheus scrapes ``/metrics`` instead)."""
    sdk_disabled: bool = False
    """``OTEL_SDK_DISABLED=true``: nothing is pushed; ``/metrics`` still answers."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (the process environment by default)."""
        env = os.environ if environ is None else environ
        otel_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        troupe_endpoint = env.get("TROUPE_OTLP_ENDPOINT", "").strip()
        service = (
            env.get("OTEL_SERVICE_NAME", "").strip()
            or env.get("TROUPE_SERVICE_NAME", "").strip()
            or DEFAULT_SERVICE_NAME
        )
        return cls(
            service_name=service,
            environment=env.get("TROUPE_ENVIRONMENT", "").strip() or DEFAULT_ENVIRONMENT,
            otlp_endpoint=(otel_endpoint or troupe_endpoint or None),
            otlp_env_driven=bool(otel_endpoint),
            export_traces=_exporter_wanted(env.get("OTEL_TRACES_EXPORTER")),
            export_metrics=_exporter_wanted(env.get("OTEL_METRICS_EXPORTER")),
            sdk_disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE,
        )

    @property
    def traces_enabled(self) -> bool:
        """Spans are recorded and exported over OTLP."""
        return self.otlp_endpoint is not None and self.export_traces and not self.sdk_disabled

    @property
    def metrics_push_enabled(self) -> bool:
        """Metrics are also pushed over OTLP (they are always readable as Prometheus text)."""
        return self.otlp_endpoint is not None and self.export_metrics and not self.sdk_disabled

    def resource(self) -> Resource:
        """The OpenTelemetry resource every span and metric of this process carries."""
        return Resource.create(
            {
                "service.name": self.service_name,
                "service.version": self.service_version,
                "service.namespace": "troupe",
                "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
                # Both spellings: semantic conventions renamed the key, backends read either.
                "deployment.environment": self.environment,
                "deployment.environment.name": self.environment,
            }
        )


def _exporter_wanted(value: str | None) -> bool:
    return (value or "otlp").strip().lower() != "none"


def _signal_endpoint(settings: Settings, path: str) -> str | None:
    if settings.otlp_env_driven or settings.otlp_endpoint is None:
        return None
    return settings.otlp_endpoint.rstrip("/") + path


class _Shutdown(Protocol):
    def shutdown(self) -> object: ...


class Telemetry:
    """The providers and instruments of one configuration; replaced whole by ``configure``."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        owned: Sequence[_Shutdown] = (),
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._owned = list(owned)
        self._kernel: KernelMetrics | None = None
        self._http: HttpServerMetrics | None = None
        self._lock = threading.Lock()

    @property
    def recording(self) -> bool:
        """True when spans are recorded (an SDK tracer provider is installed)."""
        return isinstance(self.tracer_provider, SdkTracerProvider)

    def tracer(self, name: str) -> trace.Tracer:
        """A tracer of this configuration for instrumentation scope ``name``."""
        return self.tracer_provider.get_tracer(name, self.settings.service_version)

    def meter(self, name: str) -> metrics.Meter:
        """A meter of this configuration for instrumentation scope ``name``."""
        return self.meter_provider.get_meter(name, self.settings.service_version)

    @property
    def kernel(self) -> KernelMetrics:
        """The kernel's instruments, created on first use."""
        kernel = self._kernel
        if kernel is not None:
            return kernel
        with self._lock:
            if self._kernel is None:
                self._kernel = KernelMetrics(self.meter(KERNEL_SCOPE))
            return self._kernel

    @property
    def http(self) -> HttpServerMetrics:
        """The gateway's HTTP server instruments, created on first use."""
        http = self._http
        if http is not None:
            return http
        with self._lock:
            if self._http is None:
                self._http = HttpServerMetrics(self.meter(HTTP_SCOPE))
            return self._http

    def force_flush(self) -> None:
        """Push buffered spans and metrics now (before a planned exit, or in tests)."""
        for provider in self._owned:
            if isinstance(provider, SdkTracerProvider | SdkMeterProvider):
                provider.force_flush()

    def shutdown(self) -> None:
        """Flush and stop what this configuration created; injected providers are left alone."""
        owned, self._owned = self._owned, []
        for provider in owned:
            provider.shutdown()


# Prometheus text always comes from this one registry, so a metrics server started once keeps
# serving whatever configuration is current: each configuration's reader registers here and
# unregisters on shutdown.
_REGISTRY = CollectorRegistry(auto_describe=False)
_PROPAGATOR = TraceContextTextMapPropagator()
_LOCK = threading.RLock()
_state: Telemetry | None = None
_atexit_registered = False


def _build(
    settings: Settings,
    *,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: metrics.MeterProvider | None,
    metric_readers: Sequence[MetricReader],
) -> Telemetry:
    resource = settings.resource()
    owned: list[_Shutdown] = []
    if tracer_provider is None:
        if settings.traces_enabled:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            sdk_tracer = SdkTracerProvider(resource=resource, shutdown_on_exit=False)
            exporter = OTLPSpanExporter(endpoint=_signal_endpoint(settings, "/v1/traces"))
            sdk_tracer.add_span_processor(BatchSpanProcessor(exporter))
            owned.append(sdk_tracer)
            tracer_provider = sdk_tracer
        else:
            # The no-op tracer hands an incoming parent through unchanged, so a hop without an
            # exporter still forwards the caller's traceparent (sampled flag included).
            tracer_provider = trace.NoOpTracerProvider()
    if meter_provider is None:
        readers: list[MetricReader] = [
            PrometheusMetricReader(scope_info_enabled=False, registry=_REGISTRY),
            *metric_readers,
        ]
        if settings.metrics_push_enabled:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            metric_exporter = OTLPMetricExporter(endpoint=_signal_endpoint(settings, "/v1/metrics"))
            readers.append(PeriodicExportingMetricReader(metric_exporter))
        # This module's own exit hook shuts providers down once; the SDK's would do it twice.
        sdk_meter = SdkMeterProvider(
            metric_readers=readers, resource=resource, shutdown_on_exit=False
        )
        owned.append(sdk_meter)
        meter_provider = sdk_meter
    return Telemetry(settings, tracer_provider, meter_provider, owned)


def configure(
    *,
    settings: Settings | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    metric_readers: Sequence[MetricReader] = (),
) -> Telemetry:
    """Replace the process's telemetry, shutting down the previous one.

    Tests pass their own providers (an SDK ``TracerProvider`` with an in-memory exporter) or
    extra ``metric_readers`` beside the Prometheus one. Nothing here touches OpenTelemetry's
    global providers, so one test's configuration cannot outlive its ``reset()``.
    """
    global _state
    with _LOCK:
        previous = _state
        _state = None
        if previous is not None:
            previous.shutdown()
        _state = _build(
            settings or Settings.from_env(),
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            metric_readers=metric_readers,
        )
        return _state


def get() -> Telemetry:
    """The process's telemetry, built from the environment on first use (once, thread-safe)."""
    global _state, _atexit_registered
    state = _state
    if state is not None:
        return state
    with _LOCK:
        if _state is None:
            built = _build(
                Settings.from_env(), tracer_provider=None, meter_provider=None, metric_readers=()
            )
            if built.recording:
                # Library instrumentations (HTTP clients, drivers) read the global provider.
                trace.set_tracer_provider(built.tracer_provider)
            if not _atexit_registered:
                atexit.register(shutdown)
                _atexit_registered = True
            _state = built
        return _state


def reset() -> None:
    """Shut down the current telemetry; the next use builds it again from the environment."""
    global _state
    with _LOCK:
        previous, _state = _state, None
        if previous is not None:
            previous.shutdown()


def shutdown() -> None:
    """Flush and stop exporters (called at exit; call it on graceful stop)."""
    with _LOCK:
        if _state is not None:
            _state.shutdown()


def tracer(name: str) -> trace.Tracer:
    """A tracer for instrumentation scope ``name`` (``troupe.kernel``, ``troupe.gateway``)."""
    return get().tracer(name)


def meter(name: str) -> metrics.Meter:
    """A meter for instrumentation scope ``name``."""
    return get().meter(name)


def kernel_metrics() -> KernelMetrics:
    """The kernel's metric facade for the current configuration."""
    return get().kernel


def http_metrics() -> HttpServerMetrics:
    """The gateway's HTTP server metric facade for the current configuration."""
    return get().http


def registry() -> CollectorRegistry:
    """The Prometheus registry ``/metrics`` renders; other collectors may register here too."""
    get()
    return _REGISTRY


def prometheus_text() -> tuple[bytes, str]:
    """Every metric of the process in the Prometheus text format, and its content type."""
    get()
    return generate_latest(_REGISTRY), CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class MetricsServer:
    """A running ``/metrics`` HTTP endpoint on a daemon thread."""

    host: str
    port: int
    _server: object = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def close(self) -> None:
        """Stop serving and release the port."""
        shutdown_server = getattr(self._server, "shutdown", None)
        close_socket = getattr(self._server, "server_close", None)
        if callable(shutdown_server):
            shutdown_server()
        if callable(close_socket):
            close_socket()
        self._thread.join(timeout=5)


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (or ``":port"``, ``"[::1]:port"``) as a host and a port."""
    parts = urlsplit(f"//{address.strip()}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"metrics address {address!r} has an invalid port") from exc
    if port is None:
        raise ValueError(f"metrics address {address!r} must be 'host:port', e.g. '0.0.0.0:9464'")
    return parts.hostname or "0.0.0.0", port


def serve_metrics(address: str) -> MetricsServer:
    """Serve Prometheus text on ``address`` (``"0.0.0.0:9464"``; port 0 picks a free one)."""
    host, port = parse_address(address)
    get()
    server, thread = start_http_server(port, addr=host, registry=_REGISTRY)
    return MetricsServer(host, int(server.server_port), server, thread)


def serve_metrics_from_env(environ: Mapping[str, str] | None = None) -> MetricsServer | None:
    """Serve ``/metrics`` on ``TROUPE_METRICS_ADDR`` when it is set (actors and the relay)."""
    env = os.environ if environ is None else environ
    address = env.get("TROUPE_METRICS_ADDR", "").strip()
    return serve_metrics(address) if address else None


# --- W3C trace context over NATS headers -------------------------------------------------


def _lookup(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # HTTP hops may re-case header names; NATS keeps whatever the publisher wrote.
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


class _HeaderGetter(Getter[Mapping[str, str]]):
    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = _lookup(carrier, key)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def inject(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add ``traceparent``/``tracestate`` for the current (or given) span to ``headers``."""
    _PROPAGATOR.inject(headers, context=context)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    """The remote parent carried by ``headers``; an empty context when there is none."""
    return _PROPAGATOR.extract(headers or {}, getter=_GETTER)


def correlation_id(headers: Mapping[str, str] | None) -> str | None:
    """``Troupe-Correlation-Id``, else the legacy ``X-Request-Id``, else ``X-Trace-Id``."""
    if not headers:
        return None
    for name in (Header.CORRELATION_ID, LEGACY_REQUEST_ID, LEGACY_TRACE_ID):
        value = _lookup(headers, name)
        if value:
            return value
    return None


def legacy_attributes(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Span attributes for the legacy correlation headers present in ``headers``."""
    if not headers:
        return {}
    found: dict[str, str] = {}
    for name, attribute in (
        (LEGACY_REQUEST_ID, LEGACY_REQUEST_ID_ATTRIBUTE),
        (LEGACY_TRACE_ID, LEGACY_TRACE_ID_ATTRIBUTE),
    ):
        value = _lookup(headers, name)
        if value:
            found[attribute] = value
    return found


def messaging_attributes(
    subject: str,
    *,
    operation: Literal["publish", "receive", "process", "settle"],
    message_id: str | None = None,
    consumer: str | None = None,
    batch_size: int | None = None,
) -> dict[str, AttributeValue]:
    """OpenTelemetry messaging semantic-convention attributes for a NATS subject."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.type": operation,
    }
    if message_id is not None:
        attributes["messaging.message.id"] = message_id
    if consumer is not None:
        attributes["messaging.consumer.group.name"] = consumer
    if batch_size is not None:
        attributes["messaging.batch.message_count"] = batch_size
    return attributes


@contextmanager
def span_from_headers(
    name: str,
    headers: Mapping[str, str] | None,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    scope: str = KERNEL_SCOPE,
) -> Iterator[Span]:
    """Start a current span whose parent is the ``traceparent`` in ``headers``.

    Without a ``traceparent`` the span starts a new trace; legacy ``X-Request-Id`` and
    ``X-Trace-Id`` values are then still recorded as attributes, and the correlation id
    (``Troupe-Correlation-Id`` or its legacy stand-in) as ``troupe.correlation_id``.
    """
    parent = extract(headers)
    span_attributes: dict[str, AttributeValue] = dict(attributes or {})
    span_attributes.update(legacy_attributes(headers))
    correlation = correlation_id(headers)
    if correlation is not None:
        span_attributes.setdefault(CORRELATION_ID_ATTRIBUTE, correlation)
    with tracer(scope).start_as_current_span(
        name, context=parent, kind=kind, attributes=span_attributes
    ) as span:
        yield span


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside any trace."""
    span_context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else None


def current_span_id() -> str | None:
    """The current span id as 16 hex digits, or None outside any trace."""
    span_context = trace.get_current_span().get_span_context()
    return trace.format_span_id(span_context.span_id) if span_context.is_valid else None


# --- Metrics -------------------------------------------------------------------------------


class _BoundedLabel:
    """Caps one label's distinct values so a bug cannot multiply the series count."""

    def __init__(self, limit: int, pattern: re.Pattern[str] = _LABEL_VALUE) -> None:
        self._limit = limit
        self._pattern = pattern
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit or not self._pattern.match(value):
                return OVERFLOW_LABEL
            self._seen.add(value)
            return value


BatchOutcome = Literal["committed", "rolled_back", "failed"]
"""How a batch ended: committed; rolled back and retried (stale state); failed (naked)."""

BATCH_SIZE_BUCKETS: Final = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
LAG_BUCKETS: Final = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
HTTP_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

MAX_ACTORS: Final = 64
MAX_KINDS: Final = 32


class KernelMetrics:
    """One method per fact the runtime reports; labels are bounded (actor, kind, outcome).

    Names below are OpenTelemetry's; Prometheus sees them with dots as underscores, the unit
    as a suffix and ``_total`` on counters (``troupe_kernel_messages_applied_total``).
    """

    def __init__(self, meter: metrics.Meter) -> None:
        self._actor = _BoundedLabel(MAX_ACTORS)
        self._kind = _BoundedLabel(MAX_KINDS)
        self._applied = meter.create_counter(
            "troupe.kernel.messages.applied",
            unit="{message}",
            description="Messages whose effect was committed (state saved, events in the outbox).",
        )
        self._duplicates = meter.create_counter(
            "troupe.kernel.messages.duplicates",
            unit="{message}",
            description="Messages skipped because the consumer ledger had already applied them.",
        )
        self._dead_lettered = meter.create_counter(
            "troupe.kernel.messages.dead_lettered",
            unit="{message}",
            description="Messages moved to the dead-letter stream, by reason kind.",
        )
        self._rejected = meter.create_counter(
            "troupe.kernel.messages.rejected",
            unit="{message}",
            description="Commands refused by decide, by rejection kind.",
        )
        self._redelivered = meter.create_counter(
            "troupe.kernel.messages.redelivered",
            unit="{message}",
            description="Messages JetStream delivered more than once.",
        )
        self._batch_size = meter.create_histogram(
            "troupe.kernel.batch.size",
            unit="{message}",
            description="Messages handled per transaction.",
            explicit_bucket_boundaries_advisory=BATCH_SIZE_BUCKETS,
        )
        self._handler_duration = meter.create_histogram(
            "troupe.kernel.handler.duration",
            unit="s",
            description="Wall time to handle one fetched batch: decode, transaction, publish, ack.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self._outbox_unsent = meter.create_gauge(
            "troupe.kernel.outbox.unsent",
            unit="{row}",
            description="Outbox rows committed but not yet published.",
        )
        self._outbox_oldest = meter.create_gauge(
            "troupe.kernel.outbox.oldest_age",
            unit="s",
            description="Age of the oldest unsent outbox row (0 when the outbox is empty).",
        )
        self._outbox_published = meter.create_counter(
            "troupe.kernel.outbox.published",
            unit="{row}",
            description="Outbox rows published to JetStream and marked sent.",
        )
        self._publish_lag = meter.create_histogram(
            "troupe.kernel.outbox.publish_lag",
            unit="s",
            description="Age of the oldest row of a published outbox batch when it was published.",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS,
        )
        self._publish_failures = meter.create_counter(
            "troupe.kernel.publish.failures",
            unit="{attempt}",
            description="Failed publishes to JetStream (the rows stay in the outbox).",
        )

    def applied(self, actor: str, n: int = 1) -> None:
        """``n`` messages of ``actor`` had their effect committed."""
        if n > 0:
            self._applied.add(n, {"actor": self._actor(actor)})

    def duplicates(self, actor: str, n: int = 1) -> None:
        """``n`` messages were already in ``actor``'s ledger and were only acked."""
        if n > 0:
            self._duplicates.add(n, {"actor": self._actor(actor)})

    def dead_lettered(self, actor: str, kind: DeadLetterKind, n: int = 1) -> None:
        """``n`` messages were dead-lettered for reason ``kind`` (``decode``, ``handler``, ...)."""
        if n > 0:
            self._dead_lettered.add(n, {"actor": self._actor(actor), "kind": self._kind(kind)})

    def rejected(self, actor: str, kind: RejectionKind, n: int = 1) -> None:
        """``n`` commands were refused with a rejection of ``kind``."""
        if n > 0:
            self._rejected.add(n, {"actor": self._actor(actor), "kind": self._kind(kind)})

    def redelivered(self, actor: str, n: int = 1) -> None:
        """``n`` messages arrived with a delivery count above one."""
        if n > 0:
            self._redelivered.add(n, {"actor": self._actor(actor)})

    def batch(
        self, actor: str, size: int, seconds: float, outcome: BatchOutcome = "committed"
    ) -> None:
        """A batch of ``size`` messages was handled in ``seconds`` and ended with ``outcome``."""
        labels = {"actor": self._actor(actor), "outcome": outcome}
        self._batch_size.record(size, labels)
        self._handler_duration.record(max(seconds, 0.0), labels)

    def outbox_unsent(self, actor: str, rows: int, oldest_age_seconds: float) -> None:
        """``actor``'s outbox holds ``rows`` unsent rows, the oldest ``oldest_age_seconds`` old."""
        labels = {"actor": self._actor(actor)}
        self._outbox_unsent.set(max(rows, 0), labels)
        self._outbox_oldest.set(max(oldest_age_seconds, 0.0) if rows > 0 else 0.0, labels)

    def outbox_published(self, actor: str, rows: int, lag_seconds: float) -> None:
        """``rows`` outbox rows were published; the oldest had waited ``lag_seconds``."""
        if rows <= 0:
            return
        labels = {"actor": self._actor(actor)}
        self._outbox_published.add(rows, labels)
        self._publish_lag.record(max(lag_seconds, 0.0), labels)

    def publish_failed(self, actor: str, kind: str = "error") -> None:
        """A publish to JetStream failed (``timeout``, ``no_responders``, ``error``, ...)."""
        self._publish_failures.add(1, {"actor": self._actor(actor), "kind": self._kind(kind)})


_HTTP_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)


class HttpServerMetrics:
    """The gateway's request metric, named and labelled by the HTTP semantic conventions."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._route = _BoundedLabel(256, _ROUTE_VALUE)
        self._duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS,
        )

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request to the route template ``route`` answered ``status`` in ``seconds``."""
        upper = method.upper()
        self._duration.record(
            max(seconds, 0.0),
            {
                # Unknown methods collapse to _OTHER, as the conventions require.
                "http.request.method": upper if upper in _HTTP_METHODS else "_OTHER",
                "http.route": self._route(route) if route else OVERFLOW_LABEL,
                "http.response.status_code": status,
            },
        )
