"""A local, stateful Kneo Agent Platform to test kneo-client code against.

``Emulator`` is the platform itself: a pure ``handle(request) -> Reply`` holding every run,
human task, audit event and policy in memory, with time (``VirtualClock`` or
``SystemClock``) and failures (``emulator.faults``, scripted with ``Fault``) under the test's
control, and any reply open to a ``rewrite`` hook (a gateway's ``X-Request-ID``, a sparse
body). It can be served three ways:

- in memory, no sockets: ``SyncKneoClient(profile, driver=memory_driver(emulator))`` (or
  ``memory_handler(emulator)`` for any in-memory driver);
- over real HTTP/1.1 on 127.0.0.1, in-process: ``with serve_emulator() as running:`` (a
  background thread) or ``async with serve_emulator_async() as running:`` (the caller's
  asyncio or trio loop), yielding a ``RunningEmulator`` with ``url``, ``api_key``,
  ``read_only_key``, ``profile()`` and ``emulator``;
- as a command: ``python -m kneo_client.testing serve [--port N] [--api-key KEY]
  [--virtual-time]`` (real time by default, so runs move by themselves).

The pytest plugin (``kneo_client.testing.pytest_plugin``, registered as ``kneo``) provides
the ``kneo_emulator``, ``kneo_client_sync``, ``kneo_client_async`` and
``kneo_memory_emulator`` fixtures. See docs/emulator.md.

Example::

    from kneo_client import SyncKneoClient
    from kneo_client.testing import serve_emulator

    with serve_emulator() as running, SyncKneoClient(running.profile()) as client:
        assert client.platform.health.readyz().ok
"""

from kneo_client.testing._clock import SystemClock, VirtualClock
from kneo_client.testing._emulator import Emulator, Rewrite
from kneo_client.testing._faults import Fault
from kneo_client.testing._memory import async_memory_driver, memory_driver, memory_handler
from kneo_client.testing._reply import Delivery, Reply
from kneo_client.testing._runs import RunTiming
from kneo_client.testing._server import RunningEmulator, serve_emulator, serve_emulator_async

__all__ = [
    "Delivery",
    "Emulator",
    "Fault",
    "Reply",
    "Rewrite",
    "RunTiming",
    "RunningEmulator",
    "SystemClock",
    "VirtualClock",
    "async_memory_driver",
    "memory_driver",
    "memory_handler",
    "serve_emulator",
    "serve_emulator_async",
]
