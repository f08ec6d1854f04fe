"""The dead-letter stream: what could not be handled, why, and redriving it once fixed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from nats.js import JetStreamContext
from nats.js.errors import APIError

from actors.kernel.bus import DEADLETTER
from actors.kernel.history import read
from schemas import subjects
from schemas.envelope import DeadLetter
from schemas.headers import Header

_NO_MESSAGE_FOUND = 10057

_DLQ_HEADERS = {
    Header.DLQ_REASON,
    Header.DLQ_KIND,
    Header.DLQ_SUBJECT,
    Header.DLQ_STREAM,
    Header.DLQ_STREAM_SEQ,
    Header.DLQ_CONSUMER,
    Header.DLQ_ATTEMPTS,
    Header.MSG_ID,
}


async def list_dead_letters(
    js: JetStreamContext, consumer: str | None = None, *, limit: int | None = None
) -> list[DeadLetter]:
    """Dead letters in arrival order, optionally for one actor."""
    subject = subjects.dead_letter_subject(consumer) if consumer else f"{subjects.DEADLETTER}.>"
    out: list[DeadLetter] = []
    async for record in read(js, DEADLETTER, subject, limit=limit):
        h = record.headers
        raw = bytes(record.data)
        out.append(
            DeadLetter(
                seq=record.seq,
                consumer=h.get(Header.DLQ_CONSUMER, record.subject.split(".", 1)[-1]),
                kind=h.get(Header.DLQ_KIND, "handler"),  # type: ignore[arg-type]
                reason=h.get(Header.DLQ_REASON, ""),
                subject=h.get(Header.DLQ_SUBJECT, ""),
                stream=h.get(Header.DLQ_STREAM, ""),
                stream_seq=int(h.get(Header.DLQ_STREAM_SEQ, "0")),
                attempts=int(h.get(Header.DLQ_ATTEMPTS, "1")),
                time=record.time,
                headers={k: v for k, v in h.items() if k not in _DLQ_HEADERS},
                data=raw.decode("utf-8", "replace"),
            )
        )
    return out


def _original_subject(subject: str) -> str:
    # Republish without a partition token: the stream's transform assigns it again.
    with contextlib.suppress(subjects.InvalidSubject):
        parsed = subjects.parse(subject)
        return f"{parsed.kind}.{parsed.domain}.{parsed.key}.{parsed.name}"
    return subject


async def redrive(js: JetStreamContext, letters: Iterable[DeadLetter]) -> list[int]:
    """Republish dead letters to their original subjects, then delete them from the stream.

    The ledger identity travels in Troupe-Message-Id, so a message that was
    never applied is applied once, and redriving twice changes nothing.
    """
    done: list[int] = []
    for letter in letters:
        headers = dict(letter.headers)
        headers[Header.MSG_ID.value] = f"redrive-{letter.seq}"
        await js.publish(_original_subject(letter.subject), letter.data.encode(), headers=headers)
        try:
            await js.delete_msg(DEADLETTER, letter.seq)
        except APIError as exc:
            if exc.err_code != _NO_MESSAGE_FOUND:
                raise  # a missing message was already redriven by someone else

        done.append(letter.seq)
    return done
