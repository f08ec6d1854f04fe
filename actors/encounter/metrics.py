"""Turn-engine metrics and logs, recorded where the actors meet the runtime, never in the rules.

Each actor's ``decide`` is wrapped (see ``actor.py`` of encounter, effects and mastery):
the wrapper calls the pure rules, then hands the message and the decision to one of the
``observe_*`` functions here. Preview requests (no stream sequence) are not counted, and a
message decided twice in one process (a batch rolled back and retried) is counted once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, Literal

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from actors.kernel import logs, telemetry
from schemas.base import Command, Context, Decision, Event, Rejection
from schemas.effects import EffectApplied, EffectExpired, EffectRemoved
from schemas.encounter import (
    CombatantDefeated,
    EncounterCreated,
    EncounterEnded,
    EncounterStarted,
    NextTurn,
    TurnEnded,
    TurnEnding,
    TurnSkipped,
    TurnStarted,
)
from schemas.flags import FlagVerdict
from schemas.mastery import MasteryProc, MasteryResolved, ProcRequested, ProcRequestRejected

SCOPE: Final = "troupe.encounter"

NEXT_TURN_BUCKETS: Final = (
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
    30.0,
)
"""Seconds. A healthy step completes in tens of milliseconds; 1 s+ means a lagging actor."""

MAX_CODES: Final = 32
MAX_MASTERIES: Final = 32
SEEN_IDS: Final = 8192
PENDING_STEPS: Final = 8192

NextTurnOutcome = Literal["accepted", "conflict", "refused"]
LatencyPhase = Literal["accepted", "completed"]
ProcStage = Literal["request", "resolve"]

_LABEL_VALUE: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

log = logging.getLogger("troupe.encounter")
effects_log = logging.getLogger("troupe.effects")
mastery_log = logging.getLogger("troupe.mastery")


class _Bounded:
    """Caps a label's distinct values: past the limit (or for odd text) it reads ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit or not _LABEL_VALUE.match(value):
                return telemetry.OVERFLOW_LABEL
            self._seen.add(value)
            return value


