"""In-memory drivers: each request goes to a Python callable instead of a network.

For tests, the user's and ours. The handler returns a ``Response`` (or, for
``AsyncMemoryDriver``, an awaitable of one) or raises ``SimulatedFailure(kind)``. Sleeps are
virtual by default: they advance the driver's own clock at once, so retries, polling and
``Retry-After`` cost no real time. A handler can advance that clock too (a slow server).

As a real driver would, an answer that arrives after the attempt's timeout (measured on the
driver's clock) is a ``TIMEOUT`` failure, a body over the core's cap a ``TOO_LARGE`` one, and
a cancelled call is told it was abandoned before the cancellation propagates.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kneo_proto import Call, Clock, Failed, FailureKind, Finished, Request, Response, Send, Sleep

__all__ = ["AsyncMemoryDriver", "Handler", "MemoryDriver", "SimulatedFailure", "VirtualClock"]

R = TypeVar("R")
Handler = Callable[[Request], Response | Awaitable[Response]]


class SimulatedFailure(Exception):
    """Raise from a handler to make the attempt fail in transport with ``kind``."""

    def __init__(self, kind: FailureKind, detail: str = "simulated failure") -> None:
        super().__init__(detail)
        self.kind = kind


class VirtualClock:
    """A clock that moves only when advanced; its wall time starts at the real one."""

    def __init__(self) -> None:
        self.now = 0.0
        self._wall_start = time.time()
        self.clock = Clock(monotonic=lambda: self.now, wall=lambda: self._wall_start + self.now)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


class MemoryDriver:
    """Executes calls of a blocking client against ``handler``.

    Args:
        handler: Called with each request; returns a ``Response`` or raises
            ``SimulatedFailure``.
        virtual_time: Sleep on a ``VirtualClock`` (the default) instead of really sleeping.

    Attributes:
        sleeps: Every sleep the calls asked for, in seconds, in order.
    """

    def __init__(self, handler: Handler, *, virtual_time: bool = True) -> None:
        self.handler = handler
        self.virtual = VirtualClock() if virtual_time else None
        self.clock = self.virtual.clock if self.virtual else Clock(time.monotonic, time.time)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        """Sleep (virtually, by default) for ``seconds``."""
        self.sleeps.append(seconds)
        if self.virtual is not None:
            self.virtual.advance(seconds)
        else:
            time.sleep(seconds)

    def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its error."""
        try:
            while True:
                action = call.next_action()
                if isinstance(action, Send):
                    started = self.clock.monotonic()
                    try:
                        response = self.handler(action.request)
                    except SimulatedFailure as failure:
                        call.receive_failure(failure.kind, str(failure))
                        continue
                    if not isinstance(response, Response):
                        raise TypeError("a blocking client's handler must return a Response")
                    self._deliver(call, action, response, started)
                elif isinstance(action, Sleep):
                    self.sleep(action.seconds)
                elif isinstance(action, Failed):
                    raise action.error
                else:
                    return action
        except BaseException:
            call.abandon()
            raise

    def _deliver(self, call: Call[R], send: Send, response: Response, started: float) -> None:
        if self.clock.monotonic() - started > send.timeout:
            call.receive_failure(FailureKind.TIMEOUT, "the handler answered after the timeout")
        elif len(response.body) > send.max_response_bytes:
            call.receive_failure(FailureKind.TOO_LARGE, f"over {send.max_response_bytes} bytes")
        else:
            call.receive_response(response.status, response.headers, response.body)


class AsyncMemoryDriver(MemoryDriver):
    """Executes calls of an async client against ``handler`` (which may be async)."""

    async def execute(self, call: Call[R]) -> Finished[R]:  # type: ignore[override]
        """Run ``call`` to its end; return its ``Finished`` or raise its error."""
        try:
            while True:
                action = call.next_action()
                if isinstance(action, Send):
                    started = self.clock.monotonic()
                    try:
                        outcome = self.handler(action.request)
                        response = await outcome if inspect.isawaitable(outcome) else outcome
                    except SimulatedFailure as failure:
                        call.receive_failure(failure.kind, str(failure))
                        continue
                    self._deliver(call, action, response, started)
                elif isinstance(action, Sleep):
                    await self.asleep(action.seconds)
                elif isinstance(action, Failed):
                    raise action.error
                else:
                    return action
        except BaseException:
            call.abandon()
            raise

    async def asleep(self, seconds: float) -> None:
        """Sleep (virtually, by default) for ``seconds``."""
        if self.virtual is not None:
            self.sleep(seconds)
        else:
            import anyio  # real sleeps need the running event loop

            self.sleeps.append(seconds)
            await anyio.sleep(seconds)
