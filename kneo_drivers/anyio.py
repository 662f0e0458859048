"""The async driver: runs a ``Call`` over an httpcore async pool, on asyncio or trio.

Contract: one exchange per ``Send``, the whole body read (up to the core's cap), a sleep per
``Sleep``; no retry, no parsing, no decision. Only transport exceptions are caught; a
cancellation propagates unchanged after the call is told it was abandoned, and leaving the
response's context releases the connection. Each attempt is cut off at the call's deadline.
Callers beyond the pool's size wait at a gate instead of piling into the pool's queue.
``aclose`` cuts every running call short (each raises ``KneoClientClosedError``), so no
attempt opens a connection on a pool that is being closed.
"""

from __future__ import annotations

import ssl
import time
from contextlib import aclosing
from typing import TypeVar

import anyio

from kneo_drivers._log import log_attempt
from kneo_drivers._transport import TRANSPORT_ERRORS, failure_kind, httpcore, timeouts
from kneo_proto import (
    Call,
    Clock,
    Failed,
    FailureKind,
    Finished,
    Send,
    Sleep,
)

__all__ = ["AsyncDriver"]

R = TypeVar("R")
CLOCK = Clock(monotonic=anyio.current_time, wall=time.time)


class AsyncDriver:
    """Executes calls over an ``httpcore.AsyncConnectionPool``.

    Args:
        max_connections: Pool size, and the number of calls let into the pool at once.
        ssl_context: TLS settings; verifying by default.
        pool: A caller-owned pool to use instead (not closed by ``aclose``).
    """

    clock = CLOCK

    def __init__(
        self,
        *,
        max_connections: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        pool: httpcore.AsyncConnectionPool | None = None,
    ) -> None:
        self._owns_pool = pool is None
        self._pool = pool or httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=max_connections, retries=0
        )
        self._max_connections = max_connections
        self._gate: anyio.Semaphore | None = None
        self._closed = False
        # One scope per running call: ``aclose`` cancels them, so that a call connecting,
        # waiting or sleeping cannot send (or leave a socket open) after the pool is closed.
        self._running: set[anyio.CancelScope] = set()

    async def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its error.

        Raises:
            KneoClientClosedError: when the driver is closed before or while the call runs.
        """
        with anyio.CancelScope() as closing:
            self._running.add(closing)
            try:
                while not self._closed:
                    action = call.next_action()
                    if isinstance(action, Send):
                        await self._exchange(call, action)
                    elif isinstance(action, Sleep):
                        await self.asleep(action.seconds)
                    elif isinstance(action, Failed):
                        raise action.error
                    else:
                        return action
            except BaseException:
                call.abandon()
                raise
            finally:
                self._running.discard(closing)
        # Only a close gets here: ``aclose`` cancelled ``closing``, or ran between two steps.
        raise call.close()

    async def _exchange(self, call: Call[R], send: Send) -> None:
        request = send.request
        cut_off = float("inf") if send.remaining is None else send.remaining
        with anyio.move_on_after(cut_off) as scope:
            try:
                with anyio.fail_after(send.timeout):
                    await self._gate_for().acquire()
            except TimeoutError:
                call.receive_failure(
                    FailureKind.CONNECT_TIMEOUT, "waited too long for a connection"
                )
                return
            try:
                async with self._pool.stream(
                    request.method,
                    request.url,
                    headers=list(request.headers),
                    content=request.body,
                    extensions=timeouts(send.timeout),
                ) as response:
                    chunks: list[bytes] = []
                    size = 0
                    # aclosing: leaving early (over the cap) must close the stream's async
                    # generator now, not when it is garbage collected (trio warns then).
                    async with aclosing(response.aiter_stream()) as stream:
                        async for chunk in stream:
                            chunks.append(chunk)
                            size += len(chunk)
                            if size > send.max_response_bytes:
                                call.receive_failure(
                                    FailureKind.TOO_LARGE, f"over {send.max_response_bytes} bytes"
                                )
                                return
            except TRANSPORT_ERRORS as exc:
                call.receive_failure(failure_kind(exc), str(exc))
                log_attempt(call, send, failure_kind(exc).value)
                return
            finally:
                self._gate_for().release()
        if scope.cancelled_caught:
            call.receive_failure(FailureKind.TIMEOUT, "the call's deadline expired mid-attempt")
        else:
            call.receive_response(response.status, response.headers, b"".join(chunks))
            log_attempt(call, send, response.status)

    async def asleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` in the running event loop."""
        await anyio.sleep(seconds)

    def _gate_for(self) -> anyio.Semaphore:
        if self._gate is None:
            # fast_acquire: an uncontended acquire does not yield to the event loop (one loop
            # pass per call saved); the pool's own awaits still give other tasks their turn.
            self._gate = anyio.Semaphore(self._max_connections, fast_acquire=True)
        return self._gate

    async def aclose(self) -> None:
        """Cut every running call short, and close the pool if this driver created it."""
        self._closed = True
        for running in self._running:
            running.cancel()
        if self._owns_pool:
            with anyio.CancelScope(shield=True):
                await self._pool.aclose()
