"""In-memory drivers: each request goes to a Python callable instead of a network.

For tests, the user's and ours. The handler returns a ``Response`` (or, for
``AsyncMemoryDriver``, an awaitable of one) or raises ``SimulatedFailure(kind)``. Sleeps are
virtual by default: they advance the driver's ``VirtualClock`` at once, so retries, polling
and ``Retry-After`` cost no real time. A handler can advance that clock too (a slow server).

The exchange runs on the same loops as the network drivers (``kneo_drivers.loops``), so the
core decides the same way: a body over the cap is ``TOO_LARGE``, and a cancelled call is
told it was abandoned. As a real transport would, an answer that arrives after the
attempt's timeout (measured on the driver's clock) is a ``TIMEOUT`` failure.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable

import anyio

from kneo_drivers._virtual_clock import DEFAULT_EPOCH, VirtualClock
from kneo_drivers.contract import HttpReply, ReadGuard, TransportFailure
from kneo_drivers.loops import AsyncLoop, BlockingLoop
from kneo_proto import Clock, FailureKind, Request, Response, Send

__all__ = [
    "DEFAULT_EPOCH",
    "AsyncMemoryDriver",
    "Handler",
    "MemoryDriver",
    "SimulatedFailure",
    "VirtualClock",
]

Handler = Callable[[Request], Response | Awaitable[Response]]


class SimulatedFailure(Exception):
    """Raise from a handler to make the attempt fail in transport with ``kind``."""

    def __init__(self, kind: FailureKind, detail: str = "simulated failure") -> None:
        super().__init__(detail)
        self.kind = kind


class _Memory:
    """What both memory drivers share: the handler, the clock and the record of sleeps."""

    def __init__(
        self,
        handler: Handler,
        *,
        virtual_time: bool = True,
        clock: VirtualClock | None = None,
    ) -> None:
        self.handler = handler
        self.virtual = (clock or VirtualClock(time.time())) if virtual_time else None
        self.clock = self.virtual.clock if self.virtual else Clock(time.monotonic, time.time)
        self.sleeps: list[float] = []
        """Every sleep the calls asked for, in seconds, in order."""

    def _reply(self, send: Send, guard: ReadGuard, response: object, started: float) -> HttpReply:
        if not isinstance(response, Response):
            raise TypeError(f"a handler must return a Response, not {type(response).__name__}")
        if self.clock.monotonic() - started > send.timeout:
            # As a transport's read timeout would: the answer came too late to be read.
            body: bytes | FailureKind = FailureKind.TIMEOUT
        else:
            body = guard.check_body(len(response.body)) or response.body
        return HttpReply(response.status, response.headers, body)


class MemoryDriver(_Memory, BlockingLoop):
    """Executes calls of a blocking client against ``handler``.

    Args:
        handler: Called with each request; returns a ``Response`` or raises
            ``SimulatedFailure``.
        virtual_time: Sleep on a ``VirtualClock`` (the default) instead of really sleeping.
        clock: The ``VirtualClock`` to use (an emulator's, to share its time); a fresh one
            starting at the real time by default.

    Attributes:
        sleeps: Every sleep the calls asked for, in seconds, in order.
        virtual: The driver's ``VirtualClock``, or None in real time.
    """

    def __init__(
        self, handler: Handler, *, virtual_time: bool = True, clock: VirtualClock | None = None
    ) -> None:
        _Memory.__init__(self, handler, virtual_time=virtual_time, clock=clock)
        BlockingLoop.__init__(self)

    def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Hand ``send.request`` to the handler; return its answer or the simulated failure."""
        started = self.clock.monotonic()
        try:
            response = self.handler(send.request)
        except SimulatedFailure as failure:
            return TransportFailure(failure.kind, str(failure))
        return self._reply(send, guard, response, started)

    def sleep(self, seconds: float) -> None:
        """Sleep (virtually, by default) for ``seconds``."""
        self.sleeps.append(seconds)
        if self.virtual is not None:
            self.virtual.advance(seconds)
        else:
            super().sleep(seconds)

    def close(self) -> None:
        """Nothing to release: the driver can serve another client after this one closed."""


class AsyncMemoryDriver(_Memory, AsyncLoop):
    """Executes calls of an async client against ``handler`` (which may be async), on asyncio
    or trio; takes the same arguments as ``MemoryDriver``.
    """

    def __init__(
        self, handler: Handler, *, virtual_time: bool = True, clock: VirtualClock | None = None
    ) -> None:
        _Memory.__init__(self, handler, virtual_time=virtual_time, clock=clock)
        AsyncLoop.__init__(self)

    async def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Hand ``send.request`` to the handler; return its answer or the simulated failure."""
        started = self.clock.monotonic()
        try:
            outcome = self.handler(send.request)
            response = await outcome if inspect.isawaitable(outcome) else outcome
        except SimulatedFailure as failure:
            return TransportFailure(failure.kind, str(failure))
        return self._reply(send, guard, response, started)

    async def asleep(self, seconds: float) -> None:
        """Sleep (virtually, by default) for ``seconds``."""
        self.sleeps.append(seconds)
        if self.virtual is not None:
            self.virtual.advance(seconds)
        else:
            await anyio.sleep(seconds)

    async def aclose(self) -> None:
        """Nothing to release: the driver can serve another client after this one closed."""
