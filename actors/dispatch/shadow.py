"""Shadow replay: recorded ticket decisions against what another bundle would have decided."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

import msgspec

from actors.dispatch.bundles.loader import Bundle
from actors.dispatch.policies import POLICY_RULES, decide_policy
from actors.tickets.rules import evolve, initial
from schemas.dispatch.records import PolicyDecision
from schemas.dispatch.shadow import DecisionBrief, HistoryEntry, ShadowRecord, ShadowSummary
from schemas.dispatch.tickets import DecisionRecorded, TicketState

RECOMPUTED_RULES = POLICY_RULES | {"bundle"}
"""Rules re-evaluated under the replayed bundle; the rest (kill switch, ticket state) are facts
of the moment, carried over unchanged."""

_ENCODER = msgspec.json.Encoder()


def brief(decision: PolicyDecision) -> DecisionBrief:
    """The compared parts of a decision."""
    return DecisionBrief(
        decision=decision.decision,
        reason_code=decision.reason_code,
        rule=decision.rule,
        bundle_version=decision.bundle_version,
        bundle_sha256=decision.bundle_sha256,
    )


def replay(
    history: Iterable[HistoryEntry],
    bundle: Bundle,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
) -> Iterator[ShadowRecord]:
    """One record per recorded decision (in history order) with the would-be decision.

    State is folded from the recorded events, so each decision is re-made
    against the ticket exactly as it stood then (a counterfactual per decision,
    not a re-simulation of what would have followed). ``tenant`` and ``since``
    select which decisions are reported; every event is still folded.
    """
    states: dict[str, TicketState] = {}
    for entry in history:
        state = states.get(entry.ticket_id) or initial(entry.ticket_id)
        event = entry.event
        if (
            isinstance(event, DecisionRecorded)
            and (tenant is None or event.command.tenant == tenant)
            and (since is None or event.at >= since)
        ):
            yield compare(state, event, bundle, entry.stream_seq)
        states[entry.ticket_id] = evolve(state, event)


def compare(
    state: TicketState, recorded: DecisionRecorded, bundle: Bundle, stream_seq: int = 0
) -> ShadowRecord:
    """The record for one decision: re-decided if a bundle rule made it, carried otherwise."""
    before = brief(recorded.decision)
    carried = recorded.decision.rule not in RECOMPUTED_RULES
    if carried:
        after = msgspec.structs.replace(
            before, bundle_version=bundle.version, bundle_sha256=bundle.sha256
        )
    else:
        after = brief(decide_policy(bundle, recorded.command, state, recorded.at))
    flipped = before.decision != after.decision
    return ShadowRecord(
        bundle_version=bundle.version,
        bundle_sha256=bundle.sha256,
        ticket_id=recorded.command.ticket,
        tenant=recorded.command.tenant,
        request_id=recorded.command.request_id,
        correlation_id=recorded.command.correlation_id,
        intent=recorded.command.intent,
        at=recorded.at,
        stream_seq=stream_seq,
        recorded=before,
        would_be=after,
        flipped=flipped,
        flip=f"{before.decision}->{after.decision}" if flipped else None,
        reason_changed=before.reason_code != after.reason_code,
        carried=carried,
    )


class _Totals:
    """Running totals, so a replay streams without keeping its records."""

    def __init__(self) -> None:
        self.flips: Counter[str] = Counter()
        self.decisions = self.carried = self.changed = 0

    def add(self, record: ShadowRecord) -> None:
        self.decisions += 1
        self.carried += record.carried
        self.changed += record.reason_changed
        if record.flip is not None:
            self.flips[record.flip] += 1

    def summary(self, bundle: Bundle) -> ShadowSummary:
        return ShadowSummary(
            bundle_version=bundle.version,
            bundle_sha256=bundle.sha256,
            decisions=self.decisions,
            flipped=sum(self.flips.values()),
            carried=self.carried,
            reason_changed=self.changed,
            flips=dict(sorted(self.flips.items())),
        )


def summarize(records: Iterable[ShadowRecord], bundle: Bundle) -> ShadowSummary:
    """Totals of a replay."""
    totals = _Totals()
    for record in records:
        totals.add(record)
    return totals.summary(bundle)


def jsonl(
    history: Iterable[HistoryEntry],
    bundle: Bundle,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
) -> Iterator[bytes]:
    """The replay artefact: one JSON line per record, then the summary line."""
    totals = _Totals()
    for record in replay(history, bundle, tenant=tenant, since=since):
        totals.add(record)
        yield _ENCODER.encode(record) + b"\n"
    yield _ENCODER.encode(totals.summary(bundle)) + b"\n"
