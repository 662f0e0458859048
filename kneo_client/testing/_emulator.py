"""The emulator: a stateful, in-memory Kneo Agent Platform behind one pure function.

``Emulator.handle(request) -> Reply`` answers one ``kneo_proto.Request``. Every request
goes through the same steps, in this order:

1. stamp it with its ``X-Request-ID`` (the client's, else a generated one) and count it;
2. bring every run up to the clock's ``now`` (runs advance with time, not with polls);
3. route it (404/405 for anything the spec does not declare);
4. let an injected fault answer instead, when one that does not execute the request matches;
5. authenticate (health probes excepted): 401 without a valid key, 403 for a read-only key
   on any POST or PUT;
6. for a POST with an ``Idempotency-Key``: replay, reject (mismatch, in progress) or execute
   and remember;
7. run the handler, then let an executing fault shape or break the answer;
8. hand the request and the reply to ``rewrite``, when set, and deliver what it returns.

Invariants: no I/O, no sleeping, no threads; time comes only from the injected clock, and
latency and broken connections are instructions in the ``Reply`` that a server carries
out. Unless ``rewrite`` changes it, every response carries ``X-Request-ID`` and a JSON body
that decodes into the spec's model for its status. One lock serialises requests, so a server
may call ``handle`` from several threads.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kneo_client.testing._clock import Clock, VirtualClock
from kneo_client.testing._counters import Counters
from kneo_client.testing._faults import Fault, Faults
from kneo_client.testing._idempotency import (
    IdempotencyStore,
    InProgress,
    Mismatch,
    Replay,
    Stored,
    fingerprint,
)
from kneo_client.testing._platform import Platform
from kneo_client.testing._reply import Delivery, Reply
from kneo_client.testing._routes import Route, find_route
from kneo_client.testing._runs import RunTiming
from kneo_client.testing._wire import (
    ApiError,
    Context,
    Outcome,
    Query,
    error_outcome,
    retry_after_value,
)
from kneo_proto import Request, Response
from kneo_proto.models import (
    ERROR_CODE_FORBIDDEN,
    ERROR_CODE_IDEMPOTENCY_KEY_IN_PROGRESS,
    ERROR_CODE_IDEMPOTENCY_KEY_MISMATCH,
    ERROR_CODE_UNAUTHORIZED,
    ERROR_CODE_UNAVAILABLE,
    ERROR_CODE_VALIDATION_ERROR,
)

__all__ = ["Emulator", "Rewrite", "RunTiming"]

Rewrite = Callable[[Request, Reply], Reply]
"""Called with each request and the emulator's reply; returns the reply to deliver."""

DEFAULT_IDEMPOTENCY_TTL = 86_400.0
MAX_IDEMPOTENCY_KEY = 256  # spec: parameters.IdempotencyKey maxLength
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPERATOR = "operator"
READ_ONLY = "read-only"
ANONYMOUS = "anonymous"
_CHALLENGE = (("WWW-Authenticate", 'Bearer realm="kneo"'),)  # RFC 9110 section 11.6.1


@dataclass(frozen=True, slots=True)
class _Principal:
    name: str
    read_only: bool


