"""Property tests for ``Call`` over random outcome schedules (reliability plan T01, T02, T04).

Each example draws a method variant, a retry policy, an optional deadline, an optional retry
budget at a random level and a schedule of up to 8 per-attempt outcomes (transport failures,
statuses, ``Retry-After`` variants, exchange durations). A ``CallRun`` drives the ``Call`` on a
``FakeClock`` and checks every step against an independent model of the rules: what may be
retried, how long to sleep, what the deadline and the budget allow, which error ends the call.
A ledger server (T02) executes a keyed POST at most once per key and replays its answer; no
logical call may ever be executed twice.

Examples per property come from ``KNEO_PROPERTY_EXAMPLES``: 2,000 by default, about 25 s on
two cores (the interleaving property runs a quarter of that). The plan's CI count, 10,000,
takes about two minutes (past the per-test timeout under coverage) and CI's budget cannot
hold it; ``KNEO_PROPERTY_EXAMPLES=10000`` (or the nightly 200000) runs it. The T01 and T02
figure lines (schedules, terminal outcomes, maximum attempts, symbol coverage, duplicate
executions) are printed in the summary. ``--hypothesis-show-statistics`` shows the
histograms of terminal outcomes, attempts, variants and outcome symbols.
"""

from __future__ import annotations

import enum
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from kneo_proto import (
    ATTEMPT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    REQUEST_ID_HEADER,
    Call,
    CallOptions,
    CallState,
    Failed,
    FailureKind,
    Finished,
    KneoAuthError,
    KneoConflictError,
    KneoError,
    KneoIdempotencyInProgressError,
    KneoIdempotencyMismatchError,
    KneoInvalidRequestError,
    KneoNetworkError,
    KneoNotFoundError,
    KneoPermissionError,
    KneoProtocolError,
    KneoProxyError,
    KneoRateLimited,
    KneoResponseTooLargeError,
    KneoServerError,
    KneoServiceUnavailableError,
    KneoTimeoutError,
    KneoTLSError,
    KneoUnexpectedRedirectError,
    Operation,
    Request,
    RetryBudget,
    RetryPolicy,
    Send,
    Sleep,
    TokenBucket,
)
from tests.proto.harness import HTTP_DATE_FORMS, FakeClock, http_date, make_config, operation

pytestmark = pytest.mark.plan("T01", "T02", "T04")

