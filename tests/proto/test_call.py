"""Scenario tests for ``Call``: one behaviour each, driven on a FakeClock against scripts.

Also the unit tables of what ``Call`` decides with: ``RetryPolicy``, ``parse_retry_after``,
``retry_is_safe`` and the retry budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from kneo_proto import (
    ATTEMPT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    REQUEST_ID_HEADER,
    USER_AGENT,
    Call,
    CallOptions,
    CallState,
    Failed,
    FailureKind,
    Finished,
    KneoAuthError,
    KneoConflictError,
    KneoDecodeError,
    KneoError,
    KneoIdempotencyInProgressError,
    KneoIdempotencyMismatchError,
    KneoInvalidRequestError,
    KneoNetworkError,
    KneoNotFoundError,
    KneoPermissionError,
    KneoProtocolError,
    KneoRateLimited,
    KneoResponseTooLargeError,
    KneoServerError,
    KneoServiceUnavailableError,
    KneoStateError,
    KneoTimeoutError,
    KneoTLSError,
    KneoUnexpectedRedirectError,
    KneoUsageError,
    Operation,
    RetryBudget,
    RetryPolicy,
    Send,
    Sleep,
    TokenBucket,
    endpoints,
    models,
    parse_retry_after,
    retry_is_safe,
)
from kneo_proto._call import ALLOWED
from kneo_proto._retry import status_is_retryable
from tests.proto.harness import (
    API_KEY,
    BASE_URL,
    HTTP_DATE_FORMS,
    FakeClock,
    Reply,
    Trace,
    drive,
    error_reply,
    failure,
    http_date,
    json_reply,
    make_config,
    operation,
    scripted,
)

RUN = {
    "run_id": "r1",
    "spec_id": "s1",
    "status": "running",
    "environment": "dev",
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:01Z",
}
CREATED = {"run_id": "r1", "status": "queued", "created_at": "2025-01-01T00:00:00Z"}
POLICY = {
    "environment": "prod",
    "denied_spec_ids": [],
    "require_human_review": True,
    "updated_at": "2025-01-01T00:00:00Z",
    "version": 2,
}
OK = json_reply(200, {})
IN_PROGRESS = "idempotency_key_in_progress"
MISMATCH = "idempotency_key_mismatch"
# No jitter, so backoff delays are exact: 1, 2, 4, 8 ... seconds.
EXACT = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=30.0, jitter=0.0)
WALL_START = int(FakeClock().now + FakeClock().wall_offset)

POST_SEND_KINDS = (FailureKind.TIMEOUT, FailureKind.NETWORK, FailureKind.PROTOCOL)
PRE_SEND_KINDS = (FailureKind.CONNECT, FailureKind.CONNECT_TIMEOUT)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")


def unsafe_operations() -> list[Operation[dict[str, Any]]]:
    """Non-idempotent requests: a PATCH, and a POST whose key was stripped."""
    return [operation("PATCH"), operation("POST", keyed=False)]


def safe_operations() -> list[Operation[dict[str, Any]]]:
    """Requests safe to repeat: the idempotent verbs and a POST with its key."""
    return [operation(method) for method in SAFE_METHODS] + [operation("POST")]


def header_values(trace: Trace, name: str) -> list[str | None]:
    return [request.header(name) for request in trace.requests]


def reply_with(status: int, code: str = "boom", retry_after: str | None = None) -> Reply:
    if retry_after is None:
        return error_reply(status, code)
    return error_reply(status, code, **{"Retry-After": retry_after})


def new_call(
    op: Operation[Any] | None = None,
    *,
    clock: FakeClock | None = None,
    options: CallOptions | None = None,
    budget: TokenBucket | None = None,
) -> Call[Any]:
    return Call(
        op or operation("GET"),
        make_config(),
        clock=(clock or FakeClock()).clock(),
        options=options,
        budget=budget,
        rng=random.Random(3),
    )


def test_tables_are_not_empty() -> None:
    for table in (
        unsafe_operations(),
        safe_operations(),
        POST_SEND_KINDS,
        PRE_SEND_KINDS,
        RETRY_AFTER_TABLE,
        STATE_MISUSE,
        HTTP_DATE_FORMS,
        INVALID_RETRY_AFTER,
    ):
        assert len(table) > 0


# -- requests -------------------------------------------------------------------------


def test_call_returns_decoded_result_on_first_try() -> None:
    trace = drive(endpoints.get_run("r1"), scripted(json_reply(200, RUN)))

    assert isinstance(trace.finished.result, models.RunStatusResponse)
    assert trace.finished.result.run_id == "r1"
    assert trace.finished.attempts == 1
    assert trace.sleeps == []
    assert trace.requests[0].url == f"{BASE_URL}/v1/runs/r1"
    assert trace.requests[0].method == "GET"


def test_call_sends_fixed_headers_and_credentials() -> None:
    trace = drive(endpoints.get_run("r1"), scripted(json_reply(200, RUN)))
    request = trace.requests[0]

    assert request.header("accept") == "application/json"
    assert request.header("accept-encoding") == "identity"
    assert request.header("user-agent") == USER_AGENT
    assert request.header("authorization") == f"Bearer {API_KEY}"
    assert request.header(ATTEMPT_HEADER) == "1"
    assert request.header(REQUEST_ID_HEADER) == trace.finished.request_id
    assert request.header(IDEMPOTENCY_KEY_HEADER) is None


def test_call_omits_credentials_without_api_key() -> None:
    trace = drive(operation("GET"), scripted(OK), config=make_config(api_key=None))

    names = {name.lower() for name, _ in trace.requests[0].headers}
    assert "authorization" not in names
    assert "x-kneo-api-key" not in names


@pytest.mark.parametrize(
    ("op", "content_type", "content_length"),
    [
        (endpoints.get_run("r1"), None, None),
        (operation("DELETE"), None, None),
        (endpoints.create_run({"spec_id": "s"}), "application/json", str(len(b'{"spec_id":"s"}'))),
        (
            endpoints.put_environment_policy("prod", {"require_human_review": True}),
            "application/json",
            str(len(b'{"require_human_review":true}')),
        ),
        (operation("PATCH"), None, "0"),
        (operation("POST"), None, "0"),
    ],
    ids=["get", "delete", "post-body", "put-body", "patch-empty", "post-empty"],
)
def test_call_sets_content_headers_by_method_and_body(
    op: Operation[Any], content_type: str | None, content_length: str | None
) -> None:
    trace = drive(op, scripted(json_reply(200, CREATED if op.method == "POST" else {})))
    request = trace.requests[0]

    assert request.header("content-type") == content_type
    assert request.header("content-length") == content_length
    assert request.body == (op.body or b"")


def test_call_lets_caller_add_headers_but_not_replace_owned_ones() -> None:
    options = CallOptions(
        headers={
            "X-Trace": "t-1",
            "Accept": "text/html",
            "authorization": "Bearer stolen",
            "X-Kneo-Api-Key": "other",
            "Idempotency-Key": "mine",
            "X-Request-ID": "mine",
        }
    )
    op = operation("POST")
    trace = drive(op, scripted(OK), options=options)
    request = trace.requests[0]

    assert request.header("x-trace") == "t-1"
    assert request.header("accept") == "application/json"
    assert request.header("authorization") == f"Bearer {API_KEY}"
    assert request.header("x-kneo-api-key") is None
    assert request.header(IDEMPOTENCY_KEY_HEADER) == op.idempotency_key
    assert request.header(REQUEST_ID_HEADER) == trace.finished.request_id != "mine"
    for name in ("accept", "authorization", "idempotency-key", "x-request-id"):
        assert [n.lower() for n, _ in request.headers].count(name) == 1


def test_call_sends_caller_request_id() -> None:
    trace = drive(operation("GET"), scripted(OK), options=CallOptions(request_id="req-42"))

    assert header_values(trace, REQUEST_ID_HEADER) == ["req-42"]
    assert trace.finished.request_id == "req-42"


@pytest.mark.parametrize("request_id", ["", "bad\r\nid", "caf\u00e9", " padded"])
def test_call_rejects_invalid_caller_request_id(request_id: str) -> None:
    with pytest.raises(KneoUsageError):
        new_call(options=CallOptions(request_id=request_id))


def test_call_reports_echoed_request_id() -> None:
    echo = json_reply(200, {}, **{"X-Request-ID": "srv-1"})
    trace = drive(operation("GET"), scripted(echo), options=CallOptions(request_id="srv-1"))

    assert trace.finished.request_id == "srv-1"


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_call_takes_the_request_id_a_gateway_returned_on_success(method: str) -> None:
    """Gateways and load balancers replace or set X-Request-ID (plan T12, revised): the
    call succeeds on its first attempt, reports the returned ID and keeps the one sent."""
    rewritten = json_reply(200, {}, **{"X-Request-ID": "gw-123"})
    trace = drive(operation(method), scripted(rewritten), options=CallOptions(request_id="mine"))

    assert trace.finished.result == {}
    assert trace.finished.attempts == 1
    assert trace.finished.request_id == "gw-123"
    assert trace.finished.sent_request_id == "mine"
    assert trace.call is not None
    assert trace.call.connection_reusable


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(404, KneoNotFoundError), (401, KneoAuthError), (409, KneoConflictError)],
)
def test_call_error_carries_the_request_id_a_gateway_returned(
    status: int, error_class: type[KneoError]
) -> None:
    reply = error_reply(status, "x", **{"X-Request-ID": "gw-123"})
    trace = drive(operation("GET"), scripted(reply), options=CallOptions(request_id="mine"))

    assert type(trace.error) is error_class
    assert trace.error.status == status
    assert trace.error.request_id == "gw-123"
    assert trace.error.sent_request_id == "mine"
    assert "request_id=gw-123, sent as mine" in str(trace.error)
    assert "sent_request_id='mine'" in repr(trace.error)


@pytest.mark.parametrize(
    ("returned", "reported"),
    [
        ("gw-123", "gw-123"),
        (
            "  Root=1-67891233-abcdef012345678912345678  ",
            "Root=1-67891233-abcdef012345678912345678",
        ),
        ("x" * 256, "x" * 256),
        ("", "mine"),
        ("   ", "mine"),
        ("x" * 257, "mine"),
        ("forged\r\nline", "mine"),
        ("esc\x1b[31m", "mine"),
        ("caf\u00e9", "mine"),
    ],
)
def test_call_takes_a_returned_request_id_only_when_it_can_be_one(
    returned: str, reported: str
) -> None:
    """Any gateway's ID format is taken; a value that would flood or forge a log line is not."""
    reply = error_reply(404, "not_found", **{"X-Request-ID": returned})
    trace = drive(operation("GET"), scripted(reply), options=CallOptions(request_id="mine"))

    assert trace.error.request_id == reported
    assert trace.error.sent_request_id == "mine"
    assert len(str(trace.error)) < 400


