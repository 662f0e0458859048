"""What happened during a call, as immutable events that ``Call`` records.

Events come from the core, so every driver reports the same ones (the in-memory driver
included), and so do failures that never reach the network: a full in-flight gate, an
expired deadline, a spent retry budget. A call emits, in order::

    CallStarted
    (AttemptStarted, then ResponseReceived or AttemptFailed, then RetryScheduled on a retry)...
    CallFinished or CallFailed

Every event carries the call's ``CallInfo`` (the same object for every event of one call,
so an observer can key its state on ``id(event.call)``) and ``at``, the call's monotonic
clock. No event holds a header, the API key or a proxy's credentials; ``CallInfo.url``
has its query values shown, because the platform's queries carry no secret.

Sans-I/O: ``Call`` hands each event to an ``Emitter`` the facade gives it (None: no event is
built at all). What observers do with it, and what happens when one raises, is the facade's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import msgspec

from kneo_proto._actions import FailureKind, Phase
from kneo_proto._errors import KneoError

__all__ = [
    "AttemptFailed",
    "AttemptStarted",
    "CallFailed",
    "CallFinished",
    "CallInfo",
    "CallStarted",
    "Emitter",
    "Event",
    "Observer",
    "ResponseReceived",
    "RetryScheduled",
]


class CallInfo(msgspec.Struct, frozen=True):
    """What one logical call is: the same for all its events.

    Attributes:
        operation: The endpoint's name, the operation ID of ``spec/`` (e.g. ``"get_run"``;
            ``"request"`` for ``Transport.request``).
        method: The HTTP method.
        route: The route template, e.g. ``"/v1/runs/{run_id}"``: never a concrete ID.
        url: The full URL of the request, query included.
        server_address: The platform's host.
        server_port: The platform's port.
        request_id: The ``X-Request-ID`` sent with every attempt.
        idempotency_key: The ``Idempotency-Key`` sent (POST only), else None.
        max_attempts: The most attempts the retry policy allows.
    """

    operation: str
    method: str
    route: str
    url: str
    server_address: str
    server_port: int
    request_id: str
    idempotency_key: str | None
    max_attempts: int


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every event: the call it belongs to and when (the call's clock, seconds)."""

    call: CallInfo
    at: float


class CallStarted(Event, frozen=True, kw_only=True):
    """The call asked for its first attempt."""


class AttemptStarted(Event, frozen=True, kw_only=True):
    """An attempt is about to be sent.

    Attributes:
        attempt: The attempt number, from 1 (``attempt - 1`` is the resend count).
        timeout: Seconds allowed for each phase of this attempt.
    """

    attempt: int
    timeout: float


class ResponseReceived(Event, frozen=True, kw_only=True):
    """An attempt's whole response arrived (any status).

    Attributes:
        attempt: The attempt number.
        status: The HTTP status.
        duration: Seconds from the attempt's start to its whole body.
    """

    attempt: int
    status: int
    duration: float


class AttemptFailed(Event, frozen=True, kw_only=True):
    """An attempt failed in transport, or before it reached the network (the gate).

    Attributes:
        attempt: The attempt number.
        failure: What kind of failure it was.
        phase: Where in the exchange, when the driver said.
        duration: Seconds from the attempt's start to the failure.
    """

    attempt: int
    failure: FailureKind
    phase: Phase | None
    duration: float


class RetryScheduled(Event, frozen=True, kw_only=True):
    """The core decided to try again after ``delay`` seconds.

    Attributes:
        attempt: The number of the attempt that will follow the delay.
        delay: Seconds the call sleeps first.
        cause: The status (``503``) or the failure kind that made the retry.
        budget_left: Tokens left in the client's retry budget after this retry paid, or
            None when the client has no budget.
    """

    attempt: int
    delay: float
    cause: int | FailureKind
    budget_left: int | None


class CallFinished(Event, frozen=True, kw_only=True):
    """The call succeeded.

    Attributes:
        status: The final HTTP status.
        attempts: Attempts it took.
        elapsed: Seconds since the call started.
        request_id: The ``X-Request-ID`` the platform returned, else the one sent.
    """

    status: int
    attempts: int
    elapsed: float
    request_id: str


class CallFailed(Event, frozen=True, kw_only=True):
    """The call failed: ``error`` is what the caller receives.

    Attributes:
        error: The ``KneoError`` raised to the caller.
        attempts: Attempts made (0 when none was sent).
        elapsed: Seconds since the call started.
    """

    error: KneoError
    attempts: int
    elapsed: float


class Emitter(Protocol):
    """Where a ``Call`` puts its events (the facade fans them out to observers)."""

    def emit(self, event: Event) -> None:
        """Take one event; must not raise."""

    def headers_for(self, event: AttemptStarted) -> Iterable[tuple[str, str]]:
        """Headers to add to the attempt ``event`` announces (trace propagation)."""


Observer = Callable[[Event], None]
"""What a user attaches to a client: called with every event of every call it makes.

An observer may also have a ``headers_for(event: AttemptStarted)`` method returning header
pairs to add to that attempt (``traceparent``, for example); it may not replace a header
kneo-client sets.
"""
