"""Builders shared by the dispatch unit tests: contexts, bundles, environments, a ticket driver."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from actors.dispatch.bundles import Bundle, load_bundle, seal, shipped_files
from actors.dispatch.env import PolicyEnvironment, environment
from actors.policy import rules as policy_rules
from actors.tickets import rules as ticket_rules
from schemas.base import Command, Context, Decision, Event, Rejection
from schemas.dispatch.common import (
    Contact,
    EvidenceRecord,
    GeoPoint,
    Money,
    Scope,
    Site,
    TimeWindow,
)
from schemas.dispatch.policy import ActivateBundle, PauseAutonomy, TenantControl
from schemas.dispatch.tickets import CreateTicket, TicketState
from schemas.subjects import command_subject_for

TENANT = "acme"
TICKET = "t-100"
MONDAY_10_CDT = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
"""Monday 2 June 2025, 10:00 in Chicago: outside the starter quiet hours."""


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def context(
    key: str = TICKET,
    *,
    at: datetime = MONDAY_10_CDT,
    message_id: str = "req-1",
    principal: str | None = "user:dispatcher",
    tenant: str = TENANT,
    correlation_id: str = "corr-1",
    command: type[Command] = CreateTicket,
) -> Context:
    """A runtime context for a ticket command."""
    return Context(
        key=key,
        message_id=message_id,
        subject=command_subject_for(command, key),
        received_at=at,
        correlation_id=correlation_id,
        tenant=tenant,
        principal=principal,
    )


def rules_json(bundle_name: str = "starter") -> dict[str, Any]:
    """The rule files of a shipped bundle as editable JSON data (path -> object)."""
    files = shipped_files(bundle_name)
    return {p: msgspec.json.decode(data) for p, data in files.items() if p.endswith(".json")}


def make_bundle(
    edits: Mapping[str, Any] | None = None,
    *,
    version: str = "test-1",
    base: str = "starter",
) -> Bundle:
    """A sealed, loaded bundle: the shipped one with whole rule files replaced by ``edits``."""
    files = {p: d for p, d in shipped_files(base).items() if p != "manifest.json"}
    for path, data in (edits or {}).items():
        files[path] = msgspec.json.encode(data)
    return load_bundle(seal(files, version=version, created_at=utc(2025, 6, 1, 0, 0)))


def control_for(bundle: Bundle | None, tenant: str = TENANT) -> TenantControl:
    """A tenant control with ``bundle`` activated through the policy actor's own rules."""
    control = policy_rules.initial(tenant)
    if bundle is None:
        return control
    activation = ActivateBundle(
        expected_sha256=bundle.sha256, reason="test setup", files=bundle.files
    )
    ctx = context(
        tenant, message_id="act-1", principal="user:admin", tenant=tenant, command=ActivateBundle
    )
    decision = policy_rules.decide(control, activation, ctx)
    assert not isinstance(decision, Rejection)
    for event in decision:
        assert isinstance(event, Event)
        control = policy_rules.evolve(control, event)
    return control


def env_for(
    bundle: Bundle | None, *, paused: tuple[Scope, ...] = (), tenant: str = TENANT
) -> PolicyEnvironment:
    """An environment of ``tenant`` with ``bundle`` active and ``paused`` scopes."""
    control = control_for(bundle, tenant)
    for i, scope in enumerate(paused):
        ctx = context(
            tenant,
            message_id=f"pause-{i}",
            principal="user:oncall",
            tenant=tenant,
            command=PauseAutonomy,
        )
        decision = policy_rules.decide(control, PauseAutonomy(scope=scope, reason="drill"), ctx)
        assert not isinstance(decision, Rejection)
        for event in decision:
            assert isinstance(event, Event)
            control = policy_rules.evolve(control, event)
    return environment(control)


def create_ticket(
    *,
    template: str = "water_leak",
    region: str = "central",
    priority: str = "normal",
    nte_cents: int = 100_000,
    phone: str | None = "+15555550100",
) -> CreateTicket:
    """A valid create command."""
    return msgspec.convert(
        {
            "type": "tickets.create_ticket.v1",
            "region": region,
            "incident_template": template,
            "title": "Leak under the sink",
            "site": Site(location=GeoPoint(lat=41.88, lon=-87.63), address="1 Main St"),
            "nte": Money(cents=nte_cents, currency="USD"),
            "priority": priority,
            "contact": None if phone is None else Contact(name="Pat", phone=phone),
            "required_skills": ("plumbing",),
        },
        CreateTicket,
        from_attributes=True,
    )


def evidence(evidence_id: str, kind: str, ticket: str = TICKET) -> EvidenceRecord:
    """An evidence record of a kind."""
    return EvidenceRecord(
        evidence_id=evidence_id,
        ticket_id=ticket,
        kind=kind,
        sha256="a" * 64,
        size_bytes=2048,
        content_type="image/jpeg",
        object_name=f"evidence/{ticket}/{evidence_id}.jpg",
        captured_at=MONDAY_10_CDT,
        captured_by="user:tech-7",
    )


def window(start: datetime, hours: int = 2) -> TimeWindow:
    """A visit window."""
    return TimeWindow(start=start, end=start + timedelta(hours=hours))


class Driver:
    """Sends commands to one ticket through the tickets rules, folding what they emit."""

    def __init__(self, env: PolicyEnvironment, ticket: str = TICKET) -> None:
        self.env = env
        self.ticket = ticket
        self.state: TicketState = ticket_rules.initial(ticket)
        self.events: list[Event] = []
        self.count = 0

    def send(
        self,
        command: Command,
        *,
        at: datetime = MONDAY_10_CDT,
        principal: str | None = "user:dispatcher",
        request_id: str | None = None,
        correlation_id: str | None = None,
        tenant: str = TENANT,
    ) -> Decision:
        """Decide one command and, unless rejected, fold its events into the state."""
        self.count += 1
        rid = request_id or f"req-{self.count}"
        ctx = context(
            self.ticket,
            at=at,
            message_id=rid,
            principal=principal,
            tenant=tenant,
            correlation_id=correlation_id or f"corr-{rid}",
            command=type(command),
        )
        decision = ticket_rules.decide(self.state, command, ctx, self.env)
        if not isinstance(decision, Rejection):
            for event in decision:
                assert isinstance(event, Event)
                self.state = ticket_rules.evolve(self.state, event)
                self.events.append(event)
        return decision
