"""Family B, keep-alive: how long an idle connection is kept, and idle connections the server
dropped (T18, issue 11).

A run paused for human review can leave a client idle for hours, and load balancers drop
idle connections after tens of seconds. An idle connection is kept 5 s by default
(``keepalive_expiry``, like ``max_connections`` a client option); one the server closed
while idle must never cost a failed attempt nor a retry-budget token: the pool sees the
server's FIN and opens a new connection instead.

The figure is the issue's, run literally: the server drops a connection idle for 1 s, the
client calls every 1.5 s, 50 calls, for the three flavours at once (each in its own thread,
with its own event loop and its own server), so the test takes about 75 s, not 225.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from kneo_client import KneoClient, SyncKneoClient
from kneo_drivers.anyio import AsyncDriver
from kneo_drivers.blocking import BlockingDriver
from kneo_proto import KneoConfigurationError
from tests.support.flavoured import Client, close, get, make, run
from tests.support.scripted_server import (
    RUN_ID,
    Answer,
    Close,
    Pause,
    Script,
    ScriptedSocketServer,
    scripted_server,
)
from tests.support.socket_subject import (
    API_KEY,
    FLAVOURS,
    Flavour,
    backend_fixture,  # noqa: F401 - a fixture
    flavour_fixture,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.plan("T18")

Figure = Callable[[str, str], None]
URL = "http://127.0.0.1:9"  # never connected to: these clients make no call
IDLE_DROP = 1.0  # the server closes a connection idle this long, as a load balancer does
INTERVAL = 1.5  # the client calls this often
CALLS = 50
THREAD_LIMIT = CALLS * INTERVAL + 60.0


def pool_of(client: Client) -> Any:
    driver = client._transport._driver
    assert isinstance(driver, AsyncDriver | BlockingDriver)
    return driver._pool


# -- the setting ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, True, "5"])
@pytest.mark.parametrize("client_class", [KneoClient, SyncKneoClient])
def test_keepalive_expiry_refuses_anything_but_positive_finite_seconds_or_none(
    client_class: type[Client], value: object
) -> None:
    with pytest.raises(KneoConfigurationError, match="keepalive_expiry"):
        make(
            "blocking" if client_class is SyncKneoClient else "asyncio", URL, keepalive_expiry=value
        )


@pytest.mark.parametrize(
    ("options", "kept"),
    [
        ({}, 5.0),
        ({"keepalive_expiry": 2.5}, 2.5),
        ({"keepalive_expiry": 30}, 30),
        ({"keepalive_expiry": None}, None),
    ],
)
def test_keepalive_expiry_reaches_the_pool_of_every_flavour(
    options: dict[str, Any], kept: float | None
) -> None:
    for flavour in FLAVOURS:
        client = make(flavour, URL, **options)
        assert pool_of(client)._keepalive_expiry == kept, flavour


def test_keepalive_expiry_is_a_keyword_of_from_profile_too(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    for client_class in (KneoClient, SyncKneoClient):
        client = client_class.from_profile(
            config_file=missing, url=URL, api_key=API_KEY, keepalive_expiry=0.5
        )
        assert pool_of(client)._keepalive_expiry == 0.5


@pytest.mark.anyio
async def test_an_idle_connection_past_its_expiry_is_closed_by_the_client(flavour: Flavour) -> None:
    """0.3 s idle past a 0.2 s expiry: the next call opens a new connection, and the client
    (not the server) closes the expired one."""
    with scripted_server() as server:
        client = make(flavour, server.url, keepalive_expiry=0.2)
        try:
            assert (await get(client, RUN_ID)).attempts == 1
            await anyio.sleep(0.3)
            assert (await get(client, RUN_ID)).attempts == 1
            assert [r.connection for r in server.requests] == [0, 1]
            assert await anyio.to_thread.run_sync(server.connections[0].ended.wait, 1.0)
            assert server.connections[0].closed_by == "client"
        finally:
            await close(client)


# -- idle connections the server dropped ------------------------------------------------------


def dropped_when_idle() -> Script:
    """Answer, then close (FIN) once the connection has been idle for ``IDLE_DROP``."""
    return (Answer(), Pause(IDLE_DROP), Close())


@dataclass
class IdleRun:
    """What one flavour's client saw over ``CALLS`` calls, ``INTERVAL`` apart."""

    attempts: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    tokens: tuple[int, int] = (0, 0)  # the retry budget's, before and after
    late: float = 0.0  # the latest a call started after its slot


