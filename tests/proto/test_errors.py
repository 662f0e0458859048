"""The error hierarchy and the status -> class table (the contract's Exceptions; plan T09, T10)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import kneo_proto._errors as errors_module
from kneo_proto import AuthScheme, CallOptions, endpoints
from kneo_proto._errors import (
    BODY_TEXT_LIMIT,
    ERROR_CODE_IDEMPOTENCY_IN_PROGRESS,
    ERROR_CODE_IDEMPOTENCY_MISMATCH,
    KneoAuthError,
    KneoClientClosedError,
    KneoConfigurationError,
    KneoConflictError,
    KneoDecodeError,
    KneoError,
    KneoIdempotencyInProgressError,
    KneoIdempotencyMismatchError,
    KneoInsecureTransportError,
    KneoInvalidRequestError,
    KneoNetworkError,
    KneoNotFoundError,
    KneoPaginationError,
    KneoPermissionError,
    KneoProtocolError,
    KneoProxyError,
    KneoRateLimited,
    KneoResponseTooLargeError,
    KneoServerError,
    KneoServiceUnavailableError,
    KneoStateError,
    KneoTimeoutError,
    KneoTLSError,
    KneoUnexpectedRedirectError,
    KneoUsageError,
    KneoWaitTimeoutError,
    ProfileError,
    error_class_for,
    error_code_of,
    from_response,
    parse_error_body,
)
from kneo_proto._http import Response
from tests.proto.harness import API_KEY, Reply, drive, error_reply, make_config

ErrorClass = type[KneoError]

# The class tree as reviewed: each class and its direct bases, in order. A change to the
# hierarchy must change this table (plan T10: the snapshot changes only by a reviewed diff).
EXPECTED_BASES: dict[ErrorClass, tuple[type[BaseException], ...]] = {
    KneoError: (Exception,),
    KneoUsageError: (KneoError, ValueError),
    KneoConfigurationError: (KneoUsageError,),
    ProfileError: (KneoConfigurationError,),
    KneoInsecureTransportError: (KneoConfigurationError,),
    KneoStateError: (KneoError, RuntimeError),
    KneoClientClosedError: (KneoError,),
    KneoAuthError: (KneoError,),
    KneoPermissionError: (KneoError,),
    KneoNotFoundError: (KneoError,),
    KneoInvalidRequestError: (KneoError,),
    KneoConflictError: (KneoError,),
    KneoIdempotencyMismatchError: (KneoConflictError,),
    KneoIdempotencyInProgressError: (KneoConflictError,),
    KneoRateLimited: (KneoError,),
    KneoServerError: (KneoError,),
    KneoServiceUnavailableError: (KneoServerError,),
    KneoUnexpectedRedirectError: (KneoError,),
    KneoDecodeError: (KneoError,),
    KneoResponseTooLargeError: (KneoError,),
    KneoNetworkError: (KneoError,),
    KneoTimeoutError: (KneoNetworkError, TimeoutError),
    KneoProtocolError: (KneoNetworkError,),
    KneoTLSError: (KneoNetworkError,),
    KneoProxyError: (KneoNetworkError,),
    KneoPaginationError: (KneoError,),
    KneoWaitTimeoutError: (KneoError, TimeoutError),
}
ALL_ERROR_CLASSES = tuple(EXPECTED_BASES)

# Attributes every KneoError carries, with a non-default value for each.
COMMON_ATTRIBUTES: dict[str, Any] = {
    "status": 418,
    "body": {"error": {"code": "teapot", "message": "short and stout"}},
    "request_id": "req-1",
    "idempotency_key": "key-1",
    "code": "teapot",
    "attempts": 3,
    "retry_after": 1.5,
    "elapsed": 2.25,
    "method": "POST",
    "path": "/v1/runs",
    "retry_budget_exhausted": True,
}
# Attributes particular to one class, with a non-default value for each.
EXTRA_ATTRIBUTES: dict[ErrorClass, dict[str, Any]] = {
    KneoUnexpectedRedirectError: {"location": "https://elsewhere.invalid/v1/runs"},
    KneoNetworkError: {"kind": "connect"},
    KneoTimeoutError: {"kind": "timeout"},
    KneoProtocolError: {"kind": "protocol"},
    KneoTLSError: {"kind": "tls"},
    KneoProxyError: {
        "kind": "proxy",
        "proxy": "http://proxy.corp:3128",
        "proxy_source": "HTTPS_PROXY",
        "proxy_status": 407,
    },
    KneoWaitTimeoutError: {"run_id": "run-1", "last_status": "running", "polls": 7},
}


PARENTS: dict[type[BaseException], tuple[type[BaseException], ...]] = {
    cls: bases for cls, bases in EXPECTED_BASES.items()
}


def ancestors(cls: type[BaseException]) -> set[type[BaseException]]:
    """Every class ``cls`` is a subclass of, by the expected table (itself included)."""
    found = {cls}
    for base in PARENTS.get(cls, ()):
        found |= ancestors(base)
    return found


def expected_class(status: int, *, keyed: bool) -> ErrorClass:
    """The contract's table, written out independently of the code under test."""
    if 300 <= status < 400:
        return KneoUnexpectedRedirectError
    by_status: dict[int, ErrorClass] = {
        400: KneoInvalidRequestError,
        401: KneoAuthError,
        403: KneoPermissionError,
        404: KneoNotFoundError,
        407: KneoProxyError,  # ADR 0013
        409: KneoIdempotencyMismatchError if keyed else KneoConflictError,
        422: KneoInvalidRequestError,
        429: KneoRateLimited,
        503: KneoServiceUnavailableError,
    }
    if status in by_status:
        return by_status[status]
    if 500 <= status < 600:
        return KneoServerError
    return KneoError