def test_call_retries_keep_sending_one_request_id_when_a_gateway_returns_others() -> None:
    replies = scripted(
        error_reply(503, "unavailable", **{"X-Request-ID": "gw-1"}),
        json_reply(200, {}, **{"X-Request-ID": "gw-2"}),
    )
    trace = drive(operation("GET"), replies, options=CallOptions(request_id="mine"))

    assert [r.header(REQUEST_ID_HEADER) for r in trace.requests] == ["mine", "mine"]
    assert trace.finished.request_id == "gw-2"
    assert trace.finished.sent_request_id == "mine"


def test_call_without_a_returned_request_id_reports_the_one_sent() -> None:
    trace = drive(operation("GET"), scripted(error_reply(404, "not_found")))

    sent = trace.requests[0].header(REQUEST_ID_HEADER)
    assert trace.error.request_id == sent
    assert trace.error.sent_request_id == sent
    assert "sent as" not in str(trace.error)


def test_call_transport_failure_carries_the_sent_request_id() -> None:
    trace = drive(
        operation("GET"),
        scripted(failure(FailureKind.CONNECT)),
        options=CallOptions(request_id="mine"),
        policy=RetryPolicy(max_attempts=1),
    )

    assert isinstance(trace.error, KneoNetworkError)
    assert (trace.error.request_id, trace.error.sent_request_id) == ("mine", "mine")


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Length": "2", "Transfer-Encoding": "chunked"},
        {"transfer-encoding": "chunked", "content-length": "2"},
    ],
)
def test_call_refuses_a_response_with_content_length_and_transfer_encoding(
    headers: dict[str, str],
) -> None:
    """RFC 9112 section 6.3: such a message "ought to be handled as an error"."""
    trace = drive(operation("PATCH"), scripted(Reply(200, b"{}", headers)))

    assert isinstance(trace.error, KneoProtocolError)
    assert "both Content-Length and Transfer-Encoding" in str(trace.error)
    assert drive(operation("GET"), scripted(Reply(200, b"{}", headers))).error.attempts == 3


