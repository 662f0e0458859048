"""The events a ``Call`` emits, driven by hand on a ``FakeClock``: no driver, no loop.

Each test scripts the server's replies (``tests/proto/harness.py``), runs the call with a
``Recorder`` as its emitter and reads the events back: their order, their fields, their
times (every duration is a difference of the fake clock's readings), the one ``CallInfo``
they share, and the headers an emitter may add to an attempt.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from kneo_proto import (
    ATTEMPT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    REQUEST_ID_HEADER,
    AttemptFailed,
    AttemptStarted,
    Call,
    CallFailed,
    CallFinished,
    CallInfo,
    CallOptions,
    CallStarted,
    Event,
    Failed,
    FailureKind,
    Finished,
    KneoClientClosedError,
    KneoError,
    KneoNetworkError,
    KneoProtocolError,
    KneoResponseTooLargeError,
    KneoServerError,
    KneoTimeoutError,
    Operation,
    Phase,
    Request,
    ResponseReceived,
    RetryBudget,
    RetryPolicy,
    RetryScheduled,
    Send,
    Sleep,
    TokenBucket,
    endpoints,
)
from tests.proto.harness import (
    API_KEY,
    FakeClock,
    Reply,
    error_reply,
    failure,
    json_reply,
    make_config,
    operation,
    scripted,
)

# No jitter: backoff delays are exactly 1, 2, 4 ... seconds.
EXACT = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=30.0, jitter=0.0)
RUN = {
    "run_id": "run-7f3a",
    "spec_id": "s1",
    "status": "running",
    "environment": "dev",
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:01Z",
}
OK = json_reply(200, {})
UNAVAILABLE = error_reply(503, "unavailable")


class Recorder:
    """An ``Emitter`` that keeps every event and adds ``extra`` headers to every attempt."""

    def __init__(self, extra: Iterable[tuple[str, str]] = ()) -> None:
        self.events: list[Event] = []
        self.extra = list(extra)
        self.asked: list[AttemptStarted] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def headers_for(self, event: AttemptStarted) -> list[tuple[str, str]]:
        self.asked.append(event)
        return list(self.extra)

    def kinds(self) -> list[str]:
        return [type(event).__name__ for event in self.events]

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@dataclass
class Driven:
    """A call run to its end, and what happened on the way."""

    call: Call[Any]
    recorder: Recorder
    clock: FakeClock
    started: float
    requests: list[Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    outcome: Finished[Any] | Failed | None = None

    @property
    def error(self) -> KneoError:
        assert isinstance(self.outcome, Failed), self.outcome
        return self.outcome.error


def new_call(
    op: Operation[Any],
    *,
    recorder: Recorder | None = None,
    clock: FakeClock | None = None,
    policy: RetryPolicy = EXACT,
    deadline: float | None = None,
    budget: TokenBucket | None = None,
    request_id: str | None = None,
    **config: Any,
) -> Call[Any]:
    options = CallOptions(retry_policy=policy, deadline=deadline, request_id=request_id)
    return Call(
        op,
        make_config(**config),
        clock=(clock or FakeClock()).clock(),
        options=options,
        budget=budget,
        rng=random.Random(7),
        emit=recorder,
    )


def drive(
    op: Operation[Any],
    *replies: Reply,
    recorder: Recorder | None = None,
    oversleep: float = 0.0,
    **settings: Any,
) -> Driven:
    """Run ``op`` against ``replies`` (the last one repeats); every sleep lasts ``oversleep``
    longer than asked, as on a busy event loop."""
    clock, recorder = FakeClock(), recorder or Recorder()
    driven = Driven(new_call(op, recorder=recorder, clock=clock, **settings), recorder, clock, 0.0)
    driven.started = clock.now
    server = scripted(*replies)
    for _ in range(50):
        action = driven.call.next_action()
        if isinstance(action, Finished | Failed):
            driven.outcome = action
            return driven
        if isinstance(action, Sleep):
            driven.sleeps.append(action.seconds)
            clock.advance(action.seconds + oversleep)
            continue
        assert isinstance(action, Send)
        driven.requests.append(action.request)
        reply = server(action.request)
        clock.advance(reply.takes)
        if reply.failure is not None:
            driven.call.receive_failure(reply.failure, "scripted failure")
        else:
            driven.call.receive_response(reply.status, list(reply.headers.items()), reply.body)
    raise AssertionError("the call did not end")


def slow(reply: Reply, takes: float) -> Reply:
    return Reply(reply.status, reply.body, reply.headers, reply.failure, takes)


# -- sequences --------------------------------------------------------------------------------


def test_call_events_first_try_success_is_four_events_with_clock_times() -> None:
    driven = drive(endpoints.get_run("run-7f3a"), slow(json_reply(200, RUN), 0.25))

    assert driven.recorder.kinds() == [
        "CallStarted",
        "AttemptStarted",
        "ResponseReceived",
        "CallFinished",
    ]
    started, attempt, response, finished = driven.recorder.events
    t0 = driven.started
    assert isinstance(started, CallStarted)
    assert started.at == t0
    assert attempt == AttemptStarted(call=started.call, at=t0, attempt=1, timeout=30.0)
    assert response == ResponseReceived(
        call=started.call, at=t0 + 0.25, attempt=1, status=200, duration=0.25
    )
    assert isinstance(finished, CallFinished)
    assert (finished.at, finished.status, finished.attempts) == (t0 + 0.25, 200, 1)
    assert finished.elapsed == 0.25
    assert finished.request_id == driven.requests[0].header(REQUEST_ID_HEADER)


def test_call_events_two_503s_then_200_schedule_two_retries_at_the_asked_delays() -> None:
    driven = drive(
        endpoints.get_run("run-7f3a"),
        slow(UNAVAILABLE, 0.5),
        slow(UNAVAILABLE, 0.5),
        slow(json_reply(200, RUN), 0.5),
    )

    assert driven.recorder.kinds() == [
        "CallStarted",
        *["AttemptStarted", "ResponseReceived", "RetryScheduled"] * 2,
        "AttemptStarted",
        "ResponseReceived",
        "CallFinished",
    ]
    retries: list[RetryScheduled] = driven.recorder.of(RetryScheduled)
    assert [(r.attempt, r.cause, r.budget_left) for r in retries] == [
        (2, 503, None),
        (3, 503, None),
    ]
    assert [r.delay for r in retries] == driven.sleeps == [1.0, 2.0]
    assert [a.attempt for a in driven.recorder.of(AttemptStarted)] == [1, 2, 3]
    assert [r.status for r in driven.recorder.of(ResponseReceived)] == [503, 503, 200]
    assert [r.duration for r in driven.recorder.of(ResponseReceived)] == [0.5, 0.5, 0.5]
    # The next attempt starts when the asked-for sleep ends.
    starts = [a.at - driven.started for a in driven.recorder.of(AttemptStarted)]
    assert starts == [0.0, 0.5 + 1.0, 0.5 + 1.0 + 0.5 + 2.0]
    (finished,) = driven.recorder.of(CallFinished)
    assert (finished.attempts, finished.elapsed) == (3, 4.5)


def test_call_events_budget_left_is_the_buckets_level_after_each_retry_paid() -> None:
    bucket = TokenBucket(RetryBudget(capacity=30, retry_cost=5, timeout_retry_cost=10))
    driven = drive(operation("GET"), UNAVAILABLE, failure(FailureKind.NETWORK), OK, budget=bucket)

    retries: list[RetryScheduled] = driven.recorder.of(RetryScheduled)
    assert [(r.cause, r.budget_left) for r in retries] == [(503, 25), (FailureKind.NETWORK, 15)]
    assert isinstance(driven.outcome, Finished)


@pytest.mark.parametrize(
    ("kind", "phase"),
    [
        (FailureKind.CONNECT, Phase.CONNECT),
        (FailureKind.CONNECT_TIMEOUT, Phase.POOL),
        (FailureKind.TIMEOUT, Phase.READ),
        (FailureKind.NETWORK, Phase.WRITE),
        (FailureKind.PROTOCOL, None),
    ],
)
def test_call_events_transport_failure_names_kind_and_phase(
    kind: FailureKind, phase: Phase | None
) -> None:
    clock, recorder = FakeClock(), Recorder()
    call = new_call(operation("GET"), recorder=recorder, clock=clock)
    assert isinstance(call.next_action(), Send)
    clock.advance(0.75)
    call.receive_failure(kind, "scripted failure", phase=phase)

    assert recorder.kinds() == ["CallStarted", "AttemptStarted", "AttemptFailed", "RetryScheduled"]
    failed, retry = recorder.events[2:]
    assert isinstance(failed, AttemptFailed)
    assert (failed.attempt, failed.failure, failed.phase, failed.duration) == (1, kind, phase, 0.75)
    assert isinstance(retry, RetryScheduled)
    assert (retry.attempt, retry.cause, retry.delay) == (2, kind, call.pending_sleep)


@pytest.mark.parametrize(
    ("reply", "error_class"),
    [(UNAVAILABLE, KneoServerError), (failure(FailureKind.NETWORK), KneoNetworkError)],
)
def test_call_events_post_without_a_key_fails_without_retry(
    reply: Reply, error_class: type[KneoError]
) -> None:
    driven = drive(operation("POST", keyed=False), reply, OK)

    assert len(driven.requests) == 1
    assert "RetryScheduled" not in driven.recorder.kinds()
    assert driven.recorder.kinds()[-1] == "CallFailed"
    (failed,) = driven.recorder.of(CallFailed)
    assert isinstance(failed.error, error_class)
    assert failed.error is driven.error
    assert (failed.attempts, failed.call.idempotency_key) == (1, None)


# -- failures that never reach the network ----------------------------------------------------


def test_call_events_deadline_passed_while_sleeping_fails_without_another_attempt() -> None:
    driven = drive(operation("GET"), UNAVAILABLE, OK, deadline=2.0, oversleep=1.5)

    assert driven.sleeps == [1.0]
    assert driven.recorder.kinds() == [
        "CallStarted",
        "AttemptStarted",
        "ResponseReceived",
        "RetryScheduled",
        "CallFailed",
    ]
    (failed,) = driven.recorder.of(CallFailed)
    assert isinstance(failed.error, KneoTimeoutError)
    assert failed.error is driven.error
    assert "expired before attempt 2" in str(failed.error)
    assert (failed.attempts, failed.elapsed) == (1, 2.5)


def test_call_events_delay_past_the_deadline_fails_without_scheduling_it() -> None:
    driven = drive(operation("GET"), UNAVAILABLE, OK, deadline=0.5)

    assert driven.recorder.kinds() == [
        "CallStarted",
        "AttemptStarted",
        "ResponseReceived",
        "CallFailed",
    ]
    assert driven.recorder.of(CallFailed)[0].error is driven.error


def test_call_events_spent_retry_budget_fails_with_the_last_error() -> None:
    bucket = TokenBucket(RetryBudget(capacity=4, retry_cost=5))
    driven = drive(operation("GET"), UNAVAILABLE, OK, budget=bucket)

    assert driven.recorder.kinds() == [
        "CallStarted",
        "AttemptStarted",
        "ResponseReceived",
        "CallFailed",
    ]
    (failed,) = driven.recorder.of(CallFailed)
    assert isinstance(failed.error, KneoServerError)
    assert failed.error.retry_budget_exhausted is True
    assert failed.error is driven.error
    assert bucket.available == 4


def test_call_events_abandon_fails_the_call_with_the_error_it_then_returns() -> None:
    clock, recorder = FakeClock(), Recorder()
    call = new_call(operation("GET"), recorder=recorder, clock=clock)
    call.next_action()
    clock.advance(0.25)
    call.abandon()

    assert recorder.kinds() == ["CallStarted", "AttemptStarted", "CallFailed"]
    failed = recorder.events[-1]
    assert isinstance(failed, CallFailed)
    outcome = call.next_action()
    assert isinstance(outcome, Failed)
    assert failed.error is outcome.error
    assert (failed.attempts, failed.elapsed, failed.error.attempts) == (1, 0.25, 1)
    call.abandon()  # again, or after the end: nothing more to report
    assert len(recorder.events) == 3


def test_call_events_close_fails_the_call_with_the_error_the_caller_raises() -> None:
    clock, recorder = FakeClock(), Recorder()
    call = new_call(operation("GET"), recorder=recorder, clock=clock)
    call.next_action()
    call.receive_response(503, [], b"{}")
    clock.advance(0.125)
    raised = call.close()

    assert recorder.kinds()[-2:] == ["RetryScheduled", "CallFailed"]
    failed = recorder.events[-1]
    assert isinstance(failed, CallFailed)
    assert isinstance(raised, KneoClientClosedError)
    assert failed.error is raised
    assert (failed.attempts, failed.elapsed) == (1, 0.125)


def test_call_events_after_a_finished_call_close_reports_nothing() -> None:
    driven = drive(operation("GET"), OK)
    driven.call.close()
    assert driven.recorder.kinds()[-1] == "CallFinished"
    assert len(driven.recorder.events) == 4


# -- the call's identity ----------------------------------------------------------------------


def test_call_events_share_one_call_info_object() -> None:
    driven = drive(operation("GET"), UNAVAILABLE, failure(FailureKind.TIMEOUT), OK)

    info = driven.recorder.events[0].call
    assert len(driven.recorder.events) == 10
    assert all(event.call is info for event in driven.recorder.events)
    assert info.request_id == driven.requests[0].header(REQUEST_ID_HEADER)
    assert {r.header(REQUEST_ID_HEADER) for r in driven.requests} == {info.request_id}


def test_call_info_has_the_route_template_and_the_endpoint_name() -> None:
    op = endpoints.get_run("run-7f3a")
    driven = drive(op, json_reply(200, RUN))

    assert driven.recorder.events[0].call == CallInfo(
        operation=op.name,
        method="GET",
        route="/v1/runs/{run_id}",
        url="https://kneo.test/v1/runs/run-7f3a",
        server_address="kneo.test",
        server_port=443,
        request_id=driven.requests[0].header(REQUEST_ID_HEADER) or "",
        idempotency_key=None,
        max_attempts=3,
    )
    assert op.name == "get_run"
    assert "run-7f3a" not in driven.recorder.events[0].call.route


def test_call_info_of_a_post_has_its_idempotency_key_and_a_list_its_query() -> None:
    created = drive(
        endpoints.create_run({"spec_id": "s"}),
        json_reply(201, {"run_id": "r1", "status": "queued", "created_at": "2025-01-01T00:00:00Z"}),
    )
    info = created.recorder.events[0].call
    assert (info.method, info.route) == ("POST", "/v1/runs")
    assert info.idempotency_key is not None
    assert info.idempotency_key == created.requests[0].header(IDEMPOTENCY_KEY_HEADER)

    listed = drive(endpoints.list_runs(limit=5), json_reply(200, {"runs": [], "total": 0}))
    info = listed.recorder.events[0].call
    assert info.route == "/v1/runs"
    assert info.url == listed.requests[0].url
    assert "limit=5" in info.url


def test_call_info_holds_neither_the_api_key_nor_a_header() -> None:
    driven = drive(operation("GET"), UNAVAILABLE, OK)
    for event in driven.recorder.events:
        assert API_KEY not in repr(event)
        assert "Bearer" not in repr(event)


# -- facts the driver reports -----------------------------------------------------------------


def test_check_head_foreign_version_is_a_protocol_failure_on_a_spent_connection() -> None:
    recorder = Recorder()
    call = new_call(operation("GET"), recorder=recorder, policy=RetryPolicy(max_attempts=1))
    call.next_action()
    call.receive_response(200, [], b"{}", http_version="HTTP/2.0")

    assert recorder.kinds() == ["CallStarted", "AttemptStarted", "AttemptFailed", "CallFailed"]
    failed_attempt, failed = recorder.events[2:]
    assert isinstance(failed_attempt, AttemptFailed)
    assert (failed_attempt.failure, failed_attempt.phase) == (FailureKind.PROTOCOL, None)
    assert call.connection_reusable is False
    assert isinstance(failed, CallFailed)
    assert isinstance(failed.error, KneoProtocolError)
    assert "unsupported HTTP version 'HTTP/2.0' in the status line" in str(failed.error)


def test_check_head_accepts_the_versions_kneo_client_speaks() -> None:
    for version in ("HTTP/1.1", "HTTP/1.0", "HTTP/2", b"HTTP/1.1"):
        recorder = Recorder()
        call = new_call(operation("GET"), recorder=recorder)
        call.next_action()
        call.receive_response(200, [], b"{}", http_version=version)
        assert recorder.kinds()[-1] == "CallFinished", version
        assert call.connection_reusable is True


def test_check_body_over_the_cap_is_too_large_in_the_cores_words() -> None:
    recorder = Recorder()
    call = new_call(operation("GET"), recorder=recorder, max_response_bytes=10)
    call.next_action()
    assert call.check_body(10) is None
    assert call.check_body(11) is FailureKind.TOO_LARGE
    call.receive_failure(FailureKind.TOO_LARGE)

    assert recorder.kinds() == ["CallStarted", "AttemptStarted", "AttemptFailed", "CallFailed"]
    failed_attempt, failed = recorder.events[2:]
    assert isinstance(failed_attempt, AttemptFailed)
    assert failed_attempt.failure is FailureKind.TOO_LARGE
    assert isinstance(failed, CallFailed)
    assert isinstance(failed.error, KneoResponseTooLargeError)
    assert "response body over the cap" in str(failed.error)


# -- headers an emitter adds ------------------------------------------------------------------

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_emitter_headers_reach_every_attempt() -> None:
    recorder = Recorder([("traceparent", TRACEPARENT), ("X-Trace-Note", "n1")])
    driven = drive(operation("GET"), UNAVAILABLE, OK, recorder=recorder)

    assert [r.header("traceparent") for r in driven.requests] == [TRACEPARENT] * 2
    assert [r.header("x-trace-note") for r in driven.requests] == ["n1"] * 2
    # headers_for is asked with the very event the emitter received.
    assert recorder.asked == recorder.of(AttemptStarted)
    assert all(any(a is e for e in recorder.events) for a in recorder.asked)


SDK_OWNED = [
    "Authorization",
    "X-Request-ID",
    "idempotency-key",
    "Content-Length",
    "CONTENT-TYPE",
    "X-Kneo-Attempt",
    "X-Kneo-Api-Key",
    "Transfer-Encoding",
    "Host",
    "Connection",
    "Accept",
    "Accept-Encoding",
    "User-Agent",
]


@pytest.mark.parametrize("name", SDK_OWNED)
def test_emitter_cannot_add_or_replace_a_header_kneo_client_sets(name: str) -> None:
    op = operation("POST", body={"a": 1})
    plain = drive(op, OK, request_id="req-1").requests[0]
    recorder = Recorder([(name, "evil"), ("X-Kept", "yes")])
    added = drive(op, OK, recorder=recorder, request_id="req-1").requests[0]

    assert added.headers == (*plain.headers, ("X-Kept", "yes"))
    assert "evil" not in [v for _, v in added.headers]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bad Name", "v"),
        ("", "v"),
        ("X-Colon:", "v"),
        ("X-Split", "a\r\nInjected: 1"),
        ("X-Nul", "a\x00b"),
        ("X-Newline", "a\nb"),
    ],
)
def test_emitter_invalid_header_is_dropped_and_the_call_goes_on(name: str, value: str) -> None:
    recorder = Recorder([(name, value), ("X-Kept", "yes")])
    driven = drive(operation("GET"), OK, recorder=recorder)

    (request,) = driven.requests
    assert request.header("x-kept") == "yes"
    assert value not in [v for _, v in request.headers]
    assert "Injected" not in repr(request.headers)
    assert isinstance(driven.outcome, Finished)


def test_call_without_an_emitter_builds_no_event() -> None:
    clock = FakeClock()
    call = new_call(operation("GET"), clock=clock, recorder=None)
    send = call.next_action()
    assert isinstance(send, Send)
    assert send.request.header(ATTEMPT_HEADER) == "1"
    call.receive_failure(FailureKind.NETWORK, "reset", phase=Phase.READ)
    assert isinstance(call.next_action(), Sleep)
    call.next_action()
    call.receive_response(200, [], b"{}")

    assert isinstance(call.next_action(), Finished)
    assert call._info is None
    call.close()
    assert call._info is None
