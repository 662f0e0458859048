"""``ScriptedSocketServer``: a raw-socket HTTP/1.1 peer on 127.0.0.1 that misbehaves on cue.

In the style of urllib3's ``SocketDummyServerTestCase``: a thread owns a listening socket on
``127.0.0.1:0`` and one thread serves each connection. A test queues *scripts* (tuples of
steps: bytes to send, pauses, a drip, FIN, half-close, RST through ``SO_LINGER`` 0, an
endless stream) to run either right after a connection is accepted (before the request is
read) or right after the next request is read. With no script queued, a request gets a
well-formed answer from a tiny Kneo platform: ``GET /v1/runs/{id}``, ``POST /v1/runs``
(an idempotency ledger: a key seen before is replayed, never executed again) and
``PATCH /v1/runs/{id}`` (executed every time it arrives).

What the server observes is the oracle of the socket tests:
- ``attempts``: requests read, plus connections a script broke before reading anything (an
  attempt the client made that never reached the application);
- every request read (method, target, headers, body, connection number);
- ``executions``: runs created per request ID (one logical call: a retry under a new key
  would create a second), ``patches``: PATCHes received per request ID;
- bytes received and sent, connections accepted, and for each connection who closed it
  first (a faulted connection must end closed: by the script, or by the client discarding
  it).

Nothing here can hang a test: every socket operation polls a quit event in 50 ms slices,
each connection has a guard deadline (``GUARD``) after which it is closed, and ``close()``
joins every thread within a bounded time or raises.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

__all__ = [
    "GUARD",
    "RUN_ID",
    "SPEC_ID",
    "Answer",
    "Close",
    "Connection",
    "Drip",
    "Fin",
    "Pause",
    "Read",
    "Reset",
    "Script",
    "ScriptedSocketServer",
    "Seen",
    "Send",
    "Serve",
    "Step",
    "Stream",
    "ok_body",
    "response_bytes",
    "scripted_server",
]

GUARD = 20.0  # no connection lives longer than this, whatever its script says
JOIN_TIMEOUT = 5.0
SLICE = 0.05  # every blocking socket operation wakes this often to look at the quit event
MAX_HEAD = 64 * 1024
RUN_ID = "run-0001"
SPEC_ID = "spec-1"
CREATED_AT = "2025-06-01T12:00:00Z"


@dataclass(frozen=True, slots=True)
class Seen:
    """A request the server read in full."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# The bytes a step sends: fixed, or built from the request just read (None before any).
