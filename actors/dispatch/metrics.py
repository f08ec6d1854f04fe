"""Dispatch metrics: decisions, holds, pauses, activations and proposals, with bounded labels.

OpenTelemetry names; Prometheus sees ``troupe_dispatch_decisions_total{decision,rule}`` and so
on. Decisions, activations and proposals are counted when their rows are written, so a batch
rolled back and retried counts twice (rare; the tables are the exact record). The gauges come
from the expiry scheduler's periodic scan of the tables.
"""

from __future__ import annotations

import threading
import weakref
from typing import Final

from opentelemetry import metrics

from actors.kernel import telemetry

SCOPE: Final = "troupe.dispatch"
_DECISIONS: Final = frozenset({"ALLOW", "DENY", "REQUIRE_APPROVAL"})
_RULES: Final = frozenset(
    {
        "quiet_hours",
        "nte_threshold",
        "closeout_evidence",
        "approvals",
        "override",
        "templates",
        "default",
        "kill_switch",
        "ticket_state",
        "bundle",
    }
)


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class DispatchMetrics:
    """One method per fact the dispatch actors report."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._decisions = meter.create_counter(
            "troupe.dispatch.decisions",
            unit="{decision}",
            description="Ticket decisions recorded, by decision value and deciding rule.",
        )
        self._approvals = meter.create_counter(
            "troupe.dispatch.approvals.resolved",
            unit="{approval}",
            description="Held commands resolved, by outcome (approved, rejected, expired).",
        )
        self._activations = meter.create_counter(
            "troupe.dispatch.bundle.activations",
            unit="{attempt}",
            description="Bundle activation attempts, by outcome (activated, refused).",
        )
        self._proposals = meter.create_counter(
            "troupe.dispatch.proposals",
            unit="{proposal}",
            description="Workflow proposals, by kind and whether the kill switch suppressed them.",
        )
        self._pending = meter.create_gauge(
            "troupe.dispatch.approvals.pending",
            unit="{approval}",
            description="Held commands waiting for a decision.",
        )
        self._overdue = meter.create_gauge(
            "troupe.dispatch.approvals.overdue",
            unit="{approval}",
            description="Held commands past their deadline and not yet expired.",
        )
        self._oldest_overdue = meter.create_gauge(
            "troupe.dispatch.approvals.oldest_overdue_age",
            unit="s",
            description="How long the most overdue hold is past its deadline (0 when none).",
        )
        self._paused = meter.create_gauge(
            "troupe.dispatch.paused_scopes",
            unit="{scope}",
            description="Scopes whose autonomy is paused, by scope kind.",
        )
        self._expiries_sent = meter.create_counter(
            "troupe.dispatch.expiries.sent",
            unit="{command}",
            description="expire_approval commands the scheduler published.",
        )

    def decision(self, decision: str, rule: str, n: int = 1) -> None:
        """``n`` decisions of ``decision`` made by ``rule`` were recorded."""
        if n > 0:
            self._decisions.add(
                n, {"decision": _bounded(decision, _DECISIONS), "rule": _bounded(rule, _RULES)}
            )

    def approval_resolved(self, outcome: str, n: int = 1) -> None:
        """``n`` holds were resolved with ``outcome``."""
        if n > 0:
            allowed = frozenset({"approved", "rejected", "expired"})
            self._approvals.add(n, {"outcome": _bounded(outcome, allowed)})

    def activation(self, outcome: str) -> None:
        """A bundle activation attempt ended with ``outcome``."""
        self._activations.add(
            1, {"outcome": _bounded(outcome, frozenset({"activated", "refused"}))}
        )

    def proposal(self, kind: str, suppressed: bool) -> None:
        """The workflow made (or was stopped from making) a proposal of ``kind``."""
        self._proposals.add(1, {"kind": kind[:32], "suppressed": "true" if suppressed else "false"})

    def holds(self, pending: int, overdue: int, oldest_overdue_seconds: float) -> None:
        """What the last scan of held commands found."""
        self._pending.set(max(pending, 0))
        self._overdue.set(max(overdue, 0))
        self._oldest_overdue.set(max(oldest_overdue_seconds, 0.0) if overdue else 0.0)

    def paused_scopes(self, by_kind: dict[str, int]) -> None:
        """Scopes paused now, by kind (tenant, region, ticket)."""
        for kind in ("tenant", "region", "ticket"):
            self._paused.set(by_kind.get(kind, 0), {"scope": kind})

    def expiries_sent(self, n: int) -> None:
        """The scheduler published ``n`` expire_approval commands."""
        if n > 0:
            self._expiries_sent.add(n)


_LOCK = threading.Lock()
_BY_TELEMETRY: weakref.WeakKeyDictionary[telemetry.Telemetry, DispatchMetrics] = (
    weakref.WeakKeyDictionary()
)


def get() -> DispatchMetrics:
    """The instruments of the current telemetry configuration (rebuilt after ``configure``)."""
    current = telemetry.get()
    with _LOCK:
        found = _BY_TELEMETRY.get(current)
        if found is None:
            found = DispatchMetrics(current.meter(SCOPE))
            _BY_TELEMETRY[current] = found
        return found


__all__ = ["SCOPE", "DispatchMetrics", "get"]
