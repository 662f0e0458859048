"""``KneoError.code`` and ``KneoError.details`` read the platform's error body, whatever it is."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from kneo_proto import KneoError, KneoInvalidRequestError
from kneo_proto._errors import from_response
from kneo_proto._http import Response

DETAILS = {"field": "inputs.ticket", "reason": "must be an integer"}

# (body, code, details): bodies of every shape a platform, gateway or proxy may send.
BODIES: list[tuple[Any, str | None, dict[str, Any] | None]] = [
    (
        {"error": {"code": "validation_error", "message": "m", "details": DETAILS}},
        "validation_error",
        DETAILS,
    ),
    ({"error": {"code": "not_found", "message": "m"}}, "not_found", None),
    ({"error": {"code": "c", "details": None}}, "c", None),
    ({"error": {"code": "c", "details": ["not", "an", "object"]}}, "c", None),
    ({"error": {"code": 5, "details": "text"}}, None, None),
    ({"error": "just text"}, None, None),
    ({"error": None}, None, None),
    ({"code": "top_level"}, "top_level", None),
    ({}, None, None),
    ([{"error": {"code": "in_a_list"}}], None, None),
    ("<html>502 Bad Gateway</html>", None, None),
    (b"raw bytes", None, None),
    (None, None, None),
]


@pytest.mark.parametrize(("body", "code", "details"), BODIES)
def test_code_and_details_read_the_body_and_never_raise(
    body: Any, code: str | None, details: dict[str, Any] | None
) -> None:
    error = KneoInvalidRequestError("refused", status=422, body=body)
    assert error.code == code
    assert error.details == details


def test_an_explicit_code_wins_over_the_body() -> None:
    error = KneoError("x", code="given", body={"error": {"code": "in_body"}})
    assert error.code == "given"
    error.code = None
    assert error.code == "in_body"


def test_errors_from_responses_carry_code_and_details() -> None:
    body = b'{"error": {"code": "validation_error", "message": "m", "details": {"field": "x"}}}'
    error = from_response(Response(422, (), body), request_id="r")
    assert (error.code, error.details) == ("validation_error", {"field": "x"})


def test_code_and_details_survive_pickling() -> None:
    body = {"error": {"code": "validation_error", "details": DETAILS}}
    copy = pickle.loads(pickle.dumps(KneoInvalidRequestError("m", status=422, body=body)))
    assert (copy.code, copy.details) == ("validation_error", DETAILS)