@pytest.mark.parametrize("body", [b'{"id":', b"<html>" + b"x" * 4096, b'{"run_id": 5}'])
def test_call_decode_error_carries_a_bounded_body_and_the_request_id(body: bytes) -> None:
    trace = drive(
        endpoints.get_run("r1"), scripted(Reply(200, body)), options=CallOptions(request_id="r-7")
    )

    error = trace.error
    assert isinstance(error, KneoDecodeError)
    assert (error.status, error.request_id, error.attempts) == (200, "r-7", 1)
    assert error.body is not None
    assert len(repr(error.body)) <= 1024 + 16


def test_call_marks_replayed_result() -> None:
    op = endpoints.create_run({"spec_id": "s"})
    replayed = json_reply(201, CREATED, **{"Idempotent-Replayed": "true"})

    assert drive(op, scripted(replayed)).finished.replayed is True
    assert drive(op, scripted(json_reply(201, CREATED))).finished.replayed is False


# -- what is retried ------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        reply_with(429),
        reply_with(502),
        reply_with(503),
        reply_with(504),
        reply_with(409, IN_PROGRESS),
    ],
    ids=["429", "502", "503", "504", "409-in-progress"],
)
@pytest.mark.parametrize("op", safe_operations(), ids=lambda op: op.method)
def test_call_retries_retryable_statuses_when_safe(reply: Reply, op: Operation[Any]) -> None:
    trace = drive(op, scripted(reply, OK), policy=EXACT)

    assert trace.finished.attempts == 2
    assert trace.sleeps == [1.0]


@pytest.mark.parametrize(
    ("reply", "error_class"),
    [
        (json_reply(301, {}, Location="https://elsewhere.test/"), KneoUnexpectedRedirectError),
        (reply_with(400), KneoInvalidRequestError),
        (reply_with(401), KneoAuthError),
        (reply_with(403), KneoPermissionError),
        (reply_with(404), KneoNotFoundError),
        (reply_with(422), KneoInvalidRequestError),
        (reply_with(422, IN_PROGRESS), KneoInvalidRequestError),
        (reply_with(500), KneoServerError),
        (reply_with(501), KneoServerError),
        (Reply(status=100, body=b""), KneoError),
    ],
    ids=["301", "400", "401", "403", "404", "422", "422-in-progress", "500", "501", "100"],
)
@pytest.mark.parametrize("op", safe_operations(), ids=lambda op: op.method)
def test_call_never_retries_other_statuses(
    reply: Reply, error_class: type[KneoError], op: Operation[Any]
) -> None:
    trace = drive(op, scripted(reply, OK), policy=EXACT)

    assert isinstance(trace.error, error_class)
    assert trace.error.status == reply.status
    assert trace.error.attempts == 1
    assert len(trace.sends) == 1


@pytest.mark.parametrize("kind", POST_SEND_KINDS + PRE_SEND_KINDS)
@pytest.mark.parametrize("op", safe_operations(), ids=lambda op: op.method)
def test_call_retries_transport_failures_when_safe(kind: FailureKind, op: Operation[Any]) -> None:
    trace = drive(op, scripted(failure(kind), OK), policy=EXACT)

    assert trace.finished.attempts == 2
    assert trace.sleeps == [1.0]


@pytest.mark.parametrize("kind", PRE_SEND_KINDS)
@pytest.mark.parametrize("op", unsafe_operations(), ids=["patch", "post-without-key"])
def test_call_retries_pre_send_failures_for_every_method(
    kind: FailureKind, op: Operation[Any]
) -> None:
    trace = drive(op, scripted(failure(kind), failure(kind), OK), policy=EXACT)

    assert trace.finished.attempts == 3


@pytest.mark.parametrize(
    ("kind", "error_class"),
    [
        (FailureKind.TIMEOUT, KneoTimeoutError),
        (FailureKind.NETWORK, KneoNetworkError),
        (FailureKind.PROTOCOL, KneoProtocolError),
    ],
)
@pytest.mark.parametrize("op", unsafe_operations(), ids=["patch", "post-without-key"])
def test_call_never_retries_patch_after_post_send_failure(
    kind: FailureKind, error_class: type[KneoError], op: Operation[Any]
) -> None:
    trace = drive(op, scripted(failure(kind), OK), policy=EXACT)

    assert isinstance(trace.error, error_class)
    assert trace.error.attempts == 1
    assert len(trace.sends) == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
@pytest.mark.parametrize("op", unsafe_operations(), ids=["patch", "post-without-key"])
def test_call_never_retries_unsafe_request_on_retryable_status(
    status: int, op: Operation[Any]
) -> None:
    trace = drive(op, scripted(reply_with(status, retry_after="1"), OK), policy=EXACT)

    assert trace.error.status == status
    assert trace.error.attempts == 1
    assert trace.sleeps == []


@pytest.mark.parametrize(
    ("kind", "error_class"),
    [(FailureKind.TLS, KneoTLSError), (FailureKind.TOO_LARGE, KneoResponseTooLargeError)],
)
@pytest.mark.parametrize("op", safe_operations(), ids=lambda op: op.method)
def test_call_never_retries_tls_or_too_large_failures(
    kind: FailureKind, error_class: type[KneoError], op: Operation[Any]
) -> None:
    trace = drive(op, scripted(failure(kind), OK), policy=EXACT)

    assert isinstance(trace.error, error_class)
    assert trace.error.attempts == 1


@pytest.mark.parametrize("max_attempts", [1, 2, 3, 6])
def test_call_stops_at_max_attempts(max_attempts: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, base_delay=0.0, jitter=0.0)
    trace = drive(operation("GET"), scripted(reply_with(503)), policy=policy)

    assert isinstance(trace.error, KneoServiceUnavailableError)
    assert trace.error.attempts == len(trace.sends) == max_attempts
    assert len(trace.sleeps) == max_attempts - 1


