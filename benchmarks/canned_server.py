"""A canned HTTP/1.1 server on 127.0.0.1 for the client benchmarks, fast enough not to matter.

Run as a process of its own, so the client process's CPU time is the client's alone::

    python -m benchmarks.canned_server    # prints its URL; serves until a piped stdin closes

It answers from bytes encoded once (at start-up, or at a page's first request), with
keep-alive:

- ``GET /v1/runs/{run_id}``: a completed ``RunStatusResponse``, about 0.5 KB. A run ID of the
  form ``poll-{N}-{anything}`` is answered ``"running"`` for its first ``N`` requests and
  ``"completed"`` from then on (``wait_for_completion`` polls it);
- ``GET /v1/audit-events?limit=L&offset=O``: the page of an audit log of ``AUDIT_TOTAL``
  events that starts at ``O`` and holds up to ``L`` (default 100, at most 1000) events, about
  300 KB for 1000; the ``i``-th event of the log has the ID ``audit_event_id(i)``;
- ``GET /_canned/stats``: ``{"cpu_ns": ..., "requests": ...}``, the server's own CPU time and
  the number of API requests answered so far, for the benchmark's bookkeeping;
- a bad ``limit`` or ``offset``: a 400; anything else: a 404 (small JSON error bodies).

The bodies are built from the models and events ``bench_core`` encodes, so they always match
the models (and the OpenAPI document the generated client is made from). An ``X-Request-ID``
header is echoed. The parser is a minimal one for requests without a body
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
from urllib.parse import parse_qs

import msgspec

from benchmarks.bench_core import PAGE_EVENTS, audit_events, run_status_body
from kneo_proto.models import RUN_STATUS_RUNNING, UNSET, RunStatusResponse

__all__ = ["AUDIT_TOTAL", "CannedServer", "audit_event_id", "main", "serve_canned"]

READY_PREFIX = "CANNED_SERVER_READY "
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
DEFAULT_MAX_SECONDS = 900.0
_LARGE = 64 * 1024  # bodies above this go out as a second write instead of being copied
AUDIT_TOTAL = 100_000  # events in the paged audit log
MAX_PAGE = 1000  # the largest page the platform serves
_CACHED_PAGES = 512  # pages kept encoded; the benchmark asks for about 100 distinct ones
_POLL_PREFIX = b"poll-"


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


def audit_event_id(index: int) -> str:
    """The ID of the ``index``-th event of the canned audit log (same length as a real one)."""
    return f"evt_{index:024x}"


class _AuditLog:
    """``AUDIT_TOTAL`` events, served a page at a time; each page is encoded on first use."""

    def __init__(self) -> None:
        # Each event encoded once without its ID; event i reuses event i % PAGE_EVENTS.
        self._tails: list[bytes] = []
        for event in audit_events(PAGE_EVENTS):
            encoded = msgspec.json.encode(event)
            prefix = b'{"event_id":' + msgspec.json.encode(event.event_id)
            assert encoded.startswith(prefix), "event_id must be the first field"
            self._tails.append(encoded[len(prefix) :])
        self._pages: dict[tuple[int, int], Canned] = {}

    def page(self, limit: int, offset: int) -> Canned:
        """The page of up to ``limit`` events starting at ``offset``."""
        canned = self._pages.get((limit, offset))
        if canned is None:
            canned = Canned.of("200 OK", self._body(limit, offset))
            if len(self._pages) < _CACHED_PAGES:
                self._pages[limit, offset] = canned
        return canned

    def _body(self, limit: int, offset: int) -> bytes:
        count = max(0, min(limit, AUDIT_TOTAL - offset))
        tails = self._tails
        events = b",".join(
            b'{"event_id":"' + audit_event_id(i).encode() + b'"' + tails[i % len(tails)]
            for i in range(offset, offset + count)
        )
        envelope = (
            f'{{"count":{count},"total":{AUDIT_TOTAL},"limit":{limit},"offset":{offset},'
            '"sort_by":"timestamp","sort_order":"desc","events":['
        )
        return envelope.encode() + events + b"]}"


def _page_query(query: bytes) -> tuple[int, int] | None:
    """``(limit, offset)`` from an audit-events query string, or None when they are bad."""
    fields = parse_qs(query.decode("latin-1"))
    try:
        limit = int(fields.get("limit", ["100"])[0])
        offset = int(fields.get("offset", ["0"])[0])
    except ValueError:
        return None
    return (limit, offset) if 1 <= limit <= MAX_PAGE and offset >= 0 else None


class _Routes:
    """The pre-encoded responses and the server's counters."""

    def __init__(self) -> None:
        completed = run_status_body()
        running = msgspec.structs.replace(
            msgspec.json.decode(completed, type=RunStatusResponse),
            status=RUN_STATUS_RUNNING,
            completed_at=UNSET,
            outputs=UNSET,
        )
        self.run = Canned.of("200 OK", completed)
        self.running = Canned.of("200 OK", msgspec.json.encode(running))
        self.audit = _AuditLog()
        self.not_found = Canned.of("404 Not Found", b'{"detail":"no such canned route"}')
        self.bad_page = Canned.of("400 Bad Request", b'{"detail":"bad limit or offset"}')
        self.with_body = Canned.of("501 Not Implemented", b'{"detail":"requests have no body"}')
        self.requests = 0
        self._polls_left: dict[bytes, int] = {}

    def pick(self, method: bytes, target: bytes) -> Canned:
        path, _, query = target.partition(b"?")
        if method != b"GET":
            return self.not_found
        if path.startswith(b"/v1/runs/") and path.count(b"/") == 3 and len(path) > 9:
            self.requests += 1
            return self._run(path[9:])
        if path == b"/v1/audit-events":
            self.requests += 1
            paging = _page_query(query)
            return self.bad_page if paging is None else self.audit.page(*paging)
        if path == b"/_canned/stats":
            stats = {"cpu_ns": time.process_time_ns(), "requests": self.requests}
            return Canned.of("200 OK", json.dumps(stats).encode())
        return self.not_found

    def _run(self, run_id: bytes) -> Canned:
        """A completed run; a ``poll-{N}-...`` run is running for its first N requests."""
        if not run_id.startswith(_POLL_PREFIX):
            return self.run
        left = self._polls_left.get(run_id)
        if left is None:
            count = run_id[len(_POLL_PREFIX) :].split(b"-", 1)[0]
            if not count.isdigit():
                return self.not_found
            left = int(count)
        if left == 0:
            self._polls_left[run_id] = 0  # completed for good (a few bytes per waited run)
            return self.run
        self._polls_left[run_id] = left - 1
        return self.running


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