ALL_STATUSES = range(100, 600)


def test_error_tables_are_not_empty() -> None:
    assert len(EXPECTED_BASES) == 27  # KneoProxyError: ADR 0013
    assert len(ALL_STATUSES) == 500
    assert COMMON_ATTRIBUTES
    assert EXTRA_ATTRIBUTES
    assert CLASS_BY_CODE_CASES
    assert REQUEST_ID_CASES
    assert BODY_CASES
    assert CODE_CASES
    assert MESSAGE_CASES
    assert LEAK_STATUSES


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_from_response_maps_every_status_to_one_documented_class(status: int) -> None:
    body = b'{"error": {"code": "some_code", "message": "went wrong"}}'
    headers = (("X-Request-ID", "echoed-id"), ("Location", "https://elsewhere.invalid/x"))
    for key in (None, "key-1"):
        error = from_response(
            Response(status, headers, body), idempotency_key=key, request_id="sent-id"
        )
        assert type(error) is expected_class(status, keyed=key is not None)
        assert error.status == status
        assert error.body == {"error": {"code": "some_code", "message": "went wrong"}}
        assert error.request_id == "echoed-id"
        assert error.idempotency_key == key
        assert error.code == "some_code"
        if isinstance(error, KneoUnexpectedRedirectError):
            assert error.location == "https://elsewhere.invalid/x"


CLASS_BY_CODE_CASES: list[tuple[int, str | None, bool, ErrorClass]] = [
    (409, None, False, KneoConflictError),
    (409, None, True, KneoIdempotencyMismatchError),
    (409, "conflict", False, KneoConflictError),
    # The contract's table: a 409 on a keyed request is a mismatch unless the code says more.
    (409, "conflict", True, KneoIdempotencyMismatchError),
    (409, ERROR_CODE_IDEMPOTENCY_MISMATCH, False, KneoIdempotencyMismatchError),
    (409, ERROR_CODE_IDEMPOTENCY_MISMATCH, True, KneoIdempotencyMismatchError),
    (409, ERROR_CODE_IDEMPOTENCY_IN_PROGRESS, False, KneoIdempotencyInProgressError),
    (409, ERROR_CODE_IDEMPOTENCY_IN_PROGRESS, True, KneoIdempotencyInProgressError),
    (422, ERROR_CODE_IDEMPOTENCY_MISMATCH, True, KneoIdempotencyMismatchError),
    (422, "validation_error", True, KneoInvalidRequestError),
    (422, ERROR_CODE_IDEMPOTENCY_IN_PROGRESS, True, KneoInvalidRequestError),
    (422, None, False, KneoInvalidRequestError),
    (400, ERROR_CODE_IDEMPOTENCY_MISMATCH, True, KneoInvalidRequestError),
    (500, ERROR_CODE_IDEMPOTENCY_IN_PROGRESS, True, KneoServerError),
    (429, ERROR_CODE_IDEMPOTENCY_MISMATCH, True, KneoRateLimited),
]


@pytest.mark.parametrize(("status", "code", "keyed", "expected"), CLASS_BY_CODE_CASES)
def test_error_class_for_splits_409_and_422_by_code_and_key(
    status: int, code: str | None, keyed: bool, expected: ErrorClass
) -> None:
    assert error_class_for(status, code, keyed=keyed) is expected
    body = b"" if code is None else b'{"error": {"code": "%s", "message": "m"}}' % code.encode()
    error = from_response(Response(status, (), body), idempotency_key="k" if keyed else None)
    assert type(error) is expected
    assert error.code == code


