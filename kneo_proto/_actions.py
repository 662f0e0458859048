"""What a state machine asks its driver to do, and how a driver reports a transport failure.

Invariants: actions are immutable values. A driver performs exactly the action it is given:
one exchange per ``Send``, one sleep per ``Sleep``; ``Finished`` and ``Failed`` end the call.
"""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

import msgspec

from kneo_proto._errors import KneoError
from kneo_proto._http import Request, Response

__all__ = ["Action", "Failed", "FailureKind", "Finished", "Phase", "Send", "Sleep"]

R = TypeVar("R")


class FailureKind(enum.Enum):
    """The kind of a transport failure, as a driver classifies its library's exceptions.

    ``CONNECT`` and ``CONNECT_TIMEOUT`` mean no byte of the request was sent (connection
    refused, connect or pool timeout), so any request may be retried. The others happened
    after sending began, so only a request that is safe to repeat is retried. ``PROXY``: the
    proxy refused the tunnel (a CONNECT answered with another status than 2xx, or a SOCKS
    refusal; the detail carries the proxy's words): nothing reached the platform, and the core
    decides from the detail whether another attempt can help (``kneo_proto/_proxy.py``).
    """

    CONNECT = "connect"
    CONNECT_TIMEOUT = "connect_timeout"
    TLS = "tls"
    TIMEOUT = "timeout"
    NETWORK = "network"
    PROTOCOL = "protocol"
    TOO_LARGE = "too_large"
    PROXY = "proxy"


class Phase(enum.Enum):
    """Where in an exchange a transport failure happened, as the driver's exception says.

    ``CONNECT``: opening the connection (TCP, TLS); ``POOL``: waiting for a free pooled
    connection; ``WRITE``: sending the request; ``READ``: waiting for or reading the response.
    Only words the failure's message; what to do with the failure is the ``FailureKind``'s.
    """

    CONNECT = "connect"
    POOL = "pool"
    WRITE = "write"
    READ = "read"


class Send(msgspec.Struct, frozen=True):
    """Send ``request`` once and report the whole response (or the failure).

    Attributes:
        request: The request to send, byte for byte.
        timeout: Seconds allowed for each phase of this attempt (connect, pool wait, write,
            read); already clamped to what remains of the call's deadline.
        max_response_bytes: Stop reading and report ``FailureKind.TOO_LARGE`` past this size.
        attempt: The attempt number, from 1.
        remaining: Seconds left before the call's deadline (None: no deadline). A driver that
            can bound the whole attempt (an async one) cuts it off then and reports
            ``FailureKind.TIMEOUT``.
    """

    request: Request
    timeout: float
    max_response_bytes: int
    attempt: int
    remaining: float | None = None


class Sleep(msgspec.Struct, frozen=True):
    """Sleep for ``seconds`` before asking for the next action."""

    seconds: float


class Finished(msgspec.Struct, Generic[R], frozen=True):
    """The call succeeded.

    Attributes:
        result: The decoded result.
        response: The final response.
        request_id: The ``X-Request-ID`` the platform returned, else the one sent (a gateway
            may have replaced it).
        idempotency_key: The ``Idempotency-Key`` sent, if any.
        attempts: How many attempts it took.
        sent_request_id: The ``X-Request-ID`` kneo-client sent.
    """

    result: R
    response: Response
    request_id: str
    idempotency_key: str | None
    attempts: int
    sent_request_id: str = ""

    @property
    def replayed(self) -> bool:
        """True when the platform answered a POST from its idempotency store."""
        return (self.response.header("idempotent-replayed") or "").lower() == "true"


class Failed(msgspec.Struct, frozen=True):
    """The call failed; the driver raises ``error``."""

    error: KneoError


Action = Send | Sleep | Finished[R] | Failed
