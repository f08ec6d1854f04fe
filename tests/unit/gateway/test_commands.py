"""The pure parts of command handling: outcomes as HTTP answers, If-Match and Prefer."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from gateway.commands import outcome_response, outcome_url, parse_if_match, parse_prefer
from gateway.problems import PROBLEM_JSON, ProblemError
from schemas.base import Rejection
from schemas.envelope import EmittedEvent, Outcome


def outcome(**changes: object) -> Outcome:
    base = Outcome(
        command_id="c-1",
        domain="acct",
        key="a1",
        command="acct.deposit.v1",
        status="applied",
        events=[
            EmittedEvent(
                id="e-1",
                subject="evt.acct.a1.deposited",
                type="acct.deposited.v1",
                data=msgspec.Raw(b'{"amount":5}'),
            )
        ],
        version=3,
        handled_at=datetime(2026, 11, 22, tzinfo=UTC),
    )
    return msgspec.structs.replace(base, **changes)


def test_applied_is_a_200_with_the_outcome_unchanged() -> None:
    applied = outcome()
    raw = msgspec.json.encode(applied)
    response = outcome_response(applied, raw, status_url=outcome_url("acct", "c-1"))
    assert response.status_code == 200
    assert response.body is raw
    assert dict(response.headers) == {
        "content-type": "application/json",
        "content-location": "/v1/outcomes/acct/c-1",
        "etag": '"3"',
    }


def test_a_preview_has_no_status_url_and_no_etag() -> None:
    preview = outcome(status="preview")
    response = outcome_response(preview, msgspec.json.encode(preview), status_url=None)
    assert dict(response.headers) == {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("invalid", 422),
        ("conflict", 409),
        ("forbidden", 403),
        ("not_found", 404),
        ("unavailable", 503),
    ],
)
def test_rejections_become_problems_by_kind(kind: str, status: int) -> None:
    rejection = Rejection(kind=kind, code="nope", reason="not now", details={"at": 7})  # type: ignore[arg-type]
    rejected = outcome(status="rejected", events=[], rejection=rejection)
    response = outcome_response(rejected, b"", status_url="/v1/outcomes/acct/c-1")
    assert response.status_code == status
    assert dict(response.headers) == {"content-type": PROBLEM_JSON}
    body = msgspec.json.decode(response.body)
    assert body["code"] == "nope"
    assert body["detail"] == "not now"
    assert body["details"] == {"at": 7}
    assert body["command_id"] == "c-1"
    assert body["instance"] == "/v1/outcomes/acct/c-1"


@pytest.mark.parametrize(("kind", "status"), [("handler", 500), ("schema", 422)])
def test_dead_letters(kind: str, status: int) -> None:
    dead = outcome(
        status="dead_lettered", events=[], rejection=Rejection(code=kind, reason="it broke")
    )
    response = outcome_response(dead, b"", status_url=None)
    body = msgspec.json.decode(response.body)
    assert response.status_code == status
    assert body["code"] == "dead_lettered"
    assert body["details"] == {"kind": kind}
    assert "it broke" in body["detail"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), (['"0"'], 0), (['"42"'], 42), (["*"], None), ([' "7" '], 7)],
)
def test_if_match(values: list[str], expected: int | None) -> None:
    assert parse_if_match(values) == expected


@pytest.mark.parametrize("values", [["3"], ['W/"3"'], ['"a"'], ['"1"', '"2"'], ['"1", "2"']])
def test_unusable_if_match_is_a_400(values: list[str]) -> None:
    with pytest.raises(ProblemError) as caught:
        parse_if_match(values)
    assert caught.value.problem.status == 400
    assert caught.value.problem.code == "invalid_if_match"


@pytest.mark.parametrize(
    ("values", "wait", "applied"),
    [
        ([], 5.0, []),
        (["respond-async"], 0.0, ["respond-async"]),
        (["wait=2"], 2.0, ["wait=2"]),
        (["wait=1.5, handling=lenient"], 1.5, ["wait=1.5"]),
        (["wait=600"], 30.0, ["wait=600"]),
        (["handling=strict", "respond-async; foo=bar"], 0.0, ["respond-async"]),
        (["", "nonsense"], 5.0, []),
    ],
)
def test_prefer(values: list[str], wait: float, applied: list[str]) -> None:
    assert parse_prefer(values, 5.0, 30.0) == (wait, applied)