def _new_key(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def _presented_key(request: Request) -> str | None:
    authorization = request.header("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else ""
    return request.header("x-kneo-api-key")


class Emulator:
    """A stateful, in-memory Kneo Agent Platform that answers ``kneo_proto`` requests.

    Args:
        clock: Where time comes from; a ``VirtualClock`` (tests advance it) by default, or
            ``SystemClock()`` for real time.
        api_key: The full-access key (principal ``operator``); generated when None.
        read_only_key: A key that may read but gets 403 on every POST and PUT (principal
            ``read-only``); generated when None.
        idempotency_ttl: Seconds an Idempotency-Key is remembered after its first use.
        run_timing: How long runs wait in the queue and how long each step takes.
        rewrite: Called with every request and the emulator's ``Reply`` (faults applied);
            the ``Reply`` it returns is delivered instead. It stages what no platform answer
            holds but a gateway or network may deliver: a rewritten ``X-Request-ID``, a body
            without optional fields, a route the platform does not have yet. It runs under
            the emulator's lock, after the request was counted and executed.

    Attributes:
        api_key: The full-access key.
        read_only_key: The read-only key.
        clock: The emulator's clock.
        faults: The fault-injection rules (``emulator.faults.script(...)``).
        counters: Requests per path and operation, executions per idempotency key.
        rewrite: The rewrite hook (None: replies are delivered as the emulator made them);
            it may be set or replaced at any time.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        api_key: str | None = None,
        read_only_key: str | None = None,
        idempotency_ttl: float = DEFAULT_IDEMPOTENCY_TTL,
        run_timing: RunTiming | None = None,
        rewrite: Rewrite | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.api_key = api_key or _new_key("kneo-emu-")
        self.read_only_key = read_only_key or _new_key("kneo-emu-ro-")
        if self.api_key == self.read_only_key:
            raise ValueError("api_key and read_only_key must differ")
        self.faults = Faults()
        self.counters = Counters()
        self.rewrite = rewrite
        self._principals = {
            self.api_key: _Principal(OPERATOR, read_only=False),
            self.read_only_key: _Principal(READ_ONLY, read_only=True),
        }
        self._idempotency = IdempotencyStore(idempotency_ttl)
        self._platform = Platform(self.clock.now(), run_timing or RunTiming())
        self._lock = threading.RLock()

    @property
    def ready(self) -> bool:
        """Whether ``/v1/readyz`` reports ready; set False to make it answer 503."""
        return self._platform.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self._platform.ready = value

    def advance(self, seconds: float) -> None:
        """Move the emulator's virtual clock forward by ``seconds``.

        Raises:
            TypeError: if the clock cannot be advanced (a ``SystemClock``).
        """
        advance = getattr(self.clock, "advance", None)
        if not callable(advance):
            raise TypeError(f"{self.clock!r} cannot be advanced; use a VirtualClock")
        advance(seconds)

    def add_key(self, key: str, *, principal: str, read_only: bool = False) -> None:
        """Accept another API key, acting as ``principal`` (recorded in audit events)."""
        if not key:
            raise ValueError("an API key cannot be empty")
        with self._lock:
            self._principals[key] = _Principal(principal, read_only)

    def handle(self, request: Request) -> Reply:
        """Answer ``request``; the ``Reply`` says how a server must deliver the response."""
        with self._lock:
            reply = self._handle(request)
            return reply if self.rewrite is None else self.rewrite(request, reply)

    def __repr__(self) -> str:
        return f"Emulator(clock={self.clock!r}, runs={len(self._platform.runs)})"

    # -- the pipeline --

    def _handle(self, request: Request) -> Reply:
        now = self.clock.now()
        request_id = request.header("x-request-id") or self._platform.new_id("req")
        path, _, query = request.target.partition("?")
        self.counters.requests[path] += 1
        self._platform.advance(now)
        try:
            route, params = find_route(request.method, path)
        except ApiError as exc:
            return _reply(error_outcome(exc, request_id), request_id)
        self.counters.operations[route.operation_id] += 1
        fault = self.faults.take(request.method, path)
        if fault is not None and not fault.execute:
            return _faulted(fault, None, request_id)
        try:
            principal = self._authenticate(request, route)
            ctx = Context(
                request.method, path, params, Query(query), request.body, principal, request_id, now
            )
            outcome, key = self._execute(route, ctx, request.header("idempotency-key"))
        except ApiError as exc:
            outcome, key = error_outcome(exc, request_id), None
        if fault is None:
            return _reply(outcome, request_id)
        if key is not None and fault.delay > 0:
            # The answer is held back: until it is out, the key is "in progress".
            self._idempotency.hold(key, now + fault.delay)
        return _faulted(fault, outcome, request_id)

    def _authenticate(self, request: Request, route: Route) -> str:
        if route.public:
            return ANONYMOUS
        key = _presented_key(request)
        if not key:
            message = "missing API key: send Authorization: Bearer <key> or X-Kneo-Api-Key"
            raise ApiError(401, ERROR_CODE_UNAUTHORIZED, message, headers=_CHALLENGE)
        principal = self._principals.get(key)
        if principal is None:
            raise ApiError(401, ERROR_CODE_UNAUTHORIZED, "invalid API key", headers=_CHALLENGE)
        if principal.read_only and request.method in MUTATING_METHODS:
            message = f"the {principal.name} key cannot call {route.operation_id}"
            raise ApiError(403, ERROR_CODE_FORBIDDEN, message, {"principal": principal.name})
        return principal.name

    def _run(self, route: Route, ctx: Context) -> Outcome:
        try:
            return route.handler(self._platform, ctx)
        except ApiError as exc:
            return error_outcome(exc, ctx.request_id)

    def _execute(self, route: Route, ctx: Context, key: str | None) -> tuple[Outcome, str | None]:
        """Run the handler, through the idempotency store for a keyed POST."""
        if ctx.method != "POST" or key is None:
            return self._run(route, ctx), None
        if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            message = f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            raise ApiError(400, ERROR_CODE_VALIDATION_ERROR, message, {"header": "Idempotency-Key"})
        print_ = fingerprint(ctx.method, ctx.path, ctx.body)
        found = self._idempotency.look_up(key, print_, ctx.now)
        if isinstance(found, Mismatch):
            message = "this Idempotency-Key was used with a different request"
            raise ApiError(409, ERROR_CODE_IDEMPOTENCY_KEY_MISMATCH, message)
        if isinstance(found, InProgress):
            message = "the first request with this Idempotency-Key is still in progress"
            wait = (("Retry-After", retry_after_value(found.retry_after)),)
            raise ApiError(409, ERROR_CODE_IDEMPOTENCY_KEY_IN_PROGRESS, message, headers=wait)
        if isinstance(found, Replay):
            stored = found.stored
            return Outcome(
                stored.status, stored.body, (*stored.headers, ("Idempotent-Replayed", "true"))
            ), None
        self.counters.executions[key] += 1
        outcome = self._run(route, ctx)
        stored = Stored(print_, outcome.status, outcome.body, outcome.headers, ctx.now, ctx.now)
        self._idempotency.record(key, stored)
        return outcome, key


def _reply(
    outcome: Outcome,
    request_id: str,
    delay: float = 0.0,
    delivery: Delivery = Delivery.NORMAL,
) -> Reply:
    headers = (
        ("Content-Type", "application/json"),
        ("X-Request-ID", request_id),
        *outcome.headers,
    )
    return Reply(Response(outcome.status, headers, outcome.body), delay, delivery)


def _faulted(fault: Fault, outcome: Outcome | None, request_id: str) -> Reply:
    """Apply ``fault`` to the platform's ``outcome`` (None when it did not execute)."""
    if fault.status is not None:
        injected = ApiError(fault.status, fault.error_code, fault.message, headers=fault.headers)
        shaped = error_outcome(injected, request_id)
    elif outcome is not None:
        shaped = Outcome(outcome.status, outcome.body, (*outcome.headers, *fault.headers))
    else:  # a connection reset before any response: what it would have said is moot
        shaped = error_outcome(ApiError(503, ERROR_CODE_UNAVAILABLE, fault.message), request_id)
    if fault.body is not None:
        shaped = Outcome(shaped.status, fault.body, shaped.headers)
    return _reply(shaped, request_id, fault.delay, fault.delivery)