def test_call_uses_per_call_retry_policy_over_client_policy() -> None:
    config = make_config(retry_policy=RetryPolicy(max_attempts=5, base_delay=0.0))
    trace = drive(
        operation("GET"),
        scripted(reply_with(503)),
        config=config,
        options=CallOptions(retry_policy=RetryPolicy(max_attempts=2, base_delay=0.0)),
    )

    assert trace.error.attempts == 2


# -- keys, request IDs and attempt numbers --------------------------------------------


def test_call_reuses_idempotency_key_across_retries() -> None:
    op = endpoints.create_run({"spec_id": "s"})
    replies = scripted(failure(FailureKind.TIMEOUT), reply_with(503), json_reply(201, CREATED))
    trace = drive(op, replies, policy=EXACT)

    assert op.idempotency_key is not None
    assert header_values(trace, IDEMPOTENCY_KEY_HEADER) == [op.idempotency_key] * 3
    assert trace.finished.idempotency_key == op.idempotency_key


def test_call_sends_caller_idempotency_key_byte_exact() -> None:
    key = "order-7/2025-01-01T00:00:00Z;v=1 ~!*"
    op = endpoints.create_run({"spec_id": "s"}, idempotency_key=key)
    trace = drive(op, scripted(reply_with(502), json_reply(201, CREATED)), policy=EXACT)

    assert header_values(trace, IDEMPOTENCY_KEY_HEADER) == [key, key]


def test_call_reuses_request_id_and_counts_attempts() -> None:
    trace = drive(operation("PUT"), scripted(reply_with(503), reply_with(502), OK), policy=EXACT)

    request_ids = header_values(trace, REQUEST_ID_HEADER)
    assert len(set(request_ids)) == 1
    assert request_ids[0] == trace.finished.request_id
    assert header_values(trace, ATTEMPT_HEADER) == ["1", "2", "3"]
    assert [send.attempt for send in trace.sends] == [1, 2, 3]


def test_call_gives_every_call_its_own_key_and_request_id() -> None:
    first = drive(endpoints.create_run({"spec_id": "s"}), scripted(json_reply(201, CREATED)))
    second = drive(endpoints.create_run({"spec_id": "s"}), scripted(json_reply(201, CREATED)))

    assert first.finished.idempotency_key != second.finished.idempotency_key
    assert first.finished.request_id != second.finished.request_id


def test_call_exposes_key_and_request_id_on_errors() -> None:
    op = operation("POST")
    trace = drive(op, scripted(reply_with(400)))

    assert trace.error.idempotency_key == op.idempotency_key
    assert trace.error.request_id == trace.requests[0].header(REQUEST_ID_HEADER)
    assert (trace.error.method, trace.error.path) == ("POST", "/v1/x")


# -- 409 ------------------------------------------------------------------------------


def test_call_fails_on_idempotency_mismatch_after_one_attempt() -> None:
    trace = drive(operation("POST"), scripted(reply_with(409, MISMATCH), OK), policy=EXACT)

    assert isinstance(trace.error, KneoIdempotencyMismatchError)
    assert trace.error.attempts == 1


def test_call_treats_other_409_with_key_as_mismatch() -> None:
    trace = drive(operation("POST"), scripted(reply_with(409, "run_exists"), OK), policy=EXACT)

    assert type(trace.error) is KneoIdempotencyMismatchError
    assert trace.error.attempts == 1


@pytest.mark.parametrize("op", [operation("PUT"), *unsafe_operations()], ids=lambda op: op.method)
def test_call_treats_409_without_key_as_conflict(op: Operation[Any]) -> None:
    trace = drive(op, scripted(reply_with(409, "run_exists"), OK), policy=EXACT)

    assert type(trace.error) is KneoConflictError
    assert trace.error.attempts == 1


def test_call_retries_409_in_progress_until_original_result_arrives() -> None:
    op = endpoints.create_run({"spec_id": "s"})
    busy = reply_with(409, IN_PROGRESS, retry_after="1")
    trace = drive(op, scripted(busy, busy, json_reply(201, CREATED)), policy=EXACT)

    assert trace.finished.result.run_id == "r1"
    assert trace.sleeps == [1.0, 1.0]
    assert header_values(trace, IDEMPOTENCY_KEY_HEADER) == [op.idempotency_key] * 3


def test_call_raises_in_progress_after_retries_run_out() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.0)
    trace = drive(operation("POST"), scripted(reply_with(409, IN_PROGRESS)), policy=policy)

    assert isinstance(trace.error, KneoIdempotencyInProgressError)
    assert trace.error.attempts == 3


def test_call_never_retries_422_with_in_progress_code() -> None:
    """Only a 409 says the original is still running; a 422 is a rejected request."""
    trace = drive(operation("POST"), scripted(reply_with(422, IN_PROGRESS), OK), policy=EXACT)

    assert trace.error.status == 422
    assert trace.error.attempts == 1


# -- Retry-After ----------------------------------------------------------------------

INVALID_RETRY_AFTER = ("-1", "+1", "1.5", "\u00b2", "abc", "", " ", "1 2", "0x10")

# (header value, parsed seconds or None when invalid)
RETRY_AFTER_TABLE: list[tuple[str, float | None]] = [
    ("0", 0.0),
    ("1", 1.0),
    ("\t42 ", 42.0),
    ("7", 7.0),
    ("60", 60.0),
    ("61", 61.0),
    ("3600", 3600.0),
    ("9999999999", 1e9),
    *((value, None) for value in INVALID_RETRY_AFTER),
]


@pytest.mark.parametrize(("value", "seconds"), RETRY_AFTER_TABLE)
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("deadline", [10.0, 120.0])
def test_call_bounds_retry_after(
    value: str, seconds: float | None, status: int, deadline: float
) -> None:
    """Valid and within cap and deadline: waited exactly; too long: fails at once."""
    policy = RetryPolicy(base_delay=0.5, jitter=0.0, max_retry_after=60.0)
    clock = FakeClock()
    trace = drive(
        operation("GET"),
        scripted(reply_with(status, retry_after=value), OK),
        clock=clock,
        policy=policy,
        options=CallOptions(deadline=deadline),
    )

    if seconds is None:
        assert trace.sleeps == [0.5]
        assert trace.finished.attempts == 2
    elif seconds <= 60.0 and seconds < deadline:
        assert trace.sleeps == [seconds]
        assert trace.finished.attempts == 2
    else:
        assert trace.sleeps == []
        assert trace.error.status == status
        assert trace.error.retry_after == seconds
        assert trace.error.attempts == 1


