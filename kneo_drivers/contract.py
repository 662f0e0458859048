"""The driver contract: what a driver gives the core for each attempt, and what it offers
the facade.

A driver for an HTTP library is one *exchange*: send the ``Send``'s request once, read the
whole body while the ``ReadGuard`` (the call) allows it, and give back an ``HttpReply``
(status, headers, body, and the transport facts the core decides from) or a
``TransportFailure`` (the kind of failure its library's exception stands for). It decides
nothing: the core says whether to retry, whether the HTTP version is acceptable, whether
the connection may be reused, when the body is too large and when the deadline has cut the
read. ``AsyncLoop`` and
``BlockingLoop`` (``kneo_drivers.loops``) run a ``Call`` over an exchange; the facade uses
any object offering ``AsyncExecutor`` or ``BlockingExecutor``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from kneo_proto import Call, Clock, FailureKind, Finished, Phase

__all__ = [
    "AsyncExecutor",
    "BlockingExecutor",
    "HttpReply",
    "ReadGuard",
    "TransportFailure",
]

R = TypeVar("R")


class ReadGuard(Protocol):
    """What an exchange asks while it reads a response (a ``Call`` is one)."""

    def check_head(self, http_version: bytes | str) -> FailureKind | None:
        """Given the status line's version: the kind to stop with before the body, or None."""
        ...

    def check_body(self, size: int) -> FailureKind | None:
        """Given the bytes read so far: the kind to stop reading with, or None."""
        ...


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A response that arrived, as the exchange read it.

    Attributes:
        status: The status code.
        headers: The header pairs as received (bytes or str).
        body: The whole body, or the kind the ``ReadGuard`` stopped the read with.
        http_version: The status line's version (``b"HTTP/1.1"``, ``"HTTP/2"``, ...).
        unread_bytes: True when the server sent bytes past this response on its connection.
        connection: What the driver's ``discard`` needs to close the connection, when the
            core says it must not be reused; None when there is nothing to close.
    """

    status: int
    headers: Iterable[tuple[bytes | str, bytes | str]]
    body: bytes | FailureKind
    http_version: bytes | str = "HTTP/1.1"
    unread_bytes: bool = False
    connection: Any = None


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """An attempt that failed in transport.

    Attributes:
        kind: What the library's exception stands for (decides the error and the retry).
        detail: The library's text for it, for the message.
        phase: Where in the exchange it happened, when the library says.
    """

    kind: FailureKind
    detail: str = ""
    phase: Phase | None = None


def report(call: Call[Any], outcome: HttpReply | TransportFailure) -> None:
    """Report an exchange's outcome to ``call``."""
    if isinstance(outcome, TransportFailure):
        call.receive_failure(outcome.kind, outcome.detail, phase=outcome.phase)
    elif isinstance(outcome.body, FailureKind):
        call.receive_failure(outcome.body)
    else:
        call.receive_response(
            outcome.status,
            outcome.headers,
            outcome.body,
            http_version=outcome.http_version,
            unread_bytes=outcome.unread_bytes,
        )


class AsyncExecutor(Protocol):
    """What the async facade needs from a driver."""

    clock: Clock

    async def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its ``KneoError``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (a poll's wait between two fetches)."""
        ...

    async def aclose(self) -> None:
        """Cut every running call short and let go of what the driver owns."""
        ...


class BlockingExecutor(Protocol):
    """What the blocking facade needs from a driver."""

    clock: Clock

    def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its ``KneoError``."""
        ...

    def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (a poll's wait between two fetches)."""
        ...

    def close(self) -> None:
        """End calls in other threads and let go of what the driver owns."""
        ...
