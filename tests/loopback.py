"""A real HTTP/1.1 server on 127.0.0.1:0 that hands each request to a plain handler.

The handler has the shape the in-memory drivers take, ``Callable[[Request], Response]``, so
one handler (the emulator's ``memory_handler``, say) serves the memory drivers and the real
ones alike. A handler raising ``SimulatedFailure`` makes the server drop the connection
without answering, which a real driver sees as a transport failure.

The server runs ``http.server.ThreadingHTTPServer`` (keep-alive, one thread per connection)
in a background thread. Leaving ``serve(...)`` stops accepting, shuts every open connection
down and joins every thread within a bounded time; a handler that raised anything else is
re-raised there, so a broken handler fails the test instead of hiding behind a 500.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kneo_drivers.memory import SimulatedFailure
from kneo_proto import Request, Response

__all__ = ["Handler", "closed_port_url", "serve"]

Handler = Callable[[Request], Response]

JOIN_TIMEOUT = 5.0


class _Server(ThreadingHTTPServer):
    """Tracks its connections and threads so that closing it is bounded and complete."""

    daemon_threads = True
    block_on_close = False
    # The default backlog of 5 drops connects under churn; the client then waits ~1 s.
    request_queue_size = 128

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.handler = handler
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connection_threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"loopback-conn-{client_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._connection_threads = [t for t in self._connection_threads if t.is_alive()]
            self._connection_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-exchange is normal here; say nothing."""

    def close_connections(self) -> None:
        """Wake every connection thread blocked on a read, then wait for them all."""
        with self._lock:
            connections = list(self._connections)
            threads = list(self._connection_threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            raise RuntimeError(f"loopback threads did not stop: {stuck}")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are written apart; with Nagle on, each answer would wait for the
    # client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            url=self.server.url + self.path,
            headers=tuple((name, value) for name, value in self.headers.items()),
            body=body,
        )
        try:
            response = self.server.handler(request)
        except SimulatedFailure:
            self.close_connection = True
            return
        except Exception as exc:
            self.server.errors.append(exc)
            self.close_connection = True
            return
        self.send_response_only(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.header("content-length") is None:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


@contextlib.contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port) and yield the base URL.

    Raises:
        Exception: on exit, the first exception the handler raised (other than
            ``SimulatedFailure``), when the body itself did not fail.
    """
    server = _Server(handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-accept"
    )
    thread.start()
    failed = False
    try:
        yield server.url
    except BaseException:
        failed = True
        raise
    finally:
        server.shutdown()
        thread.join(JOIN_TIMEOUT)
        server.server_close()
        server.close_connections()
        if server.errors and not failed:
            raise server.errors[0]


def closed_port_url() -> str:
    """Return the base URL of a 127.0.0.1 port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
