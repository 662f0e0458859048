"""The private httpcore2 attributes ``kneo_drivers/_transport.py`` reads still mean what it
expects (ADR 0010).

httpcore2 offers no public handle on the connection behind a response, nor on bytes h11 holds
past it, so ``connection_of`` and ``holds_unread_bytes`` read three private attributes
(``_transport.PRIVATE_ATTRIBUTES``). These tests walk each one over a real loopback request,
for the sync and the async classes (separate code in httpcore2), so an httpcore2 release that
moves one fails here with a message naming the attribute and the release; the drivers then
warn once rather than fall back silently, which the last test checks.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import h11
import pytest

from kneo_drivers import _transport
from kneo_drivers._transport import (
    H11_STATE,
    HTTP11_CONNECTION,
    POOL_REQUEST,
    connection_of,
    holds_unread_bytes,
    httpcore,
    moved,
    timeouts,
)
from tests.support.scripted_server import (
    RUN_ID,
    ScriptedSocketServer,
    Seen,
    Send,
    Serve,
    scripted_server,
)
from tests.support.socket_subject import (
    Flavour,
    Subject,
    backend_fixture,  # noqa: F401 - a fixture
    check,
    flavour_fixture,  # noqa: F401 - a fixture
)

# A whole second response, sent in the same segment as the first: h11 keeps it unread.
PAST = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
POOL_CONNECTIONS = (httpcore.HTTPConnection, httpcore.AsyncHTTPConnection)
HTTP11_CONNECTIONS = (httpcore.HTTP11Connection, httpcore.AsyncHTTP11Connection)


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING = _Missing()


def resolve(owner: object, attribute: str, expected: type | tuple[type, ...]) -> Any:
    """``owner.attribute``, asserted to be an ``expected``, or a failure naming it."""
    value = getattr(owner, attribute, MISSING)
    assert isinstance(value, expected), moved(owner, attribute, value)
    return value


def answer_then(server: ScriptedSocketServer, extra: bytes) -> None:
    """The server's next answer, with ``extra`` bytes sent right behind it in one write."""

    def build(seen: Seen | None) -> bytes:
        return server.answer(seen) + extra

    server.on_request((Send(build), Serve()))


@asynccontextmanager
async def one_response(flavour: Flavour, url: str) -> AsyncIterator[tuple[Any, list[Any]]]:
    """A GET through a new httpcore2 pool of the flavour's colour: the response, its body
    read and not yet released (where the drivers look), and the pool's connections."""
    host = url.removeprefix("http://").encode()
    request = httpcore.Request(
        "GET", f"{url}/v1/runs/{RUN_ID}", headers=[(b"Host", host)], extensions=timeouts(5.0)
    )
    with anyio.fail_after(10):
        if flavour == "blocking":
            with httpcore.ConnectionPool(retries=0) as pool:
                response = await anyio.to_thread.run_sync(pool.handle_request, request)
                try:
                    await anyio.to_thread.run_sync(response.read)
                    yield response, pool.connections
                finally:
                    await anyio.to_thread.run_sync(response.close)
        else:
            async with httpcore.AsyncConnectionPool(retries=0) as async_pool:
                response = await async_pool.handle_async_request(request)
                try:
                    await response.aread()
                    yield response, async_pool.connections
                finally:
                    await response.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("extra", [b"", PAST], ids=["clean", "bytes past the response"])
async def test_every_private_read_resolves_on_the_installed_httpcore2(
    flavour: Flavour, extra: bytes
) -> None:
    with scripted_server() as server:
        answer_then(server, extra)
        async with one_response(flavour, server.url) as (response, connections):
            pool_request = resolve(response.stream, POOL_REQUEST, object)
            connection = resolve(pool_request, "connection", POOL_CONNECTIONS)
            assert connections == [connection]
            http11 = resolve(connection, HTTP11_CONNECTION, HTTP11_CONNECTIONS)
            state = resolve(http11, H11_STATE, h11.Connection)
            assert state.trailing_data == (extra, False)
            # The helpers take the same paths (a warning would be an error here).
            assert connection_of(response) is connection
            assert holds_unread_bytes(connection) is bool(extra)


@pytest.mark.anyio
async def test_a_connection_with_bytes_past_its_response_is_closed_not_reused(
    flavour: Flavour,
) -> None:
    """The call itself succeeds (its answer was right), but the connection would read the
    extra bytes as the next call's answer: the driver closes it, and the next call opens a
    new one, at its first attempt."""
    with scripted_server() as server:
        subject = Subject(flavour, server.url, server=server, max_connections=1)
        try:
            answer_then(server, PAST)
            first = await subject.call("GET")
            check(first, server, error=None, attempts=1)
            [seen] = server.requests_with(first.request_id)
            closed = server.connections[seen.connection]
            assert await anyio.to_thread.run_sync(closed.ended.wait, 1.0)
            assert closed.closed_by == "client"
            second = await subject.call("GET")
            check(second, server, error=None, attempts=1)
            assert server.requests_with(second.request_id)[0].connection > seen.connection
            assert await subject.settled() == []
        finally:
            await subject.aclose()


def test_a_private_read_that_no_longer_resolves_warns_once_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_transport, "_warned", set())
    version = httpcore.__version__
    not_from_a_pool = httpcore.Response(200, content=b"{}")
    with pytest.warns(RuntimeWarning, match=rf"httpcore2 {version}: .*\._pool_request\b"):
        assert connection_of(not_from_a_pool) is None
    unconnected = httpcore.HTTPConnection(httpcore.Origin(b"http", b"127.0.0.1", 9))
    with pytest.warns(RuntimeWarning, match=rf"httpcore2 {version}: HTTPConnection\._connection"):
        assert holds_unread_bytes(unconnected) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert connection_of(not_from_a_pool) is None  # once: no second warning
        assert holds_unread_bytes(unconnected) is False
