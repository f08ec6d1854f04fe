"""Structured logs: stdlib logging with JSON or text output and correlation fields from context."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any, Final, Literal

import msgspec
from opentelemetry import trace

from schemas.base import Context

__all__ = [
    "CORRELATION_FIELDS",
    "DEFAULT_SCRUB",
    "REDACTED",
    "JsonFormatter",
    "TextFormatter",
    "bind",
    "bound",
    "configure_logging",
    "context_fields",
    "get_logger",
    "scrub",
]

LogFormat = Literal["json", "text"]

CORRELATION_FIELDS: Final = (
    "correlation_id",
    "causation_id",
    "message_id",
    "actor",
    "key",
    "trace_id",
    "span_id",
)
"""Fields every record carries when known, in this order, right after the message."""

DEFAULT_SCRUB: Final = frozenset(
    {
        "token",
        "password",
        "passwd",
        "secret",
        "authorization",
        "cookie",
        "credential",
        "api_key",
        "apikey",
        "private_key",
        "jwt",
        "dsn",
    }
)
"""Key fragments whose values are never written: a key containing any of them is redacted."""

REDACTED: Final = "[redacted]"

# A password inside a URL (postgresql+asyncpg://user:pw@host) or a bearer token inside free text.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@")
_BEARER = re.compile(r"(?i)\b(?P<head>bearer\s+)[A-Za-z0-9._~+/=-]+")

_fields: ContextVar[Mapping[str, Any]] = ContextVar(
    "troupe_log_fields", default=MappingProxyType({})
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)
_HANDLER_MARK: Final = "_troupe_handler"


def bound() -> Mapping[str, Any]:
    """The fields bound in the current context."""
    return _fields.get()


@contextmanager
def bind(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Add ``fields`` to every record logged inside the block (this task or thread only).

    Values of None are ignored, so optional ids can be passed unconditionally. Nested blocks
    add to and override outer ones; leaving a block restores what was bound before.
    """
    current = _fields.get()
    merged = {**current, **{name: value for name, value in fields.items() if value is not None}}
    token = _fields.set(merged)
    try:
        yield merged
    finally:
        _fields.reset(token)


def context_fields(ctx: Context, actor: str | None = None) -> dict[str, Any]:
    """The correlation fields of a message being handled, ready for ``bind(**...)``."""
    fields: dict[str, Any] = {
        "correlation_id": ctx.correlation_id,
        "causation_id": ctx.causation_id,
        "message_id": ctx.message_id,
        "key": ctx.key,
        "subject": ctx.subject,
    }
    if ctx.tenant != "default":
        fields["tenant"] = ctx.tenant
    if actor is not None:
        fields["actor"] = actor
    return {name: value for name, value in fields.items() if value is not None}


def _normalise(key: str) -> str:
    return key.lower().replace("-", "_")


def _is_secret(key: str, words: frozenset[str]) -> bool:
    name = _normalise(key)
    return any(word in name for word in words)


def _scrub_text(text: str) -> str:
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(rf"\g<head>{REDACTED}", text)
    return text


def scrub(value: Any, words: frozenset[str] = DEFAULT_SCRUB) -> Any:
    """``value`` with secret-named keys redacted, recursively, and secrets in text masked."""
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if _is_secret(str(key), words) else scrub(item, words)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item, words) for item in value]
    return value


def _trace_fields() -> dict[str, str]:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
    }


def _encode_default(value: Any) -> Any:
    # Anything msgspec cannot encode natively (exceptions, paths, custom objects) logs as text.
    return str(value)


class _StructuredFormatter(logging.Formatter):
    """Collects a record's fields in a fixed order and scrubs them; subclasses render."""

    def __init__(self, scrub_words: frozenset[str] = DEFAULT_SCRUB) -> None:
        super().__init__()
        self.scrub_words = scrub_words

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """Every field of ``record``: base, correlation, then free ``extra`` fields."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = {**_trace_fields(), **_fields.get()}
        extras = {
            name: value
            for name, value in record.__dict__.items()
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_")
        }
        for name in CORRELATION_FIELDS:
            value = extras.pop(name, context.pop(name, None))
            if value is not None:
                out[name] = value
        for name, value in {**context, **extras}.items():
            if name not in out:
                out[name] = value
        if record.exc_info:
            out["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        scrubbed: dict[str, Any] = scrub(out, self.scrub_words)
        return scrubbed


class JsonFormatter(_StructuredFormatter):
    """One JSON object per line, encoded with msgspec."""

    _encoder = msgspec.json.Encoder(enc_hook=_encode_default)

    def format(self, record: logging.LogRecord) -> str:
        return self._encoder.encode(self.fields(record)).decode()


class TextFormatter(_StructuredFormatter):
    """``ts LEVEL logger: msg key=value ...`` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        head = f"{fields.pop('ts')} {fields.pop('level').upper():<7} {fields.pop('logger')}: "
        message = str(fields.pop("msg"))
        trailer = fields.pop("exc", None)
        fields.pop("exc_type", None)
        stack = fields.pop("stack", None)
        pairs = " ".join(f"{name}={_text_value(value)}" for name, value in fields.items())
        line = head + message + (f"  {pairs}" if pairs else "")
        for block in (trailer, stack):
            if block:
                line += "\n" + str(block)
        return line


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else msgspec.json.encode(value, enc_hook=_encode_default)
    text = text.decode() if isinstance(text, bytes) else text
    return f'"{text}"' if (" " in text or not text) else text


def _level(value: str | int | None) -> int:
    if isinstance(value, int):
        return value
    name = (value or "INFO").strip().upper()
    level = logging.getLevelNamesMapping().get(name)
    if level is None:
        raise ValueError(f"log level {value!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def configure_logging(
    level: str | int | None = None,
    fmt: LogFormat | None = None,
    *,
    stream: IO[str] | None = None,
    scrub_words: frozenset[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Route the root logger through one Troupe handler; safe to call again.

    ``level`` defaults to ``TROUPE_LOG_LEVEL`` (INFO); ``fmt`` to ``TROUPE_LOG_FORMAT``, else
    text on a terminal and JSON otherwise. ``TROUPE_LOG_SCRUB`` (comma-separated) adds key
    fragments to the scrub list.
    """
    env = os.environ if environ is None else environ
    target = stream if stream is not None else sys.stderr
    chosen = fmt or env.get("TROUPE_LOG_FORMAT", "").strip().lower() or None
    if chosen is None:
        chosen = "text" if getattr(target, "isatty", lambda: False)() else "json"
    if chosen not in ("json", "text"):
        raise ValueError(f"log format {chosen!r} must be 'json' or 'text'")
    extra_words = {
        _normalise(word.strip()) for word in env.get("TROUPE_LOG_SCRUB", "").split(",") if word
    }
    words = frozenset((scrub_words if scrub_words is not None else DEFAULT_SCRUB) | extra_words)
    formatter = JsonFormatter(words) if chosen == "json" else TextFormatter(words)
    handler = logging.StreamHandler(target)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
            existing.close()
    root.addHandler(handler)
    root.setLevel(_level(level if level is not None else env.get("TROUPE_LOG_LEVEL")))
    return handler


def get_logger(name: str) -> logging.Logger:
    """A stdlib logger; records pick up bound fields when a Troupe handler formats them."""
    return logging.getLogger(name)
