"""The emulator's HTTP server on its own, against a scripted application, on asyncio and trio.

The peer is a raw socket speaking bytes (with h11 in client mode only to parse the answers),
so what is checked is what goes over the wire: keep-alive, concurrent connections, request
limits, each ``Delivery``, and graceful shutdown.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import h11
import pytest
from anyio.abc import SocketStream

from kneo_client.testing import Delivery, Reply
from kneo_client.testing._server import MAX_BODY_BYTES, EmulatorServer
from kneo_proto import Request, Response

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]
LIMIT = 5.0


@dataclass
class Scripted:
    """Answers every request with ``reply`` (a 200 echoing the path by default)."""

    reply: Callable[[Request], Reply] = field(
        default=lambda request: Reply(Response(200, (), request.target.encode()))
    )
    seen: list[Request] = field(default_factory=list)

    def handle(self, request: Request) -> Reply:
        self.seen.append(request)
        return self.reply(request)


@asynccontextmanager
async def serving(app: Scripted, grace_period: float = 2.0) -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(app, grace_period=grace_period)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        try:
            yield server
        finally:
            await server.shutdown()


async def connect(server: EmulatorServer) -> SocketStream:
    return await anyio.connect_tcp("127.0.0.1", server.port)


def get(path: str = "/v1/healthz", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_answer(stream: SocketStream, client: h11.Connection | None = None) -> Answer:
    """Parse one response from ``stream`` (``client`` keeps state across keep-alive)."""
    client = client or h11.Connection(h11.CLIENT)
    if client.our_state is h11.IDLE:
        client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        client.send(h11.EndOfMessage())
    head: h11.Response | None = None
    body = b""
    with anyio.fail_after(LIMIT):
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(await receive_or_eof(stream))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
    assert head is not None
    headers = {k.decode().lower(): v.decode() for k, v in head.headers}
    return Answer(head.status_code, headers, body)


async def receive_or_eof(stream: SocketStream) -> bytes:
    try:
        return await stream.receive()
    except anyio.EndOfStream:
        return b""


async def read_until_closed(stream: SocketStream) -> tuple[bytes, str]:
    """Read everything; return the bytes and how the stream ended: "eof" or "reset"."""
    received = b""
    with anyio.fail_after(LIMIT):
        while True:
            try:
                chunk = await stream.receive()
            except anyio.EndOfStream:
                return received, "eof"
            except anyio.BrokenResourceError:
                return received, "reset"
            received += chunk


async def test_server_keeps_the_connection_alive_and_passes_absolute_urls() -> None:
    app = Scripted()
    async with serving(app) as server, await connect(server) as stream:
        client = h11.Connection(h11.CLIENT)
        for n in range(3):
            await stream.send(get(f"/v1/runs/r{n}?limit=5", "X-Request-ID: abc\r\n"))
            answer = await read_answer(stream, client)
            assert (answer.status, answer.body) == (200, f"/v1/runs/r{n}?limit=5".encode())
            client.start_next_cycle()
        assert server.accepted == 1
    assert [r.url for r in app.seen] == [f"{server.url}/v1/runs/r{n}?limit=5" for n in range(3)]
    assert app.seen[0].header("x-request-id") == "abc"
    assert ("X-Request-ID", "abc") in app.seen[0].headers  # names keep their case


async def test_server_serves_connections_concurrently() -> None:
    app = Scripted(lambda r: Reply(Response(200, (), b"late"), delay=0.3))
    results: list[int] = []

    async def one(server: EmulatorServer) -> None:
        async with await connect(server) as stream:
            await stream.send(get())
            results.append((await read_answer(stream)).status)

    started = time.monotonic()
    async with serving(app) as server, anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one, server)
    assert results == [200] * 8
    assert time.monotonic() - started < 1.5  # 8 x 0.3 s one after the other would be 2.4 s


async def test_server_reads_the_body_and_answers_head_without_one() -> None:
    app = Scripted(lambda r: Reply(Response(201, (("X-Len", str(len(r.body))),), b"created")))
    async with serving(app) as server, await connect(server) as stream:
        await stream.send(b"POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        client = h11.Connection(h11.CLIENT)
        answer = await read_answer(stream, client)
        assert (answer.status, answer.headers["x-len"], answer.body) == (201, "5", b"created")
        await stream.send(b"HEAD /v1/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received, _ = await read_until_closed(stream)
    assert received.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"content-length: 7\r\n" in received.lower()
    assert received.endswith(b"\r\n\r\n")  # headers only
    assert app.seen[0].body == b"hello"


async def test_server_refuses_a_body_over_the_limit_with_413() -> None:
    app = Scripted()
    async with serving(app) as server:
        async with await connect(server) as stream:
            declared = MAX_BODY_BYTES + 1
            await stream.send(
                f"POST /v1/runs HTTP/1.1\r\nHost: x\r\nX-Request-ID: big\r\n"
                f"Content-Length: {declared}\r\n\r\n".encode()
            )
            received, ended = await read_until_closed(stream)
        async with await connect(server) as stream:
            chunked = b"POST /v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"a" * 256 * 1024)
            await stream.send(chunked + chunk * 5)
            chunked_received, _ = await read_until_closed(stream)
    assert received.startswith(b"HTTP/1.1 413 ")
    assert b'"code":"validation_error"' in received
    assert b"request body over 1048576 bytes" in received
    assert b'"request_id":"big"' in received
    assert ended == "eof"
    assert chunked_received.startswith(b"HTTP/1.1 413 ")
    assert app.seen == []


async def test_server_answers_a_malformed_request_with_400() -> None:
    app = Scripted()
    async with serving(app) as server, await connect(server) as stream:
        await stream.send(b"NOT HTTP AT ALL\r\n\r\n")
        received, ended = await read_until_closed(stream)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert ended == "eof"
    assert app.seen == []


def faulty(delivery: Delivery) -> Scripted:
    return Scripted(lambda r: Reply(Response(200, (), b"0123456789" * 10), delivery=delivery))


async def test_server_resets_before_the_response() -> None:
    async with (
        serving(faulty(Delivery.RESET_BEFORE_RESPONSE)) as server,
        await connect(server) as stream,
    ):
        await stream.send(get())
        assert await read_until_closed(stream) == (b"", "reset")


async def test_server_resets_in_the_middle_of_the_body() -> None:
    async with serving(faulty(Delivery.RESET_MID_BODY)) as server, await connect(server) as stream:
        await stream.send(get())
        received, ended = await read_until_closed(stream)
    assert ended == "reset"
    # The part sent before the reset may or may not be read before the RST discards it.
    assert received == b"" or b"content-length: 100\r\n" in received.lower()


async def test_server_truncates_the_body_then_closes() -> None:
    async with serving(faulty(Delivery.TRUNCATED_BODY)) as server, await connect(server) as stream:
        await stream.send(get())
        received, ended = await read_until_closed(stream)
    head, body = received.split(b"\r\n\r\n", 1)
    assert b"content-length: 100" in head.lower()
    assert (body, ended) == (b"0123456789" * 5, "eof")


async def test_server_answers_500_and_keeps_the_error_when_the_app_fails() -> None:
    def broken(request: Request) -> Reply:
        raise RuntimeError("bug in the application")

    async with serving(Scripted(broken)) as server, await connect(server) as stream:
        await stream.send(get(extra="X-Request-ID: r-1\r\n"))
        answer = await read_answer(stream)
    assert answer.status == 500
    assert answer.headers["x-request-id"] == "r-1"
    assert b"internal_error" in answer.body
    assert [str(e) for e in server.errors] == ["bug in the application"]


async def test_shutdown_lets_a_request_in_flight_finish_and_closes_idle_connections() -> None:
    app = Scripted(lambda r: Reply(Response(200, (), b"done"), delay=0.5 if "slow" in r.url else 0))
    server = EmulatorServer(app, grace_period=3.0)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        idle = await connect(server)
        await idle.send(get())
        await read_answer(idle)
        busy = await connect(server)
        await busy.send(get("/slow"))
        await anyio.sleep(0.1)  # the slow request is being handled
        started = time.monotonic()
        tg.start_soon(server.shutdown)
        answer = await read_answer(busy)
        assert (answer.status, answer.body) == (200, b"done")
        assert answer.headers["connection"] == "close"
        assert await read_until_closed(idle) == (b"", "eof")
        with pytest.raises(OSError, match="connection attempts failed"):
            await anyio.connect_tcp("127.0.0.1", server.port)
        await busy.aclose()
        await idle.aclose()
    assert time.monotonic() - started < 2.0


async def test_shutdown_cuts_off_a_request_that_outlasts_the_grace_period() -> None:
    app = Scripted(lambda r: Reply(Response(200, (), b"never"), delay=30))
    server = EmulatorServer(app, grace_period=0.2)
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        async with await connect(server) as stream:
            await stream.send(get())
            await anyio.sleep(0.05)
            tg.start_soon(server.shutdown)
            received, _ = await read_until_closed(stream)
    assert received == b""
    assert time.monotonic() - started < 2.0


async def test_server_listens_on_the_requested_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = EmulatorServer(Scripted(), port=port)
    async with anyio.create_task_group() as tg:
        assert await tg.start(server.run) == f"http://127.0.0.1:{port}"
        await server.shutdown()


async def test_a_response_h11_refuses_fails_its_connection_only() -> None:
    def bad_header(request: Request) -> Reply:
        if request.target == "/bad":
            return Reply(Response(200, (("X-Broken", "a\r\nb"),), b""))
        return Reply(Response(200, (), b"fine"))

    async with serving(Scripted(bad_header)) as server:
        async with await connect(server) as stream:
            await stream.send(get("/bad"))
            assert await read_until_closed(stream) == (b"", "eof")
        async with await connect(server) as stream:
            await stream.send(get("/good"))
            assert (await read_answer(stream)).body == b"fine"
    assert [type(e) for e in server.errors] == [h11.LocalProtocolError]
