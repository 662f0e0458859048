"""``Call``: one logical request through all its attempts, as an h11-style state machine.

A driver loops: ``next_action()`` says Send, Sleep, Finished or Failed; after a Send the
driver reports ``receive_response(...)`` or ``receive_failure(kind, detail)``.

Rules (the reference's and the reliability plan's decisions):
- Retries happen on ``RETRYABLE_STATUS_CODES``, on a 409 whose code says the original
  request is still in progress, and on transport failures, only when repeating is safe
  (``retry_is_safe``); never more than ``RetryPolicy.max_attempts`` attempts.
- Every attempt carries the same ``Idempotency-Key`` (POST only) and ``X-Request-ID``, and
  ``X-Kneo-Attempt`` counts attempts from 1.
- A valid ``Retry-After`` on 429/503 (and 409 in progress) is waited for exactly; one above
  ``max_retry_after`` or at/after the deadline fails the call at once with it set.
- No sleep is started that would end at or after the call's deadline; no attempt starts
  once the deadline has passed. Each attempt's timeout is clamped to the time remaining.
- A retry takes tokens from the client's retry budget when there is one; a denied retry
  fails the call with ``retry_budget_exhausted=True``. First attempts are never gated.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from typing import Generic, TypeVar

from kneo_proto._actions import Action, Failed, FailureKind, Finished, Phase, Send, Sleep
from kneo_proto._budget import TokenBucket
from kneo_proto._config import CallOptions, ClientConfig, Clock
from kneo_proto._errors import (
    KneoClientClosedError,
    KneoDecodeError,
    KneoError,
    KneoIdempotencyInProgressError,
    KneoNetworkError,
    KneoProtocolError,
    KneoResponseTooLargeError,
    KneoStateError,
    KneoTimeoutError,
    KneoTLSError,
    from_response,
    parse_error_body,
)
from kneo_proto._events import (
    AttemptFailed,
    AttemptStarted,
    CallFailed,
    CallFinished,
    CallInfo,
    CallStarted,
    Emitter,
    ResponseReceived,
    RetryScheduled,
)
from kneo_proto._explain import retry_after_note, seconds, transport_message, with_note
from kneo_proto._headers import check_header_name, check_header_value
from kneo_proto._http import (
    HeaderPairs,
    Request,
    Response,
    normalize_headers,
    returned_request_id,
)
from kneo_proto._idempotency import IDEMPOTENCY_KEY_HEADER
from kneo_proto._operation import Operation
from kneo_proto._proxy import explain_proxy_refusal, proxy_error
from kneo_proto._request_ids import (
    ATTEMPT_HEADER,
    REQUEST_ID_HEADER,
    generate_request_id,
    validate_request_id,
)
from kneo_proto._retry import (
    RETRY_AFTER_STATUS_CODES,
    parse_retry_after,
    retry_is_safe,
    status_is_retryable,
)

__all__ = ["Call", "CallState"]

R = TypeVar("R")

_TRANSPORT_ERRORS: dict[FailureKind, type[KneoError]] = {
    FailureKind.CONNECT: KneoNetworkError,
    FailureKind.CONNECT_TIMEOUT: KneoTimeoutError,
    FailureKind.TLS: KneoTLSError,
    FailureKind.TIMEOUT: KneoTimeoutError,
    FailureKind.NETWORK: KneoNetworkError,
    FailureKind.PROTOCOL: KneoProtocolError,
    FailureKind.TOO_LARGE: KneoResponseTooLargeError,
}
_TIMEOUT_KINDS = frozenset({FailureKind.CONNECT_TIMEOUT, FailureKind.TIMEOUT})
_DEADLINE_IN_BODY = "the call's deadline expired while the body was read"
# The versions a response may speak: h11 parses any single-digit version (``HTTP/0.5``,
# ``HTTP/2.0``) with HTTP/1.1 framing, and a peer that sends one is not speaking the
# protocol we do; ``HTTP/2`` is what an HTTP/2 connection (httpx's, h2) reports.
_HTTP_VERSIONS = frozenset({"HTTP/1.1", "HTTP/1.0", "HTTP/2", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2"})
_DETAIL_LIMIT = 200
# Headers the SDK alone sets: credentials, call identity, and message framing (a caller's
# Content-Length or Transfer-Encoding next to ours would let a request be split).
_SDK_OWNED_HEADERS = frozenset(
    {
        "authorization",
        "x-kneo-api-key",
        "idempotency-key",
        "x-request-id",
        "x-kneo-attempt",
        "content-length",
        "content-type",
        "transfer-encoding",
        "host",
        "connection",
    }
)
# What a caller's extra headers can never replace: the SDK-owned ones, and the fixed three.
_CALLER_CANNOT_SET = _SDK_OWNED_HEADERS | {"accept", "accept-encoding", "user-agent"}


def _misframed(response: Response) -> str | None:
    """Why ``response`` cannot be trusted as this call's answer, or None when nothing says so.

    Content-Length next to Transfer-Encoding: RFC 9112 section 6.3 says such a message
    "ought to be handled as an error" (a sign of response splitting or smuggling).

    A returned ``X-Request-ID`` other than the one sent is not a sign: gateways, ingress
    controllers and load balancers replace or set it (plan T12, revised). Bytes left behind
    on a reused connection are caught by framing and the driver's unread-bytes check.
    """
    length = chunked = False
    for name, _ in response.headers:  # one pass: this runs on every response
        lowered = name.lower()
        if lowered == "content-length":
            length = True
        elif lowered == "transfer-encoding":
            chunked = True
    if length and chunked:
        return "the response has both Content-Length and Transfer-Encoding"
    return None


class CallState(enum.Enum):
    """Where a ``Call`` is; ``ALLOWED`` says which driver method each state accepts."""

    READY = "ready"
    AWAITING_RESPONSE = "awaiting_response"
    BACKING_OFF = "backing_off"
    FINISHED = "finished"
    FAILED = "failed"


# The transition table: which driver method is legal in which state (h11's misuse check).
ALLOWED: dict[CallState, frozenset[str]] = {
    CallState.READY: frozenset({"next_action", "abandon"}),
    CallState.AWAITING_RESPONSE: frozenset({"receive_response", "receive_failure", "abandon"}),
    CallState.BACKING_OFF: frozenset({"next_action", "abandon"}),
    CallState.FINISHED: frozenset({"next_action", "abandon"}),
    CallState.FAILED: frozenset({"next_action", "abandon"}),
}


class Call(Generic[R]):
    """One logical request through all its attempts.

    Args:
        operation: What to call.
        config: The client's shared configuration.
        clock: The driver's clocks.
        options: Per-call overrides.
        budget: The client's retry budget, or None for unlimited retries.
        rng: Random generator for jitter (a private one by default).
        emit: Where the call's events go (``kneo_proto._events``); None builds none.
    """

    def __init__(
        self,
        operation: Operation[R],
        config: ClientConfig,
        *,
        clock: Clock,
        options: CallOptions | None = None,
        budget: TokenBucket | None = None,
        rng: random.Random | None = None,
        emit: Emitter | None = None,
    ) -> None:
        options = options or CallOptions()
        self.operation = operation
        self.state = CallState.READY
        self.attempts = 0
        self.idempotency_key = operation.idempotency_key
        if options.request_id is not None:
            validate_request_id(options.request_id)
        self.request_id = options.request_id or generate_request_id()
        self.policy = options.retry_policy or config.retry_policy
        self._config = config
        self._clock = clock
        self._budget = budget
        self._rng = rng
        self._timeout = options.timeout if options.timeout is not None else config.timeout
        self._started = clock.monotonic()
        self._deadline_seconds = options.deadline
        self._deadline = None if options.deadline is None else self._started + options.deadline
        self._attempt_timeout = self._timeout
        self._cut_by_deadline = False  # the last attempt's timeout was what the deadline left
        self._headers = self._base_headers(options)
        self._url = config.base_url + operation.target
        self._delay = 0.0
        self._held_tokens = 0
        self._unsent_tokens = 0
        self._outcome: Finished[R] | Failed | None = None
        self._emit = emit
        self._info: CallInfo | None = None  # built with the first event
        self._attempt_started = 0.0
        # What check_head or check_body stopped the last read for, and why.
        self._stopped: tuple[FailureKind, str] | None = None
        self.connection_reusable = True
        """False once a response showed its connection cannot be trusted with another request
        (misframed, a foreign HTTP version, bytes past the response): the driver closes that
        connection instead of returning it to its pool."""

    def __repr__(self) -> str:
        return (
            f"<Call {self.operation.method} {self.operation.path} state={self.state.name} "
            f"attempts={self.attempts} request_id={self.request_id}>"
        )

    # -- what the driver calls ---------------------------------------------------------

    def next_action(self) -> Action[R]:
        """Return what the driver must do next."""
        self._check("next_action")
        if self.state is CallState.READY:
            return self._send()
        if self.state is CallState.BACKING_OFF:
            self.state = CallState.READY
            return Sleep(self._delay)
        assert self._outcome is not None
        return self._outcome

    def receive_response(
        self,
        status: int,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        body: bytes,
        *,
        http_version: bytes | str = "HTTP/1.1",
        unread_bytes: bool = False,
    ) -> None:
        """Report the complete response to the last ``Send``, with the transport's facts.

        Args:
            status: The status code.
            headers: The header pairs, as received.
            body: The whole body.
            http_version: The version of the status line (``b"HTTP/1.1"`` or ``"HTTP/1.1"``);
                one kneo-client does not speak fails the attempt as a ``PROTOCOL`` failure.
            unread_bytes: True when the server sent bytes past this response on its
                connection: the response stands, the connection is not reused.
        """
        self._check("receive_response")
        if self.check_head(http_version) is not None:
            self.receive_failure(FailureKind.PROTOCOL)
            return
        response = Response(status, normalize_headers(headers), body)
        misframed = _misframed(response)
        if misframed is not None:
            self.connection_reusable = False
            self.receive_failure(FailureKind.PROTOCOL, misframed)
            return
        if unread_bytes:
            self.connection_reusable = False
        if self._emit is not None:
            self._emit.emit(
                ResponseReceived(
                    call=self._call_info(),
                    at=(now := self._clock.monotonic()),
                    attempt=self.attempts,
                    status=status,
                    duration=now - self._attempt_started,
                )
            )
        if 200 <= status < 300:
            self._finish_success(response)
            return
        retry_after = self._retry_after(response)
        error = from_response(
            response,
            idempotency_key=self.idempotency_key,
            request_id=self.request_id,
            method=self.operation.method,
            path=self.operation.path,
            attempts=self.attempts,
            retry_after=retry_after,
            secret=self._config.auth.secret if self._config.auth else None,
        )
        explain_proxy_refusal(error, self._config.proxy)  # a 407 names the proxy
        # Only a 409 says the original request is still running; a 422 with that code is not.
        in_progress = status == 409 and isinstance(error, KneoIdempotencyInProgressError)
        retryable = status_is_retryable(status) or in_progress
        if retryable and retry_is_safe(self.operation.method, keyed=self._keyed):
            self._retry_or_fail(error, status, retry_after)
        else:
            self._fail(error)

    def receive_failure(
        self, kind: FailureKind, detail: str = "", *, phase: Phase | None = None
    ) -> None:
        """Report that the last ``Send`` failed in transport with ``kind``.

        Args:
            kind: What kind of failure it was (decides the error class and the retry).
            detail: The transport library's text for it, for the message ("" after a read
                that ``check_body`` stopped: the core words it).
            phase: Where in the exchange it happened, when the library says, for the message.
        """
        self._check("receive_failure")
        if not detail and self._stopped is not None and kind is self._stopped[0]:
            detail = self._stopped[1]
        if self._emit is not None:
            self._emit.emit(
                AttemptFailed(
                    call=self._call_info(),
                    at=(now := self._clock.monotonic()),
                    attempt=self.attempts,
                    failure=kind,
                    phase=phase,
                    duration=now - self._attempt_started,
                )
            )
        if kind is FailureKind.PROXY or (kind is FailureKind.CONNECT and self._config.proxy):
            self._proxy_failure(kind, detail)
            return
        explained = transport_message(
            kind,
            origin=self._config.origin,
            detail=detail[:_DETAIL_LIMIT],
            phase=phase,
            timeout=self._attempt_timeout,
            deadline=self._deadline_seconds if self._deadline_ran_out(kind) else None,
        )
        error = _TRANSPORT_ERRORS[kind](
            f"{self.operation.method} {self.operation.path}: {explained} "
            f"(request_id={self.request_id})",
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
            method=self.operation.method,
            path=self.operation.path,
            attempts=self.attempts,
        )
        if isinstance(error, KneoNetworkError):
            error.kind = kind.value
        if retry_is_safe(self.operation.method, keyed=self._keyed, failure=kind):
            self._retry_or_fail(error, kind, None)
        else:
            self._fail(error)

    def abandon(self) -> None:
        """Give the call up (the caller was cancelled); return tokens of an unsent retry."""
        self._abandon(
            KneoError(
                "call abandoned",
                request_id=self.request_id,
                idempotency_key=self.idempotency_key,
                method=self.operation.method,
                path=self.operation.path,
            )
        )

    def close(self) -> KneoClientClosedError:
        """The client was closed under the call: give the call up and return the error to raise."""
        error = KneoClientClosedError(
            "the client was closed while the call ran",
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
            method=self.operation.method,
            path=self.operation.path,
        )
        self._abandon(error)
        error.sent_request_id = self.request_id
        error.attempts = self.attempts
        error.elapsed = self.elapsed
        return error

    def check_body(self, size: int) -> FailureKind | None:
        """Whether a driver reading the response body must stop after ``size`` bytes.

        Returns ``TOO_LARGE`` once the body is past ``max_response_bytes``, ``TIMEOUT`` once
        the call's deadline has passed, else None (read on). The driver then reports
        ``receive_failure(kind)``, and the core words why.
        """
        if size > self._config.max_response_bytes:
            self._stopped = (FailureKind.TOO_LARGE, "response body over the cap")
        elif self._deadline is not None and self._clock.monotonic() > self._deadline:
            self._stopped = (FailureKind.TIMEOUT, _DEADLINE_IN_BODY)
        return None if self._stopped is None else self._stopped[0]

    def check_head(self, http_version: bytes | str) -> FailureKind | None:
        """Whether a response whose status line has ``http_version`` may be read.

        Returns ``PROTOCOL`` (and marks the connection not reusable) for a version
        kneo-client does not speak; the driver then skips the body and reports
        ``receive_failure(kind)``. None: read the body.
        """
        if http_version in _HTTP_VERSIONS:
            return None
        self.connection_reusable = False
        shown = http_version.decode("latin-1") if isinstance(http_version, bytes) else http_version
        self._stopped = (
            FailureKind.PROTOCOL,
            f"unsupported HTTP version {shown!r} in the status line",
        )
        return FailureKind.PROTOCOL

    # -- properties ----------------------------------------------------------------------

    @property
    def pending_sleep(self) -> float | None:
        """The backoff the call will ask for next, when it is backing off; else None."""
        return self._delay if self.state is CallState.BACKING_OFF else None

    @property
    def elapsed(self) -> float:
        """Seconds since the call started."""
        return self._clock.monotonic() - self._started

    def remaining(self) -> float | None:
        """Seconds left before the call's deadline, or None when it has none."""
        if self._deadline is None:
            return None
        return self._deadline - self._clock.monotonic()

    @property
    def _keyed(self) -> bool:
        return self.idempotency_key is not None

    def _deadline_ran_out(self, kind: FailureKind) -> bool:
        """Whether the call's deadline, rather than the timeout alone, ended the attempt."""
        if kind not in _TIMEOUT_KINDS or self._deadline is None:
            return False
        remaining = self.remaining()
        return self._cut_by_deadline or (remaining is not None and remaining <= 0)

    # -- internals -----------------------------------------------------------------------

    def _abandon(self, error: KneoError) -> None:
        self._check("abandon")
        self._deposit(self._unsent_tokens)
        self._unsent_tokens = 0
        if self._outcome is None:
            self._fail(error)

    def _call_info(self) -> CallInfo:
        if self._info is None:
            operation = self.operation
            host, port = self._config.server
            self._info = CallInfo(
                operation=operation.name,
                method=operation.method,
                route=operation.template,
                url=self._url,
                server_address=host,
                server_port=port,
                request_id=self.request_id,
                idempotency_key=self.idempotency_key,
                max_attempts=self.policy.max_attempts,
            )
            assert self._emit is not None
            self._emit.emit(CallStarted(call=self._info, at=self._started))
        return self._info

    def _announce(self, headers: HeaderPairs, timeout: float) -> HeaderPairs:
        """Emit the attempt's start; return ``headers`` with what the observers add."""
        assert self._emit is not None
        self._attempt_started = now = self._clock.monotonic()
        event = AttemptStarted(
            call=self._call_info(), at=now, attempt=self.attempts, timeout=timeout
        )
        self._emit.emit(event)
        added = [
            (name, value)
            for name, value in self._emit.headers_for(event)
            if name.lower() not in _CALLER_CANNOT_SET and _valid_header(name, value)
        ]
        return (*headers, *added) if added else headers

    def _check(self, method: str) -> None:
        if method not in ALLOWED[self.state]:
            raise KneoStateError(f"Call.{method}() is not allowed in state {self.state.name}")

    def _base_headers(self, options: CallOptions) -> HeaderPairs:
        headers = [
            ("Accept", "application/json"),
            ("Accept-Encoding", "identity"),
            ("User-Agent", self._config.user_agent),
        ]
        if options.headers:
            headers += [
                (k, v) for k, v in options.headers.items() if k.lower() not in _CALLER_CANNOT_SET
            ]
        if self._config.auth is not None:
            headers.append(self._config.auth.header())
        headers.append((REQUEST_ID_HEADER, self.request_id))
        if self.idempotency_key is not None:
            headers.append((IDEMPOTENCY_KEY_HEADER, self.idempotency_key))
        body = self.operation.body
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        if body is not None or self.operation.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body or b""))))
        return tuple(headers)

    def _send(self) -> Action[R]:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            # The retry these tokens paid for is never sent (the driver overslept).
            self._deposit(self._unsent_tokens)
            self._fail(
                KneoTimeoutError(
                    f"{self.operation.method} {self.operation.path}: the call's deadline of "
                    f"{seconds(self._deadline_seconds or 0.0)} expired before attempt "
                    f"{self.attempts + 1} - raise deadline (client.with_options(deadline=...)) "
                    f"if the call needs longer (request_id={self.request_id})",
                    kind="deadline",
                    request_id=self.request_id,
                    idempotency_key=self.idempotency_key,
                    method=self.operation.method,
                    path=self.operation.path,
                )
            )
            assert self._outcome is not None
            return self._outcome
        self.attempts += 1
        self.connection_reusable = True
        self._stopped = None
        self._unsent_tokens = 0
        self.state = CallState.AWAITING_RESPONSE
        headers = (*self._headers, (ATTEMPT_HEADER, str(self.attempts)))
        timeout = self._timeout if remaining is None else min(self._timeout, remaining)
        if self._emit is not None:
            headers = self._announce(headers, timeout)
        request = Request(self.operation.method, self._url, headers, self.operation.body or b"")
        self._attempt_timeout = timeout
        self._cut_by_deadline = timeout < self._timeout
        return Send(request, timeout, self._config.max_response_bytes, self.attempts, remaining)

    def _retry_after(self, response: Response) -> float | None:
        if response.status not in RETRY_AFTER_STATUS_CODES and response.status != 409:
            return None
        return parse_retry_after(response.header("retry-after"), wall_now=self._clock.wall())

    def _retry_or_fail(
        self, error: KneoError, cause: int | FailureKind, retry_after: float | None
    ) -> None:
        """Schedule another attempt after ``error`` (caused by a status or a failure kind),
        or fail with it when the policy, the deadline or the budget says no.
        """
        failure = cause if isinstance(cause, FailureKind) else None
        if self.attempts >= self.policy.max_attempts:
            self._fail(error)
            return
        remaining = self.remaining()
        if retry_after is not None and (
            retry_after > self.policy.max_retry_after
            or (remaining is not None and retry_after >= remaining)
        ):
            note = retry_after_note(retry_after, self.policy.max_retry_after, remaining)
            self._fail(with_note(error, note))
            return
        delay = self.policy.delay_for(self.attempts + 1, retry_after, rng=self._rng)
        if remaining is not None and delay >= remaining:
            self._fail(error)
            return
        if self._budget is not None:
            cost = self._budget.budget.cost_of(failure)
            if not self._budget.withdraw(cost):
                error.retry_budget_exhausted = True
                self._fail(error)
                return
            self._held_tokens = self._unsent_tokens = cost
        self._delay = delay
        self.state = CallState.BACKING_OFF
        if self._emit is not None:
            self._emit.emit(
                RetryScheduled(
                    call=self._call_info(),
                    at=self._clock.monotonic(),
                    attempt=self.attempts + 1,
                    delay=delay,
                    cause=cause,
                    budget_left=None if self._budget is None else self._budget.available,
                )
            )

    def _finish_success(self, response: Response) -> None:
        try:
            result = self.operation.decode(response.body)
            if self._config.strict_responses and self.operation.check_strict is not None:
                self.operation.check_strict(response.body)
        except KneoDecodeError as exc:
            self._fail(self._undecodable(exc, response))
            return
        if self.attempts == 1:
            self._deposit(self._budget.budget.success_refund if self._budget else 0)
        else:
            self._deposit(self._held_tokens)
        self._held_tokens = 0
        self.state = CallState.FINISHED
        self._outcome = Finished(
            result=result,
            response=response,
            request_id=returned_request_id(response, self.request_id),
            sent_request_id=self.request_id,
            idempotency_key=self.idempotency_key,
            attempts=self.attempts,
        )
        if self._emit is not None:
            self._emit.emit(
                CallFinished(
                    call=self._call_info(),
                    at=(now := self._clock.monotonic()),
                    status=response.status,
                    attempts=self.attempts,
                    elapsed=now - self._started,
                    request_id=self._outcome.request_id,
                )
            )

    def _undecodable(self, error: KneoDecodeError, response: Response) -> KneoDecodeError:
        """``error`` completed with the response and, after a keyed request, how to recover."""
        error.status = response.status
        error.body = parse_error_body(response.body)
        error.raw_body = response.body
        error.request_id = returned_request_id(response, self.request_id)
        error.idempotency_key = self.idempotency_key
        error.method, error.path = self.operation.method, self.operation.path
        if self.idempotency_key is not None:
            # The platform did act on a 2xx: a retry under a fresh key would act twice.
            error.message += (
                f" - the {self.operation.method} succeeded on the platform ({response.status}); "
                f"repeat it with idempotency_key={self.idempotency_key!r} to receive the "
                "stored response instead of acting twice"
            )
        error.message += f" (request_id={error.request_id})"
        return error

    def _deposit(self, amount: int) -> None:
        if self._budget is not None and amount:
            self._budget.deposit(amount)

    def _proxy_failure(self, kind: FailureKind, detail: str) -> None:
        """The proxy was unreachable (``CONNECT``) or refused the tunnel (``PROXY``)."""
        error, retryable = proxy_error(
            self._config.proxy,
            kind,
            detail[:_DETAIL_LIMIT],
            method=self.operation.method,
            path=self.operation.path,
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
            attempts=self.attempts,
        )
        if retryable:  # nothing reached the platform: safe for every method
            self._retry_or_fail(error, kind, None)
        else:
            self._fail(error)

    def _fail(self, error: KneoError) -> None:
        error.sent_request_id = self.request_id
        error.attempts = self.attempts
        error.elapsed = self.elapsed
        self._held_tokens = self._unsent_tokens = 0
        self.state = CallState.FAILED
        self._outcome = Failed(error)
        if self._emit is not None:
            self._emit.emit(
                CallFailed(
                    call=self._call_info(),
                    at=self._clock.monotonic(),
                    error=error,
                    attempts=self.attempts,
                    elapsed=error.elapsed or 0.0,
                )
            )


def _valid_header(name: str, value: str) -> bool:
    """Whether an observer's header can be sent as is (strict in what we send)."""
    try:
        check_header_name(name)
        check_header_value(name, value)
    except KneoError:
        return False
    return True
