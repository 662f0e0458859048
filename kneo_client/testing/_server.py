"""A real HTTP/1.1 server for the emulator: h11 over anyio sockets, on asyncio or trio.

Each request becomes a ``kneo_proto.Request`` whose URL carries the server's own origin; the
application's ``handle`` answers it with a ``Reply``, which the server carries out: it waits
``delay`` seconds (real time), then delivers the response whole, resets the connection
(``SO_LINGER`` 0, so the peer sees an RST), or declares the full ``Content-Length`` and sends
part of the body before closing.

Invariants: connections are kept alive between requests (HTTP/1.1); a request body over
``MAX_BODY_BYTES`` gets 413 and the connection closes; ``handle`` is called on the event loop,
one request at a time, so the application needs no locking against the server. Shutdown is
graceful and bounded: the listener closes first, idle connections close at once, a
connection mid-request finishes it (answering with ``Connection: close``) unless
``grace_period`` runs out, when it is cut off.
"""

from __future__ import annotations

import contextlib
import http
import logging
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import h11
import msgspec
from anyio.abc import SocketAttribute, SocketStream
from anyio.from_thread import start_blocking_portal

from kneo_client.testing._emulator import Emulator
from kneo_client.testing._reply import Delivery, Reply
from kneo_proto import Profile, Request, Response

__all__ = [
    "MAX_BODY_BYTES",
    "Application",
    "EmulatorServer",
    "RunningEmulator",
    "serve_emulator",
    "serve_emulator_async",
]

logger = logging.getLogger("kneo_client.testing.server")

MAX_BODY_BYTES = 1 << 20
MAX_HEADER_BYTES = 64 << 10
RECEIVE_BYTES = 64 << 10
GRACE_PERIOD = 5.0
# How long a closing connection waits for the client to close its side, so that the last
# bytes are delivered before our socket goes away (a "lingering close", as servers do).
LINGER_SECONDS = 1.0
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


class Application(Protocol):
    """What the server serves: the emulator, or anything answering requests the same way."""

    def handle(self, request: Request) -> Reply:
        """Answer ``request``."""
        ...


def _error_response(status: int, message: str, request: h11.Request | None) -> Response:
    """Return a ``validation_error`` in the spec's ``ErrorResponse``, echoing ``X-Request-ID``."""
    headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
    detail = {"code": "validation_error", "message": message}
    rid = _header(request, b"x-request-id") if request is not None else None
    if rid is not None:
        headers.append(("X-Request-ID", rid))
        detail["request_id"] = rid
    return Response(status, tuple(headers), msgspec.json.encode({"error": detail}))


