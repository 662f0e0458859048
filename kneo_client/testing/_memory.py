"""Serve an emulator to kneo-client's in-memory drivers: no sockets, no real waiting.

``memory_handler(emulator)`` adapts ``Emulator.handle`` to the handler ``MemoryDriver`` and
``AsyncMemoryDriver`` call: added latency advances the emulator's virtual clock (or really
waits, on a ``SystemClock``), and a broken connection becomes a ``NETWORK`` transport
failure. ``memory_driver`` and ``async_memory_driver`` go one step further and share one
virtual time between the client and the emulator, so ``wait_for_completion``, backoff and
``Retry-After`` waits move the platform's clock too: a run that takes minutes completes in
microseconds.

Example::

    emulator = Emulator()
    profile = Profile(name="test", url="https://emulator.test", api_key=emulator.api_key)
    with SyncKneoClient(profile, driver=memory_driver(emulator)) as client:
        run = client.platform.runs.create({"spec_id": "my-spec"})
        done = client.platform.runs.wait_for_completion(run.run_id, timeout=60)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kneo_client.testing._clock import Clock
from kneo_client.testing._emulator import Emulator
from kneo_client.testing._reply import Delivery
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver, SimulatedFailure, VirtualClock
from kneo_proto import FailureKind, Request, Response

__all__ = ["async_memory_driver", "memory_driver", "memory_handler"]

_BROKEN = {
    Delivery.RESET_BEFORE_RESPONSE: "the emulator reset the connection before responding",
    Delivery.RESET_MID_BODY: "the emulator reset the connection in the middle of the body",
    Delivery.TRUNCATED_BODY: "the emulator closed the connection before the body was complete",
}


def _pass_time(clock: Clock) -> Callable[[float], None]:
    advance = getattr(clock, "advance", None)
    return advance if callable(advance) else time.sleep


def memory_handler(
    emulator: Emulator, *, on_delay: Callable[[float], None] | None = None
) -> Callable[[Request], Response]:
    """Return a ``MemoryDriver`` handler that answers from ``emulator``.

    Args:
        emulator: The emulator to answer from.
        on_delay: Called with a reply's added latency, in seconds; by default the
            emulator's clock is advanced (a clock without ``advance`` is really waited on).

    Returns:
        A callable turning a ``Request`` into a ``Response``; it raises
        ``SimulatedFailure(FailureKind.NETWORK)`` for a reset or truncated delivery.
    """
    pass_time = on_delay or _pass_time(emulator.clock)

    def handle(request: Request) -> Response:
        reply = emulator.handle(request)
        if reply.delay > 0:
            pass_time(reply.delay)
        broken = _BROKEN.get(reply.delivery)
        if broken is not None:
            raise SimulatedFailure(FailureKind.NETWORK, broken)
        return reply.response

    return handle


def memory_driver(emulator: Emulator) -> MemoryDriver:
    """Return a blocking in-memory driver on ``emulator`` sharing its virtual time.

    Pass it as ``SyncKneoClient(profile, driver=memory_driver(emulator))``. The emulator's
    clock must be a ``VirtualClock``: the driver runs on that very clock, so its sleeps and
    the emulator's latency move one time.
    """
    return MemoryDriver(memory_handler(emulator), clock=_virtual(emulator))


def async_memory_driver(emulator: Emulator) -> AsyncMemoryDriver:
    """Return an async in-memory driver on ``emulator`` sharing its virtual time.

    Pass it as ``KneoClient(profile, driver=async_memory_driver(emulator))``; it works on
    asyncio and trio. The emulator's clock must be a ``VirtualClock``.
    """
    return AsyncMemoryDriver(memory_handler(emulator), clock=_virtual(emulator))


def _virtual(emulator: Emulator) -> VirtualClock:
    if not isinstance(emulator.clock, VirtualClock):
        raise ValueError(
            "memory_driver shares virtual time: build the Emulator with a VirtualClock, or "
            "use MemoryDriver(memory_handler(emulator), virtual_time=False) for real time"
        )
    return emulator.clock