REQUEST_ID_CASES: list[tuple[tuple[tuple[str, str], ...], str | None, str | None]] = [
    ((("X-Request-ID", "echoed"),), "sent", "echoed"),
    ((("x-request-id", "echoed"),), "sent", "echoed"),
    ((("X-REQUEST-ID", "echoed"),), None, "echoed"),
    ((), "sent", "sent"),
    ((("X-Request-ID", ""),), "sent", "sent"),
    ((), None, None),
]


@pytest.mark.parametrize(("headers", "sent", "expected"), REQUEST_ID_CASES)
def test_from_response_prefers_the_returned_request_id_over_the_sent_one(
    headers: tuple[tuple[str, str], ...], sent: str | None, expected: str | None
) -> None:
    error = from_response(Response(500, headers, b""), request_id=sent)
    assert error.request_id == expected
    assert error.sent_request_id == sent
    if sent and expected != sent:
        assert f"(request_id={expected}, sent as {sent})" in str(error)
    else:
        assert f"(request_id={expected})" in str(error)


def test_from_response_carries_call_details() -> None:
    error = from_response(
        Response(429, (), b""),
        idempotency_key="key-9",
        request_id="req-9",
        method="POST",
        path="/v1/runs",
        attempts=4,
        retry_after=12.0,
    )
    assert isinstance(error, KneoRateLimited)
    assert (error.idempotency_key, error.request_id) == ("key-9", "req-9")
    assert (error.method, error.path, error.attempts, error.retry_after) == (
        "POST",
        "/v1/runs",
        4,
        12.0,
    )
    assert error.body is None
    assert error.code is None


LONG_TEXT = b"<html>" + b"x" * 5000 + b"</html>"
BODY_CASES: list[tuple[bytes, Any]] = [
    (b"", None),
    (b'{"error": {"code": "c", "message": "m"}}', {"error": {"code": "c", "message": "m"}}),
    (b"[1, 2]", [1, 2]),
    (b'"plain"', "plain"),
    (b"null", None),
    (b"Bad Gateway", "Bad Gateway"),
    (b"   ", "   "),
    (b'{"truncated": ', '{"truncated": '),
    (LONG_TEXT, LONG_TEXT[:BODY_TEXT_LIMIT].decode()),
    (b"\xff\xfe\xfd", "\ufffd\ufffd\ufffd"),
    (b"[" * 100_000, "[" * BODY_TEXT_LIMIT),
    (b"1" * 5000, "1" * BODY_TEXT_LIMIT),
    (b"NaN", "NaN"),
]


@pytest.mark.parametrize(("raw", "expected"), BODY_CASES)
def test_parse_error_body_keeps_json_else_at_most_1024_characters_of_text(
    raw: bytes, expected: Any
) -> None:
    parsed = parse_error_body(raw)
    assert parsed == expected
    if isinstance(parsed, str) and raw != b'"plain"':
        assert len(parsed) <= BODY_TEXT_LIMIT == 1024
    error = from_response(Response(502, (), raw))
    assert error.body == expected


def test_parse_error_body_truncates_multibyte_text_to_at_most_1024_characters() -> None:
    parsed = parse_error_body("é".encode() * 3000)
    assert isinstance(parsed, str)
    assert 0 < len(parsed) <= BODY_TEXT_LIMIT


CODE_CASES: list[tuple[Any, str | None]] = [
    ({"error": {"code": "not_found", "message": "m"}}, "not_found"),
    ({"code": "top_level"}, "top_level"),
    ({"error": {"code": 5}}, None),
    ({"error": "just text", "code": "ignored"}, "ignored"),
    ({"error": {"message": "no code"}}, None),
    ({}, None),
    ([{"code": "in_a_list"}], None),
    ("text body", None),
    (None, None),
]


@pytest.mark.parametrize(("parsed", "expected"), CODE_CASES)
def test_error_code_of_reads_error_code_or_top_level_code(
    parsed: Any, expected: str | None
) -> None:
    assert error_code_of(parsed) == expected


MESSAGE_CASES: list[tuple[Response, str]] = [
    (
        Response(404, (), b'{"error": {"code": "not_found", "message": "no run r1"}}'),
        "GET /v1/runs/r1 -> 404 Not Found [not_found]: no run r1 (request_id=sent)",
    ),
    (
        Response(500, (), b'{"message": "top-level message"}'),
        "GET /v1/runs/r1 -> 500 Internal Server Error: top-level message (request_id=sent)",
    ),
    (
        Response(599, (), b"  upstream text  "),
        "GET /v1/runs/r1 -> 599 HTTP error: upstream text (request_id=sent)",
    ),
    (
        Response(502, (), b'{"error": {"message": 42}}'),
        "GET /v1/runs/r1 -> 502 Bad Gateway (request_id=sent)",
    ),
    (
        Response(400, (), b"[1]"),
        "GET /v1/runs/r1 -> 400 Bad Request (request_id=sent)",
    ),
    (
        Response(409, (), b'{"error": {"message": "' + b"m" * 500 + b'"}}'),
        "GET /v1/runs/r1 -> 409 Conflict: " + "m" * 200 + " (request_id=sent)",
    ),
]


