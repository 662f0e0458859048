"""Drive a kneo_proto state machine against a plain function that plays the server.

No event loop, no sockets: time is a ``FakeClock`` that only moves when the machine sleeps
(or when the server says an exchange took time), so every test reads as a script.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, TypeVar

import msgspec

from kneo_proto import (
    Call,
    CallOptions,
    ClientConfig,
    Clock,
    Failed,
    FailureKind,
    Finished,
    KneoError,
    Operation,
    Parts,
    Request,
    RetryPolicy,
    Send,
    Sleep,
    TokenBucket,
)
from kneo_proto._operation import Route

R = TypeVar("R")

BASE_URL = "https://kneo.test"
API_KEY = "kneo_test_key_0123456789"


@dataclass
class FakeClock:
    """A monotonic clock that moves only when told to, and a wall clock offset from it."""

    now: float = 1000.0
    wall_offset: float = 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.now, wall=lambda: self.now + self.wall_offset)


@dataclass(frozen=True)
class Reply:
    """What the fake server does with one attempt: a response, or a transport failure."""

    status: int = 200
    body: bytes = b"{}"
    headers: Mapping[str, str] = field(default_factory=dict)
    failure: FailureKind | None = None
    takes: float = 0.0


def json_reply(status: int, payload: Any, **headers: str) -> Reply:
    return Reply(status=status, body=msgspec.json.encode(payload), headers=headers)


def error_reply(status: int, code: str, message: str = "boom", **headers: str) -> Reply:
    return json_reply(status, {"error": {"code": code, "message": message}}, **headers)


def failure(kind: FailureKind, takes: float = 0.0) -> Reply:
    return Reply(failure=kind, takes=takes)


@dataclass
class Trace:
    """Everything a driven call did."""

    requests: list[Request] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    outcome: Finished[Any] | Failed | None = None
    call: Call[Any] | None = None
    send_remaining: list[float | None] = field(default_factory=list)
    sleep_remaining: list[float | None] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)

    @property
    def error(self) -> KneoError:
        assert isinstance(self.outcome, Failed), self.outcome
        return self.outcome.error

    @property
    def finished(self) -> Finished[Any]:
        assert isinstance(self.outcome, Finished), self.outcome
        return self.outcome


def make_config(**overrides: Any) -> ClientConfig:
    settings: dict[str, Any] = {"base_url": BASE_URL, "api_key": API_KEY}
    settings.update(overrides)
    return ClientConfig(**settings)


def drive(
    operation: Operation[R],
    server: Callable[[Request], Reply],
    *,
    clock: FakeClock | None = None,
    config: ClientConfig | None = None,
    options: CallOptions | None = None,
    policy: RetryPolicy | None = None,
    budget: TokenBucket | None = None,
    seed: int = 7,
    max_steps: int = 200,
    oversleep: float = 0.0,
) -> Trace:
    """Run ``operation`` to its end against ``server``; return what happened.

    ``oversleep`` makes every sleep last that much longer than asked, as a busy event loop
    does. ``Trace.levels`` records the budget's level after every step when there is one.
    """
    clock = clock or FakeClock()
    options = options or CallOptions()
    if policy is not None:
        options = options.merged(CallOptions(retry_policy=policy))
    call = Call(
        operation,
        config or make_config(),
        clock=clock.clock(),
        options=options,
        budget=budget,
        rng=random.Random(seed),
    )
    trace = Trace(call=call)
    for _ in range(max_steps):
        action = call.next_action()
        if budget is not None:
            trace.levels.append(budget.available)
        if isinstance(action, Finished | Failed):
            trace.outcome = action
            return trace
        if isinstance(action, Sleep):
            trace.sleeps.append(action.seconds)
            trace.sleep_remaining.append(call.remaining())
            clock.advance(action.seconds + oversleep)
            continue
        trace.send_remaining.append(call.remaining())
        trace.sends.append(action)
        trace.requests.append(action.request)
        reply = server(action.request)
        clock.advance(min(reply.takes, action.timeout))
        if reply.failure is not None:
            call.receive_failure(reply.failure, "scripted failure")
        else:
            call.receive_response(reply.status, list(reply.headers.items()), reply.body)
    raise AssertionError("call did not end within max_steps")


def scripted(*replies: Reply) -> Callable[[Request], Reply]:
    """A server that answers attempts with ``replies`` in order, then keeps the last."""
    queue = list(replies)

    def answer(request: Request) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


def operation(
    method: str,
    *,
    idempotency_key: str | None = None,
    keyed: bool = True,
    body: Mapping[str, Any] | None = None,
) -> Operation[dict[str, Any]]:
    """A ``method`` operation on ``/v1/x`` decoding any JSON object (a POST gets a key).

    ``keyed=False`` strips a POST's key, as a caller of a non-idempotent POST would see it.
    """
    route = Route(method, "/v1/x", dict, None if body is None else dict)
    op = route.bind(f"{method.lower()}_x", Parts(body=body, idempotency_key=idempotency_key))
    return op if keyed else dataclasses.replace(op, idempotency_key=None)


HTTP_DATE_FORMS = ("rfc1123", "rfc850", "asctime")


def http_date(posix: int, form: str = "rfc1123") -> str:
    """``posix`` (whole seconds) as an HTTP-date in one of RFC 9110's three forms."""
    if form == "rfc1123":
        return formatdate(posix, usegmt=True)
    when = datetime.fromtimestamp(posix, UTC)
    if form == "rfc850":
        return when.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    if form == "asctime":
        return when.ctime()
    raise ValueError(f"unknown HTTP-date form {form!r}")
