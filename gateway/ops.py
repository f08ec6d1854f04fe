"""Operational routes: liveness, readiness, Prometheus metrics and the AsyncAPI document."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import MediaType, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from actors.kernel import status as kernel_status
from actors.kernel import telemetry
from gateway.models import Health

if TYPE_CHECKING:
    from gateway.app import Services

__all__ = ["ops_routes"]

log = logging.getLogger("troupe.gateway.ops")

_ENCODER = msgspec.json.Encoder()
_HEALTH = _ENCODER.encode(Health())


def ops_routes(services: Services) -> list[HTTPRouteHandler]:
    """``/health``, ``/status``, ``/metrics`` and ``/asyncapi.json``: open without a token."""

    @get(
        "/health",
        name="health",
        operation_id="health",
        summary="Liveness",
        description="The process answers. It checks nothing else: see /status for readiness.",
        tags=["operations"],
        exclude_from_auth=True,
        sync_to_thread=False,
        responses={
            200: ResponseSpec(data_container=Health, description="Alive.", generate_examples=False)
        },
    )
    def health() -> Response[bytes]:
        return Response(content=_HEALTH, media_type=MediaType.JSON)

    @get(
        "/status",
        name="status",
        operation_id="status",
        summary="Readiness",
        description=(
            "NATS connected, database reachable, every stream present and not behind what the "
            "outbox recorded, the idempotency bucket reachable; version, build and uptime. 503 "
            "when any check fails."
        ),
        tags=["operations"],
        exclude_from_auth=True,
        responses={
            200: ResponseSpec(
                data_container=kernel_status.Status,
                description="Ready.",
                generate_examples=False,
            ),
            503: ResponseSpec(
                data_container=kernel_status.Status,
                description="Not ready; the failing checks say why.",
                generate_examples=False,
            ),
        },
    )
    async def status() -> Response[bytes]:
        result = await services.status()
        return Response(
            content=_ENCODER.encode(result),
            media_type=MediaType.JSON,
            status_code=200 if result.ok else 503,
        )

    @get(
        "/metrics",
        name="metrics",
        operation_id="metrics",
        summary="Prometheus metrics",
        description=(
            "Every metric of the process in the Prometheus text format: the kernel's (when actors "
            "run here), per-route request latency (`http_server_request_duration_seconds`) and "
            "the gateway's command counters."
        ),
        tags=["operations"],
        exclude_from_auth=True,
        sync_to_thread=False,
        media_type="text/plain",
    )
    def metrics() -> Response[bytes]:
        text, content_type = telemetry.prometheus_text()
        return Response(content=text, media_type=content_type)

    @get(
        "/asyncapi.json",
        name="asyncapi",
        operation_id="asyncapi",
        summary="AsyncAPI 3.0 document",
        description=(
            "Every subject and message schema of the bus (commands, events, outcomes, preview, "
            "query, dead letters), generated from the actors' msgspec Structs."
        ),
        tags=["operations"],
        exclude_from_auth=True,
        sync_to_thread=False,
        responses={
            200: ResponseSpec(
                data_container=dict[str, Any],
                description="The AsyncAPI document.",
                generate_examples=False,
            )
        },
    )
    def asyncapi() -> Response[bytes]:
        return Response(content=services.asyncapi_json(), media_type=MediaType.JSON)

    return [health, status, metrics, asyncapi]
