"""Subject builders and parsers: the only place subject strings are assembled.

Layout (lower-case tokens, identifiers last but one, the name last)::

    cmd.<domain>.<key>.<verb>          commands          (COMMANDS stream)
    evt.<domain>.<key>.<event>         events            (EVENTS stream)
    out.<domain>.<digest>              command outcomes  (OUTCOMES stream)
    dlq.<consumer>                     dead letters      (DEADLETTER stream)
    preview.<domain>.<key>.<verb>      preview request/reply (core NATS)
    query.<domain>.<key>               state request/reply   (core NATS)

When a stream is partitioned, a subject transform appends the partition
number as a fifth token (``cmd.encounter.e1.next_turn.3``).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import Literal

import msgspec

from schemas.base import KEY_PATTERN, Message, domain_of, name_of

COMMANDS = "cmd"
EVENTS = "evt"
OUTCOMES = "out"
DEADLETTER = "dlq"
PREVIEW = "preview"
QUERY = "query"

_KEY = re.compile(KEY_PATTERN)
_TOKEN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Kind = Literal["cmd", "evt"]


class InvalidSubject(ValueError):
    """Raised when a subject or one of its tokens does not follow the layout above."""


class Subject(msgspec.Struct, frozen=True):
    """A parsed command or event subject."""

    kind: Kind
    domain: str
    key: str
    name: str
    partition: int | None = None

    def __str__(self) -> str:
        base = f"{self.kind}.{self.domain}.{self.key}.{self.name}"
        return base if self.partition is None else f"{base}.{self.partition}"


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid subject token for an entity key, else raise."""
    if not _KEY.match(key):
        raise InvalidSubject(
            f"entity key {key!r} must be 1-128 characters of letters, digits, '_' or '-'"
        )
    return key


def check_token(token: str, what: str = "token") -> str:
    """Return ``token`` if it is a valid lower-case name token, else raise."""
    if not _TOKEN.match(token):
        raise InvalidSubject(f"{what} {token!r} must be lower-case letters, digits or '_'")
    return token


def command_subject(domain: str, key: str, verb: str) -> str:
    """``cmd.<domain>.<key>.<verb>``."""
    domain, verb = check_token(domain, "domain"), check_token(verb, "verb")
    return f"{COMMANDS}.{domain}.{check_key(key)}.{verb}"


@cache
def _prefix(kind: str, cls: type[Message]) -> tuple[str, str]:
    domain = check_token(domain_of(cls), "domain")
    return f"{kind}.{domain}.", f".{check_token(name_of(cls), 'name')}"


def command_subject_for(cls: type[Message], key: str) -> str:
    """The subject a command of class ``cls`` for ``key`` is published to."""
    head, tail = _prefix(COMMANDS, cls)
    return head + check_key(key) + tail


def event_subject(domain: str, key: str, name: str) -> str:
    """``evt.<domain>.<key>.<event>``."""
    domain, name = check_token(domain, "domain"), check_token(name, "event")
    return f"{EVENTS}.{domain}.{check_key(key)}.{name}"


def event_subject_for(cls: type[Message], key: str) -> str:
    """The subject an event of class ``cls`` about ``key`` is published to."""
    head, tail = _prefix(EVENTS, cls)
    return head + check_key(key) + tail


def command_filter(domain: str, partition: int | None = None) -> str:
    """The consumer filter for every command of a domain (optionally one partition)."""
    check_token(domain, "domain")
    return f"{COMMANDS}.{domain}.*.*" + ("" if partition is None else f".{partition}")


def event_filter(domain: str, name: str = "*", partition: int | None = None) -> str:
    """The consumer filter for one event type (or all) of a domain."""
    check_token(domain, "domain")
    return f"{EVENTS}.{domain}.*.{name}" + ("" if partition is None else f".{partition}")


def digest(text: str) -> str:
    """A subject-safe 128-bit digest of an arbitrary id (ids may contain any character)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def outcome_subject(domain: str, command_id: str) -> str:
    """``out.<domain>.<digest(command id)>``: where a command's outcome is published."""
    return f"{OUTCOMES}.{check_token(domain, 'domain')}.{digest(command_id)}"


def dead_letter_subject(consumer: str) -> str:
    """``dlq.<consumer>``."""
    return f"{DEADLETTER}.{check_token(consumer, 'consumer')}"


def preview_subject(domain: str, key: str, verb: str) -> str:
    """``preview.<domain>.<key>.<verb>``: request/reply, decides without committing."""
    domain, verb = check_token(domain, "domain"), check_token(verb, "verb")
    return f"{PREVIEW}.{domain}.{check_key(key)}.{verb}"


def query_subject(domain: str, key: str) -> str:
    """``query.<domain>.<key>``: request/reply, answers an entity's current state."""
    return f"{QUERY}.{check_token(domain, 'domain')}.{check_key(key)}"


def parse(subject: str) -> Subject:
    """Parse a command or event subject, with or without a partition token."""
    parts = subject.split(".")
    if len(parts) not in (4, 5) or parts[0] not in (COMMANDS, EVENTS):
        raise InvalidSubject(
            f"subject {subject!r} is not 'cmd|evt.<domain>.<key>.<name>[.<partition>]'"
        )
    kind: Kind = "cmd" if parts[0] == COMMANDS else "evt"
    domain, key, name = parts[1], parts[2], parts[3]
    check_token(domain, "domain")
    check_key(key)
    check_token(name, "name")
    partition = None
    if len(parts) == 5:
        if not parts[4].isdigit():
            raise InvalidSubject(f"partition token {parts[4]!r} of {subject!r} is not a number")
        partition = int(parts[4])
    return Subject(kind, domain, key, name, partition)