class Gauges:
    """Values the encounter actor's poller reads from the database, observed on collection."""

    def __init__(self) -> None:
        self.active: int | None = None
        self.stuck: int | None = None

    def observe_active(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self.active is None else [Observation(self.active)]

    def observe_stuck(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [] if self.stuck is None else [Observation(self.stuck)]


GAUGES = Gauges()
"""Written by ``actors.encounter.actor``'s poller; one per process."""


class TurnMetrics:
    """One method per fact of the turn engine; every label is bounded.

    OpenTelemetry names below; Prometheus sees ``troupe_encounter_turns_advanced_total``,
    ``troupe_encounter_next_turn_duration_seconds_bucket`` and so on.
    """

    def __init__(self, meter: metrics.Meter) -> None:
        self._code = _Bounded(MAX_CODES)
        self._mastery = _Bounded(MAX_MASTERIES)
        self._turns = meter.create_counter(
            "troupe.encounter.turns.advanced",
            unit="{turn}",
            description="Turn steps ended (TurnEnded), by what followed: next turn or the end.",
        )
        self._next_turn = meter.create_counter(
            "troupe.encounter.next_turn.requests",
            unit="{command}",
            description="next_turn commands decided, by outcome: accepted, conflict, refused.",
        )
        self._conflicts = meter.create_counter(
            "troupe.encounter.next_turn.conflicts",
            unit="{command}",
            description="next_turn commands refused as conflicts, by code (stale_step, ...).",
        )
        self._latency = meter.create_histogram(
            "troupe.encounter.next_turn.duration",
            unit="s",
            description=(
                "From a next_turn being stored to TurnEnding decided (phase accepted) and to "
                "the next TurnStarted decided after effects and mastery (phase completed)."
            ),
            explicit_bucket_boundaries_advisory=NEXT_TURN_BUCKETS,
        )
        self._refusals = meter.create_counter(
            "troupe.encounter.flag.refusals",
            unit="{command}",
            description="Encounter commands refused by the combat flag, by verdict.",
        )
        self._transitions = meter.create_counter(
            "troupe.encounter.transitions",
            unit="{encounter}",
            description="Encounters created, started and ended (ended by reason).",
        )
        self._expired = meter.create_counter(
            "troupe.effects.expired",
            unit="{effect}",
            description="Effect instances expired at the end of a turn step, by kind.",
        )
        self._procs = meter.create_counter(
            "troupe.mastery.procs",
            unit="{proc}",
            description="Mastery procs emitted, by mastery.",
        )
        self._proc_rejections = meter.create_counter(
            "troupe.mastery.proc_rejections",
            unit="{request}",
            description=(
                "Proc requests refused, by stage (request: refused on arrival; resolve: "
                "ProcRequestRejected when the step resolved) and reason code."
            ),
        )
        meter.create_observable_gauge(
            "troupe.encounter.active",
            callbacks=[GAUGES.observe_active],
            unit="{encounter}",
            description="Encounters with status active (read from the database).",
        )
        meter.create_observable_gauge(
            "troupe.encounter.stuck_steps",
            callbacks=[GAUGES.observe_stuck],
            unit="{encounter}",
            description="Encounters whose current step has been ending for over a minute.",
        )

    def next_turn(self, outcome: NextTurnOutcome, code: str | None = None) -> None:
        """A next_turn was decided; conflicts also count by rejection code."""
        self._next_turn.add(1, {"outcome": outcome})
        if outcome == "conflict":
            self._conflicts.add(1, {"code": self._code(code or "unknown")})

    def turn_advanced(self, then: Literal["next_turn", "encounter_ended"]) -> None:
        self._turns.add(1, {"then": then})

    def next_turn_latency(self, phase: LatencyPhase, seconds: float) -> None:
        self._latency.record(max(seconds, 0.0), {"phase": phase})

    def flag_refusal(self, verdict: str) -> None:
        self._refusals.add(1, {"verdict": self._code(verdict)})

    def transition(self, name: str) -> None:
        self._transitions.add(1, {"transition": self._code(name)})

    def effects_expired(self, kind: str, n: int) -> None:
        if n > 0:
            self._expired.add(n, {"kind": self._code(kind)})

    def procs(self, mastery: str, n: int) -> None:
        if n > 0:
            self._procs.add(n, {"mastery": self._mastery(mastery)})

    def proc_rejected(self, stage: ProcStage, reason: str) -> None:
        self._proc_rejections.add(1, {"stage": stage, "reason": self._code(reason)})


_lock = threading.Lock()
_current: tuple[telemetry.Telemetry, TurnMetrics] | None = None


def turn_metrics() -> TurnMetrics:
    """The instruments of the current telemetry configuration (rebuilt when it is replaced)."""
    global _current
    tel = telemetry.get()
    current = _current
    if current is not None and current[0] is tel:
        return current[1]
    with _lock:
        if _current is None or _current[0] is not tel:
            _current = (tel, TurnMetrics(tel.meter(SCOPE)))
        return _current[1]


class _Seen:
    """Message ids already observed, so a retried batch is not counted twice."""

    def __init__(self, size: int = SEEN_IDS) -> None:
        self._ids: OrderedDict[tuple[str, str, int, datetime], None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first(self, actor: str, ctx: Context) -> bool:
        """True the first time ``ctx``'s message is seen; previews are never observed.

        A retried batch decides the same stored message again: same id, same stream
        sequence, same stored time.
        """
        if ctx.stream_seq <= 0:
            return False
        key = (actor, ctx.message_id, ctx.stream_seq, ctx.received_at)
        with self._lock:
            if key in self._ids:
                self._ids.move_to_end(key)
                return False
            self._ids[key] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)
            return True


_seen = _Seen()
_pending_steps: OrderedDict[tuple[str, int], datetime] = OrderedDict()


def _now() -> datetime:
    return datetime.now(UTC)


def _events(decision: Decision) -> Sequence[Event]:
    if isinstance(decision, Rejection):
        return ()
    return [e for e in decision if isinstance(e, Event)]


def observe_encounter(
    message: Command | Event, ctx: Context, decision: Decision, verdict: FlagVerdict
) -> None:
    """Count and log what the encounter decided for one message."""
    if not _seen.first("encounter", ctx):
        return
    m = turn_metrics()
    key = ctx.key
    with logs.bind(actor="encounter", encounter_id=key, message_id=ctx.message_id):
        if isinstance(decision, Rejection):
            _encounter_rejected(m, message, decision, verdict)
            return
        for event in _events(decision):
            _encounter_event(m, ctx, event)


def _encounter_rejected(
    m: TurnMetrics,
    message: Command | Event,
    rejection: Rejection,
    verdict: FlagVerdict,
) -> None:
    name = type(message).__name__
    if rejection.code == "combat_disabled":
        m.flag_refusal(verdict.code)
        log.info(
            "%s refused by the combat flag: %s",
            name,
            verdict.reason,
            extra={"flag_verdict": verdict.code, "cohort": verdict.cohort},
        )
    if isinstance(message, NextTurn):
        outcome: NextTurnOutcome = "conflict" if rejection.kind == "conflict" else "refused"
        m.next_turn(outcome, rejection.code)
        log.info(
            "next_turn refused: %s",
            rejection.reason,
            extra={
                "code": rejection.code,
                "expected_step": message.expected_step,
                "step": rejection.details.get("step"),
            },
        )


def _encounter_event(m: TurnMetrics, ctx: Context, event: Event) -> None:
    key = ctx.key
    match event:
        case TurnEnding():
            m.next_turn("accepted")
            m.next_turn_latency("accepted", (_now() - ctx.received_at).total_seconds())
            _pending_steps[(key, event.step)] = ctx.received_at
            while len(_pending_steps) > PENDING_STEPS:
                _pending_steps.popitem(last=False)
            log.info(
                "turn ending",
                extra={
                    "combatant_id": event.combatant_id,
                    "step": event.step,
                    "round": event.round,
                },
            )
        case TurnEnded():
            started = _pending_steps.pop((key, event.step), None)
            if started is not None:
                m.next_turn_latency("completed", (_now() - started).total_seconds())
            log.info(
                "turn ended",
                extra={
                    "combatant_id": event.combatant_id,
                    "step": event.step,
                    "round": event.round,
                },
            )
        case TurnStarted():
            if event.step > 1:
                m.turn_advanced("next_turn")
            log.info(
                "turn started",
                extra={
                    "combatant_id": event.combatant_id,
                    "step": event.step,
                    "round": event.round,
                },
            )
        case TurnSkipped():
            log.info(
                "turn skipped", extra={"combatant_id": event.combatant_id, "round": event.round}
            )
        case CombatantDefeated():
            log.info(
                "combatant defeated", extra={"combatant_id": event.combatant_id, "step": event.step}
            )
        case EncounterCreated():
            m.transition("created")
            log.info("encounter created", extra={"campaign_id": event.campaign_id})
        case EncounterStarted():
            m.transition("started")
            log.info("encounter started", extra={"order": list(event.order)})
        case EncounterEnded():
            m.transition(f"ended_{event.reason}")
            if event.reason == "all_defeated":
                m.turn_advanced("encounter_ended")
            log.info(
                "encounter ended",
                extra={"reason": event.reason, "step": event.step, "round": event.round},
            )


def observe_effects(message: Command | Event, ctx: Context, decision: Decision) -> None:
    """Count and log what the effects actor decided for one message."""
    if not _seen.first("effects", ctx):
        return
    m = turn_metrics()
    with logs.bind(actor="effects", encounter_id=ctx.key, message_id=ctx.message_id):
        if isinstance(decision, Rejection):
            effects_log.info(
                "%s refused: %s",
                type(message).__name__,
                decision.reason,
                extra={"code": decision.code},
            )
            return
        expired: dict[str, int] = {}
        for event in _events(decision):
            match event:
                case EffectExpired():
                    expired[event.kind] = expired.get(event.kind, 0) + 1
                    effects_log.info(
                        "effect expired",
                        extra={
                            "combatant_id": event.owner,
                            "placed_by": event.placed_by,
                            "instance_id": event.instance_id,
                            "kind": event.kind,
                            "step": event.step,
                        },
                    )
                case EffectApplied():
                    effects_log.info(
                        "effect applied",
                        extra={
                            "combatant_id": event.owner,
                            "placed_by": event.placed_by,
                            "instance_id": event.instance_id,
                            "kind": event.kind,
                            "expires_at_step": event.expires_at_step,
                        },
                    )
                case EffectRemoved():
                    effects_log.info(
                        "effect removed",
                        extra={
                            "combatant_id": event.owner,
                            "instance_id": event.instance_id,
                            "reason": event.reason,
                        },
                    )
        for kind, n in expired.items():
            m.effects_expired(kind, n)


def observe_mastery(message: Command | Event, ctx: Context, decision: Decision) -> None:
    """Count and log what the mastery actor decided for one message."""
    if not _seen.first("mastery", ctx):
        return
    m = turn_metrics()
    with logs.bind(actor="mastery", encounter_id=ctx.key, message_id=ctx.message_id):
        if isinstance(decision, Rejection):
            m.proc_rejected("request", decision.code)
            holder = getattr(message, "holder", None)
            mastery_log.info(
                "proc request refused: %s",
                decision.reason,
                extra={"combatant_id": holder, "code": decision.code},
            )
            return
        procs: dict[str, int] = {}
        for event in _events(decision):
            match event:
                case MasteryProc():
                    procs[event.mastery] = procs.get(event.mastery, 0) + 1
                    mastery_log.info(
                        "mastery proc",
                        extra={
                            "combatant_id": event.holder,
                            "mastery": event.mastery,
                            "instance_id": event.instance_id,
                            "step": event.step,
                            "ordinal": event.ordinal,
                        },
                    )
                case ProcRequestRejected():
                    m.proc_rejected("resolve", event.code)
                    mastery_log.info(
                        "proc request rejected: %s",
                        event.reason,
                        extra={
                            "combatant_id": event.holder,
                            "code": event.code,
                            "step": event.step,
                            "expected": event.expected,
                            "requested": event.requested,
                        },
                    )
                case ProcRequested():
                    mastery_log.info(
                        "proc requested",
                        extra={
                            "combatant_id": event.holder,
                            "mastery": event.mastery,
                            "count": event.count,
                            "step": event.step,
                        },
                    )
                case MasteryResolved():
                    mastery_log.debug(
                        "mastery resolved",
                        extra={
                            "step": event.step,
                            "procs": event.procs,
                            "rejected": event.rejected,
                        },
                    )
        for name, n in procs.items():
            m.procs(name, n)


__all__ = [
    "GAUGES",
    "NEXT_TURN_BUCKETS",
    "SCOPE",
    "Gauges",
    "TurnMetrics",
    "observe_effects",
    "observe_encounter",
    "observe_mastery",
    "turn_metrics",
]