@pytest.mark.parametrize("form", HTTP_DATE_FORMS)
@pytest.mark.parametrize(("offset", "seconds"), [(30, 30.0), (-30, 0.0), (0, 0.0)])
def test_call_honours_http_date_retry_after(form: str, offset: int, seconds: float) -> None:
    value = http_date(WALL_START + offset, form)
    trace = drive(operation("GET"), scripted(reply_with(429, retry_after=value), OK))

    assert trace.sleeps == [seconds]
    assert trace.finished.attempts == 2


def test_call_honours_retry_after_on_409_in_progress() -> None:
    trace = drive(operation("POST"), scripted(reply_with(409, IN_PROGRESS, retry_after="9"), OK))

    assert trace.sleeps == [9.0]


@pytest.mark.parametrize("status", [502, 504])
def test_call_ignores_retry_after_on_other_statuses(status: int) -> None:
    trace = drive(
        operation("GET"), scripted(reply_with(status, retry_after="20"), OK), policy=EXACT
    )

    assert trace.sleeps == [1.0]
    assert trace.finished.attempts == 2


def test_call_uses_first_of_two_retry_after_headers() -> None:
    call = new_call()
    assert isinstance(call.next_action(), Send)
    call.receive_response(503, [(b"Retry-After", b"7"), (b"retry-after", b"1")], b"")

    assert call.next_action() == Sleep(7.0)


def test_call_fails_at_once_when_retry_after_exceeds_cap() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    trace = drive(operation("GET"), scripted(reply_with(429, retry_after="6"), OK), policy=policy)

    assert isinstance(trace.error, KneoRateLimited)
    assert trace.error.retry_after == 6.0
    assert trace.error.attempts == 1
    assert trace.sleeps == []


def test_call_fails_at_once_when_retry_after_reaches_deadline() -> None:
    clock = FakeClock()
    reply = Reply(status=503, headers={"Retry-After": "6"}, takes=4.0)
    trace = drive(
        operation("GET"), scripted(reply, OK), clock=clock, options=CallOptions(deadline=10.0)
    )

    assert isinstance(trace.error, KneoServiceUnavailableError)
    assert trace.error.retry_after == 6.0
    assert trace.sleeps == []
    assert trace.error.elapsed == 4.0


def test_call_sets_retry_after_on_final_error_when_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=2)
    trace = drive(operation("GET"), scripted(reply_with(429, retry_after="2")), policy=policy)

    assert trace.sleeps == [2.0]
    assert trace.error.retry_after == 2.0
    assert trace.error.attempts == 2


# -- backoff --------------------------------------------------------------------------


def test_call_backs_off_exponentially_within_jitter() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=30.0, jitter=0.25)
    trace = drive(operation("GET"), scripted(reply_with(503)), policy=policy, seed=11)

    assert len(trace.sleeps) == 5
    for n, slept in enumerate(trace.sleeps, start=2):
        d = 2.0 ** (n - 2)
        assert d * 0.75 <= slept <= d * 1.25


def test_call_caps_backoff_at_max_delay() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=3.0, jitter=0.0)
    trace = drive(operation("GET"), scripted(failure(FailureKind.NETWORK)), policy=policy)

    assert trace.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_call_backs_off_identically_for_same_seed() -> None:
    policy = RetryPolicy(max_attempts=6, jitter=1.0)
    runs = [
        drive(operation("GET"), scripted(reply_with(502)), policy=policy, seed=5).sleeps
        for _ in range(2)
    ]
    other = drive(operation("GET"), scripted(reply_with(502)), policy=policy, seed=6).sleeps

    assert runs[0] == runs[1]
    assert runs[0] != other


# -- deadline and timeouts ------------------------------------------------------------


def test_call_uses_configured_timeout_without_deadline() -> None:
    trace = drive(operation("GET"), scripted(OK), config=make_config(timeout=12.0))
    override = drive(operation("GET"), scripted(OK), options=CallOptions(timeout=3.0))

    assert [send.timeout for send in trace.sends] == [12.0]
    assert [send.timeout for send in override.sends] == [3.0]


def test_call_clamps_attempt_timeout_to_deadline() -> None:
    clock = FakeClock()
    slow = Reply(status=503, takes=4.0)
    trace = drive(
        operation("GET"),
        scripted(slow, OK),
        clock=clock,
        policy=EXACT,
        options=CallOptions(timeout=8.0, deadline=10.0),
    )

    assert [send.timeout for send in trace.sends] == [8.0, 5.0]
    assert trace.send_remaining == [10.0, 5.0]


def test_call_never_sleeps_past_deadline() -> None:
    clock = FakeClock()
    slow = Reply(status=502, takes=9.0)
    trace = drive(
        operation("GET"),
        scripted(slow, OK),
        clock=clock,
        policy=EXACT,
        options=CallOptions(deadline=10.0),
    )

    assert trace.sleeps == []
    assert isinstance(trace.error, KneoServerError)
    assert trace.error.attempts == 1


def test_call_never_sleeps_until_exactly_the_deadline() -> None:
    clock = FakeClock()
    trace = drive(
        operation("GET"),
        scripted(Reply(status=502, takes=9.0), OK),
        clock=clock,
        policy=RetryPolicy(base_delay=1.0, jitter=0.0),
        options=CallOptions(deadline=10.0),
    )

    assert trace.sleeps == []
    assert trace.error.status == 502


def test_call_fails_without_sending_when_deadline_already_passed() -> None:
    trace = drive(operation("GET"), scripted(OK), options=CallOptions(deadline=0.0))

    assert trace.sends == []
    assert isinstance(trace.error, KneoTimeoutError)
    assert trace.error.kind == "deadline"
    assert trace.error.attempts == 0


def test_call_fails_when_deadline_passes_during_sleep() -> None:
    """A driver may oversleep; the attempt after it must not start past the deadline."""
    trace = drive(
        operation("GET"),
        scripted(reply_with(503), OK),
        policy=EXACT,
        options=CallOptions(deadline=2.0),
        oversleep=1.5,
    )

    assert trace.sleeps == [1.0]
    assert len(trace.sends) == 1
    assert isinstance(trace.error, KneoTimeoutError)
    assert trace.error.kind == "deadline"
    assert trace.error.attempts == 1
    assert trace.error.elapsed == 2.5