class _Rejected(Exception):
    """A request the server answers itself, without the application."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(eq=False)
class _Connection:
    stream: SocketStream
    protocol: h11.Connection = field(
        default_factory=lambda: h11.Connection(
            h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES
        )
    )
    idle: anyio.CancelScope | None = None

    async def receive(self) -> bytes:
        """Return the next bytes from the client; b"" once it closed or reset."""
        try:
            return await self.stream.receive(RECEIVE_BYTES)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return b""

    async def send(self, *events: h11.Response | h11.Data | h11.EndOfMessage) -> None:
        """Send ``events`` in one write (no Nagle delay between headers and body)."""
        await self.stream.send(b"".join(self.protocol.send(event) or b"" for event in events))

    async def reset(self) -> None:
        """Abort the connection: the client sees a connection reset."""
        with contextlib.suppress(OSError):
            self.stream.extra(SocketAttribute.raw_socket).setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, _RESET
            )
        await self.stream.aclose()

    async def close(self) -> None:
        """Close gracefully: end our side, then wait (bounded) for the client to close."""
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await self.stream.send_eof()
            with anyio.move_on_after(LINGER_SECONDS):
                while await self.receive():
                    pass
        await self.stream.aclose()


class EmulatorServer:
    """Serves an ``Application`` on ``host:port`` (port 0 picks a free one).

    Run ``run`` in a task group (``await task_group.start(server.run)`` returns once it
    listens), then call ``shutdown``. ``serve_emulator_async`` does both.

    Attributes:
        errors: Exceptions the application raised (each answered with a 500), and any that
            broke a connection.
        accepted: How many connections the server has accepted.
    """

    def __init__(
        self,
        app: Application,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        grace_period: float = GRACE_PERIOD,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.grace_period = grace_period
        self.errors: list[Exception] = []
        self.accepted = 0
        self._connections: set[_Connection] = set()
        self._accepting = anyio.CancelScope()
        self._serving = anyio.CancelScope()
        self._closing = False
        self._drained: anyio.Event | None = None
        self._listener: anyio.abc.Listener[SocketStream] | None = None

    @property
    def url(self) -> str:
        """The server's origin, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def listen(self) -> str:
        """Open the listening socket (``run`` does it when not done yet); return the URL.

        Raises:
            OSError: when the address cannot be listened on (a port in use, for example).
        """
        if self._listener is None:
            self._listener = await anyio.create_tcp_listener(
                local_host=self.host, local_port=self.port
            )
            self.port = self._listener.extra(SocketAttribute.local_port)
        return self.url

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and serve until ``shutdown``; report the URL once listening."""
        await self.listen()
        listener, self._listener = self._listener, None
        assert listener is not None
        with self._serving:
            async with anyio.create_task_group() as connections:
                connections.start_soon(self._accept, listener, connections)
                task_status.started(self.url)

    async def _accept(
        self, listener: anyio.abc.Listener[SocketStream], tg: anyio.abc.TaskGroup
    ) -> None:
        async with listener:
            with self._accepting:
                await listener.serve(self._serve_connection, task_group=tg)

    async def shutdown(self) -> None:
        """Stop accepting, close idle connections, let busy ones finish (bounded)."""
        self._closing = True
        self._accepting.cancel()
        self._drained = anyio.Event()
        for conn in list(self._connections):
            if conn.idle is not None:
                conn.idle.cancel()
        if not self._connections:
            self._drained.set()
        with anyio.move_on_after(self.grace_period):
            await self._drained.wait()
        self._serving.cancel()

    async def _serve_connection(self, stream: SocketStream) -> None:
        conn = _Connection(stream)
        self.accepted += 1
        self._connections.add(conn)
        try:
            await self._converse(conn)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the client went away mid-exchange
        except Exception as exc:  # a response h11 cannot send, say: fail this connection only
            logger.exception("the emulator's server failed on a connection")
            self.errors.append(exc)
        finally:
            self._connections.discard(conn)
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            if self._drained is not None and not self._connections:
                self._drained.set()

    async def _converse(self, conn: _Connection) -> None:
        while True:
            try:
                request = await self._read_request(conn)
            except _Rejected as rejected:
                await self._respond(conn, rejected.response, "GET", close=True)
                await conn.close()
                return
            if request is None:
                return
            reply = self._answer(request)
            if reply.delay > 0:
                await anyio.sleep(reply.delay)
            if not await self._deliver(conn, reply, request.method):
                return
            conn.protocol.start_next_cycle()

    def _answer(self, request: Request) -> Reply:
        try:
            return self.app.handle(request)
        except Exception as exc:
            logger.exception("the emulator failed on %s %s", request.method, request.target)
            self.errors.append(exc)
            rid = request.header("x-request-id")
            headers = (("X-Request-ID", rid),) if rid else ()
            body = {"error": {"code": "internal_error", "message": f"emulator error: {exc!r}"}}
            return Reply(Response(500, headers, msgspec.json.encode(body)))

    async def _deliver(self, conn: _Connection, reply: Reply, method: str) -> bool:
        """Carry out ``reply``; return whether the connection stays open."""
        response = reply.response
        if reply.delivery is Delivery.RESET_BEFORE_RESPONSE:
            await conn.reset()
            return False
        if reply.delivery is Delivery.NORMAL:
            close = self._closing or conn.protocol.their_state is not h11.DONE
            await self._respond(conn, response, method, close=close)
            if conn.protocol.our_state is h11.MUST_CLOSE or close:
                await conn.close()
                return False
            return True
        part = response.body[: len(response.body) // 2]
        await conn.send(_head(response, close=True), h11.Data(data=part))
        if reply.delivery is Delivery.RESET_MID_BODY:
            await conn.reset()
        else:  # TRUNCATED_BODY
            await conn.close()
        return False

    async def _respond(
        self, conn: _Connection, response: Response, method: str, *, close: bool
    ) -> None:
        if conn.protocol.our_state not in {h11.IDLE, h11.SEND_RESPONSE}:
            return
        body = b"" if method == "HEAD" else response.body
        await conn.send(_head(response, close=close), h11.Data(data=body), h11.EndOfMessage())

    async def _read_request(self, conn: _Connection) -> Request | None:
        """Read one request; None when the client closed (or the server is closing)."""
        try:
            event = await self._next_event(conn)
            if not isinstance(event, h11.Request):
                return None
            _check_declared_length(event)
            body = bytearray()
            while not isinstance(chunk := await self._next_event(conn), h11.EndOfMessage):
                if not isinstance(chunk, h11.Data):
                    return None
                body += chunk.data
                if len(body) > MAX_BODY_BYTES:
                    raise _Rejected(_too_large(event))
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            raise _Rejected(_error_response(status, f"malformed request: {exc}", None)) from None
        return Request(
            method=event.method.decode("ascii"),
            url=self.url + event.target.decode("latin-1"),
            headers=tuple(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
            ),
            body=bytes(body),
        )

    async def _next_event(self, conn: _Connection) -> object:
        while (event := conn.protocol.next_event()) is h11.NEED_DATA:
            if conn.protocol.their_state is h11.IDLE and not conn.protocol.trailing_data[0]:
                data = await self._receive_idle(conn)
            else:
                data = await conn.receive()
            conn.protocol.receive_data(data)
        return event

    async def _receive_idle(self, conn: _Connection) -> bytes:
        """Wait for a new request; shutdown may end the wait (b"": no more requests)."""
        if self._closing:
            return b""
        with anyio.CancelScope() as conn.idle:
            try:
                return await conn.receive()
            finally:
                conn.idle = None
        return b""


def _head(response: Response, *, close: bool) -> h11.Response:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    if response.header("content-length") is None:
        headers.append((b"Content-Length", str(len(response.body)).encode()))
    if close:
        headers.append((b"Connection", b"close"))
    try:
        reason = http.HTTPStatus(response.status).phrase.encode()
    except ValueError:
        reason = b""
    return h11.Response(status_code=response.status, headers=headers, reason=reason)


def _header(request: h11.Request, name: bytes) -> str | None:
    # h11 lowercases the names it hands out in ``headers``.
    for key, value in request.headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _check_declared_length(request: h11.Request) -> None:
    # Refuse before reading: h11 has already checked that Content-Length is a number.
    declared = _header(request, b"content-length")
    if declared is not None and int(declared) > MAX_BODY_BYTES:
        raise _Rejected(_too_large(request))


def _too_large(request: h11.Request) -> Response:
    message = f"request body over {MAX_BODY_BYTES} bytes"
    return _error_response(413, message, request)


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    """An emulator being served over HTTP on 127.0.0.1.

    Attributes:
        url: The server's base URL (``http://127.0.0.1:<port>``).
        api_key: A key with full access.
        read_only_key: A key that may read but gets 403 on every mutation.
        emulator: The emulator behind the server: its clock, faults and counters.
        server: The server itself (its ``errors``, for example).
    """

    url: str
    api_key: str = field(repr=False)
    read_only_key: str = field(repr=False)
    emulator: Emulator
    server: EmulatorServer = field(repr=False)

    def profile(
        self, *, read_only: bool = False, timeout: float = 10.0, strict_responses: bool = True
    ) -> Profile:
        """Return a client profile for this server, with the full or the read-only key.

        The emulator answers exactly as ``spec/`` says, so its clients validate every
        response in full by default (``strict_responses``): a test then also catches a
        response the tolerant default would let through.
        """
        key = self.read_only_key if read_only else self.api_key
        return Profile(
            name="emulator",
            url=self.url,
            api_key=key,
            timeout=timeout,
            strict_responses=strict_responses,
        )


@contextlib.asynccontextmanager
async def serve_emulator_async(
    emulator: Emulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    grace_period: float = GRACE_PERIOD,
) -> AsyncIterator[RunningEmulator]:
    """Serve ``emulator`` (a new one by default) in the current event loop (asyncio or trio).

    Example::

        async with serve_emulator_async() as running:
            async with KneoClient(running.profile()) as client:
                await client.platform.health.readyz()

    Args:
        emulator: The emulator to serve; ``Emulator()`` when None.
        host: The address to listen on.
        port: The port; 0 picks a free one.
        grace_period: Seconds that requests still in flight at exit may take to finish.

    Raises:
        Exception: on exit, the first exception the emulator raised while answering (each was
            answered with a 500), unless the body itself raised.
    """
    app = emulator if emulator is not None else Emulator()
    server = EmulatorServer(app, host=host, port=port, grace_period=grace_period)
    await server.listen()  # outside the task group: a port in use raises a plain OSError
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        url = await tg.start(server.run)
        try:
            yield RunningEmulator(url, app.api_key, app.read_only_key, app, server)
        except Exception as exc:  # re-raised below, outside the task group, so not wrapped
            failure = exc
        finally:
            with anyio.CancelScope(shield=True):
                await server.shutdown()
    if failure is not None:
        raise failure
    if server.errors:
        raise server.errors[0]


@contextlib.contextmanager
def serve_emulator(
    emulator: Emulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    grace_period: float = GRACE_PERIOD,
    backend: str = "asyncio",
) -> Iterator[RunningEmulator]:
    """Serve ``emulator`` from a background thread with its own event loop.

    Example::

        with serve_emulator() as running, SyncKneoClient(running.profile()) as client:
            client.platform.health.readyz()

    Args:
        emulator: The emulator to serve; ``Emulator()`` when None.
        host: The address to listen on.
        port: The port; 0 picks a free one.
        grace_period: Seconds that requests still in flight at exit may take to finish.
        backend: The server thread's event loop, ``"asyncio"`` or ``"trio"``.

    Raises:
        Exception: as ``serve_emulator_async`` does.
    """
    serving = serve_emulator_async(emulator, host=host, port=port, grace_period=grace_period)
    with (
        start_blocking_portal(backend) as portal,
        portal.wrap_async_context_manager(serving) as running,
    ):
        yield running
