"""The async driver: runs a ``Call`` over an httpcore async pool, on asyncio or trio.

Contract: one exchange per ``Send``, the whole body read (up to the core's cap), a sleep per
``Sleep``; no retry, no parsing, no decision. Only transport exceptions are caught; a
cancellation propagates unchanged after the call is told it was abandoned, and leaving the
response's context releases the connection. Each attempt is cut off at the call's deadline.
Callers beyond twice the pool's size wait at a gate instead of piling into the pool's queue.
``aclose`` cuts every running call short (each raises ``KneoClientClosedError``), so no
attempt opens a connection on a pool that is being closed. ``AsyncLoop``, the loop around
the exchanges, serves the httpx driver too.

A driver serves one event loop at a time. A call in a new loop (a second ``asyncio.run``, a
switch to trio) first lets go of what belonged to the last one, which has ended: the gate,
and the connections of the pool this driver built (their sockets closed at once, without
awaiting anything of the dead loop), then starts a fresh pool. A call while the last loop
still runs in another thread is refused before anything is sent (``KneoUsageError``), and so
is every call in a forked child over a caller's pool; a pool of the driver's own is replaced
in the child at the fork (``kneo_drivers/_orphans.py``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import aclosing, suppress
from functools import partial
from typing import Any, TypeVar, cast

import anyio

from kneo_drivers._orphans import (
    ANOTHER_LOOP,
    INHERITED,
    Runner,
    RunnerState,
    TrackingBackend,
    current_runner,
    refused,
    runner_state,
    survive_fork,
)
from kneo_drivers._transport import (
    DEFAULT_KEEPALIVE_EXPIRY,
    TRANSPORT_ERRORS,
    connection_of,
    deliver,
    httpcore,
    new_async_pool,
    report_failure,
    to_httpcore_request,
    unsupported_version,
)
from kneo_proto import (
    Call,
    Clock,
    Failed,
    FailureKind,
    Finished,
    Phase,
    Proxy,
    Send,
    Sleep,
)

__all__ = ["AsyncDriver"]

R = TypeVar("R")
CLOCK = Clock(monotonic=anyio.current_time, wall=time.time)


class AsyncLoop:
    """The loop every async driver runs: one ``_attempt`` per ``Send``, cut off at the
    call's deadline, a sleep per ``Sleep``; ``aclose`` cuts every running call short.

    A driver for one HTTP library subclasses it and implements ``_attempt``.
    """

    clock = CLOCK

    def __init__(self) -> None:
        self._closed = False
        # One scope per running call: ``aclose`` cancels them, so that a call connecting,
        # waiting or sleeping cannot send (or leave a socket open) after the pool is closed.
        self._running: set[anyio.CancelScope] = set()
        self._runner: Runner | None = None  # the event loop of the last call
        self._inherited = False  # True in a forked child whose connections are the parent's
        survive_fork(self)

    async def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its error.

        Raises:
            KneoClientClosedError: when the driver is closed before or while the call runs.
            KneoUsageError: before anything is sent, in a forked child over a caller's pool,
                or while the event loop of the last call still runs in another thread.
        """
        if self._inherited:
            raise refused(call, INHERITED)
        if current_runner() is not self._runner:
            self._follow_runner(call)
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
        """One attempt, cut off at the call's deadline (``send.remaining``)."""
        if send.remaining is None:
            await self._attempt(call, send)
            return
        with anyio.move_on_after(send.remaining) as deadline:
            await self._attempt(call, send)
        if deadline.cancelled_caught:
            call.receive_failure(FailureKind.TIMEOUT, "the call's deadline expired mid-attempt")

    async def _attempt(self, call: Call[R], send: Send) -> None:
        """Make one exchange and report its outcome to ``call``."""
        raise NotImplementedError

    async def asleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` in the running event loop."""
        await anyio.sleep(seconds)

    def _follow_runner(self, call: Call[Any] | None) -> None:
        """Move to the running event loop, letting go of what belonged to the last one.

        Raises:
            KneoUsageError: the last one still runs (in another thread); nothing is touched.
        """
        runner = current_runner()
        if self._runner is not None and runner is not self._runner:
            state = runner_state(self._runner)
            if state is RunnerState.RUNNING:
                raise refused(call, ANOTHER_LOOP)
            self._running.clear()  # scopes of the last loop: cancelling one would call into it
            self._leave_runner(state)
        self._runner = runner

    def _leave_runner(self, state: RunnerState) -> None:
        """Let go of what belonged to the last event loop, which is in ``state``."""

    def _after_fork(self) -> None:
        """In a forked child: refuse every call, before sending (the pool is the caller's)."""
        self._inherited = True
        self._running.clear()
        self._runner = None

    async def aclose(self) -> None:
        """Cut every running call short (each raises ``KneoClientClosedError``).

        From another event loop than the calls': as a call there would, it first lets go of
        what belonged to theirs.
        """
        self._follow_runner(None)
        self._closed = True
        for running in self._running:
            running.cancel()


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
        super().__init__()
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
        self._max_connections = max_connections
        self._gate: anyio.Semaphore | None = None

    async def _exchange(self, call: Call[R], send: Send) -> None:
        gate = self._gate_for()
        try:
            gate.acquire_nowait()
        except anyio.WouldBlock:
            # send.timeout is already clamped to what is left of the call's deadline.
            acquired = False
            with anyio.move_on_after(send.timeout):
                await gate.acquire()
                acquired = True
            if not acquired:
                call.receive_failure(
                    FailureKind.CONNECT_TIMEOUT,
                    "waited too long for a connection",
                    phase=Phase.POOL,
                )
                return
        try:
            await super()._exchange(call, send)
        finally:
            gate.release()

    async def _attempt(self, call: Call[R], send: Send) -> None:
        try:
            response = await self._pool.handle_async_request(to_httpcore_request(send))
        except TRANSPORT_ERRORS as exc:
            _report_failure(call, send, exc)
            return
        connection = None
        discard = False
        try:
            # Inside the try: its warning (an upstream move) may be an error under -W error.
            connection = connection_of(response)
            problem = unsupported_version(response)
            try:
                body = (
                    FailureKind.PROTOCOL
                    if problem
                    else await _read_capped(response, send.max_response_bytes)
                )
            except TRANSPORT_ERRORS as exc:
                _report_failure(call, send, exc)
                return
            discard = deliver(call, send, response, body, problem)
        finally:
            # Shielded: the outcome is already reported, and the connection must go back.
            with anyio.CancelScope(shield=True), suppress(*TRANSPORT_ERRORS):
                await response.aclose()
        if discard:
            # After the release (which would mark it idle again): closed, the pool drops it.
            await _close(connection)

    def _leave_runner(self, state: RunnerState) -> None:
        self._gate = None  # anyio made it for the last loop's library and bound it there
        self._replace_pool(loop_idle=state is RunnerState.IDLE)

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections (their descriptors closed in
        this process only, nothing sent, no event loop touched) and start a fresh pool.
        """
        super()._after_fork()  # refused until the fresh pool is in place
        self._gate = None
        self._replace_pool()
        self._inherited = not self._owns_pool

    def _replace_pool(self, *, loop_idle: bool = False) -> None:
        """Release the connections of the pool this driver built, and build a fresh one."""
        if self._owns_pool:
            self._backend.release_all(loop_idle=loop_idle)
            self._backend = TrackingBackend()
            self._pool = self._new_pool(network_backend=self._backend)

    def _gate_for(self) -> anyio.Semaphore:
        if self._gate is None:
            # Twice the pool: a short queue inside the pool lets a finished request hand its
            # connection straight to the next one (an idle connection is probed with a syscall
            # on every pool pass), while the rest wait here, where waiting costs nothing per
            # pass. fast_acquire: an uncontended acquire does not yield to the event loop.
            self._gate = anyio.Semaphore(2 * self._max_connections, fast_acquire=True)
        return self._gate

    async def aclose(self) -> None:
        """Cut every running call short, and close the pool if this driver created it."""
        await super().aclose()
        if self._owns_pool:
            with anyio.CancelScope(shield=True):
                await self._pool.aclose()


async def _read_capped(response: httpcore.Response, cap: int) -> bytes | FailureKind:
    """The whole body, or ``TOO_LARGE`` as soon as it grows past ``cap`` bytes."""
    chunks: list[bytes] = []
    size = 0
    # aclosing: leaving early (over the cap) must close the stream's async generator now,
    # not when it is garbage collected (trio warns then).
    # The pool's own stream, not response.aiter_stream(): one async generator less per call.
    body_stream = cast("AsyncIterable[bytes]", response.stream)
    async with aclosing(cast("AsyncGenerator[bytes]", aiter(body_stream))) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                return FailureKind.TOO_LARGE
    return b"".join(chunks)


def _report_failure(call: Call[R], send: Send, exc: Exception) -> None:
    report_failure(call, send, exc)


async def _close(connection: Any) -> None:
    """Close a pool connection that must not carry another request (see ``connection_of``)."""
    if connection is not None:
        with anyio.CancelScope(shield=True):
            await connection.aclose()