def test_call_reports_elapsed_and_remaining() -> None:
    clock = FakeClock()
    call = new_call(clock=clock, options=CallOptions(deadline=10.0))
    clock.advance(3.0)

    assert call.elapsed == 3.0
    assert call.remaining() == 7.0
    assert new_call(clock=clock).remaining() is None


# -- retry budget ---------------------------------------------------------------------


def bucket(available: int, **rules: int) -> TokenBucket:
    tokens = TokenBucket(RetryBudget(**rules))
    tokens.available = available
    return tokens


def test_call_never_needs_tokens_for_first_attempt() -> None:
    tokens = bucket(0, capacity=10, retry_cost=5, timeout_retry_cost=10, success_refund=1)
    trace = drive(operation("GET"), scripted(OK), budget=tokens)

    assert trace.finished.attempts == 1
    assert tokens.available == 1


@pytest.mark.parametrize(
    ("reply", "cost"),
    [
        (reply_with(503), 5),
        (reply_with(409, IN_PROGRESS), 5),
        (failure(FailureKind.TIMEOUT), 10),
        (failure(FailureKind.CONNECT), 10),
    ],
    ids=["status", "in-progress", "timeout", "connect"],
)
def test_call_takes_retry_cost_by_failure_class(reply: Reply, cost: int) -> None:
    tokens = bucket(100, capacity=100, retry_cost=5, timeout_retry_cost=10)
    trace = drive(operation("POST"), scripted(reply, reply_with(400)), budget=tokens)

    assert trace.error.status == 400
    assert tokens.available == 100 - cost
    assert trace.levels[:2] == [100, 100 - cost]


def test_call_fails_with_budget_exhausted_when_retry_denied() -> None:
    tokens = bucket(7, capacity=100, retry_cost=5)
    trace = drive(operation("GET"), scripted(reply_with(503)), budget=tokens, policy=EXACT)

    assert len(trace.sends) == 2
    assert isinstance(trace.error, KneoServiceUnavailableError)
    assert trace.error.retry_budget_exhausted is True
    assert tokens.available == 2


def test_call_takes_tokens_for_retries_within_a_deadline() -> None:
    tokens = bucket(7, capacity=100, retry_cost=5)
    trace = drive(
        operation("GET"),
        scripted(reply_with(503)),
        budget=tokens,
        policy=EXACT,
        options=CallOptions(deadline=60.0),
    )

    assert len(trace.sends) == 2
    assert trace.error.retry_budget_exhausted is True
    assert tokens.available == 2


def test_call_does_not_flag_budget_when_retries_run_out() -> None:
    tokens = bucket(100, capacity=100)
    policy = RetryPolicy(max_attempts=2, base_delay=0.0)
    trace = drive(operation("GET"), scripted(reply_with(503)), budget=tokens, policy=policy)

    assert trace.error.retry_budget_exhausted is False
    assert tokens.available == 95


def test_call_refunds_success_refund_on_first_try_up_to_capacity() -> None:
    below = bucket(50, capacity=100, success_refund=3)
    full = bucket(99, capacity=100, success_refund=3)
    drive(operation("GET"), scripted(OK), budget=below)
    drive(operation("GET"), scripted(OK), budget=full)

    assert below.available == 53
    assert full.available == 100


def test_call_refunds_last_withdrawal_on_success_after_retries() -> None:
    tokens = bucket(100, capacity=100, retry_cost=5, timeout_retry_cost=10)
    replies = scripted(reply_with(503), failure(FailureKind.NETWORK), OK)
    trace = drive(operation("GET"), replies, budget=tokens, policy=EXACT)

    assert trace.finished.attempts == 3
    assert trace.levels == [100, 95, 95, 85, 85, 95]
    assert tokens.available == 95


def test_call_keeps_tokens_spent_on_failed_call() -> None:
    tokens = bucket(100, capacity=100, retry_cost=5)
    drive(operation("GET"), scripted(reply_with(503), reply_with(404)), budget=tokens)

    assert tokens.available == 95


def test_call_skips_refund_when_success_body_does_not_decode() -> None:
    tokens = bucket(50, capacity=100, success_refund=1)
    trace = drive(endpoints.get_run("r1"), scripted(json_reply(200, {"run_id": 1})), budget=tokens)

    assert isinstance(trace.error, KneoDecodeError)
    assert tokens.available == 50


def test_call_refunds_unsent_retry_tokens_on_abandon() -> None:
    tokens = bucket(100, capacity=100, retry_cost=5)
    call = new_call(budget=tokens)
    assert isinstance(call.next_action(), Send)
    call.receive_response(503, [], b"")
    assert tokens.available == 95
    assert isinstance(call.next_action(), Sleep)

    call.abandon()

    assert tokens.available == 100
    assert call.state is CallState.FAILED
    assert isinstance(call.next_action(), Failed)


def test_call_refunds_unsent_retry_tokens_on_abandon_before_sleep() -> None:
    tokens = bucket(100, capacity=100, timeout_retry_cost=10)
    call = new_call(budget=tokens)
    assert isinstance(call.next_action(), Send)
    call.receive_failure(FailureKind.TIMEOUT)
    assert call.state is CallState.BACKING_OFF

    call.abandon()

    assert tokens.available == 100


def test_call_keeps_tokens_of_sent_retry_on_abandon() -> None:
    tokens = bucket(100, capacity=100, retry_cost=5)
    call = new_call(budget=tokens)
    assert isinstance(call.next_action(), Send)
    call.receive_response(503, [], b"")
    assert isinstance(call.next_action(), Sleep)
    assert isinstance(call.next_action(), Send)

    call.abandon()
    call.abandon()

    assert tokens.available == 95


def test_call_refunds_unsent_retry_tokens_when_deadline_passes_during_sleep() -> None:
    """The retry the tokens paid for is never sent, as with ``abandon()``."""
    tokens = bucket(100, capacity=100, retry_cost=5)
    trace = drive(
        operation("GET"),
        scripted(reply_with(503), OK),
        budget=tokens,
        policy=EXACT,
        options=CallOptions(deadline=2.0),
        oversleep=1.5,
    )

    assert isinstance(trace.error, KneoTimeoutError)
    assert trace.error.kind == "deadline"
    assert tokens.available == 100