async def idle_calls(flavour: Flavour, server: ScriptedSocketServer) -> IdleRun:
    """``CALLS`` GETs, one every ``INTERVAL`` seconds, on a client with default options."""
    client = make(flavour, server.url)
    budget = client.retry_budget
    assert budget is not None, "the default retry budget is on"
    found = IdleRun()
    before = budget.available
    start = time.monotonic()
    try:
        for n in range(CALLS):
            await anyio.sleep(max(0.0, start + n * INTERVAL - time.monotonic()))
            found.late = max(found.late, time.monotonic() - (start + n * INTERVAL))
            with anyio.fail_after(10):
                got = await get(client, RUN_ID)
            found.attempts.append(got.attempts)
            found.answers.append(got.parsed.run_id)
    finally:
        await close(client)
    found.tokens = (before, budget.available)
    return found


def idle_in_thread(
    flavour: Flavour, server: ScriptedSocketServer, found: dict[Flavour, IdleRun | BaseException]
) -> None:
    try:
        found[flavour] = run(flavour, idle_calls, flavour, server)
    except BaseException as exc:  # reported by the test, in the main thread
        found[flavour] = exc


@pytest.mark.timeout(THREAD_LIMIT + 30)
def test_t18_idle_connections_the_server_dropped_cost_no_attempt_and_no_token(
    figure: Figure,
) -> None:
    found: dict[Flavour, IdleRun | BaseException] = {}
    with contextlib.ExitStack() as stack:
        servers = {flavour: stack.enter_context(scripted_server()) for flavour in FLAVOURS}
        for server in servers.values():
            server.on_request(*[dropped_when_idle()] * CALLS)
        threads = [
            threading.Thread(target=idle_in_thread, args=(f, servers[f], found), name=f"idle-{f}")
            for f in FLAVOURS
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, started + THREAD_LIMIT - time.monotonic()))
        wall = time.monotonic() - started
        assert not any(thread.is_alive() for thread in threads), "a flavour hung"
        for flavour in FLAVOURS:
            result = found[flavour]
            if isinstance(result, BaseException):
                raise result
            check_idle_run(flavour, result, servers[flavour])
            figure(
                "T18",
                f"{flavour}: {CALLS} calls {INTERVAL} s apart (latest start "
                f"{result.late * 1000:.0f} ms after its slot), the server dropping each "
                f"connection after {IDLE_DROP} s idle: failed attempts 0 (attempts per call "
                f"{max(result.attempts)}), retry-budget tokens {result.tokens[0]} -> "
                f"{result.tokens[1]}, new connections {len(servers[flavour].connections)}/"
                f"{CALLS}; {wall:.0f} s wall time for the three flavours at once",
            )


def check_idle_run(flavour: Flavour, result: IdleRun, server: ScriptedSocketServer) -> None:
    assert result.attempts == [1] * CALLS, f"{flavour}: {result.attempts}"
    assert result.answers == [RUN_ID] * CALLS, flavour
    assert result.tokens[0] == result.tokens[1], f"{flavour}: tokens {result.tokens}"
    assert result.late < INTERVAL - IDLE_DROP, f"{flavour}: a call {result.late:.2f} s late"
    assert server.attempts == CALLS, f"{flavour}: the server saw {server.attempts} attempts"
    assert [r.connection for r in server.requests] == list(range(CALLS)), flavour
    closers = {c.closed_by for c in server.connections[:-1]}
    assert closers == {"server"}, f"{flavour}: idle connections closed by {closers}"