Payload = bytes | Callable[["Seen | None"], bytes]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` at once."""

    data: Payload


@dataclass(frozen=True, slots=True)
class Drip:
    """Send ``data`` ``chunk`` bytes at a time, one chunk every ``interval`` seconds."""

    data: Payload
    interval: float
    chunk: int = 1


@dataclass(frozen=True, slots=True)
class Stream:
    """Send ``chunk`` again and again until the client goes away (or ``limit`` bytes)."""

    chunk: bytes
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """Stay idle for ``seconds``; ends early when the client closes the connection."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Read:
    """Read one request (the only way an on-accept script reads before acting)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Send the platform's well-formed answer to the request just read."""

    close: bool = False


@dataclass(frozen=True, slots=True)
class Serve:
    """Go (back) to serving requests on this connection: keep-alive."""


@dataclass(frozen=True, slots=True)
class Fin:
    """Half-close: shut down the sending side, keep reading until the client closes."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection (a FIN after whatever was sent)."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Abort the connection with an RST (``SO_LINGER`` on, 0 s, then close)."""


Step = Send | Drip | Stream | Pause | Read | Answer | Serve | Fin | Close | Reset
Script = tuple[Step, ...]
Closer = Literal["server", "client", "guard"]


def response_bytes(
    status: int,
    body: bytes,
    headers: Sequence[tuple[str, str]] = (),
    *,
    reason: str = "OK",
    length: bool = True,
) -> bytes:
    """An HTTP/1.1 response: status line, headers (plus Content-Length), body."""
    head = [f"HTTP/1.1 {status} {reason}".encode()]
    head += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    if length:
        head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _run_status(run_id: str) -> dict[str, object]:
    return {
        "run_id": run_id,
        "spec_id": SPEC_ID,
        "status": "running",
        "environment": "dev",
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
    }


def ok_body(method: str, run_id: str = RUN_ID) -> bytes:
    """The JSON body of a well-formed answer to ``method`` (what the client decodes)."""
    if method == "POST":
        return msgspec.json.encode({"run_id": run_id, "status": "queued", "created_at": CREATED_AT})
    if method == "PATCH":
        return msgspec.json.encode({"run_id": run_id, "patched": True})
    return msgspec.json.encode(_run_status(run_id))


@dataclass(eq=False)
class Connection:
    """What the server saw on one connection."""

    number: int
    requests: int = 0
    closed_by: Closer | None = None
    ended: threading.Event = field(default_factory=threading.Event)


class _Stop(Exception):
    """The client went away, the guard expired, or the server is quitting."""


class ScriptedSocketServer:
    """A scripted HTTP peer on 127.0.0.1; use ``scripted_server()`` to run one.

    Args:
        keep_alive: Whether default answers keep the connection open (else each default
            answer carries ``Connection: close`` and the server closes after it).
        guard: Seconds after which any connection is closed, whatever its script.
        listener: A bound socket to listen on (e.g. one whose port refused connections
            until now); by default a new one on a free port.
    """

    def __init__(
        self,
        *,
        keep_alive: bool = True,
        guard: float = GUARD,
        listener: socket.socket | None = None,
    ) -> None:
        self.keep_alive = keep_alive
        self.guard = guard
        self.quit = threading.Event()
        self._lock = threading.Lock()
        self._on_accept: deque[Script] = deque()
        self._on_request: deque[Script] = deque()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        if listener is None:
            listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        else:
            listener.listen(128)
        self._listener = listener
        self._listener.settimeout(SLICE)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # What the server observed.
        self.attempts = 0
        self.connections: list[Connection] = []
        self.requests: list[Seen] = []
        self.executions: Counter[str] = Counter()
        self.patches: Counter[str] = Counter()
        self.bytes_received = 0
        self.bytes_sent = 0
        self.errors: list[BaseException] = []
        self._runs: dict[str, str] = {}
        self._idle: dict[Connection, socket.socket] = {}
        self._accepting = threading.Thread(target=self._accept_loop, name="scripted-accept")

    # -- what a test calls ----------------------------------------------------------------

    def on_accept(self, *scripts: Script) -> None:
        """Queue scripts for the next connections, run before anything is read."""
        with self._lock:
            self._on_accept.extend(scripts)

    def on_request(self, *scripts: Script) -> None:
        """Queue scripts for the next requests, run once each request is read."""
        with self._lock:
            self._on_request.extend(scripts)

    def clear(self) -> None:
        """Drop every queued script."""
        with self._lock:
            self._on_accept.clear()
            self._on_request.clear()

    def requests_with(self, request_id: str | None) -> list[Seen]:
        """The requests read that carried ``X-Request-ID: request_id``."""
        with self._lock:
            return [r for r in self.requests if r.header("x-request-id") == request_id]

    def run_for(self, key: str) -> str | None:
        """The run a keyed POST created, or None if no request with that key arrived."""
        with self._lock:
            return self._runs.get(key)

    def open_connections(self) -> list[Connection]:
        """Connections not yet closed by either side."""
        with self._lock:
            return [c for c in self.connections if not c.ended.is_set()]

    def waiting(self) -> set[Connection]:
        """Connections kept alive, waiting for their next request."""
        with self._lock:
            return set(self._idle)

    def close_idle(self, count: int = 1, timeout: float = 1.0) -> int:
        """Close (FIN) the connections waiting for their next request, once ``count`` are
        waiting (within ``timeout``); return when they are closed.

        Returns:
            How many connections were closed.
        """
        until = time.monotonic() + timeout
        while True:
            with self._lock:
                idle = list(self._idle.items())
                if len(idle) >= count or time.monotonic() > until:
                    for connection, _ in idle:
                        connection.closed_by = "server"
                    break
            time.sleep(0.001)
        for _, sock in idle:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for connection, _ in idle:
            connection.ended.wait(timeout)
        return len(idle)

    def start(self) -> None:
        """Start accepting connections."""
        self._accepting.start()

    def close(self) -> None:
        """Stop accepting, end every connection and join every thread (bounded)."""
        self.quit.set()
        self._accepting.join(JOIN_TIMEOUT)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        stuck = [t.name for t in threads if t.is_alive()] + (
            ["scripted-accept"] if self._accepting.is_alive() else []
        )
        if stuck:
            raise RuntimeError(f"scripted server threads did not stop: {stuck}")

    # -- accepting ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self.quit.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(SLICE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                connection = Connection(len(self.connections))
                self.connections.append(connection)
                self._sockets.add(sock)
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(sock, connection),
                    name=f"scripted-conn-{connection.number}",
                    daemon=True,
                )
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    # -- one connection -------------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket, connection: Connection) -> None:
        peer = _Peer(self, sock, connection, time.monotonic() + self.guard)
        try:
            peer.run()
        except Exception as exc:  # a bug in the harness: fail the test at close
            self.errors.append(exc)
        finally:
            with self._lock:
                self._sockets.discard(sock)
                self._idle.pop(connection, None)
            with contextlib.suppress(OSError):
                sock.close()
            connection.ended.set()

    def _next_accept_script(self) -> Script | None:
        with self._lock:
            return self._on_accept.popleft() if self._on_accept else None

    def _next_request_script(self) -> Script | None:
        with self._lock:
            return self._on_request.popleft() if self._on_request else None

    def _record(self, seen: Seen) -> None:
        """Keep the request and apply its side effect (as a platform would on arrival)."""
        with self._lock:
            self.attempts += 1
            self.requests.append(seen)
            key = seen.header("idempotency-key")
            if seen.method == "POST" and key is not None and key not in self._runs:
                # A key seen for the first time executes: a run is created for the call.
                self.executions[seen.header("x-request-id") or ""] += 1
                self._runs[key] = f"run-{len(self._runs) + 2:04d}"
            if seen.method == "PATCH":
                self.patches[seen.header("x-request-id") or ""] += 1

    def _count_unread_attempt(self) -> None:
        with self._lock:
            self.attempts += 1

    def answer(self, seen: Seen | None, *, close: bool = False) -> bytes:
        """The platform's answer to ``seen`` (echoing its request ID)."""
        if seen is None:
            raise RuntimeError("Answer() needs a request: add Read() before it")
        headers = [("Content-Type", "application/json")]
        request_id = seen.header("x-request-id")
        if request_id is not None:
            headers.append(("X-Request-ID", request_id))
        if close or not self.keep_alive:
            headers.append(("Connection", "close"))
        path = seen.target.split("?", 1)[0]
        if seen.method == "GET" and path.startswith("/v1/runs/"):
            return response_bytes(200, ok_body("GET", path.rsplit("/", 1)[1]), headers)
        if seen.method == "PATCH" and path.startswith("/v1/runs/"):
            return response_bytes(200, ok_body("PATCH", path.rsplit("/", 1)[1]), headers)
        if seen.method == "POST" and path == "/v1/runs":
            key = seen.header("idempotency-key") or ""
            with self._lock:
                run_id = self._runs.get(key, "run-none")
                replayed = sum(r.header("idempotency-key") == key for r in self.requests) > 1
            if replayed:
                headers.append(("Idempotent-Replayed", "true"))
            return response_bytes(201, ok_body("POST", run_id), headers, reason="Created")
        error = b'{"error": {"code": "not_found", "message": "no route"}}'
        return response_bytes(404, error, headers, reason="Not Found")


class _Peer:
    """Runs the scripts of one connection."""

    def __init__(
        self, server: ScriptedSocketServer, sock: socket.socket, conn: Connection, guard: float
    ) -> None:
        self.server = server
        self.sock = sock
        self.conn = conn
        self.guard_at = guard
        self.buffer = b""
        self.last: Seen | None = None
        self.open = True

    def run(self) -> None:
        try:
            script = self.server._next_accept_script()
            serving = True
            if script is not None:
                if not any(isinstance(step, Read | Serve) for step in script):
                    # The script breaks the connection before reading: count the attempt
                    # now, before the client can see the fault and try again.
                    self.server._count_unread_attempt()
                serving = self._play(script)
            while serving and self.open:
                self._mark_idle(True)
                seen = self._read_request()
                self._mark_idle(False)
                if seen is None:
                    return
                script = self.server._next_request_script()
                if script is None:
                    script = (Answer(), Serve()) if self.server.keep_alive else (Answer(True),)
                serving = self._play(script)
            if self.open:
                self._drain()
        except _Stop:
            return

    def _mark_idle(self, idle: bool) -> None:
        with self.server._lock:
            if idle:
                self.server._idle[self.conn] = self.sock
            else:
                self.server._idle.pop(self.conn, None)

    # -- steps ----------------------------------------------------------------------------

    def _play(self, script: Script) -> bool:
        """Run ``script``; True when the connection goes on serving requests."""
        for step in script:
            if not self.open:
                return False
            if isinstance(step, Serve):
                return True
            self._step(step)
        return False

    def _step(self, step: Step) -> None:
        if isinstance(step, Send):
            self._send(self._payload(step.data))
        elif isinstance(step, Drip):
            data = self._payload(step.data)
            for start in range(0, len(data), step.chunk):
                self._send(data[start : start + step.chunk])
                self._idle_for(step.interval)
        elif isinstance(step, Stream):
            sent = 0
            while step.limit is None or sent < step.limit:
                self._send(step.chunk)
                sent += len(step.chunk)
        elif isinstance(step, Pause):
            self._idle_for(step.seconds)
        elif isinstance(step, Read):
            if self._read_request() is None:
                raise _Stop
        elif isinstance(step, Answer):
            self._send(self.server.answer(self.last, close=step.close))
            if step.close or not self.server.keep_alive:
                self._close("server")
        elif isinstance(step, Fin):
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            self._drain()
        elif isinstance(step, Close):
            self._close("server")
        elif isinstance(step, Reset):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._close("server")

    def _payload(self, data: Payload) -> bytes:
        return data if isinstance(data, bytes) else data(self.last)

    def _close(self, closer: Closer) -> None:
        if self.conn.closed_by is None:
            self.conn.closed_by = closer
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.close()

    def _check(self) -> None:
        if self.server.quit.is_set():
            raise _Stop
        if time.monotonic() > self.guard_at:
            self._close("guard")
            raise _Stop

    # -- socket I/O in 50 ms slices -------------------------------------------------------

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._check()
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                continue
            except OSError:  # EPIPE, ECONNRESET: the client discarded the connection
                self._close("client")
                raise _Stop from None
            with self.server._lock:
                self.server.bytes_sent += sent
            view = view[sent:]

    def _recv(self) -> bytes | None:
        """Some bytes, b"" at EOF, or None when nothing came within one slice."""
        self._check()
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        except OSError:
            return b""
        with self.server._lock:
            self.server.bytes_received += len(data)
        return data

    def _idle_for(self, seconds: float) -> None:
        """Wait ``seconds``, buffering what arrives; stop at once if the client closes."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self.sock.settimeout(min(SLICE, left))
            try:
                data = self._recv()
            finally:
                self.sock.settimeout(SLICE)
            if data == b"":
                self._close("client")
                raise _Stop
            if data:
                self.buffer += data

    def _drain(self) -> None:
        """Read (and drop) until the client closes: the connection ends closed by it."""
        while self.open:
            data = self._recv()
            if data == b"":
                self._close("client")
                return

    def _read_request(self) -> Seen | None:
        """Read one whole request (None if the client closed first) and record it."""
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise RuntimeError("request head too long")
            data = self._recv()
            if data == b"":
                self._close("client")
                return None
            if data:
                self.buffer += data
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            data = self._recv()
            if data == b"":
                self._close("client")
                return None
            if data:
                self.buffer += data
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        seen = Seen(method, target, headers, body, self.conn.number)
        self.conn.requests += 1
        self.last = seen
        self.server._record(seen)
        return seen


@contextlib.contextmanager
def scripted_server(
    *, keep_alive: bool = True, guard: float = GUARD, listener: socket.socket | None = None
) -> Iterator[ScriptedSocketServer]:
    """Run a ``ScriptedSocketServer`` for the ``with`` block, then stop it (bounded).

    Raises:
        Exception: on exit, the first error inside the server (a harness bug), when the
            block itself did not fail.
    """
    server = ScriptedSocketServer(keep_alive=keep_alive, guard=guard, listener=listener)
    server.start()
    failed = False
    try:
        yield server
    except BaseException:
        failed = True
        raise
    finally:
        server.close()
        if server.errors and not failed:
            raise server.errors[0]