def test_call_does_not_refund_abandoned_finished_call() -> None:
    tokens = bucket(50, capacity=100, success_refund=1)
    call = new_call(budget=tokens)
    assert isinstance(call.next_action(), Send)
    call.receive_response(200, [], b"{}")

    call.abandon()

    assert tokens.available == 51
    assert isinstance(call.next_action(), Finished)


# -- the state machine ----------------------------------------------------------------


def to_awaiting(call: Call[Any]) -> None:
    call.next_action()


def to_backing_off(call: Call[Any]) -> None:
    call.next_action()
    call.receive_response(503, [], b"")


def to_finished(call: Call[Any]) -> None:
    call.next_action()
    call.receive_response(200, [], b"{}")


def to_failed(call: Call[Any]) -> None:
    call.next_action()
    call.receive_response(404, [], b"")


def to_ready_after_sleep(call: Call[Any]) -> None:
    to_backing_off(call)
    call.next_action()


def receive_ok(call: Call[Any]) -> None:
    call.receive_response(200, [], b"{}")


def receive_timeout(call: Call[Any]) -> None:
    call.receive_failure(FailureKind.TIMEOUT)


def ask_next(call: Call[Any]) -> None:
    call.next_action()


def stay_ready(call: Call[Any]) -> None:
    del call


Step = Callable[[Call[Any]], None]
STATE_MISUSE: list[tuple[str, Step, CallState, Step]] = [
    ("ready-receive-response", stay_ready, CallState.READY, receive_ok),
    ("ready-receive-failure", stay_ready, CallState.READY, receive_timeout),
    ("ready-after-sleep-receive", to_ready_after_sleep, CallState.READY, receive_ok),
    ("awaiting-next-action", to_awaiting, CallState.AWAITING_RESPONSE, ask_next),
    ("backing-off-receive-response", to_backing_off, CallState.BACKING_OFF, receive_ok),
    ("backing-off-receive-failure", to_backing_off, CallState.BACKING_OFF, receive_timeout),
    ("finished-receive-response", to_finished, CallState.FINISHED, receive_ok),
    ("finished-receive-failure", to_finished, CallState.FINISHED, receive_timeout),
    ("failed-receive-response", to_failed, CallState.FAILED, receive_ok),
    ("failed-receive-failure", to_failed, CallState.FAILED, receive_timeout),
]


@pytest.mark.parametrize(
    ("setup", "state", "misuse"),
    [row[1:] for row in STATE_MISUSE],
    ids=[row[0] for row in STATE_MISUSE],
)
def test_call_rejects_out_of_order_use(setup: Step, state: CallState, misuse: Step) -> None:
    call = new_call()
    setup(call)
    assert call.state is state

    with pytest.raises(KneoStateError, match=state.name):
        misuse(call)
    assert call.state is state


def test_call_allows_exactly_the_documented_methods_per_state() -> None:
    methods = {"next_action", "receive_response", "receive_failure", "abandon"}

    assert set(ALLOWED) == set(CallState)
    for state, allowed in ALLOWED.items():
        assert allowed <= methods, state
        assert "abandon" in allowed


def test_call_returns_same_outcome_on_every_later_next_action() -> None:
    call = new_call()
    to_finished(call)
    first = call.next_action()

    assert isinstance(first, Finished)
    assert call.next_action() is first


def test_call_abandon_fails_a_pending_call() -> None:
    op = operation("POST")
    call = new_call(op)
    to_awaiting(call)

    call.abandon()

    action = call.next_action()
    assert isinstance(action, Failed)
    assert type(action.error) is KneoError
    assert action.error.attempts == 1
    assert action.error.request_id == call.request_id
    assert action.error.idempotency_key == op.idempotency_key
    assert (action.error.method, action.error.path) == ("POST", "/v1/x")
    with pytest.raises(KneoStateError):
        receive_ok(call)


def test_call_abandon_before_first_attempt_sends_nothing() -> None:
    call = new_call()

    call.abandon()

    action = call.next_action()
    assert isinstance(action, Failed)
    assert action.error.attempts == 0


def test_call_abandon_keeps_an_earlier_failure() -> None:
    call = new_call()
    to_failed(call)

    call.abandon()

    action = call.next_action()
    assert isinstance(action, Failed)
    assert isinstance(action.error, KneoNotFoundError)


def test_call_shows_pending_sleep_only_while_backing_off() -> None:
    call = new_call(options=CallOptions(retry_policy=EXACT))
    assert call.pending_sleep is None
    to_backing_off(call)

    assert call.pending_sleep == 1.0
    assert call.next_action() == Sleep(1.0)
    assert call.pending_sleep is None


def test_call_repr_shows_state_and_attempts() -> None:
    call = new_call(endpoints.get_run("r1"), options=CallOptions(request_id="req-9"))
    to_awaiting(call)

    assert repr(call) == (
        "<Call GET /v1/runs/r1 state=AWAITING_RESPONSE attempts=1 request_id=req-9>"
    )


# -- failures: details and decoding ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error_class", "kind_attr"),
    [
        (FailureKind.CONNECT, KneoNetworkError, "connect"),
        (FailureKind.CONNECT_TIMEOUT, KneoTimeoutError, "connect_timeout"),
        (FailureKind.TLS, KneoTLSError, "tls"),
        (FailureKind.TIMEOUT, KneoTimeoutError, "timeout"),
        (FailureKind.NETWORK, KneoNetworkError, "network"),
        (FailureKind.PROTOCOL, KneoProtocolError, "protocol"),
        (FailureKind.TOO_LARGE, KneoResponseTooLargeError, None),
    ],
)
def test_call_maps_transport_failures_to_typed_errors(
    kind: FailureKind, error_class: type[KneoError], kind_attr: str | None
) -> None:
    call = new_call(options=CallOptions(retry_policy=RetryPolicy(max_attempts=1)))
    to_awaiting(call)
    call.receive_failure(kind, "x" * 500)

    action = call.next_action()
    assert isinstance(action, Failed)
    assert isinstance(action.error, error_class)
    assert getattr(action.error, "kind", None) == kind_attr
    assert action.error.attempts == 1
    assert action.error.status is None
    assert "x" * 200 in str(action.error)
    assert "x" * 201 not in str(action.error)
    assert call.request_id in str(action.error)


