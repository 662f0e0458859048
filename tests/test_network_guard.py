"""T40: the suite's own gates: the network guard really refuses, and no table is empty.

The guard (``tests/network_guard.py``) must refuse a non-loopback destination before the
real call: under a stand-in for the socket layer that records every call that got through,
a connect to 192.0.2.1 (TEST-NET-1) or 2001:db8::1 and a lookup of ``api.kneo.invalid`` or
``example.com`` are refused, recorded as violations, and never reach the stand-in, while
loopback passes straight to it. Then the clients themselves (asyncio, trio, blocking)
aimed at a foreign host fail with a network error, every attempt refused by the guard.

The vacuity gate: ``tests/conftest.py`` stops the run at collection when a parametrised
table is empty; its detector must see such a test, and none of the tests collected in the
session may come from one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, cast

import anyio
import pytest

from kneo_client import KneoClient, SyncKneoClient
from kneo_proto import KneoNetworkError, Profile, RetryPolicy
from tests.conftest import empty_tables
from tests.network_guard import NetworkGuard, NetworkGuardError, is_loopback_destination

pytestmark = pytest.mark.plan("T40")

FOREIGN_ADDRESSES: list[tuple[Any, ...]] = [
    ("192.0.2.1", 80),
    ("198.51.100.7", 443),
    ("2001:db8::1", 443, 0, 0),
]
FOREIGN_NAMES = ["api.kneo.invalid", "localhost.invalid", "example.com", "api.localhost"]
LOOPBACK_HOSTS = ["127.0.0.1", "127.5.5.5", "::1", "localhost", "LOCALHOST.", "::ffff:127.0.0.1"]
NOT_LOOPBACK_HOSTS = ["192.0.2.1", "10.0.0.1", "::2", "0.0.0.0", "127.0.0.1.invalid", None]
ONE_TRY = RetryPolicy(max_attempts=1)


class StandIn:
    """Records the calls that reached 'the network' (below the guard)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def connect(self, sock: socket.socket, address: Any) -> None:
        self.calls.append(f"connect {address!r}")
        raise ConnectionRefusedError("stand-in")

    def connect_ex(self, sock: socket.socket, address: Any) -> int:
        self.calls.append(f"connect_ex {address!r}")
        return 111

    def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.calls.append(f"lookup {host!r}")
        return []

    def create_connection(self, address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        self.calls.append(f"create_connection {address!r}")
        raise ConnectionRefusedError("stand-in")


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_loopback_destinations_are_recognised(host: str) -> None:
    assert is_loopback_destination(host)


@pytest.mark.parametrize("host", NOT_LOOPBACK_HOSTS)
def test_other_destinations_are_not_loopback(host: str | None) -> None:
    assert not is_loopback_destination(host)


def test_the_guard_refuses_before_the_real_call(figure: Callable[[str, str], None]) -> None:
    stand_in = StandIn()
    guard = NetworkGuard("guard-self-test")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", stand_in.connect)
        patch.setattr(socket.socket, "connect_ex", stand_in.connect_ex)
        patch.setattr(socket, "getaddrinfo", stand_in.getaddrinfo)
        patch.setattr(socket, "create_connection", stand_in.create_connection)
        guard.install(patch)  # on top of the stand-in: the stand-in is "the network"
        started = time.monotonic()
        attempts = 0
        for address in FOREIGN_ADDRESSES:
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                with pytest.raises(NetworkGuardError):
                    sock.connect(address)
                with pytest.raises(NetworkGuardError):
                    sock.connect_ex(address)
            with pytest.raises(NetworkGuardError):
                socket.create_connection(address[:2], timeout=1)
            attempts += 3
        for name in FOREIGN_NAMES:
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo(name, 443)
            attempts += 1
        took = time.monotonic() - started
        assert stand_in.calls == [], "a refused destination reached the network"
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", 9))
        socket.getaddrinfo("localhost", 9)
    assert stand_in.calls == ["connect ('127.0.0.1', 9)", "lookup 'localhost'"]
    assert len(guard.violations) == attempts
    assert all("guard-self-test" in line for line in guard.violations)
    figure(
        "T40",
        f"network guard self-test: {attempts}/{attempts} non-loopback connects and lookups "
        f"refused before the real call (0 reached the socket layer, {took * 1000:.1f} ms in "
        "all); loopback passed through",
    )


async def call_foreign(url: str) -> None:
    with anyio.fail_after(10):
        async with KneoClient(Profile(name="x", url=url, api_key="k"), retry_policy=ONE_TRY) as c:
            await c.platform.health.healthz()


def call_foreign_with(driver: str, url: str) -> None:
    if driver != "blocking":
        anyio.run(call_foreign, url, backend=driver)
        return
    with SyncKneoClient(Profile(name="x", url=url, api_key="k"), retry_policy=ONE_TRY) as client:
        client.platform.health.healthz()


@pytest.mark.parametrize("driver", ["asyncio", "trio", "blocking"])
@pytest.mark.parametrize("url", ["https://192.0.2.1", "https://api.kneo.invalid:8443"])
def test_a_client_aimed_at_a_foreign_host_is_stopped_by_the_guard(
    url: str, driver: str, network_guard_installed: NetworkGuard
) -> None:
    with network_guard_installed.expect_violations() as caught, pytest.raises(KneoNetworkError):
        call_foreign_with(driver, url)
    assert caught, "the guard did not see the attempt"
    assert network_guard_installed.violations == []


def test_no_parametrised_table_is_empty(
    request: pytest.FixtureRequest, figure: Callable[[str, str], None]
) -> None:
    class Marked:
        nodeid = "tests/drivers/test_x.py::test_y[NOTSET]"

        def iter_markers(self) -> list[pytest.Mark]:
            mark = pytest.mark.skip(reason="got empty parameter set for (x)").mark
            return [mark]

    assert empty_tables(cast("list[pytest.Item]", [Marked()])) == [Marked.nodeid]
    items = request.session.items
    parametrised = [i for i in items if getattr(i, "callspec", None) is not None]
    tables = {i.nodeid.split("[")[0] for i in parametrised}
    assert empty_tables(items) == []
    figure(
        "T40",
        f"vacuity: {len(parametrised)} parametrised tests from {len(tables)} tables "
        "collected, empty tables 0 (collection fails on one)",
    )
