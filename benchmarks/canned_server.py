"""A canned HTTP/1.1 server on 127.0.0.1 for the client benchmarks, fast enough not to matter.

Run as a process of its own, so the client process's CPU time is the client's alone::

    python -m benchmarks.canned_server    # prints its URL; serves until a piped stdin closes

It answers from bytes encoded once at start-up, with keep-alive:

- ``GET /v1/runs/{run_id}``: a completed ``RunStatusResponse``, about 0.5 KB;
- ``GET /v1/audit-events?...``: a 1000-event ``AuditEventListResponse``, about 300 KB;
- ``GET /_canned/stats``: ``{"cpu_ns": ..., "requests": ...}``, the server's own CPU time and
  the number of API requests answered so far, for the benchmark's bookkeeping;
- anything else: a 404 with a small JSON error body.

Both API bodies are the ones ``bench_core`` decodes, so they always match the models. An
``X-Request-ID`` header is echoed. The parser is a minimal one for requests without a body
(a request announcing one is answered 501 and its connection closed). The process stops when
its standard input reaches end of file (its parent went away), on SIGINT or SIGTERM, and in
any case after ``--max-seconds``.

``serve_canned()`` starts one as a child process and stops it again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_core import audit_page_body, run_status_body

__all__ = ["CannedServer", "main", "serve_canned"]

READY_PREFIX = "CANNED_SERVER_READY "
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
DEFAULT_MAX_SECONDS = 900.0
_LARGE = 64 * 1024  # bodies above this go out as a second write instead of being copied


def _head(status: str, body: bytes, extra: bytes = b"") -> bytes:
    """The status line and fixed headers, up to (not including) the blank line."""
    return (
        f"HTTP/1.1 {status}\r\n"
        "Server: kneo-canned\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode() + extra


@dataclass(frozen=True, slots=True)
class Canned:
    """One pre-encoded response: its head (without the blank line) and its body."""

    head: bytes
    body: bytes

    @classmethod
    def of(cls, status: str, body: bytes) -> Canned:
        return cls(_head(status, body), body)


class _Routes:
    """The pre-encoded responses and the server's counters."""

    def __init__(self) -> None:
        self.run = Canned.of("200 OK", run_status_body())
        self.page = Canned.of("200 OK", audit_page_body())
        self.not_found = Canned.of("404 Not Found", b'{"detail":"no such canned route"}')
        self.with_body = Canned.of("501 Not Implemented", b'{"detail":"requests have no body"}')
        self.requests = 0

    def pick(self, method: bytes, target: bytes) -> Canned:
        path = target.split(b"?", 1)[0]
        if method != b"GET":
            return self.not_found
        if path.startswith(b"/v1/runs/") and path.count(b"/") == 3 and len(path) > 9:
            self.requests += 1
            return self.run
        if path == b"/v1/audit-events":
            self.requests += 1
            return self.page
        if path == b"/_canned/stats":
            stats = {"cpu_ns": time.process_time_ns(), "requests": self.requests}
            return Canned.of("200 OK", json.dumps(stats).encode())
        return self.not_found


def _header(lowered_head: bytes, head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (given in lower case), or None."""
    start = lowered_head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : len(head) if end < 0 else end].strip()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse request heads, write canned responses."""

    def __init__(self, routes: _Routes) -> None:
        self._routes = routes
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buffer = buffer[:end], buffer[end + 4 :]
            if not self._respond(head):
                buffer = b""
                break
        self._buffer = buffer

    def _respond(self, head: bytes) -> bool:
        """Answer one request; return False when the connection is to be closed."""
        transport = self._transport
        assert transport is not None
        line_end = head.find(b"\r\n")
        request_line = head if line_end < 0 else head[:line_end]
        method, target, version = [*request_line.split(b" ", 2), b"", b""][:3]
        lowered = head.lower()
        length = _header(lowered, head, b"content-length")
        has_body = (length is not None and length != b"0") or b"\r\ntransfer-encoding:" in lowered
        canned = self._routes.with_body if has_body else self._routes.pick(method, target)
        request_id = _header(lowered, head, b"x-request-id")
        head_out = canned.head
        if request_id is not None:
            head_out += b"X-Request-ID: " + request_id + b"\r\n"
        close = has_body or version != b"HTTP/1.1"
        close = close or _header(lowered, lowered, b"connection") == b"close"
        if close:
            head_out += b"Connection: close\r\n"
        head_out += b"\r\n"
        if len(canned.body) > _LARGE:
            transport.write(head_out)
            transport.write(canned.body)
        else:
            transport.write(head_out + canned.body)
        if close:
            transport.close()
        return not close


class _StdinWatch(asyncio.Protocol):
    """Sets ``gone`` when the parent closes our standard input (or dies)."""

    def __init__(self, gone: asyncio.Event) -> None:
        self._gone = gone

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone.set()


def _stdin_is_pipe() -> bool:
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _serve(port: int, max_seconds: float, watch_stdin: bool) -> None:
    loop = asyncio.get_running_loop()
    routes = _Routes()
    stop = asyncio.Event()
    server = await loop.create_server(
        lambda: _Connection(routes), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if watch_stdin and _stdin_is_pipe():
        await loop.connect_read_pipe(lambda: _StdinWatch(stop), sys.stdin)
    host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"{READY_PREFIX}http://{host}:{bound_port}", flush=True)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.canned_server", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free one)")
    parser.add_argument(
        "--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="stop after this long"
    )
    parser.add_argument(
        "--no-stdin-watch", action="store_true", help="do not stop when a piped stdin closes"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.max_seconds, not args.no_stdin_watch))
    return 0


# -- the parent's side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CannedServer:
    """A running canned server: its base URL and process ID."""

    url: str
    pid: int


def _read_ready_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], left)
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith(READY_PREFIX):
            return line[len(READY_PREFIX) :].strip()
    raise RuntimeError(f"the canned server did not start within {START_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def serve_canned(max_seconds: float = DEFAULT_MAX_SECONDS) -> Iterator[CannedServer]:
    """Run a canned server in a child process for the duration of the ``with`` block."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.canned_server", "--max-seconds", str(max_seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env=env,
    )
    try:
        yield CannedServer(_read_ready_line(process), process.pid)
    finally:
        _stop(process)


if __name__ == "__main__":
    sys.exit(main())
