"""The gateway's own metrics beside the HTTP route histogram: commands by domain and result."""

from __future__ import annotations

import threading
import weakref
from typing import Final

from opentelemetry import metrics

from actors.kernel import telemetry

__all__ = ["GatewayMetrics", "gateway_metrics"]

SCOPE: Final = "troupe.gateway"
_RESULTS: Final = frozenset(
    {"applied", "rejected", "dead_lettered", "preview", "pending", "replayed", "unavailable"}
)
MAX_DOMAINS: Final = 64


class GatewayMetrics:
    """Counters with bounded labels: ``domain`` (one per actor) and ``result`` (a fixed set)."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._domains: set[str] = set()
        self._lock = threading.Lock()
        self._commands = meter.create_counter(
            "troupe.gateway.commands",
            unit="{command}",
            description=(
                "Command requests answered by the gateway, by domain and result "
                "(applied, rejected, dead_lettered, preview, pending, replayed, unavailable)."
            ),
        )

    def _domain(self, domain: str) -> str:
        if domain in self._domains:
            return domain
        with self._lock:
            if len(self._domains) >= MAX_DOMAINS:
                return telemetry.OVERFLOW_LABEL
            self._domains.add(domain)
            return domain

    def command(self, domain: str, result: str) -> None:
        """One command request for ``domain`` ended with ``result``."""
        label = result if result in _RESULTS else telemetry.OVERFLOW_LABEL
        self._commands.add(1, {"domain": self._domain(domain), "result": label})


_BY_TELEMETRY: weakref.WeakKeyDictionary[telemetry.Telemetry, GatewayMetrics] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def gateway_metrics() -> GatewayMetrics:
    """The gateway's instruments for the process's current telemetry configuration."""
    current = telemetry.get()
    found = _BY_TELEMETRY.get(current)
    if found is not None:
        return found
    with _LOCK:
        found = _BY_TELEMETRY.get(current)
        if found is None:
            found = GatewayMetrics(current.meter(SCOPE))
            _BY_TELEMETRY[current] = found
        return found
