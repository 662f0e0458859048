"""Drivers over a caller's httpx client: ``HttpxAsyncDriver`` for an ``httpx.AsyncClient``
(on asyncio or trio) and ``HttpxBlockingDriver`` for an ``httpx.Client``.

Contract: the other drivers' (``AsyncLoop``, ``BlockingLoop``): one exchange per ``Send``,
the whole body read raw (never decoded) up to the core's cap, no retry, no redirect
followed, no parsing, no decision; only httpx's transport exceptions are caught and a
cancellation propagates after the call is told it was abandoned. The request is built
from the ``Send`` alone (its absolute URL, headers and body; ``send.timeout`` for every
phase), so the client's ``base_url``, default headers, cookies and params do not reach it;
its transport, proxies, pool limits, TLS settings, ``auth`` and event hooks do. The client
is the caller's: closing a driver leaves it open, and its connections follow httpx's rules,
not kneo-client's: an ``httpx.AsyncClient`` belongs to the event loop it was first used in.
In a child of ``os.fork()`` the driver refuses every call before anything is sent
(``KneoUsageError``): the client's pooled connections would be shared with the parent.

The async driver cuts each attempt off at the call's deadline; the blocking one cannot
interrupt a read, so it checks the deadline between body chunks (each read is bounded by
``send.timeout``, which is already cut to what the deadline leaves).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import anyio
import httpx

from kneo_drivers._transport import (
    _KINDS as HTTPCORE_KINDS,
    _PHASES as HTTPCORE_PHASES,
    Kinds,
    Phases,
    failure_of,
    timeouts,
)
from kneo_drivers.blocking import read
from kneo_drivers.contract import HttpReply, ReadGuard, TransportFailure
from kneo_drivers.loops import AsyncLoop, BlockingLoop
from kneo_proto import FailureKind, Send

__all__ = ["KINDS", "PHASES", "HttpxAsyncDriver", "HttpxBlockingDriver", "to_httpx_request"]

# httpx names its transport exceptions (and nests them) as httpcore does: httpcore2's table,
# with httpx's classes. (``tests/drivers/test_httpx_driver.py`` lists every mapping.)
KINDS: Kinds = tuple((getattr(httpx, cls.__name__), kind) for cls, kind in HTTPCORE_KINDS)
PHASES: Phases = tuple((getattr(httpx, cls.__name__), phase) for cls, phase in HTTPCORE_PHASES)


def to_httpx_request(send: Send) -> httpx.Request:
    """The ``Send``'s request as httpx takes it (httpx adds ``Host``), with phase timeouts."""
    request = send.request
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        content=request.body,
        extensions=timeouts(send.timeout),
    )


class HttpxAsyncDriver(AsyncLoop):
    """Executes calls over a caller's ``httpx.AsyncClient``, on asyncio or trio.

    Args:
        client: The client; ``aclose`` cuts running calls short and leaves it open.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__()
        self.client = client

    async def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Send ``send.request`` once with the client; return the reply or the failure."""
        try:
            response = await self.client.send(
                to_httpx_request(send), stream=True, follow_redirects=False
            )
            try:
                loaded = _loaded(response)
                chunks = response.aiter_raw() if loaded is None else _one(loaded)
                body = guard.check_head(response.http_version) or await _read(chunks, guard)
            finally:
                # Shielded: the outcome is read, and the connection must go back.
                with anyio.CancelScope(shield=True), suppress(httpx.TransportError):
                    await response.aclose()
        except httpx.TransportError as exc:
            return failure_of(exc, KINDS, PHASES)
        return _reply(response, body)

    async def discard(self, connection: Any) -> None:
        """Make the pool drop the connection the core distrusts (``_condemn``)."""
        _condemn(connection)


class HttpxBlockingDriver(BlockingLoop):
    """Executes calls over a caller's ``httpx.Client``; as thread-safe as the client.

    Args:
        client: The client; ``close`` ends calls in other threads (before their next
            attempt) and leaves it open.
    """

    def __init__(self, client: httpx.Client) -> None:
        super().__init__()
        self.client = client

    def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Send ``send.request`` once with the client; return the reply or the failure."""
        try:
            response = self.client.send(to_httpx_request(send), stream=True, follow_redirects=False)
            try:
                loaded = _loaded(response)
                chunks = response.iter_raw() if loaded is None else [loaded]
                body = guard.check_head(response.http_version) or read(chunks, guard)
            finally:
                with suppress(httpx.TransportError):
                    response.close()
        except httpx.TransportError as exc:
            return failure_of(exc, KINDS, PHASES)
        return _reply(response, body)

    def discard(self, connection: Any) -> None:
        """Make the pool drop the connection the core distrusts (``_condemn``)."""
        _condemn(connection)


def _reply(response: httpx.Response, body: bytes | FailureKind) -> HttpReply:
    return HttpReply(
        response.status_code,
        response.headers.raw,
        body,
        response.http_version,
        connection=response,
    )


def _loaded(response: httpx.Response) -> bytes | None:
    """The body, if the transport answered with it already read (``httpx.MockTransport``,
    respx): no stream is left to read it from.
    """
    try:
        return response.content
    except httpx.ResponseNotRead:
        return None


async def _one(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


async def _read(body: AsyncIterator[bytes], guard: ReadGuard) -> bytes | FailureKind:
    """All of ``body``, or the kind ``guard`` stopped the read with.

    Once stopped, the next read is cancelled, not the iteration abandoned: httpx nests async
    generators, and closing the outer one leaves the inner ones for trio to finalize with a
    ``ResourceWarning`` (encode/httpx#3686). The cancellation unwinds them all; the little
    that httpx already holds in memory is skipped on the way.
    """
    chunks: list[bytes] = []
    size = 0
    stop: FailureKind | None = None
    with anyio.CancelScope() as scope:
        async for chunk in body:
            size += len(chunk)
            if stop is None and (stop := guard.check_body(size)) is not None:
                scope.cancel()
            elif stop is None:
                chunks.append(chunk)
    return stop or b"".join(chunks)


def _condemn(response: httpx.Response) -> None:
    """Make the pool drop the HTTP/1.x connection that carried ``response``.

    httpx gives no handle on the connection; httpcore's ``network_stream`` extension reaches
    its socket. Shut down, the socket reads as closed by the server when the pool next looks
    at the connection, so the pool closes it instead of reusing it. (A custom transport
    without that extension keeps its own reuse rules.)
    """
    stream = response.extensions.get("network_stream")
    if stream is None or response.http_version == "HTTP/2":  # one connection, many streams
        return
    sock = stream.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
