"""RFC 9457 problem details: constructors, parsing msgspec errors, and the Litestar handlers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest
from litestar import Litestar, Request, get, post
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
)
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient

from gateway.problems import (
    PROBLEM_JSON,
    TYPE_BASE,
    FieldError,
    Problem,
    ProblemError,
    bad_request,
    conflict,
    exception_handlers,
    field_error_from_message,
    forbidden,
    from_rejection,
    gateway_timeout,
    internal_error,
    method_not_allowed,
    not_found,
    require_json,
    service_unavailable,
    too_many_requests,
    unauthorized,
    unsupported_media_type,
    validation_failed,
)
from schemas.base import Command, NonNegativeInt, Rejection

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Step(msgspec.Struct, frozen=True, kw_only=True):
    at: NonNegativeInt


class NextTurn(Command, frozen=True, tag="encounter.next_turn.v1"):
    expected_step: NonNegativeInt
    steps: list[Step] = []


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    count: Annotated[int, msgspec.Meta(ge=0)]
    name: str


_DECODER = msgspec.json.Decoder(NextTurn)


@post("/v1/decode")
async def decode_by_hand(request: Request[Any, Any, Any]) -> dict[str, int]:
    try:
        command = _DECODER.decode(await request.body())
    except msgspec.ValidationError as exc:
        raise ProblemError(validation_failed(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ProblemError(
            bad_request(f"the body is not JSON: {exc}", code="malformed_json")
        ) from exc
    return {"expected_step": command.expected_step}


@post("/v1/litestar", guards=[require_json])
async def litestar_body(data: JSONBody[Body]) -> dict[str, str]:
    return {"name": data.name}


@get("/v1/boom")
async def boom() -> None:
    raise RuntimeError("password=hunter2 at /srv/secret.py line 42")


@get("/v1/conflict")
async def conflicting() -> None:
    raise ProblemError(
        conflict("already done", code="idempotency_mismatch", mismatch={"body": ["/a"]}),
        headers={"X-Extra": "1"},
    )


@get("/v1/raise/{status:int}")
async def raise_status(status: FromPath[int]) -> None:
    errors: dict[int, HTTPException] = {
        401: NotAuthorizedException("who are you"),
        403: PermissionDeniedException("no"),
        429: TooManyRequestsException("slow down", headers={"Retry-After": "7"}),
        503: ServiceUnavailableException("internal pool exhausted at 10.0.0.3"),
        418: HTTPException(status_code=418, detail="short and stout"),
        404: NotFoundException("encounter e9 does not exist"),
        502: HTTPException(status_code=502, detail="upstream 10.0.0.9 refused"),
    }
    raise errors[status]


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        [decode_by_hand, litestar_body, boom, conflicting, raise_status],
        exception_handlers=exception_handlers(),
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    return body


# Parsing msgspec messages


@pytest.mark.parametrize(
    ("message", "path", "text"),
    [
        (
            "Expected `int`, got `str` - at `$.expected_step`",
            "$.expected_step",
            "Expected `int`, got `str`",
        ),
        ("Expected `int` >= 0 - at `$.steps[0].at`", "$.steps[0].at", "Expected `int` >= 0"),
        ("Object missing required field `name`", "$.name", "Object missing required field `name`"),
        (
            "Object missing required field `at` - at `$.steps[1]`",
            "$.steps[1].at",
            "Object missing required field `at`",
        ),
        (
            "Object contains unknown field `z` - at `$.steps[0]`",
            "$.steps[0].z",
            "Object contains unknown field `z`",
        ),
        ("Expected `object`, got `array`", "$", "Expected `object`, got `array`"),
    ],
)
def test_field_error_from_message(message: str, path: str, text: str) -> None:
    assert field_error_from_message(message) == FieldError(path=path, message=text)


def test_validation_failed_from_a_real_msgspec_error() -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        _DECODER.decode(b'{"type": "encounter.next_turn.v1", "expected_step": "7"}')
    problem = validation_failed(caught.value)
    assert problem.status == 422
    assert problem.errors == (
        FieldError(path="$.expected_step", message="Expected `int`, got `str`"),
    )
    assert problem.detail == "$.expected_step: Expected `int`, got `str`"


# Constructors


@pytest.mark.parametrize(
    ("problem", "status", "code"),
    [
        (bad_request("x"), 400, "bad_request"),
        (unauthorized("x"), 401, "invalid_token"),
        (forbidden("x", required_scopes=["b", "a"]), 403, "insufficient_scope"),
        (not_found("x"), 404, "not_found"),
        (method_not_allowed("PUT", ["POST", "GET"]), 405, "method_not_allowed"),
        (conflict("x", mismatch={"method": {"original": "POST"}}), 409, "conflict"),
        (unsupported_media_type("text/plain", ["application/json"]), 415, "unsupported_media_type"),
        (validation_failed("Expected `int`, got `str` - at `$.a`"), 422, "validation"),
        (too_many_requests("x"), 429, "rate_limited"),
        (internal_error("abc"), 500, "internal"),
        (service_unavailable("x"), 503, "unavailable"),
        (gateway_timeout("x"), 504, "timeout"),
    ],
)
def test_constructors(problem: Problem, status: int, code: str) -> None:
    assert problem.status == status
    assert problem.code == code
    assert problem.type.startswith(TYPE_BASE)
    encoded = msgspec.json.decode(msgspec.json.encode(problem))
    assert encoded["status"] == status
    # Empty extension members are left out of the document.
    assert all(value not in (None, [], {}) for value in encoded.values())


def test_forbidden_lists_required_scopes_sorted() -> None:
    assert forbidden("x", required_scopes=["b", "a"]).required_scopes == ("a", "b")


def test_method_not_allowed_names_the_allowed_methods() -> None:
    assert method_not_allowed("PUT", ["POST", "GET"]).detail == (
        "PUT is not allowed here; allowed: GET, POST"
    )


def test_unsupported_media_type_detail() -> None:
    assert unsupported_media_type(None, ["application/json"]).detail == (
        "got no Content-Type; send one of: application/json"
    )


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
def test_from_rejection(kind: Any, status: int) -> None:
    rejection = Rejection(
        code="step_mismatch", reason="expected 7, at 8", kind=kind, details={"at": 8}
    )
    problem = from_rejection(rejection)
    assert problem.status == status
    assert problem.code == "step_mismatch"
    assert problem.detail == "expected 7, at 8"
    assert problem.details == {"at": 8}


def test_from_rejection_without_details_omits_them() -> None:
    problem = from_rejection(Rejection(code="c", reason="r", kind="conflict"))
    assert "details" not in msgspec.json.decode(msgspec.json.encode(problem))


# The Litestar handlers


def test_msgspec_validation_error_names_the_field(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/v1/decode", json={"type": "encounter.next_turn.v1", "expected_step": "seven"}
    )
    body = problem_of(response, 422)
    assert body["errors"] == [{"path": "$.expected_step", "message": "Expected `int`, got `str`"}]
    assert body["instance"] == "/v1/decode"


def test_nested_msgspec_validation_error(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/v1/decode",
        json={"type": "encounter.next_turn.v1", "expected_step": 1, "steps": [{"at": -1}]},
    )
    assert problem_of(response, 422)["errors"][0]["path"] == "$.steps[0].at"


def test_unknown_field_on_a_command(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/v1/decode", json={"type": "encounter.next_turn.v1", "expected_step": 1, "extra": 1}
    )
    assert problem_of(response, 422)["errors"][0]["path"] == "$.extra"


def test_malformed_json_is_a_400(client: TestClient[Litestar]) -> None:
    response = client.post("/v1/decode", content=b'{"expected_step": ')
    body = problem_of(response, 400)
    assert body["code"] == "malformed_json"


def test_litestar_validation_becomes_422_with_paths(client: TestClient[Litestar]) -> None:
    response = client.post("/v1/litestar", json={"count": "x", "name": "n"})
    body = problem_of(response, 422)
    assert body["errors"] == [{"path": "$.count", "message": "Expected `int`, got `str`"}]


def test_litestar_missing_and_unknown_fields(client: TestClient[Litestar]) -> None:
    missing = problem_of(client.post("/v1/litestar", json={"name": "n"}), 422)
    assert missing["errors"] == [
        {"path": "$.count", "message": "Object missing required field `count`"}
    ]
    unknown = problem_of(client.post("/v1/litestar", json={"count": 1, "name": "n", "z": 0}), 422)
    assert unknown["errors"][0]["path"] == "$.z"


def test_litestar_malformed_json_is_a_400(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/v1/litestar", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert problem_of(response, 400)["code"] == "bad_request"


def test_require_json_guard_gives_415(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/v1/litestar", content=b"count=1", headers={"content-type": "text/plain"}
    )
    body = problem_of(response, 415)
    assert body["code"] == "unsupported_media_type"
    assert response.headers["accept-post"] == "application/json"
    ok = client.post(
        "/v1/litestar",
        content=b'{"count": 1, "name": "n"}',
        headers={"content-type": "application/merge-patch+json; charset=utf-8"},
    )
    assert ok.status_code == 201


def test_unknown_route_is_a_404_problem(client: TestClient[Litestar]) -> None:
    body = problem_of(client.get("/v1/nowhere"), 404)
    assert body["detail"] == "nothing at GET /v1/nowhere"


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient[Litestar]) -> None:
    response = client.get("/v1/decode")
    body = problem_of(response, 405)
    assert "POST" in response.headers["allow"]
    assert body["code"] == "method_not_allowed"


def test_unexpected_error_is_a_500_without_internals(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="troupe.gateway"):
        response = client.get("/v1/boom")
    body = problem_of(response, 500)
    assert "hunter2" not in response.text
    assert "secret.py" not in response.text
    assert "RuntimeError" not in response.text
    trace_id = body["trace_id"]
    assert len(trace_id) == 32
    assert trace_id in body["detail"]
    # The log has what the body hides, under the same trace id.
    record = next(r for r in caplog.records if trace_id in r.getMessage())
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


def test_trace_id_comes_from_traceparent(client: TestClient[Litestar]) -> None:
    response = client.get("/v1/boom", headers={"traceparent": TRACEPARENT})
    assert problem_of(response, 500)["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    other = client.get("/v1/nowhere", headers={"traceparent": TRACEPARENT})
    assert problem_of(other, 404)["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_invalid_traceparent_is_ignored(client: TestClient[Litestar]) -> None:
    response = client.get("/v1/nowhere", headers={"traceparent": "00-zz-yy-01"})
    assert "trace_id" not in problem_of(response, 404)


def test_problem_error_passes_through_with_headers(client: TestClient[Litestar]) -> None:
    response = client.get("/v1/conflict")
    body = problem_of(response, 409)
    assert body["code"] == "idempotency_mismatch"
    assert body["mismatch"] == {"body": ["/a"]}
    assert response.headers["x-extra"] == "1"


def test_litestar_http_exceptions_map_to_problems(client: TestClient[Litestar]) -> None:
    unauthorized_response = client.get("/v1/raise/401")
    problem_of(unauthorized_response, 401)
    assert unauthorized_response.headers["www-authenticate"].startswith("Bearer")
    assert problem_of(client.get("/v1/raise/403"), 403)["code"] == "forbidden"
    limited = client.get("/v1/raise/429")
    problem_of(limited, 429)
    assert limited.headers["retry-after"] == "7"
    unavailable = client.get("/v1/raise/503")
    assert "10.0.0.3" not in problem_of(unavailable, 503)["detail"]
    assert problem_of(client.get("/v1/raise/404"), 404)["detail"] == "encounter e9 does not exist"
    teapot = problem_of(client.get("/v1/raise/418"), 418)
    assert teapot["detail"] == "short and stout"
    bad_gateway = client.get("/v1/raise/502")
    assert "10.0.0.9" not in problem_of(bad_gateway, 500)["detail"]
