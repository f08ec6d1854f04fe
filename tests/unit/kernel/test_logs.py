"""Structured logs: bound correlation fields, trace ids, JSON and text output, scrubbing."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id

from actors.kernel import logs
from schemas.base import Context


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    logs.configure_logging("DEBUG", "json", stream=out, environ={})
    return out


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


log = logging.getLogger("troupe.test")


def test_json_record_has_base_fields(stream: io.StringIO) -> None:
    log.info("turn %d ended", 7)
    (record,) = _records(stream)
    assert list(record)[:4] == ["ts", "level", "logger", "msg"]
    assert record["msg"] == "turn 7 ended"
    assert record["level"] == "info"
    assert record["logger"] == "troupe.test"
    stamp = datetime.fromisoformat(record["ts"])
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() == UTC.utcoffset(None)


def test_bound_fields_follow_the_message_in_a_fixed_order(stream: io.StringIO) -> None:
    with logs.bind(key="e1", actor="encounter", correlation_id="c-1", encounter_id="e1"):
        log.info("applied")
    (record,) = _records(stream)
    assert list(record)[4:] == ["correlation_id", "actor", "key", "encounter_id"]


def test_bind_nests_overrides_and_restores(stream: io.StringIO) -> None:
    with logs.bind(actor="encounter", key="e1"):
        with logs.bind(key="e2", combatant_id="c9", causation_id=None):
            log.info("inner")
            assert logs.bound() == {"actor": "encounter", "key": "e2", "combatant_id": "c9"}
        log.info("outer")
    log.info("outside")
    inner, outer, outside = _records(stream)
    assert (inner["key"], inner["combatant_id"]) == ("e2", "c9")
    assert "causation_id" not in inner
    assert outer["key"] == "e1"
    assert "combatant_id" not in outer
    assert "actor" not in outside
    assert logs.bound() == {}


def test_extra_fields_are_logged_and_override_bound_ones(stream: io.StringIO) -> None:
    with logs.bind(actor="encounter", message_id="m-1"):
        log.warning("proc", extra={"message_id": "m-2", "encounter_id": "e1", "step": 4})
    (record,) = _records(stream)
    assert record["message_id"] == "m-2"
    assert record["encounter_id"] == "e1"
    assert record["step"] == 4


def test_bound_fields_are_isolated_per_task(stream: io.StringIO) -> None:
    async def handle(key: str, started: asyncio.Event, other: asyncio.Event) -> None:
        with logs.bind(actor="encounter", key=key):
            started.set()
            await other.wait()
            log.info("handled")

    async def main() -> None:
        a, b = asyncio.Event(), asyncio.Event()
        await asyncio.gather(handle("e1", a, b), handle("e2", b, a))

    asyncio.run(main())
    # asyncio logs its own records (selector choice) at DEBUG; only ours carry keys.
    handled = [r for r in _records(stream) if r["logger"] == "troupe.test"]
    assert sorted(r["key"] for r in handled) == ["e1", "e2"]


def test_trace_and_span_ids_come_from_the_current_span(stream: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("troupe.test")
    with tracer.start_as_current_span("process") as span:
        log.info("inside")
    log.info("outside")
    inside, outside = _records(stream)
    assert inside["trace_id"] == format_trace_id(span.get_span_context().trace_id)
    assert inside["span_id"] == format_span_id(span.get_span_context().span_id)
    assert "trace_id" not in outside


def test_exception_is_formatted(stream: io.StringIO) -> None:
    try:
        raise KeyError("e404")
    except KeyError:
        log.exception("lookup failed")
    (record,) = _records(stream)
    assert record["level"] == "error"
    assert record["exc_type"] == "KeyError"
    assert "Traceback" in record["exc"]
    assert "e404" in record["exc"]


def test_values_json_cannot_encode_are_logged_as_text(stream: io.StringIO) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque-7"

    log.info("odd", extra={"thing": Opaque(), "when": datetime(2026, 1, 2, tzinfo=UTC)})
    (record,) = _records(stream)
    assert record["thing"] == "opaque-7"
    assert record["when"] == "2026-01-02T00:00:00Z"


def test_context_fields_from_a_message_context(stream: io.StringIO) -> None:
    ctx = Context(
        key="e1",
        message_id="m-1",
        subject="cmd.encounter.e1.next_turn",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        correlation_id="c-1",
        tenant="acme",
    )
    fields = logs.context_fields(ctx, actor="encounter")
    assert fields == {
        "correlation_id": "c-1",
        "message_id": "m-1",
        "key": "e1",
        "subject": "cmd.encounter.e1.next_turn",
        "tenant": "acme",
        "actor": "encounter",
    }
    with logs.bind(**fields):
        log.info("decided")
    (record,) = _records(stream)
    assert record["actor"] == "encounter"
    assert record["tenant"] == "acme"


# --- scrubbing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "access_token",
        "Authorization",
        "password",
        "DB_PASSWORD",
        "client-secret",
        "X-Api-Key",
        "set_cookie",
        "private_key",
        "jwt",
    ],
)
def test_secret_keys_are_redacted(stream: io.StringIO, key: str) -> None:
    log.info("call", extra={"fields": {key: "s3cr3t", "key": "e1"}})
    (record,) = _records(stream)
    assert record["fields"] == {key: logs.REDACTED, "key": "e1"}
    assert "s3cr3t" not in stream.getvalue()


def test_secrets_are_redacted_wherever_they_are_bound(stream: io.StringIO) -> None:
    with logs.bind(token="t0k3n"):
        log.info(
            "connect",
            extra={"password": "pw", "headers": [{"Authorization": "Bearer abc"}]},
        )
    (record,) = _records(stream)
    assert record["token"] == logs.REDACTED
    assert record["password"] == logs.REDACTED
    assert record["headers"] == [{"Authorization": logs.REDACTED}]


def test_secrets_inside_text_are_masked(stream: io.StringIO) -> None:
    log.info(
        "connecting to %s with header %s",
        "postgresql+asyncpg://troupe:hunter2@postgres:5432/troupe",
        "Authorization: Bearer eyJhbGciOi.x.y",
    )
    (record,) = _records(stream)
    assert "hunter2" not in record["msg"]
    assert "eyJhbGciOi" not in record["msg"]
    assert "postgresql+asyncpg://troupe:[redacted]@postgres:5432/troupe" in record["msg"]


def test_extra_scrub_words_from_the_environment() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "json", stream=out, environ={"TROUPE_LOG_SCRUB": "email, ssn"})
    log.info("signup", extra={"email": "a@b.c", "user_ssn": "123", "player": "Ada"})
    (record,) = _records(out)
    assert record["email"] == logs.REDACTED
    assert record["user_ssn"] == logs.REDACTED
    assert record["player"] == "Ada"


_SECRET_KEYS = st.sampled_from(["token", "Password", "api-key", "Authorization", "client_secret"])
_PLAIN_KEYS = st.sampled_from(["key", "actor", "step", "name", "encounter_id"])
_SECRETS = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=12, max_size=20)


@st.composite
def _nested(draw: st.DrawFn, depth: int = 0) -> tuple[dict[str, Any], list[str]]:
    planted: list[str] = []
    out: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            secret = draw(_SECRETS)
            planted.append(secret)
            out[draw(_SECRET_KEYS)] = secret
        elif depth < 2 and draw(st.booleans()):
            inner, inner_planted = draw(_nested(depth + 1))
            planted.extend(inner_planted)
            out[draw(_PLAIN_KEYS)] = [inner] if draw(st.booleans()) else inner
        else:
            out[draw(_PLAIN_KEYS)] = draw(st.integers(0, 9))
    return out, planted


@settings(max_examples=60, deadline=None)
@given(_nested())
def test_scrub_never_leaks_a_secret_valued_key(case: tuple[dict[str, Any], list[str]]) -> None:
    value, planted = case
    rendered = json.dumps(logs.scrub(value))
    # A later duplicate key may overwrite a planted secret; the rest must all be gone.
    for secret in planted:
        assert secret not in rendered


# --- configuration ---------------------------------------------------------------------------


def test_configure_logging_reads_level_and_format_from_env() -> None:
    out = io.StringIO()
    env = {"TROUPE_LOG_LEVEL": "warning", "TROUPE_LOG_FORMAT": "text"}
    handler = logs.configure_logging(stream=out, environ=env)
    assert isinstance(handler.formatter, logs.TextFormatter)
    log.info("hidden")
    log.warning("shown")
    assert "hidden" not in out.getvalue()
    assert "WARNING troupe.test: shown" in out.getvalue()


def test_default_format_is_text_on_a_terminal_and_json_elsewhere() -> None:
    tty_handler = logs.configure_logging(stream=_Tty(), environ={})
    assert isinstance(tty_handler.formatter, logs.TextFormatter)
    pipe_handler = logs.configure_logging(stream=io.StringIO(), environ={})
    assert isinstance(pipe_handler.formatter, logs.JsonFormatter)


def test_configure_logging_is_idempotent() -> None:
    logs.configure_logging("INFO", "json", stream=io.StringIO(), environ={})
    final = io.StringIO()
    logs.configure_logging("INFO", "json", stream=final, environ={})
    troupe_handlers = [h for h in logging.getLogger().handlers if getattr(h, "_troupe_handler", 0)]
    assert len(troupe_handlers) == 1
    log.info("once")
    assert len(_records(final)) == 1


@pytest.mark.parametrize(
    ("level", "fmt", "message"),
    [("LOUD", "json", "log level"), ("INFO", "xml", "log format")],
)
def test_configure_logging_rejects_bad_values(level: str, fmt: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        logs.configure_logging(level, fmt, stream=io.StringIO(), environ={})


def test_text_format_renders_fields_as_pairs() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "text", stream=out, environ={})
    with logs.bind(actor="lobby", key="l1"):
        log.info("seat taken", extra={"player": "Ada Lovelace", "seat": 2})
    line = out.getvalue().rstrip("\n")
    assert line.endswith('seat taken  actor=lobby key=l1 player="Ada Lovelace" seat=2')
    assert " INFO    troupe.test: " in line
