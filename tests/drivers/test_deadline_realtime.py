"""T28: real-time deadlines on loopback, for the async client (asyncio, trio) and the blocking one.

Three scenarios, each run ``RUNS`` times per driver with the overshoot past the deadline
measured on the monotonic clock:

- **Silent server**: a black-hole server on 127.0.0.1 accepts and reads, never answers; a
  call with a 0.5 s deadline (and the profile's 10 s timeout) must raise ``KneoTimeoutError``
  at the deadline.
- **Retry-After beyond the deadline**: the emulator answers 503 with ``Retry-After: 5``; a
  call with a 2 s deadline must fail at once (no sleep) with ``retry_after == 5`` and
  ``attempts == 1``, within 50 ms.
- **Pool exhausted**: a client with one connection has it held by a call to the black hole;
  a second call with a 1 s deadline must give up waiting for the pool at its deadline.

Thresholds (the plan's, for 2-core CI): overshoot p100 <= 150 ms for the async drivers and
<= 250 ms for the blocking one (which cannot interrupt a read, but whose read timeout is
clamped to the time left).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial

import anyio
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.testing import Emulator, Fault, RunningEmulator, serve_emulator
from kneo_proto import KneoServiceUnavailableError, KneoTimeoutError
from tests.support.scale import scaled

RUNS = scaled(5)
SILENT_DEADLINE = 0.5
RETRY_AFTER_DEADLINE = 2.0
POOL_DEADLINE = 1.0
ASYNC_LIMIT = 0.150
SYNC_LIMIT = 0.250
FAST_FAIL_LIMIT = 0.050
API_KEY = "kneo-realtime-key-0123456789"
WAIT_LIMIT = 60.0
RETRY_AFTER_CASE = "503 Retry-After 5 vs 2 s deadline, attempts 1, retry_after 5"

pytestmark = [pytest.mark.plan("T28"), pytest.mark.timeout(120)]


class BlackHole:
    """A loopback server that accepts connections and reads requests, and never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, name="black-hole", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def profile(self) -> Profile:
        return Profile(name="black-hole", url=self.url, api_key=API_KEY, timeout=10.0)

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.02):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    with contextlib.suppress(BlockingIOError):
                        conn, _ = sock.accept()
                        conn.setblocking(False)
                        self._selector.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._selector.unregister(sock)
                    sock.close()
                elif b"\r\n\r\n" in data:
                    with self._lock:
                        self.requests += 1

    def seen(self) -> int:
        with self._lock:
            return self.requests

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for key in list(self._selector.get_map().values()):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            sock.close()
        self._selector.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    server = BlackHole()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def busy_emulator() -> Iterator[RunningEmulator]:
    emulator = Emulator(api_key=API_KEY)
    emulator.faults.always("GET", "/v1/runs/{run_id}", Fault.error(503, retry_after=5))
    with serve_emulator(emulator, grace_period=1.0) as running:
        yield running


def report(
    figure: Callable[[str, str], None],
    what: str,
    driver: str,
    seconds: list[float],
    measure: str = "overshoot",
) -> str:
    p50, p100 = statistics.median(seconds), max(seconds)
    line = f"{what}, {driver}: {len(seconds)} runs, {measure} p50 {p50 * 1000:.0f} ms, "
    line += f"p100 {p100 * 1000:.0f} ms"
    figure("T28", line)
    return line


async def timed(call: Callable[[], Awaitable[object]]) -> tuple[float, BaseException]:
    started = time.monotonic()
    try:
        await call()
    except Exception as exc:
        return time.monotonic() - started, exc
    raise AssertionError("the call succeeded")


def timed_sync(call: Callable[[], object]) -> tuple[float, BaseException]:
    started = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - started, exc
    raise AssertionError("the call succeeded")


# -- silent server ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_time_silent_server_async(
    anyio_backend: str, black_hole: BlackHole, figure: Callable[[str, str], None]
) -> None:
    overshoots = []
    with anyio.fail_after(WAIT_LIMIT):
        async with KneoClient(black_hole.profile()) as client:
            runs = client.with_options(deadline=SILENT_DEADLINE).platform.runs
            for _ in range(RUNS):
                elapsed, error = await timed(lambda: runs.get("r1"))
                assert isinstance(error, KneoTimeoutError), error
                assert error.attempts == 1
                overshoots.append(elapsed - SILENT_DEADLINE)
    line = report(figure, f"silent server, {SILENT_DEADLINE} s deadline", anyio_backend, overshoots)
    assert min(overshoots) >= -0.01, line
    assert max(overshoots) <= ASYNC_LIMIT, line