EXAMPLES = int(os.environ.get("KNEO_PROPERTY_EXAMPLES", "2000"))
PROPERTY = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Each interleaving draws 2-4 whole calls, so it runs a quarter as many examples.
INTERLEAVED = settings(PROPERTY, max_examples=max(EXAMPLES // 4, 1))

IN_PROGRESS = "idempotency_key_in_progress"
MISMATCH = "idempotency_key_mismatch"
USER_KEY = "caller-key/42 ~v1"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class Variant(enum.Enum):
    """How a logical call is made: its method, and for a POST what guards it."""

    GET = "GET"
    HEAD = "HEAD"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    POST_AUTO_KEY = "POST auto key"
    POST_USER_KEY = "POST user key"
    POST_NO_RETRIES = "POST max_attempts 1"
    POST_NO_KEY = "POST without key"

    @property
    def method(self) -> str:
        return self.value.split()[0]

    @property
    def keyed(self) -> bool:
        return self.method == "POST" and self is not Variant.POST_NO_KEY

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT

    @property
    def safe(self) -> bool:
        """Whether an attempt that may have reached the server can be repeated."""
        return self.idempotent or self.keyed

    def operation(self, body: dict[str, Any] | None = None) -> Operation[dict[str, Any]]:
        if self is Variant.POST_USER_KEY:
            return operation("POST", idempotency_key=USER_KEY, body=body)
        return operation(self.method, keyed=self is not Variant.POST_NO_KEY, body=body)


# -- the outcome alphabet -------------------------------------------------------------


@dataclass(frozen=True)
class RetryAfter:
    """A ``Retry-After`` variant: a literal value, or an HTTP-date ``offset`` s from now."""

    label: str
    value: str | None = None
    seconds: float | None = None
    offset: int = 0
    form: str = "rfc1123"


ABSENT = RetryAfter("absent")
RETRY_AFTERS: tuple[RetryAfter, ...] = (
    ABSENT,
    *(RetryAfter("small", v, float(v)) for v in ("0", "1", "2", "5")),
    RetryAfter("small", "\t3 ", 3.0),
    RetryAfter("large", "61", 61.0),
    RetryAfter("large", "3600", 3600.0),
    RetryAfter("large", "9999999999", 1e9),
    *(RetryAfter("invalid", v) for v in ("-1", "+1", "1.5", "\u00b2", "abc", "")),
    *(
        RetryAfter("date", offset=offset, form=form)
        for offset in (-30, 0, 2, 30, 120)
        for form in HTTP_DATE_FORMS
    ),
)

# (symbol, status, error code)
STATUSES: tuple[tuple[str, int, str | None], ...] = (
    *((str(s), s, None) for s in (200, 201, 202, 204)),
    *((str(s), s, "redirected") for s in (301, 302, 308)),
    *((str(s), s, "rejected") for s in (400, 401, 403, 404, 408, 410, 413, 422)),
    ("409-mismatch", 409, MISMATCH),
    ("409-in-progress", 409, IN_PROGRESS),
    ("409-other", 409, "run_exists"),
    # Idempotency codes on a 422: a mismatch is typed as such; "in progress" stays a 422.
    ("422-mismatch", 422, MISMATCH),
    ("422-in-progress", 422, IN_PROGRESS),
    *((str(s), s, "unavailable") for s in (429, 500, 501, 502, 503, 504, 505, 599)),
)
RETRYABLE_STATUSES = tuple(
    s for s in STATUSES if s[1] in (429, 502, 503, 504) or s[2] == IN_PROGRESS
)
DURATIONS = (0.0, 0.0, 0.25, 3.0, 45.0)


@dataclass(frozen=True)
class Outcome:
    """What happens to one attempt: a transport failure, or a status with its headers."""

    symbol: str
    failure: FailureKind | None = None
    status: int = 200
    code: str | None = None
    retry_after: RetryAfter = ABSENT
    takes: float = 0.0

    @property
    def success(self) -> bool:
        return self.failure is None and 200 <= self.status < 300


PRE_SEND = frozenset({FailureKind.CONNECT, FailureKind.CONNECT_TIMEOUT})
# A proxy's refusal: nothing reached the platform, and without a 502-504 not retried.
UNREACHED = PRE_SEND | {FailureKind.TLS, FailureKind.PROXY}
RETRYABLE_KINDS = PRE_SEND | {FailureKind.TIMEOUT, FailureKind.NETWORK, FailureKind.PROTOCOL}
TRANSPORT_ERRORS: dict[FailureKind, type[KneoError]] = {
    FailureKind.CONNECT: KneoNetworkError,
    FailureKind.CONNECT_TIMEOUT: KneoTimeoutError,
    FailureKind.TLS: KneoTLSError,
    FailureKind.TIMEOUT: KneoTimeoutError,
    FailureKind.NETWORK: KneoNetworkError,
    FailureKind.PROTOCOL: KneoProtocolError,
    FailureKind.TOO_LARGE: KneoResponseTooLargeError,
    FailureKind.PROXY: KneoProxyError,
}
STATUS_ERRORS: dict[int, type[KneoError]] = {
    400: KneoInvalidRequestError,
    401: KneoAuthError,
    403: KneoPermissionError,
    404: KneoNotFoundError,
    407: KneoProxyError,
    422: KneoInvalidRequestError,
    429: KneoRateLimited,
    503: KneoServiceUnavailableError,
}


def status_error(status: int, code: str | None, *, keyed: bool) -> tuple[type[KneoError], bool]:
    """The documented error class for a status, and whether the class must match exactly."""
    if status == 409 and code == IN_PROGRESS:
        return KneoIdempotencyInProgressError, True
    if status in (409, 422) and code == MISMATCH:
        return KneoIdempotencyMismatchError, True
    if status == 409:
        return (KneoIdempotencyMismatchError if keyed else KneoConflictError), True
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status], False
    if 300 <= status < 400:
        return KneoUnexpectedRedirectError, False
    if 500 <= status < 600:
        return KneoServerError, False
    return KneoError, False


def transport_outcome(kind: FailureKind, takes: float) -> Outcome:
    return Outcome(f"transport:{kind.value}", failure=kind, takes=takes)


def status_outcome(
    row: tuple[str, int, str | None], retry_after: RetryAfter, takes: float
) -> Outcome:
    symbol, status, code = row
    return Outcome(symbol, status=status, code=code, retry_after=retry_after, takes=takes)


def outcomes(kinds: list[FailureKind], statuses: list[tuple[str, int, str | None]]) -> Any:
    takes = st.sampled_from(DURATIONS)
    return st.builds(transport_outcome, st.sampled_from(kinds), takes) | st.builds(
        status_outcome, st.sampled_from(statuses), st.sampled_from(RETRY_AFTERS), takes
    )


# Two draws in three are retryable outcomes, so schedules often run several attempts.
RETRYABLE_OUTCOMES = outcomes(
    sorted(RETRYABLE_KINDS, key=lambda kind: kind.value), list(RETRYABLE_STATUSES)
)
OUTCOMES = st.one_of(
    RETRYABLE_OUTCOMES, RETRYABLE_OUTCOMES, outcomes(list(FailureKind), list(STATUSES))
)


# -- cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One logical call and everything that happens to it."""

    variant: Variant
    policy: RetryPolicy
    timeout: float
    deadline: float | None
    schedule: tuple[Outcome, ...]
    seed: int
    cancel_at: int | None = None
    oversleep: float = 0.0


@dataclass(frozen=True)
class Budget:
    rules: RetryBudget
    level: int


POLICIES = st.builds(
    RetryPolicy,
    # integers() favours its lower bound; the first branch keeps retry chains common.
    max_attempts=st.integers(2, 6) | st.integers(1, 6),
    base_delay=st.sampled_from([0.0, 0.01, 0.2, 1.0, 5.0]),
    max_delay=st.sampled_from([0.0, 0.5, 2.0, 30.0]),
    jitter=st.sampled_from([0.0, 0.1, 0.5, 1.0]) | st.floats(0.0, 1.0),
    max_retry_after=st.sampled_from([3.0, 60.0]),
)


def make_case(
    variant: Variant,
    policy: RetryPolicy,
    timeout: float,
    deadline: float | None,
    schedule: list[Outcome],
    seed: int,
    cancel_at: int | None,
    oversleep: float,
) -> Case:
    if variant is Variant.POST_NO_RETRIES:
        policy = replace(policy, max_attempts=1)
    return Case(variant, policy, timeout, deadline, tuple(schedule), seed, cancel_at, oversleep)


CASES = st.builds(
    make_case,
    st.sampled_from(Variant),
    POLICIES,
    st.sampled_from([1.0, 30.0]),
    st.none() | st.floats(0.1, 600.0) | st.sampled_from([1.0, 10.0, 120.0]),
    st.lists(OUTCOMES, min_size=1, max_size=8),
    st.integers(0, 2**32 - 1),
    # The caller is cancelled (``abandon()``) at this event of the call, if it is still on.
    st.none() | st.none() | st.integers(0, 12),
    st.just(0.0) | st.just(0.0) | st.sampled_from([0.001, 0.5, 5.0]),
)


def make_budget(rules: RetryBudget, percent: int) -> Budget:
    return Budget(rules, rules.capacity * percent // 100)


BUDGETS = st.none() | st.builds(
    make_budget,
    st.builds(
        RetryBudget,
        capacity=st.sampled_from([0, 5, 20, 500]),
        retry_cost=st.integers(0, 10),
        timeout_retry_cost=st.integers(0, 20),
        success_refund=st.integers(0, 3),
    ),
    # The starting level, in percent of capacity: often full, else anywhere.
    st.just(100) | st.integers(0, 100),
)


def make_bucket(budget: Budget | None) -> TokenBucket | None:
    if budget is None:
        return None
    bucket = TokenBucket(budget.rules)
    bucket.available = budget.level
    return bucket


# -- servers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """What the server did with one attempt.

    Attributes:
        outcome: What the client gets (a ledger may replace the scheduled one).
        headers: The response headers.
        date_target: For an HTTP-date ``Retry-After``, the POSIX second it names.
        reached: Whether the request reached the server.
    """

    outcome: Outcome
    headers: dict[str, str]
    date_target: int | None
    reached: bool

    def body(self) -> bytes:
        if self.outcome.success:
            return b"{}"
        error = {"code": self.outcome.code or "failed", "message": self.outcome.symbol}
        return msgspec.json.encode({"error": error})


def serve(outcome: Outcome, wall_now: float, *, replayed: bool = False) -> Served:
    headers: dict[str, str] = {}
    target: int | None = None
    retry_after = outcome.retry_after
    if outcome.failure is None:
        if retry_after.label == "date":
            target = math.floor(wall_now) + retry_after.offset
            headers["Retry-After"] = http_date(target, retry_after.form)
        elif retry_after.value is not None:
            headers["Retry-After"] = retry_after.value
        if replayed:
            headers["Idempotent-Replayed"] = "true"
    return Served(outcome, headers, target, outcome.failure not in UNREACHED)


class Server:
    """Answers attempt ``index`` of logical call ``call_id`` from that call's schedule."""

    def __init__(self) -> None:
        self.schedules: dict[int, tuple[Outcome, ...]] = {}

    def scheduled(self, call_id: int, index: int) -> Outcome:
        schedule = self.schedules[call_id]
        return schedule[min(index, len(schedule) - 1)]

    def answer(self, call_id: int, index: int, request: Request, wall_now: float) -> Served:
        return serve(self.scheduled(call_id, index), wall_now)


CREATED = Outcome("201 (stored)", status=201)
# Outcomes after which the server has run the operation (a gateway error hides the answer).
EXECUTED_STATUSES = frozenset({500, 502, 504})


class LedgerServer(Server):
    """A server that runs a keyed POST at most once per key and replays the stored answer.

    An attempt that reached it executes the operation unless its key was seen before, even
    when the answer is then lost in transport; a key reused with another payload gets a 409
    mismatch. ``executions`` counts runs of the operation per logical call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, tuple[bytes, Outcome]] = {}
        self.executions: Counter[int] = Counter()

    def answer(self, call_id: int, index: int, request: Request, wall_now: float) -> Served:
        outcome = self.scheduled(call_id, index)
        if outcome.failure in UNREACHED:
            return serve(outcome, wall_now)
        key = request.header(IDEMPOTENCY_KEY_HEADER)
        if key is not None and key in self.stored:
            payload, answer = self.stored[key]
            if outcome.failure is not None:
                return serve(outcome, wall_now)
            if payload != request.body:
                return serve(Outcome("409-mismatch", status=409, code=MISMATCH), wall_now)
            return serve(replace(answer, takes=outcome.takes), wall_now, replayed=True)
        executes = (
            outcome.failure is not None or outcome.success or outcome.status in EXECUTED_STATUSES
        )
        if executes:
            self.executions[call_id] += 1
            if key is not None:
                kept = outcome if outcome.success or outcome.status == 500 else CREATED
                self.stored[key] = (request.body, replace(kept, failure=None))
        return serve(outcome, wall_now)


# -- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorSpec:
    """What the error ending a call must look like (``exhausted`` None: either)."""

    cls: type[KneoError]
    exact: bool
    status: int | None
    retry_after: float | None
    exhausted: bool | None = False


@dataclass(frozen=True)
class Expect:
    """What the next action must be.

    ``kind`` is "send", "finish", "fail", "retry" (a sleep within [lo, hi], or exactly
    ``exact``) or "either" (the drawn delay may or may not fit before the deadline).
    """

    kind: str
    error: ErrorSpec | None = None
    lo: float = 0.0
    hi: float = 0.0
    exact: float | None = None
    cost: int = 0


SEND = Expect("send")
FINISH = Expect("finish")


@dataclass
class Level:
    """The model's idea of the shared bucket's level (None: no budget)."""

    value: int | None
    capacity: int = 0

    def add(self, amount: int) -> None:
        if self.value is not None:
            self.value = min(self.value + amount, self.capacity)


@dataclass
class CallRun:
    """One logical call, stepped one event at a time and checked against the model."""

    call_id: int
    case: Case
    op: Operation[dict[str, Any]]
    clock: FakeClock
    bucket: TokenBucket | None
    level: Level
    server: Server
    call: Call[dict[str, Any]] = field(init=False)
    start: float = field(init=False)
    ready_at: float = field(init=False)
    expect: Expect = SEND
    events: int = 0
    attempts: int = 0
    last_cost: int = 0
    in_flight: tuple[Send, Served] | None = None
    reached: list[bool] = field(default_factory=list)
    decisions: list[tuple[object, ...]] = field(default_factory=list)
    outcome: Finished[dict[str, Any]] | Failed | None = None

    def __post_init__(self) -> None:
        self.start = self.clock.now
        self.ready_at = self.clock.now
        options = CallOptions(deadline=self.case.deadline, retry_policy=self.case.policy)
        self.call = Call(
            self.op,
            make_config(timeout=self.case.timeout),
            clock=self.clock.clock(),
            options=options,
            budget=self.bucket,
            rng=random.Random(self.case.seed),
        )

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def remaining(self) -> float | None:
        if self.case.deadline is None:
            return None
        return (self.start + self.case.deadline) - self.clock.now

    def wall(self) -> float:
        return self.clock.now + self.clock.wall_offset

    def step(self) -> None:
        """Handle this call's next event at ``clock.now``."""
        self.events += 1
        if self.events - 1 == self.case.cancel_at:
            self._abandon()
        elif self.in_flight is not None:
            self._receive(*self.in_flight)
            self.in_flight = None
        else:
            action = self.call.next_action()
            if isinstance(action, Send):
                self._on_send(action)
            elif isinstance(action, Sleep):
                self._on_sleep(action)
            elif isinstance(action, Finished):
                self._on_finished(action)
            else:
                self._on_failed(action)
        self._check_level()

    def _check_level(self) -> None:
        if self.bucket is None:
            return
        assert 0 <= self.bucket.available <= self.bucket.budget.capacity
        assert self.bucket.available == self.level.value

    # -- actions --------------------------------------------------------------------

    def _abandon(self) -> None:
        """The caller is cancelled: a retry paid for but not sent gets its tokens back."""
        self.decisions.append(("abandon", self.attempts))
        self.call.abandon()
        if self.expect.kind in ("finish", "fail"):
            return  # the call had already ended: nothing changes
        if self.in_flight is not None:
            self.in_flight = None  # sent: its tokens stay spent, its answer never arrives
        elif self.attempts > 0:
            self.level.add(self.last_cost)  # after a retry was decided, before it was sent
        self.expect = Expect("abandoned")

    def _on_send(self, send: Send) -> None:
        assert self.expect.kind == "send", (self.expect, send)
        remaining = self.remaining()
        assert remaining is None or remaining > 0
        if not self.case.variant.safe and any(self.reached):
            raise AssertionError("a non-idempotent request was repeated after reaching the server")
        self.attempts += 1
        assert self.attempts <= self.case.policy.max_attempts
        request = send.request
        assert send.attempt == self.attempts
        assert request.header(ATTEMPT_HEADER) == str(self.attempts)
        assert request.header(REQUEST_ID_HEADER) == self.call.request_id
        assert request.header(IDEMPOTENCY_KEY_HEADER) == self.op.idempotency_key
        assert (self.op.idempotency_key is not None) is self.case.variant.keyed
        if self.case.variant is Variant.POST_USER_KEY:
            assert request.header(IDEMPOTENCY_KEY_HEADER) == USER_KEY
        expected_timeout = (
            self.case.timeout if remaining is None else min(self.case.timeout, remaining)
        )
        assert send.timeout == expected_timeout
        self.decisions.append(("send", send.attempt, send.timeout))
        served = self.server.answer(self.call_id, self.attempts - 1, request, self.wall())
        self.reached.append(served.reached)
        self.in_flight = (send, served)
        self.ready_at = self.clock.now + min(served.outcome.takes, send.timeout)

    def _receive(self, send: Send, served: Served) -> None:
        outcome = served.outcome
        if outcome.failure is not None:
            self.call.receive_failure(outcome.failure, "scheduled")
        else:
            headers = list(served.headers.items())
            self.call.receive_response(outcome.status, headers, served.body())
        expect = self._decide(served)
        state = self.call.state
        # The call settles its budget when it decides, so the model does too (other calls
        # may act before this one asks for its next action).
        if expect.kind == "finish":
            assert state is CallState.FINISHED
            if self.bucket is not None:
                refund = self.bucket.budget.success_refund if self.attempts == 1 else self.last_cost
                self.level.add(refund)
        elif expect.kind == "fail":
            assert state is CallState.FAILED
        elif state is CallState.FAILED:
            # The drawn delay did not fit before the deadline.
            assert expect.kind == "either"
            expect = Expect("fail", expect.error)
        else:
            assert state is CallState.BACKING_OFF
            if self.level.value is not None:
                assert self.level.value >= expect.cost
                self.level.value -= expect.cost
            self.last_cost = expect.cost
        self.expect = expect

    def _on_sleep(self, sleep: Sleep) -> None:
        expect = self.expect
        assert expect.kind in ("retry", "either"), (expect, sleep)
        if expect.exact is not None:
            assert sleep.seconds == expect.exact
        else:
            tolerance = 1e-9 * max(expect.hi, 1.0)
            assert expect.lo - tolerance <= sleep.seconds <= expect.hi + tolerance
        remaining = self.remaining()
        assert remaining is None or sleep.seconds < remaining, "a sleep would cross the deadline"
        self.decisions.append(("sleep", sleep.seconds))
        self.expect = SEND
        # A busy driver may oversleep; the call must then not start an attempt late.
        self.ready_at = self.clock.now + sleep.seconds + self.case.oversleep

    def _on_finished(self, finished: Finished[dict[str, Any]]) -> None:
        assert self.expect.kind == "finish", (self.expect, finished)
        assert finished.attempts == self.attempts
        assert finished.idempotency_key == self.op.idempotency_key
        assert finished.request_id == self.call.request_id
        assert finished.replayed is (finished.response.header("idempotent-replayed") == "true")
        self._end(finished, ("finished", finished.attempts))
        event("outcome: Finished")

    def _on_failed(self, failed: Failed) -> None:
        error = failed.error
        assert isinstance(error, KneoError)
        if self.expect.kind == "abandoned":
            assert type(error) is KneoError
            assert error.retry_budget_exhausted is False
            assert error.request_id == self.call.request_id
        elif self.expect.kind == "send":
            # The driver overslept past the deadline: the paid-for retry is never sent.
            remaining = self.remaining()
            assert remaining is not None
            assert remaining <= 0
            assert isinstance(error, KneoTimeoutError)
            assert error.kind == "deadline"
            self.level.add(self.last_cost)
            event("deadline passed during a sleep")
        else:
            assert self.expect.kind == "fail", (self.expect, error)
            assert self.expect.error is not None
            self._check_error(error, self.expect.error)
        assert error.attempts == self.attempts
        assert error.idempotency_key == self.op.idempotency_key
        assert error.elapsed == self.clock.now - self.start
        self._end(
            failed,
            (
                "failed",
                type(error).__name__,
                error.attempts,
                error.retry_after,
                error.retry_budget_exhausted,
            ),
        )
        event(f"outcome: {type(error).__name__}")

    def _check_error(self, error: KneoError, spec: ErrorSpec) -> None:
        assert isinstance(error, spec.cls), (error, spec)
        if spec.exact:
            assert type(error) is spec.cls, (error, spec)
        assert error.status == spec.status
        assert error.retry_after == spec.retry_after
        assert error.request_id == self.call.request_id
        if spec.exhausted is not None:
            assert error.retry_budget_exhausted is spec.exhausted

    def _end(
        self, outcome: Finished[dict[str, Any]] | Failed, decision: tuple[object, ...]
    ) -> None:
        self.decisions.append(decision)
        self.outcome = outcome
        assert self.call.next_action() is outcome
        event(f"attempts: {self.attempts}")

    # -- the rules --------------------------------------------------------------------

    def _expected_retry_after(self, served: Served) -> float | None:
        outcome = served.outcome
        if outcome.failure is not None or outcome.status not in (409, 429, 503):
            return None
        if served.date_target is not None:
            return max(float(served.date_target) - self.wall(), 0.0)
        return outcome.retry_after.seconds

    def _decide(self, served: Served) -> Expect:
        outcome, variant, policy = served.outcome, self.case.variant, self.case.policy
        if outcome.success:
            return FINISH
        retry_after = self._expected_retry_after(served)
        if outcome.failure is not None:
            spec = ErrorSpec(TRANSPORT_ERRORS[outcome.failure], False, None, None)
            retryable = outcome.failure in RETRYABLE_KINDS
            safe = outcome.failure in PRE_SEND or variant.safe
            cost = self.bucket.budget.timeout_retry_cost if self.bucket else 0
        else:
            cls, exact = status_error(outcome.status, outcome.code, keyed=variant.keyed)
            spec = ErrorSpec(cls, exact, outcome.status, retry_after)
            retryable = outcome.status in (429, 502, 503, 504) or (
                outcome.status == 409 and outcome.code == IN_PROGRESS
            )
            safe = variant.safe
            cost = self.bucket.budget.retry_cost if self.bucket else 0
        fail = Expect("fail", spec)
        if not (retryable and safe) or self.attempts >= policy.max_attempts:
            return fail
        remaining = self.remaining()
        if retry_after is not None and (
            retry_after > policy.max_retry_after
            or (remaining is not None and retry_after >= remaining)
        ):
            return fail
        if retry_after is not None:
            lo = hi = retry_after
        else:
            delay = min(policy.base_delay * 2.0 ** (self.attempts - 1), policy.max_delay)
            lo, hi = delay * (1 - policy.jitter), delay * (1 + policy.jitter)
        tolerance = 1e-9 * max(hi, 1.0)
        if remaining is not None and lo - tolerance >= remaining:
            return fail
        either = retry_after is None and remaining is not None and hi + tolerance >= remaining
        if self.level.value is not None and self.level.value < cost:
            return Expect("fail", replace(spec, exhausted=None if either else True))
        return Expect("either" if either else "retry", spec, lo, hi, retry_after, cost)


def run_calls(
    cases_: list[Case],
    budget: Budget | None,
    server: Server,
    *,
    pick: Callable[[list[CallRun]], CallRun] | None = None,
    bodies: list[dict[str, Any] | None] | None = None,
) -> list[CallRun]:
    """Run logical calls concurrently on one clock, bucket and server, event by event."""
    clock = FakeClock()
    bucket = make_bucket(budget)
    level = Level(
        None if budget is None else budget.level, 0 if budget is None else budget.rules.capacity
    )
    runs = []
    for call_id, case in enumerate(cases_):
        server.schedules[call_id] = case.schedule
        body = bodies[call_id] if bodies and case.variant.method == "POST" else None
        run = CallRun(call_id, case, case.variant.operation(body), clock, bucket, level, server)
        runs.append(run)
    for _ in range(200):
        pending = [run for run in runs if not run.done]
        if not pending:
            return runs
        soonest = min(run.ready_at for run in pending)
        tied = [run for run in pending if run.ready_at == soonest]
        chosen = tied[0] if pick is None or len(tied) == 1 else pick(tied)
        clock.now = max(clock.now, chosen.ready_at)
        chosen.step()
    raise AssertionError("calls did not end within 200 events")


def check_ledger(runs: list[CallRun], server: LedgerServer) -> None:
    for run in runs:
        if not run.case.variant.idempotent:
            assert server.executions[run.call_id] <= 1, "one logical call executed twice"
        if run.case.variant is Variant.POST_NO_RETRIES:
            assert run.attempts <= 1
        if not run.case.variant.safe and any(run.reached[:-1]):
            raise AssertionError("a non-idempotent call was retried after reaching the server")


# -- properties -----------------------------------------------------------------------


@PROPERTY
@given(case=CASES, budget=BUDGETS)
def test_call_obeys_every_rule_on_random_schedules(case: Case, budget: Budget | None) -> None:
    """Every step matches the model (``CallRun``), twice with the same decisions, and the
    ledger server never executes the call twice."""
    (run,) = run_calls([case], budget, Server())
    (again,) = run_calls([case], budget, Server())
    ledger = LedgerServer()
    check_ledger(run_calls([case], budget, ledger), ledger)

    assert run.done
    assert again.decisions == run.decisions
    event(f"variant: {case.variant.name}")
    for outcome in case.schedule[: run.attempts]:
        event(f"symbol: {outcome.symbol}")
        SYMBOLS[outcome.symbol] += 1
    event(f"ledger executions: {ledger.executions[0]}")
    TALLY["schedules"] += 1
    if not case.variant.idempotent:  # a repeated GET or PUT is harmless by definition
        TALLY["non-idempotent calls"] += 1
        TALLY["duplicate executions"] += max(ledger.executions[0] - 1, 0)
    TALLY["max attempts"] = max(TALLY["max attempts"], run.attempts)
    ending = run.outcome
    assert ending is not None
    ENDINGS["Finished" if isinstance(ending, Finished) else type(ending.error).__name__] += 1


# What the schedules covered, reported once the module's tests have run (plan T01, T02).
TALLY: Counter[str] = Counter()
SYMBOLS: Counter[str] = Counter()
ENDINGS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_schedule_figures() -> Iterator[None]:
    yield
    if not TALLY["schedules"]:
        return
    from tests.support import figures

    rare = min(SYMBOLS.values())
    shown = ", ".join(f"{name} {count}" for name, count in ENDINGS.most_common())
    figures._FIGURES.append(
        (
            "T01",
            f"{TALLY['schedules']:,} fault schedules (derandomized), 0 invariant violations; "
            f"max attempts {TALLY['max attempts']}; {len(SYMBOLS)} outcome symbols each met "
            f">= {rare} times; terminal outcomes: {shown}",
        )
    )
    figures._FIGURES.append(
        (
            "T02",
            f"{TALLY['schedules']:,} schedules against the ledger server, "
            f"{TALLY['non-idempotent calls']:,} of them POST or PATCH: "
            f"{TALLY['duplicate executions']} duplicate executions",
        )
    )


@INTERLEAVED
@given(
    calls=st.lists(CASES, min_size=2, max_size=4),
    budget=BUDGETS,
    same_payload=st.lists(st.booleans(), min_size=4, max_size=4),
    order_seed=st.integers(0, 2**32 - 1),
)
def test_interleaved_calls_share_budget_and_ledger_safely(
    calls: list[Case], budget: Budget | None, same_payload: list[bool], order_seed: int
) -> None:
    """2-4 calls at once on one clock, bucket and ledger server, simultaneous events in a
    random order; callers' keys are reused across calls, with the same payload or another
    one (which the server answers with a 409 mismatch)."""
    server = LedgerServer()
    bodies: list[dict[str, Any] | None] = [
        {"n": 0 if same else index} for index, same in enumerate(same_payload[: len(calls)])
    ]
    order = random.Random(order_seed)

    def pick(tied: list[CallRun]) -> CallRun:
        return order.choice(tied)

    runs = run_calls(calls, budget, server, pick=pick, bodies=bodies)

    check_ledger(runs, server)
    assert all(run.done for run in runs)


def test_outcome_alphabet_covers_the_plan() -> None:
    symbols = {row[0] for row in STATUSES}

    assert {"409-mismatch", "409-in-progress", "409-other", "429", "503"} <= symbols
    assert {ra.label for ra in RETRY_AFTERS} == {"absent", "small", "large", "invalid", "date"}
    assert len(Variant) == 9
    assert RETRYABLE_STATUSES
    assert EXAMPLES >= 1


# -- backoff bounds (T04) -------------------------------------------------------------

DELAY_POLICIES = [
    RetryPolicy(),
    RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=1.0),
    RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.5),
    RetryPolicy(base_delay=2.0, max_delay=10.0, jitter=0.0),
]
DRAWS = 10_000


