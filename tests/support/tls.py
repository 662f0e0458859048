"""Loopback servers for the security families (T34-T39), plain or TLS, and a trustme CA.

``RecordingServer`` is an HTTP/1.1 server on a thread that records what really arrived:
every byte each connection received (after TLS decryption), every request as h11 parsed it
(an independent peer: it splits requests and headers by the RFC, not as kneo-client
meant them), the TLS handshakes that failed, and how many connections were open at once.
It answers through a handler with the shape of ``tests.loopback`` (``Request -> Response``),
so the platform emulator can sit behind it (``memory_handler(Emulator(...))`` from
``kneo_client.testing``); the default handler answers ``{}`` with 200.

``Certificates`` holds a trustme CA (its PEM written to a file, as a profile's ``ca_bundle``
names it) and server contexts for a ``localhost`` certificate, a 127.0.0.1 IP certificate
and an expired ``localhost`` certificate.
"""

from __future__ import annotations

import contextlib
import datetime
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h11
import trustme

from kneo_proto import Request, Response

__all__ = ["Certificates", "RecordingServer", "Seen", "issue_certificates", "serving"]

Handler = Callable[[Request], Response]
JOIN_TIMEOUT = 5.0
SOCKET_TIMEOUT = 5.0


def json_ok(request: Request) -> Response:
    """The default handler: 200 with an empty JSON object."""
    return Response(200, (("Content-Type", "application/json"),), b"{}")


@dataclass(frozen=True)
class Seen:
    """One request as the server's h11 parsed it.

    Attributes:
        connection: The number of the connection it came on (from 0).
        method: The method.
        target: The raw request target (path and query, as sent).
        headers: Header pairs with the names as sent.
        body: The body.
    """

    connection: int
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def headers_named(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive)."""
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]


@dataclass
class RecordingServer:
    """An HTTP/1.1 server on ``host`` (a free port) that records what it received.

    Args:
        handler: Answers each request (the request's URL uses ``url_host``).
        ssl_context: A server-side TLS context, or None for plain http.
        host: The address to listen on.
        url_host: The host name the URL uses (``localhost`` for a certificate naming it).
        max_header_bytes: h11's limit for a request head (generous: long ids are tested).
    """

    handler: Handler = json_ok
    ssl_context: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    url_host: str | None = None
    max_header_bytes: int = 1 << 20
    port: int = 0
    received: list[bytearray] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    handshake_failures: list[str] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    open_now: int = 0
    max_open: int = 0
    _listener: socket.socket | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _sockets: set[socket.socket] = field(default_factory=set)

    @property
    def url(self) -> str:
        """The server's origin, e.g. ``https://localhost:4433``."""
        scheme = "https" if self.ssl_context is not None else "http"
        host = self.url_host or self.host
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        return len(self.received) + len(self.handshake_failures)

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept_loop, "recording-accept")

    def stop(self) -> None:
        """Stop accepting, cut every open connection, join every thread."""
        self._stopping.set()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(JOIN_TIMEOUT)
        stuck = [t.name for t in self._threads if t.is_alive()]
        if self._listener is not None:
            self._listener.close()
        if stuck:
            raise RuntimeError(f"recording server threads did not stop: {stuck}")

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        number = 0
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if not ready:
                continue
            sock, _ = self._listener.accept()
            sock.settimeout(SOCKET_TIMEOUT)
            with self._lock:
                self._sockets.add(sock)
            self._spawn(self._serve, f"recording-conn-{number}", sock)
            number += 1

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)
        stream: socket.socket | None = sock
        try:
            if self.ssl_context is not None:
                stream = self._handshake(sock, self.ssl_context)
            if stream is not None:
                self._converse(stream)
        except OSError:
            pass  # the client went away
        except BaseException as exc:  # a broken handler fails the test at exit
            self.errors.append(exc)
        finally:
            with self._lock:
                self.open_now -= 1
                self._sockets.discard(sock)
                if stream is not None:
                    self._sockets.discard(stream)
            (stream or sock).close()

    def _handshake(self, sock: socket.socket, context: ssl.SSLContext) -> socket.socket | None:
        # Wrapping detaches ``sock``: track the TLS socket, so that ``stop`` can wake it.
        wrapped = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._sockets.discard(sock)
            self._sockets.add(wrapped)
        try:
            wrapped.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            with self._lock:
                self.handshake_failures.append(f"{type(exc).__name__}: {exc}")
                self._sockets.discard(wrapped)
            wrapped.close()
            return None
        return wrapped

    def _converse(self, stream: socket.socket) -> None:
        received = bytearray()
        with self._lock:
            connection = len(self.received)
            self.received.append(received)
        protocol = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_header_bytes)
        while True:
            try:
                seen = self._read_request(stream, protocol, connection, received)
            except h11.RemoteProtocolError as exc:
                with self._lock:
                    self.protocol_errors.append(str(exc))
                return
            if seen is None:
                return
            with self._lock:
                self.requests.append(seen)
            url = self.url + seen.target
            response = self.handler(Request(seen.method, url, seen.headers, seen.body))
            self._send(stream, protocol, response, seen.method)
            if protocol.our_state is h11.MUST_CLOSE:
                return
            protocol.start_next_cycle()

    def _read_request(
        self,
        stream: socket.socket,
        protocol: h11.Connection,
        connection: int,
        received: bytearray,
    ) -> Seen | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                data = stream.recv(65536)
                received += data
                protocol.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                headers = tuple(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers.raw_items()
                )
                method, target = head.method.decode("ascii"), head.target.decode("latin-1")
                return Seen(connection, method, target, headers, bytes(body))
            else:  # ConnectionClosed, PAUSED
                return None

    def _send(
        self, stream: socket.socket, protocol: h11.Connection, response: Response, method: str
    ) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if response.header("content-length") is None:
            headers.append((b"Content-Length", str(len(response.body)).encode()))
        body = b"" if method == "HEAD" else response.body
        data = protocol.send(h11.Response(status_code=response.status, headers=headers)) or b""
        data += protocol.send(h11.Data(data=body)) or b""
        data += protocol.send(h11.EndOfMessage()) or b""
        stream.sendall(data)


@contextlib.contextmanager
def serving(server: RecordingServer) -> Iterator[RecordingServer]:
    """Run ``server`` for the block; re-raise a handler's exception at the end."""
    server.start()
    failed = False
    try:
        yield server
    except BaseException:
        failed = True
        raise
    finally:
        server.stop()
        if server.errors and not failed:
            raise server.errors[0]


@dataclass(frozen=True)
class Certificates:
    """A trustme CA and what it issued.

    Attributes:
        ca_bundle: Path of the CA's PEM file (what a profile's ``ca_bundle`` names).
        localhost: A server context presenting a certificate for ``localhost``.
        ip: A server context presenting a certificate for the IP address 127.0.0.1.
        expired: A server context presenting an expired certificate for ``localhost``.
    """

    ca_bundle: str
    localhost: ssl.SSLContext
    ip: ssl.SSLContext
    expired: ssl.SSLContext


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def issue_certificates(directory: Path) -> Certificates:
    """Create a CA in ``directory`` and issue the three server certificates."""
    ca = trustme.CA()
    bundle = directory / "kneo-test-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    now = datetime.datetime.now(datetime.UTC)
    expired = ca.issue_cert(
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    return Certificates(
        ca_bundle=str(bundle),
        localhost=_server_context(ca.issue_cert("localhost")),
        ip=_server_context(ca.issue_cert("127.0.0.1")),
        expired=_server_context(expired),
    )
