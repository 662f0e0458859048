"""The two loops every driver runs a ``Call`` in: ``AsyncLoop`` and ``BlockingLoop``.

A driver subclasses one and implements ``exchange`` (one attempt over its HTTP library,
``kneo_drivers.contract``) and, when it can close a connection the core distrusts,
``discard``. The loop does the rest, the same for every driver: one exchange per ``Send``,
its outcome reported to the call, a sleep per ``Sleep``, the call told it was abandoned
before a cancellation or an interrupt propagates, and ``close``/``aclose`` cutting running
calls short (each raises ``KneoClientClosedError``). The async loop also cuts each attempt
off at the call's deadline, and can hold callers beyond a limit at a gate (so they wait
there, not in the pool's queue).

A loop serves one event loop at a time (async) and one process (both): a call in a new
event loop first lets go of what belonged to the last one, which has ended; a call while
the last one still runs in another thread is refused before anything is sent, and so is a
call in a forked child, unless the driver replaced what it inherited (``_after_fork``;
``kneo_drivers/_orphans.py``).
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import anyio

from kneo_drivers._orphans import (
    ANOTHER_LOOP,
    INHERITED,
    Runner,
    RunnerState,
    current_runner,
    refused,
    runner_state,
    survive_fork,
)
from kneo_drivers._transport import MAX_WAIT
from kneo_drivers.contract import HttpReply, ReadGuard, TransportFailure, report
from kneo_proto import Call, Clock, Failed, FailureKind, Finished, Phase, Send, Sleep

__all__ = ["MAX_WAIT", "AsyncLoop", "BlockingLoop"]

R = TypeVar("R")


class AsyncLoop:
    """Runs calls over an async ``exchange``, on asyncio or trio.

    Args:
        max_in_flight: How many attempts may run at once; later ones wait at a gate, for at
            most their timeout (then fail as a pool timeout). None: no gate.
    """

    clock = Clock(monotonic=anyio.current_time, wall=time.time)

    def __init__(self, *, max_in_flight: int | None = None) -> None:
        self._closed = False
        # One scope per running call: ``aclose`` cancels them, so that a call connecting,
        # waiting or sleeping cannot send (or leave a socket open) after the pool is closed.
        self._running: set[anyio.CancelScope] = set()
        self._runner: Runner | None = None  # the event loop of the last call
        self._inherited = False  # True in a forked child whose connections are the parent's
        self._max_in_flight = max_in_flight
        self._gate: anyio.Semaphore | None = None
        survive_fork(self)

    async def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Send ``send.request`` once over the driver's library; return what came back."""
        raise NotImplementedError

    async def discard(self, connection: Any) -> None:
        """Close ``connection`` (an ``HttpReply.connection``): the core distrusts it."""

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
                        await self._attempt(call, action)
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

    async def _attempt(self, call: Call[R], send: Send) -> None:
        gate = self._gate_for()
        if gate is not None and not await _enter(gate, send.timeout):
            report(call, TransportFailure(FailureKind.CONNECT_TIMEOUT, _GATE_FULL, Phase.POOL))
            return
        try:
            outcome = await self._exchange_by_deadline(send, call)
            report(call, outcome)
            if isinstance(outcome, HttpReply) and not call.connection_reusable:
                # After the exchange released it (which marks it idle): closed, the pool
                # drops it.
                with anyio.CancelScope(shield=True):
                    await self.discard(outcome.connection)
        finally:
            if gate is not None:
                gate.release()

    async def _exchange_by_deadline(
        self, send: Send, guard: ReadGuard
    ) -> HttpReply | TransportFailure:
        """The exchange, cut off at the call's deadline (``send.remaining``)."""
        if send.remaining is None:
            return await self.exchange(send, guard)
        with anyio.move_on_after(send.remaining):
            return await self.exchange(send, guard)
        return TransportFailure(FailureKind.TIMEOUT, _DEADLINE_MID_ATTEMPT)

    async def asleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` in the running event loop."""
        await anyio.sleep(seconds)

    def _gate_for(self) -> anyio.Semaphore | None:
        if self._gate is None and self._max_in_flight is not None:
            # fast_acquire: an uncontended acquire does not yield to the event loop. Made
            # lazily: anyio binds it to the library of the event loop that first uses it.
            self._gate = anyio.Semaphore(self._max_in_flight, fast_acquire=True)
        return self._gate

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
            self._gate = None
            self._leave_runner(state)
        self._runner = runner

    def _leave_runner(self, state: RunnerState) -> None:
        """Let go of what the driver held for the last event loop, which is in ``state``."""

    def _after_fork(self) -> None:
        """In a forked child: refuse every call, before sending (the pool is the caller's)."""
        self._inherited = True
        self._running.clear()
        self._runner = None
        self._gate = None

    async def aclose(self) -> None:
        """Cut every running call short (each raises ``KneoClientClosedError``).

        From another event loop than the calls': as a call there would, it first lets go of
        what belonged to theirs.
        """
        self._follow_runner(None)
        self._closed = True
        for running in self._running:
            running.cancel()


class BlockingLoop:
    """Runs calls over a blocking ``exchange``; ``close`` ends calls in other threads.

    A blocking read cannot be interrupted: the exchange itself keeps to ``send.remaining``
    (its reads end by the deadline, or ``check_body`` stops them between chunks).
    """

    clock = Clock(monotonic=time.monotonic, wall=time.time)

    def __init__(self) -> None:
        self._closed = False
        self._inherited = False  # True in a forked child whose connections are the parent's
        survive_fork(self)

    def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Send ``send.request`` once over the driver's library; return what came back."""
        raise NotImplementedError

    def discard(self, connection: Any) -> None:
        """Close ``connection`` (an ``HttpReply.connection``): the core distrusts it."""

    def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its error."""
        try:
            if self._inherited:
                raise refused(call, INHERITED)
            while not self._closed:
                action = call.next_action()
                if isinstance(action, Send):
                    self._attempt(call, action)
                elif isinstance(action, Sleep):
                    self.sleep(action.seconds)
                elif isinstance(action, Failed):
                    raise action.error
                else:
                    return action
        except BaseException:
            call.abandon()
            raise
        # Closed from another thread: no further attempt, and any connection an attempt racing
        # the close opened is closed too.
        self._close_owned()
        raise call.close()

    def _attempt(self, call: Call[R], send: Send) -> None:
        outcome = self.exchange(send, call)
        if self._closed:
            # close() ran under this exchange: what happened is the close, not the network
            # (the caller raises KneoClientClosedError), and no connection may outlive it.
            if isinstance(outcome, HttpReply):
                self.discard(outcome.connection)
            self._close_owned()
            return
        report(call, outcome)
        if isinstance(outcome, HttpReply) and not call.connection_reusable:
            self.discard(outcome.connection)

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (in slices the platform accepts)."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, MAX_WAIT))

    def close(self) -> None:
        """End calls in other threads (``KneoClientClosedError``); close what the driver owns.

        A call waiting for its response when the pool closes under it ends then; one between
        two attempts ends before the next.
        """
        self._closed = True
        self._close_owned()

    def _close_owned(self) -> None:
        """Close the pool the driver created, if any (a caller's is left open)."""

    def _after_fork(self) -> None:
        """In a forked child: refuse every call, before sending (the pool is the caller's)."""
        self._inherited = True


_GATE_FULL = "waited too long for a connection"
_DEADLINE_MID_ATTEMPT = "the call's deadline expired mid-attempt"


async def _enter(gate: anyio.Semaphore, seconds: float) -> bool:
    """Pass ``gate``, waiting at most ``seconds``; False when that ran out."""
    try:
        gate.acquire_nowait()
    except anyio.WouldBlock:
        with anyio.move_on_after(seconds):
            await gate.acquire()
            return True
        return False
    return True
