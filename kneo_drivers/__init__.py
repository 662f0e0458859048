"""kneo_drivers: thin drivers that execute ``kneo_proto`` calls. They move bytes and sleep;
they decide nothing.

- ``kneo_drivers.contract``: what a driver is (one exchange returning an ``HttpReply`` or a
  ``TransportFailure``) and what the facades need (``AsyncExecutor``, ``BlockingExecutor``).
- ``kneo_drivers.loops``: ``AsyncLoop`` and ``BlockingLoop``, which run a ``Call`` over any
  driver's exchange.
- ``kneo_drivers.anyio.AsyncDriver``: httpcore async pool, on asyncio or trio.
- ``kneo_drivers.blocking.BlockingDriver``: httpcore sync pool, thread-safe, no event loop.
- ``kneo_drivers.memory.MemoryDriver`` / ``AsyncMemoryDriver``: a Python callable instead of
  a network, on a ``VirtualClock``.
- ``kneo_drivers.httpx.HttpxAsyncDriver`` / ``HttpxBlockingDriver``: a caller's
  ``httpx.AsyncClient`` / ``httpx.Client`` (httpx is imported only by that module).

Import the one you need; importing this package imports none of their dependencies.
"""

__all__: list[str] = []