@pytest.mark.parametrize("policy", DELAY_POLICIES, ids=repr)
def test_delay_for_stays_within_jitter_bounds(policy: RetryPolicy) -> None:
    rng = random.Random(2024)
    assert DRAWS > 0
    for attempt in range(1, 7):
        delays = [policy.delay_for(attempt, rng=rng) for _ in range(DRAWS)]
        if attempt == 1:
            assert set(delays) == {0.0}
            continue
        d = min(policy.base_delay * 2.0 ** (attempt - 2), policy.max_delay)
        lo, hi = d * (1 - policy.jitter), d * (1 + policy.jitter)
        tolerance = 1e-12 * max(d, 1.0)
        assert all(lo - tolerance <= delay <= hi + tolerance for delay in delays)
        assert max(delays) <= policy.max_delay * (1 + policy.jitter) + tolerance
        if policy.jitter == 0:
            assert set(delays) == {d}
            continue
        # Uniform within the interval: every tenth holds 10 % of the draws, +/-20 %.
        bins = Counter(min(int((delay - lo) / (hi - lo) * 10), 9) for delay in delays)
        assert all(0.8 * DRAWS / 10 <= bins[i] <= 1.2 * DRAWS / 10 for i in range(10)), bins


@PROPERTY
@given(
    policy=POLICIES,
    attempt=st.integers(-2, 200),
    retry_after=st.none() | st.floats(0.0, 1e9),
    seed=st.integers(0, 2**32 - 1),
)
def test_delay_for_never_undercuts_retry_after_or_leaves_bounds(
    policy: RetryPolicy, attempt: int, retry_after: float | None, seed: int
) -> None:
    delay = policy.delay_for(attempt, retry_after, rng=random.Random(seed))

    if retry_after is not None:
        assert delay == retry_after
    elif attempt <= 1:
        assert delay == 0.0
    else:
        d = min(policy.base_delay * 2.0 ** min(attempt - 2, 64), policy.max_delay)
        tolerance = 1e-12 * max(d, 1.0)
        assert d * (1 - policy.jitter) - tolerance <= delay <= d * (1 + policy.jitter) + tolerance
