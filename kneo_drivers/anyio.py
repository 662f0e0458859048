"""The async driver: one exchange over an httpcore2 async pool, on asyncio or trio.

The exchange sends the request, reads the body while the core's ``check_body`` allows it,
and leaving the response releases the connection (shielded: the outcome is already read).
Only transport exceptions are caught; a cancellation propagates unchanged. ``AsyncLoop``
runs the call: the deadline, the gate (twice the pool's size, so callers beyond it wait
there rather than in the pool's queue), event-loop changes and forks. A pool this driver
built follows the event loop (its connections let go when a new loop takes over) and is
replaced in a forked child; a caller's pool is neither.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import aclosing, suppress
from functools import partial
from typing import Any, cast

import anyio

from kneo_drivers._orphans import RunnerState, TrackingBackend
from kneo_drivers._transport import (
    DEFAULT_KEEPALIVE_EXPIRY,
    TRANSPORT_ERRORS,
    connection_of,
    failure_of,
    holds_unread_bytes,
    httpcore,
    new_async_pool,
    to_httpcore_request,
)
from kneo_drivers.contract import HttpReply, ReadGuard, TransportFailure
from kneo_drivers.loops import AsyncLoop
from kneo_proto import FailureKind, Proxy, Send

__all__ = ["AsyncDriver", "AsyncLoop"]


class AsyncDriver(AsyncLoop):
    """Executes calls over an ``httpcore.AsyncConnectionPool``.

    Args:
        max_connections: Pool size; twice as many calls may be inside the pool at once.
        ssl_context: TLS settings; verifying by default.
        keepalive_expiry: Seconds an idle connection is kept (None: as long as it lasts).
        pool: A caller-owned pool to use instead (not closed by ``aclose``).
        proxy: The proxy the pool goes through, as ``kneo_proto.plan_proxy`` chose it
            (None: direct).
    """

    def __init__(
        self,
        *,
        max_connections: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        pool: httpcore.AsyncConnectionPool | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        # Twice the pool: a short queue inside the pool lets a finished request hand its
        # connection straight to the next one, while the rest wait at the gate, where waiting
        # costs nothing per pool pass.
        super().__init__(max_in_flight=2 * max_connections)
        self._owns_pool = pool is None
        self._new_pool = partial(
            new_async_pool,
            ssl_context=ssl_context,
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            proxy=proxy,
        )
        self._backend = TrackingBackend()
        self._pool = pool or self._new_pool(network_backend=self._backend)

    async def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Send ``send.request`` once over the pool; return the reply or the failure."""
        try:
            response = await self._pool.handle_async_request(to_httpcore_request(send))
        except TRANSPORT_ERRORS as exc:
            return failure_of(exc)
        try:
            # Inside the try: its warning (an upstream move) may be an error under -W error.
            connection = connection_of(response)
            version = response.extensions.get("http_version", b"HTTP/1.1")
            body = guard.check_head(version) or await _read(response, guard)
            unread = holds_unread_bytes(connection)
        except TRANSPORT_ERRORS as exc:
            return failure_of(exc)
        finally:
            with anyio.CancelScope(shield=True), suppress(*TRANSPORT_ERRORS):
                await response.aclose()
        return HttpReply(
            response.status,
            response.headers,
            body,
            version,
            unread,
            connection,
        )

    async def discard(self, connection: Any) -> None:
        """Close a pool connection the core distrusts; the pool drops it on its next pass."""
        if connection is not None:
            await connection.aclose()

    def _leave_runner(self, state: RunnerState) -> None:
        self._replace_pool(loop_idle=state is RunnerState.IDLE)

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections (their descriptors closed in
        this process only, nothing sent, no event loop touched) and start a fresh pool.
        """
        super()._after_fork()  # refused until the fresh pool is in place
        self._replace_pool()
        self._inherited = not self._owns_pool

    def _replace_pool(self, *, loop_idle: bool = False) -> None:
        """Release the connections of the pool this driver built, and build a fresh one."""
        if self._owns_pool:
            self._backend.release_all(loop_idle=loop_idle)
            self._backend = TrackingBackend()
            self._pool = self._new_pool(network_backend=self._backend)

    async def aclose(self) -> None:
        """Cut every running call short, and close the pool if this driver created it."""
        await super().aclose()
        if self._owns_pool:
            with anyio.CancelScope(shield=True):
                await self._pool.aclose()


async def _read(response: httpcore.Response, guard: ReadGuard) -> bytes | FailureKind:
    """The whole body, or the kind ``check_body`` stopped the read with."""
    chunks: list[bytes] = []
    size = 0
    # aclosing: leaving early must close the stream's async generator now, not when it is
    # garbage collected (trio warns then). The pool's own stream, not aiter_stream(): one
    # async generator less per call.
    body_stream = cast("AsyncIterable[bytes]", response.stream)
    async with aclosing(cast("AsyncGenerator[bytes]", aiter(body_stream))) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if (stop := guard.check_body(size)) is not None:
                return stop
    return b"".join(chunks)
