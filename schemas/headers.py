"""NATS header names Troupe reads and writes: metadata travels here, never in bodies."""

from __future__ import annotations

from enum import StrEnum


class Header(StrEnum):
    """Every header name in one place, so no string literal is scattered around."""

    # JetStream's own.
    MSG_ID = "Nats-Msg-Id"
    EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"

    # W3C trace context.
    TRACEPARENT = "traceparent"
    TRACESTATE = "tracestate"

    # Troupe's.
    MESSAGE_ID = "Troupe-Message-Id"
    """Identity the ledger records when it differs from Nats-Msg-Id (a redriven message)."""
    CORRELATION_ID = "Troupe-Correlation-Id"
    CAUSATION_ID = "Troupe-Causation-Id"
    TENANT = "Troupe-Tenant"
    PRINCIPAL = "Troupe-Principal"
    PRODUCER = "Troupe-Producer"
    EVENT_TYPE = "Troupe-Event-Type"
    WANT_OUTCOME = "Troupe-Want-Outcome"
    """Set to "1" by clients that wait for the command's outcome (the gateway, `troupe send`)."""
    EXPECTED_VERSION = "Troupe-Expected-Version"
    """Reject the command with a conflict unless the entity is at this version."""

    # Dead letters.
    DLQ_REASON = "Troupe-Dlq-Reason"
    DLQ_KIND = "Troupe-Dlq-Kind"
    DLQ_SUBJECT = "Troupe-Dlq-Subject"
    DLQ_STREAM = "Troupe-Dlq-Stream"
    DLQ_STREAM_SEQ = "Troupe-Dlq-Stream-Seq"
    DLQ_CONSUMER = "Troupe-Dlq-Consumer"
    DLQ_ATTEMPTS = "Troupe-Dlq-Attempts"
