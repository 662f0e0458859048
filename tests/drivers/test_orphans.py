"""The private attributes ``kneo_drivers/_orphans.py`` reads still mean what it expects, and
its view of event loops (ADR 0012's discipline, for the connections of an ended loop).

Releasing an asyncio connection of an ended loop walks httpcore2's ``AnyIOStream._stream``,
anyio's ``SocketStream._transport`` and the transport's ``_call_connection_lost``. These
tests walk each one over a real loopback connection, so a release of httpcore2, anyio or
Python that moves one fails here by name; at run time a missing one warns once.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import anyio
import pytest

from kneo_drivers import _orphans
from kneo_drivers._orphans import (
    ASYNCIO_TRANSPORT,
    CONNECTION_LOST,
    RunnerState,
    current_runner,
    release,
    runner_state,
)
from kneo_drivers._transport import ANYIO_STREAM, httpcore
from kneo_drivers.anyio import AsyncDriver
from tests.support.flavoured import close, get, make, run
from tests.support.scripted_server import RUN_ID, scripted_server


def resolve(owner: object, attribute: str) -> Any:
    value = getattr(owner, attribute, None)
    assert value is not None, f"{type(owner).__name__}.{attribute} moved"
    return value


def test_an_asyncio_connection_resolves_every_private_attribute() -> None:
    async def walk(url: str) -> None:
        client = make("asyncio", url)
        try:
            assert (await get(client, RUN_ID)).attempts == 1
            driver = client._transport._driver
            assert isinstance(driver, AsyncDriver)
            (stream,) = driver._backend._streams
            anyio_stream = resolve(stream, ANYIO_STREAM)
            assert isinstance(anyio_stream, anyio.abc.SocketStream)
            transport = resolve(anyio_stream, ASYNCIO_TRANSPORT)
            assert isinstance(transport, asyncio.Transport)
            assert callable(resolve(transport, CONNECTION_LOST))
        finally:
            await close(client)

    with scripted_server() as server:
        run("asyncio", walk, server.url)


class _Socket:
    """Stands for asyncio's TransportSocket: open, but behind no known stream."""

    def fileno(self) -> int:
        return 99


class _Stream(httpcore.AsyncNetworkStream):
    def get_extra_info(self, info: str) -> Any:
        return _Socket() if info == "socket" else None


def test_a_private_attribute_that_moved_warns_once_and_releases_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_orphans, "_warned", set())
    with pytest.warns(RuntimeWarning, match="_stream is missing"):
        release(_Stream())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        release(_Stream())  # once only


def test_runner_state_tells_running_idle_and_ended_loops() -> None:
    assert current_runner() is None
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_runner()) is loop
        assert runner_state(loop) is RunnerState.IDLE
    finally:
        loop.close()
    assert runner_state(loop) is RunnerState.ENDED
    token = anyio.run(_runner, backend="trio")
    assert runner_state(token) is RunnerState.ENDED


def test_runner_state_sees_a_loop_running_in_another_thread() -> None:
    started, stop = threading.Event(), threading.Event()
    found: list[object] = []

    async def hold() -> None:
        found.append(current_runner())
        started.set()
        await anyio.to_thread.run_sync(stop.wait, 10.0)

    for backend in ("asyncio", "trio"):
        started.clear()
        stop.clear()
        thread = threading.Thread(target=anyio.run, args=(hold,), kwargs={"backend": backend})
        thread.start()
        try:
            assert started.wait(5.0)
            assert runner_state(found[-1]) is RunnerState.RUNNING, backend
        finally:
            stop.set()
            thread.join(5.0)
        assert runner_state(found[-1]) is RunnerState.ENDED, backend


async def _runner() -> object:
    return current_runner()
