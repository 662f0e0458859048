"""Family B, event loops: one ``KneoClient`` across successive event loops (issue 11).

A client built outside any event loop and used in two successive ``asyncio.run()`` calls used
to fail every second run with ``RuntimeError('Event loop is closed')``, after the server had
executed the POST and without the idempotency key; ``asyncio.run(client.aclose())`` failed
the same way and left the sockets open. The decision: a client follows the running event
loop. A call in a new loop lets go of the last loop's connections (their sockets closed at
once, nothing awaited on the dead loop) and of its gate, then uses a fresh pool; a call
while the last loop still runs in another thread is refused before anything is sent.

Oracles: every call succeeds at its first attempt (a POST with its key, executed once);
the server sees the last loop's connections closed by the client; no ``ResourceWarning``
when the dead loop's objects are collected; ``aclose`` from another loop closes every
connection.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from kneo_client import KneoClient
from kneo_drivers.anyio import AsyncDriver
from kneo_proto import KneoClientClosedError, KneoUsageError
from tests.support.flavoured import Client, close, get, make, post, run
from tests.support.scripted_server import RUN_ID, ScriptedSocketServer, scripted_server
from tests.support.socket_subject import Flavour

pytestmark = [pytest.mark.timeout(60)]

OTHER: dict[str, Flavour] = {"asyncio": "trio", "trio": "asyncio"}
SETTLE = 1.0  # a released connection must be closed on the server's side by then
Figure = Callable[[str, str], None]


def flavour_of(backend: str) -> Flavour:
    return "trio" if backend == "trio" else "asyncio"


def closed_by_client(server: ScriptedSocketServer, first: int = 0, last: int | None = None) -> None:
    """Connections ``first`` to ``last`` (all by default) end within ``SETTLE``, closed by the
    client."""
    for connection in server.connections[first:last]:
        assert connection.ended.wait(SETTLE), f"connection {connection.number} left open"
        assert connection.closed_by == "client", (connection.number, connection.closed_by)


def resource_warnings() -> list[str]:
    """The ``ResourceWarning``s a collection of every unreachable object raises now."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def driver_of(client: Client) -> AsyncDriver:
    driver = client._transport._driver
    assert isinstance(driver, AsyncDriver)
    return driver


async def burst(client: Client, calls: int = 6) -> list[int]:
    """``calls`` concurrent GETs (past the gate with 2 connections), then a POST: attempts."""
    attempts: list[int] = []

    async def one() -> None:
        attempts.append((await get(client, RUN_ID)).attempts)

    async with anyio.create_task_group() as group:
        for _ in range(calls):
            group.start_soon(one)
    attempts.append((await post(client)).attempts)
    return attempts


def test_a_post_in_a_second_event_loop_succeeds_once_and_keeps_its_key(anyio_backend: str) -> None:
    flavour = flavour_of(anyio_backend)
    with scripted_server() as server:
        client = make(flavour, server.url)
        made = [run(flavour, post, client) for _ in range(2)]
        for one in made:
            assert one.attempts == 1
            assert one.idempotency_key is not None
            assert server.run_for(one.idempotency_key) == one.parsed.run_id
            assert server.executions[one.request_id] == 1
        assert made[0].idempotency_key != made[1].idempotency_key
        assert [r.connection for r in server.requests] == [0, 1]
        closed_by_client(server, 0, 1)  # the first loop's, released by the second run
        run(flavour, close, client)  # from a third event loop
        closed_by_client(server)
    assert resource_warnings() == []


def test_a_client_follows_switches_between_asyncio_and_trio(figure: Figure) -> None:
    """asyncio, trio, asyncio, trio: each run makes concurrent calls past the gate (2
    connections, a gate of 4) and a POST, all at the first attempt; the pool each fresh one
    replaces keeps the client's settings."""
    with scripted_server() as server:
        client = make("asyncio", server.url, max_connections=2, keepalive_expiry=7.0)
        seen = 0
        for flavour in ("asyncio", "trio", "asyncio", "trio"):
            assert run(flavour, burst, client) == [1] * 7, flavour
            assert driver_of(client)._pool._keepalive_expiry == 7.0
            closed_by_client(server, 0, seen)  # every earlier loop's connection
            seen = len(server.connections)
        run("asyncio", close, client)
        closed_by_client(server)
        assert server.attempts == 4 * 7
        opened = len(server.connections)
    assert resource_warnings() == []
    figure(
        "I11",
        "event loops: one KneoClient through asyncio, trio, asyncio, trio runs (6 concurrent "
        f"GETs past the gate and a POST each): 28 calls at attempt 1, {opened} connections "
        f"all closed by the client (each loop's when the next began), RuntimeError 0, "
        "ResourceWarning 0",
    )


def test_aclose_from_another_event_loop_closes_every_connection(anyio_backend: str) -> None:
    flavour = flavour_of(anyio_backend)
    with scripted_server() as server:
        client = make(flavour, server.url)
        assert run(flavour, burst, client) == [1] * 7
        assert server.open_connections()
        run(OTHER[anyio_backend], close, client)
        closed_by_client(server)
        with pytest.raises(KneoClientClosedError):
            run(flavour, get, client, RUN_ID)
    assert resource_warnings() == []


def test_a_call_while_the_last_event_loop_still_runs_is_refused_before_sending(
    anyio_backend: str,
) -> None:
    """The client's last loop runs on in another thread: a call from a new loop raises
    ``KneoUsageError`` (carrying its key) and sends nothing; that loop's calls go on; once it
    has ended, a new loop's call succeeds."""
    flavour = flavour_of(anyio_backend)
    warmed, release = threading.Event(), threading.Event()
    held: list[int] = []

    async def hold(client: KneoClient) -> None:
        held.append((await get(client, RUN_ID)).attempts)
        warmed.set()
        await anyio.to_thread.run_sync(release.wait, 10.0)
        held.append((await get(client, RUN_ID)).attempts)

    with scripted_server() as server:
        client = make(flavour, server.url)
        assert isinstance(client, KneoClient)
        holder = threading.Thread(target=run, args=(flavour, hold, client), name="held-loop")
        holder.start()
        try:
            assert warmed.wait(5.0)
            with pytest.raises(KneoUsageError, match="another thread") as refused:
                run(flavour, post, client)
            assert refused.value.idempotency_key is not None
            assert refused.value.attempts == 0
            assert server.attempts == 1
        finally:
            release.set()
            holder.join(10.0)
        assert not holder.is_alive()
        assert held == [1, 1]
        assert run(flavour, post, client).attempts == 1
        run(flavour, close, client)
        closed_by_client(server)


def test_an_idle_asyncio_loop_left_for_another_and_resumed_keeps_working() -> None:
    """Loop A (not closed, not running) is left for ``asyncio.run``'s loop B, then resumed:
    A's connection is aborted the usual way (A closes it when it runs again), B's is released,
    and every call succeeds at its first attempt."""
    with scripted_server() as server:
        client = make("asyncio", server.url)
        idle = asyncio.new_event_loop()
        try:
            attempts: list[Any] = [idle.run_until_complete(get(client, RUN_ID)).attempts]
            attempts.append(asyncio.run(get(client, RUN_ID)).attempts)
            attempts.append(idle.run_until_complete(get(client, RUN_ID)).attempts)
            assert attempts == [1, 1, 1]
            assert [r.connection for r in server.requests] == [0, 1, 2]
            closed_by_client(server, 0, 2)
            idle.run_until_complete(close(client))
            closed_by_client(server)
        finally:
            idle.close()
    assert resource_warnings() == []