def test_time_silent_server_sync(black_hole: BlackHole, figure: Callable[[str, str], None]) -> None:
    overshoots = []
    with SyncKneoClient(black_hole.profile()) as client:
        runs = client.with_options(deadline=SILENT_DEADLINE).platform.runs
        for _ in range(RUNS):
            elapsed, error = timed_sync(lambda: runs.get("r1"))
            assert isinstance(error, KneoTimeoutError), error
            assert error.attempts == 1
            overshoots.append(elapsed - SILENT_DEADLINE)
    line = report(figure, f"silent server, {SILENT_DEADLINE} s deadline", "blocking", overshoots)
    assert min(overshoots) >= -0.01, line
    assert max(overshoots) <= SYNC_LIMIT, line


# -- Retry-After beyond the deadline ----------------------------------------------------------


def check_fast_failure(error: BaseException, elapsed: float) -> None:
    assert isinstance(error, KneoServiceUnavailableError), error
    assert error.retry_after == 5.0
    assert error.attempts == 1


@pytest.mark.anyio
async def test_time_retry_after_beyond_deadline_async(
    anyio_backend: str, busy_emulator: RunningEmulator, figure: Callable[[str, str], None]
) -> None:
    latencies = []
    with anyio.fail_after(WAIT_LIMIT):
        async with KneoClient(busy_emulator.profile()) as client:
            runs = client.with_options(deadline=RETRY_AFTER_DEADLINE).platform.runs
            for _ in range(RUNS):
                elapsed, error = await timed(lambda: runs.get("r1"))
                check_fast_failure(error, elapsed)
                latencies.append(elapsed)
    assert busy_emulator.emulator.counters.requests["/v1/runs/r1"] == RUNS
    line = report(figure, RETRY_AFTER_CASE, anyio_backend, latencies, "failure latency")
    assert max(latencies) <= FAST_FAIL_LIMIT, line


def test_time_retry_after_beyond_deadline_sync(
    busy_emulator: RunningEmulator, figure: Callable[[str, str], None]
) -> None:
    latencies = []
    with SyncKneoClient(busy_emulator.profile()) as client:
        runs = client.with_options(deadline=RETRY_AFTER_DEADLINE).platform.runs
        for _ in range(RUNS):
            elapsed, error = timed_sync(lambda: runs.get("r1"))
            check_fast_failure(error, elapsed)
            latencies.append(elapsed)
    assert busy_emulator.emulator.counters.requests["/v1/runs/r1"] == RUNS
    line = report(figure, RETRY_AFTER_CASE, "blocking", latencies, "failure latency")
    assert max(latencies) <= FAST_FAIL_LIMIT, line


# -- pool exhausted -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_time_pool_exhausted_async(
    anyio_backend: str, black_hole: BlackHole, figure: Callable[[str, str], None]
) -> None:
    overshoots = []
    with anyio.fail_after(WAIT_LIMIT):
        async with KneoClient(black_hole.profile(), max_connections=1) as client:
            for run in range(RUNS):

                async def hold_the_connection() -> None:
                    with contextlib.suppress(KneoTimeoutError):
                        await client.with_options(deadline=10.0).platform.runs.get("held")

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(hold_the_connection)
                    # The server counts requests in its own thread: poll the count.
                    while black_hole.seen() <= run:  # noqa: ASYNC110
                        await anyio.sleep(0.005)
                    runs = client.with_options(deadline=POOL_DEADLINE).platform.runs
                    elapsed, error = await timed(partial(runs.get, "r1"))
                    tasks.cancel_scope.cancel()
                assert isinstance(error, KneoTimeoutError), error
                overshoots.append(elapsed - POOL_DEADLINE)
    line = report(figure, f"pool exhausted, {POOL_DEADLINE} s deadline", anyio_backend, overshoots)
    assert black_hole.seen() == RUNS, "the waiting call must never reach the server"
    assert min(overshoots) >= -0.01, line
    assert max(overshoots) <= ASYNC_LIMIT, line


def test_time_pool_exhausted_sync(
    black_hole: BlackHole, figure: Callable[[str, str], None]
) -> None:
    overshoots = []
    holder_deadline = POOL_DEADLINE + 0.6
    with SyncKneoClient(black_hole.profile(), max_connections=1) as client:
        for run in range(RUNS):
            holder = threading.Thread(
                target=timed_sync,
                args=(
                    lambda: client.with_options(deadline=holder_deadline).platform.runs.get("held"),
                ),
            )
            holder.start()
            waited = time.monotonic() + 5
            while black_hole.seen() <= run and time.monotonic() < waited:
                time.sleep(0.005)
            runs = client.with_options(deadline=POOL_DEADLINE).platform.runs
            elapsed, error = timed_sync(partial(runs.get, "r1"))
            holder.join(timeout=10)
            assert not holder.is_alive()
            assert isinstance(error, KneoTimeoutError), error
            overshoots.append(elapsed - POOL_DEADLINE)
    line = report(figure, f"pool exhausted, {POOL_DEADLINE} s deadline", "blocking", overshoots)
    assert black_hole.seen() == RUNS, "the waiting call must never reach the server"
    assert min(overshoots) >= -0.01, line
    assert max(overshoots) <= SYNC_LIMIT, line