def test_call_leaves_detail_out_of_message_when_empty() -> None:
    call = new_call(options=CallOptions(retry_policy=RetryPolicy(max_attempts=1)))
    to_awaiting(call)
    call.receive_failure(FailureKind.NETWORK)

    action = call.next_action()
    assert isinstance(action, Failed)
    assert str(action.error) == (
        f"GET /v1/x: connection to kneo.test:443 failed (request_id={call.request_id})"
    )


def test_call_fails_with_decode_error_on_mismatched_body() -> None:
    op = endpoints.get_run("r1")
    echo = json_reply(200, {"run_id": 1}, **{"X-Request-ID": "srv-2"})
    trace = drive(op, scripted(echo), options=CallOptions(request_id="srv-2"))

    assert isinstance(trace.error, KneoDecodeError)
    assert trace.error.status == 200
    assert trace.error.attempts == 1
    assert trace.error.request_id == "srv-2"
    assert (trace.error.method, trace.error.path) == ("GET", "/v1/runs/r1")


def test_call_falls_back_to_sent_request_id_on_decode_error() -> None:
    trace = drive(endpoints.get_run("r1"), scripted(json_reply(200, [])))

    assert trace.error.request_id == trace.requests[0].header(REQUEST_ID_HEADER)


def test_call_decodes_typed_put_result() -> None:
    op = endpoints.put_environment_policy("prod", {"require_human_review": True})
    trace = drive(op, scripted(reply_with(504), json_reply(200, POLICY)), policy=EXACT)

    assert isinstance(trace.finished.result, models.EnvironmentPolicyResponse)
    assert trace.finished.result.version == 2
    assert trace.finished.attempts == 2


# -- RetryPolicy, parse_retry_after, retry_is_safe ------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"max_attempts": 0},
        {"jitter": -0.1},
        {"jitter": 1.5},
        {"base_delay": -1.0},
        {"max_delay": math.inf},
        {"max_retry_after": math.nan},
    ],
)
def test_retry_policy_rejects_invalid_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**settings)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [(1, None, 0.0), (0, None, 0.0), (2, 3.0, 3.0), (5, 0.0, 0.0), (2, -4.0, 0.0)],
)
def test_retry_policy_returns_fixed_delays(
    attempt: int, retry_after: float | None, expected: float
) -> None:
    assert RetryPolicy(jitter=1.0).delay_for(attempt, retry_after) == expected


def test_retry_policy_survives_huge_attempt_numbers() -> None:
    policy = RetryPolicy(base_delay=1e300, max_delay=5.0, jitter=0.0)

    assert policy.delay_for(10**6) == 5.0


def test_retry_policy_jitters_with_private_generator_by_default() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=1.0)
    random.seed(0)
    first = [policy.delay_for(2) for _ in range(5)]
    random.seed(0)
    second = [policy.delay_for(2) for _ in range(5)]

    assert first != second
    assert all(0.0 <= delay <= 2.0 for delay in first + second)


@pytest.mark.parametrize(("value", "seconds"), RETRY_AFTER_TABLE)
def test_parse_retry_after_reads_delay_seconds(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, wall_now=0.0) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("0" * 40 + "5", 5.0),
        ("1" * 13, 1e9),
        ("99999999999999999999999999999999999999", 1e9),
        ("Mon, 99 Foo 2025 00:00:00 GMT", None),
    ],
)
def test_parse_retry_after_bounds_odd_values(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, wall_now=0.0) == seconds


@pytest.mark.parametrize("form", HTTP_DATE_FORMS)
@pytest.mark.parametrize(("offset", "seconds"), [(30, 30.0), (-30, 0.0)])
def test_parse_retry_after_reads_http_dates(form: str, offset: int, seconds: float) -> None:
    value = http_date(WALL_START + offset, form)

    assert parse_retry_after(value, wall_now=float(WALL_START)) == seconds


@pytest.mark.parametrize(
    ("method", "keyed", "failure_kind", "safe"),
    [
        *((m, False, None, True) for m in SAFE_METHODS),
        ("POST", True, None, True),
        ("POST", False, None, False),
        ("PATCH", False, None, False),
        *(("PATCH", False, kind, True) for kind in PRE_SEND_KINDS),
        *(("POST", False, kind, True) for kind in PRE_SEND_KINDS),
        *(("PATCH", False, kind, False) for kind in POST_SEND_KINDS),
        *(("POST", True, kind, True) for kind in POST_SEND_KINDS),
        *(("GET", False, kind, False) for kind in (FailureKind.TLS, FailureKind.TOO_LARGE)),
    ],
)
def test_retry_is_safe_by_method_key_and_failure(
    method: str, keyed: bool, failure_kind: FailureKind | None, safe: bool
) -> None:
    assert retry_is_safe(method, keyed=keyed, failure=failure_kind) is safe


def test_status_is_retryable_only_for_the_contract_statuses() -> None:
    retryable = {status for status in range(100, 600) if status_is_retryable(status)}

    assert retryable == {429, 502, 503, 504}


# -- the budget -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [{"capacity": -1}, {"retry_cost": -1}, {"timeout_retry_cost": -1}, {"success_refund": -1}],
)
def test_budget_rejects_negative_amounts(rules: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="RetryBudget"):
        RetryBudget(**rules)


def test_budget_costs_more_after_transport_failures() -> None:
    rules = RetryBudget()

    assert rules.cost_of(None) == 5
    assert rules.cost_of(FailureKind.TIMEOUT) == 10
    assert (rules.capacity, rules.success_refund) == (500, 1)


def test_budget_withdraws_only_what_it_holds() -> None:
    tokens = TokenBucket(RetryBudget(capacity=12))

    assert tokens.withdraw(10) is True
    assert tokens.withdraw(3) is False
    assert tokens.available == 2
    assert tokens.withdraw(2) is True
    assert tokens.available == 0


def test_budget_deposits_up_to_capacity() -> None:
    tokens = TokenBucket(RetryBudget(capacity=12))
    tokens.withdraw(5)
    tokens.deposit(3)
    assert tokens.available == 10
    tokens.deposit(100)

    assert tokens.available == 12
    assert repr(tokens) == "TokenBucket(available=12, capacity=12)"
    assert TokenBucket().available == 500
