"""Family B, time: timeouts a profile accepts but a socket does not (issue 11).

A profile accepts any finite timeout; ``timeout=1e10`` used to crash the blocking client with
``OverflowError: timestamp out of range for platform time_t`` from ``socket.settimeout``
(Linux refuses past about 9.2e9 s, ``time.sleep`` even less), leaking a socket per call. The
decision: the setting stays as accepted, and the drivers clamp what reaches a socket or a
sleep to ``MAX_WAIT`` (a day, as good as forever for one read); a longer sleep is taken in
slices. The same for ``deadline``, ``keepalive_expiry`` and ``poll_interval``.

Oracles: every call succeeds at its first attempt, the server never holds more than one
connection open for the client, and closing the client leaves none.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable

import anyio
import httpx
import pytest

from kneo_drivers import loops
from kneo_drivers._deadline import DeadlineBackend
from kneo_drivers._transport import MAX_WAIT, httpcore, timeouts
from kneo_proto import KneoWaitTimeoutError
from tests.support.flavoured import Client, close, get, make, post, run, wait
from tests.support.scripted_server import RUN_ID, ScriptedSocketServer, scripted_server
from tests.support.socket_subject import (
    FLAVOURS,
    Flavour,
    backend_fixture,  # noqa: F401 - a fixture
    flavour_fixture,  # noqa: F401 - a fixture
)

pytestmark = [pytest.mark.timeout(60)]

Figure = Callable[[str, str], None]
HUGE = [1e10, sys.float_info.max]


def at_most_one_open(server: ScriptedSocketServer) -> None:
    assert len(server.open_connections()) <= 1, server.open_connections()


async def calls_and_waits(client: Client, server: ScriptedSocketServer, huge: float) -> None:
    for options in ({}, {"deadline": huge}, {"timeout": huge, "deadline": huge}):
        assert (await get(client, RUN_ID, **options)).attempts == 1
        at_most_one_open(server)
        assert (await post(client, **options)).attempts == 1
        at_most_one_open(server)
    # The default answer says "running": a terminal status ends the wait at its first poll.
    done = await wait(
        client, RUN_ID, timeout=huge, poll_interval=huge, terminal_statuses={"running"}
    )
    assert done.status == "running"
    started = time.monotonic()
    with pytest.raises(KneoWaitTimeoutError):
        await wait(client, RUN_ID, timeout=0.3, poll_interval=huge)
    assert time.monotonic() - started < 2.0
    at_most_one_open(server)


@pytest.mark.anyio
@pytest.mark.parametrize("huge", HUGE)
async def test_huge_timeouts_deadlines_expiries_and_intervals_work(
    flavour: Flavour, huge: float, figure: Figure
) -> None:
    with scripted_server() as server:
        client = make(flavour, server.url, timeout=huge, keepalive_expiry=huge)
        try:
            await calls_and_waits(client, server, huge)
        finally:
            await close(client)
        assert await anyio.to_thread.run_sync(all_closed, server)
        opened = len(server.connections)
    figure(
        "I11",
        f"huge timeouts, {flavour}: timeout, deadline, keepalive_expiry and poll_interval "
        f"{huge:g} s: OverflowError 0, 6 calls and 2 waits as expected (calls at attempt 1), "
        f"connections opened {opened}, open at once at most 1, left open 0",
    )


def all_closed(server: ScriptedSocketServer) -> bool:
    return all(connection.ended.wait(1.0) for connection in server.connections)


async def over_httpx(flavour: Flavour, server: ScriptedSocketServer) -> None:
    http_client = httpx.Client() if flavour == "blocking" else httpx.AsyncClient()
    client = make(flavour, server.url, timeout=1e10, http_client=http_client)
    try:
        await calls_and_waits(client, server, 1e10)
    finally:
        await close(client)
        if isinstance(http_client, httpx.Client):
            http_client.close()
        else:
            await http_client.aclose()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_huge_timeout_never_reaches_a_callers_httpx_client(flavour: Flavour) -> None:
    with scripted_server() as server:
        run(flavour, over_httpx, flavour, server)
        assert all_closed(server)


def test_what_reaches_a_socket_is_at_most_max_wait() -> None:
    assert set(timeouts(1e10)["timeout"].values()) == {MAX_WAIT}
    assert set(timeouts(2.5)["timeout"].values()) == {2.5}
    backend = DeadlineBackend()
    assert backend.clamp(1e10, httpcore.ReadTimeout) == MAX_WAIT
    assert backend.clamp(None, httpcore.ReadTimeout) is None  # no deadline, no timeout
    backend.set_deadline(time.monotonic() + 1e10)
    assert backend.clamp(None, httpcore.ReadTimeout) == MAX_WAIT
    assert backend.clamp(3.0, httpcore.ReadTimeout) == 3.0


def test_a_blocking_sleep_past_max_wait_is_taken_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    clock = types.SimpleNamespace(monotonic=lambda: now[0], sleep=sleep)
    monkeypatch.setattr(loops, "time", clock)
    loops.BlockingLoop().sleep(2.5 * MAX_WAIT)
    assert slept == [MAX_WAIT, MAX_WAIT, 0.5 * MAX_WAIT]
