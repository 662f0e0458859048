"""The blocking driver: runs a ``Call`` over httpcore's thread-safe sync pool.

Contract: as the async driver's, without an event loop (so it works in notebooks and in
worker threads of async programs). A blocking read cannot be cancelled, so the call's
deadline is checked between body chunks: an attempt may overshoot it by up to one read
timeout. ``LockedTokenBucket`` makes a client's retry budget safe to share between threads.
"""

from __future__ import annotations

import ssl
import threading
import time
from typing import TypeVar

from kneo_drivers._log import log_attempt
from kneo_drivers._transport import TRANSPORT_ERRORS, failure_kind, httpcore, timeouts
from kneo_proto import Call, Clock, Failed, FailureKind, Finished, Send, Sleep, TokenBucket

__all__ = ["BlockingDriver", "LockedTokenBucket"]

R = TypeVar("R")
CLOCK = Clock(monotonic=time.monotonic, wall=time.time)


class LockedTokenBucket(TokenBucket):
    """A ``TokenBucket`` whose withdrawals and deposits are atomic across threads."""

    __slots__ = ("_lock",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()

    def withdraw(self, cost: int) -> bool:
        """Take ``cost`` tokens atomically; False (taking nothing) if too few are left."""
        with self._lock:
            return super().withdraw(cost)

    def deposit(self, amount: int) -> None:
        """Put ``amount`` tokens back atomically, never above capacity."""
        with self._lock:
            super().deposit(amount)


class BlockingDriver:
    """Executes calls over an ``httpcore.ConnectionPool``; safe to share between threads.

    Args:
        max_connections: Pool size.
        ssl_context: TLS settings; verifying by default.
        pool: A caller-owned pool to use instead (not closed by ``close``).
    """

    clock = CLOCK

    def __init__(
        self,
        *,
        max_connections: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        pool: httpcore.ConnectionPool | None = None,
    ) -> None:
        self._owns_pool = pool is None
        self._pool = pool or httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=max_connections, retries=0
        )

    def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its error."""
        try:
            while True:
                action = call.next_action()
                if isinstance(action, Send):
                    self._exchange(call, action)
                elif isinstance(action, Sleep):
                    self.sleep(action.seconds)
                elif isinstance(action, Failed):
                    raise action.error
                else:
                    return action
        except BaseException:
            call.abandon()
            raise

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        time.sleep(seconds)

    def _exchange(self, call: Call[R], send: Send) -> None:
        request = send.request
        give_up = None if send.remaining is None else time.monotonic() + send.remaining
        try:
            with self._pool.stream(
                request.method,
                request.url,
                headers=list(request.headers),
                content=request.body,
                extensions=timeouts(send.timeout),
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_stream():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > send.max_response_bytes:
                        call.receive_failure(FailureKind.TOO_LARGE, "response body over the cap")
                        return
                    if give_up is not None and time.monotonic() > give_up:
                        call.receive_failure(FailureKind.TIMEOUT, "the call's deadline expired")
                        return
        except TRANSPORT_ERRORS as exc:
            call.receive_failure(failure_kind(exc), str(exc))
            log_attempt(call, send, failure_kind(exc).value)
            return
        call.receive_response(response.status, response.headers, b"".join(chunks))
        log_attempt(call, send, response.status)

    def close(self) -> None:
        """Close the pool if this driver created it."""
        if self._owns_pool:
            self._pool.close()