@pytest.mark.parametrize(("response", "expected"), MESSAGE_CASES)
def test_from_response_message_names_call_status_code_and_server_text(
    response: Response, expected: str
) -> None:
    error = from_response(response, request_id="sent", method="GET", path="/v1/runs/r1")
    assert str(error) == expected
    assert error.message == expected
    assert error.args == (expected,)


def test_from_response_message_without_method_and_path_starts_at_the_arrow() -> None:
    assert str(from_response(Response(404, (), b""))) == "-> 404 Not Found (request_id=None)"


def test_kneo_error_defaults_and_repr() -> None:
    error = KneoError()
    assert str(error) == ""
    assert (error.status, error.body, error.request_id, error.idempotency_key) == (
        None,
        None,
        None,
        None,
    )
    assert (error.code, error.attempts, error.retry_after, error.elapsed) == (None, 0, None, None)
    assert (error.method, error.path, error.retry_budget_exhausted) == (None, None, False)
    full = KneoRateLimited("slow down", status=429, code="rate_limited", request_id="r")
    assert repr(full) == (
        "KneoRateLimited('slow down', status=429, code='rate_limited', request_id='r', "
        "idempotency_key=None, attempts=0)"
    )


def test_error_classes_match_the_reviewed_tree() -> None:
    exported = {
        obj
        for name in errors_module.__all__
        if isinstance(obj := getattr(errors_module, name), type) and issubclass(obj, BaseException)
    }
    assert exported == set(EXPECTED_BASES)
    for cls, bases in EXPECTED_BASES.items():
        assert cls.__bases__ == bases, cls.__name__


@pytest.mark.parametrize("cls", ALL_ERROR_CLASSES)
def test_error_class_subclass_relations_match_the_snapshot(cls: ErrorClass) -> None:
    wanted = ancestors(cls)
    for other in (*ALL_ERROR_CLASSES, ValueError, RuntimeError, TimeoutError, OSError):
        expected = other in wanted or (other is OSError and TimeoutError in wanted)
        assert issubclass(cls, other) is expected, (cls.__name__, other.__name__)
    assert issubclass(cls, KneoError)
    assert cls.__doc__


@pytest.mark.parametrize("cls", ALL_ERROR_CLASSES)
def test_every_error_class_pickles_round_trip_with_its_attributes(cls: ErrorClass) -> None:
    attributes = {**COMMON_ATTRIBUTES, **EXTRA_ATTRIBUTES.get(cls, {})}
    error = cls("it failed", **attributes)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == "it failed"
    assert repr(copy) == repr(error)
    for name, value in attributes.items():
        assert getattr(copy, name) == value, name
    assert vars(copy) == vars(error)


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 409, 422, 429, 500, 503, 504, 418])
def test_errors_built_from_responses_pickle_round_trip(status: int) -> None:
    response = Response(status, (("Location", "/v1/elsewhere"),), b'{"error": {"code": "c"}}')
    error = from_response(response, idempotency_key="k", request_id="r", attempts=2)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)


LEAK_STATUSES = [301, 400, 401, 403, 404, 409, 422, 429, 500, 503]


@pytest.mark.parametrize("status", LEAK_STATUSES)
@pytest.mark.parametrize("scheme", list(AuthScheme))
def test_error_messages_never_contain_request_header_values(
    status: int, scheme: AuthScheme
) -> None:
    extra = {"X-Custom-Secret": "custom-header-value-1234"}
    trace = drive(
        endpoints.create_run({"spec_id": "spec-1"}, idempotency_key="user-key-abcdef"),
        lambda _: error_reply(status, "some_code", "server says no"),
        config=make_config(auth_scheme=scheme),
        options=CallOptions(headers=extra),
    )
    error = trace.error
    sent = trace.requests[-1]
    # The request ID is shown on purpose (it correlates with server logs); no other value is.
    secrets = {value for name, value in sent.headers if name != "X-Request-ID" and len(value) >= 8}
    assert {"user-key-abcdef", "custom-header-value-1234"} <= secrets
    for shown in (str(error), *map(str, error.args)):
        for value in (*secrets, API_KEY):
            assert value not in shown
    assert API_KEY not in repr(error)


def test_decode_error_message_is_bounded() -> None:
    trace = drive(endpoints.get_run("r1"), lambda _: Reply(200, b'{"run_id": ' + b"1" * 5000))
    assert isinstance(trace.error, KneoDecodeError)
    assert len(str(trace.error)) <= 1024
