"""T24 and T26: many concurrent calls through one client, against the emulator over loopback.

The emulator is served from a background thread (its own asyncio loop) by a subclass of
its server that counts the connections open at once. ``Latency`` wraps the emulator:
every answer is held back 5-50 ms (T24), or 20 % of the answers are an injected 503 that
the platform never executes (T26); it also checks that each request's body belongs to its
``X-Request-ID``, which is how a request split or mixed with another on one socket shows.

- T24: 1,000 concurrent create-then-get calls through one ``KneoClient`` with
  ``max_connections=50``, on asyncio and on trio: every call succeeds, idempotency keys
  and request IDs are unique, each run is created once, the server never sees more than 50
  sockets at once, the process's file descriptors are back to their count once the client
  is closed; p50 and p99 latency reported; at most 30 s.
- T26: 64 threads x 20 creates through one ``SyncKneoClient`` with 20 % injected 503:
  keys unique, each executed at most once, the retry budget always within [0, capacity],
  no request interleaved with another, at most 60 s.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import anyio
import msgspec
import pytest
from anyio.abc import SocketStream
from anyio.from_thread import start_blocking_portal

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.testing import Emulator, Reply
from kneo_client.testing._server import EmulatorServer
from kneo_proto import KneoError, Request, Response, RetryPolicy
from kneo_proto.models import RunCreateRequestDict
from tests.support.scale import scaled

pytestmark = pytest.mark.timeout(180)

CALLS = scaled(1000)
MAX_CONNECTIONS = 50
THREADS, PER_THREAD = 64, scaled(20)
T24_LIMIT, T26_LIMIT = 30.0, 60.0


class CountingServer(EmulatorServer):
    """The emulator's server, counting the connections open at the same time."""

    open_now = 0
    max_open = 0

    async def _serve_connection(self, stream: SocketStream) -> None:
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            await super()._serve_connection(stream)
        finally:
            self.open_now -= 1


class Latency:
    """The emulator behind added latency and injected 503s, checking each request's body.

    Args:
        emulator: The emulator answering.
        latency: (low, high) seconds added to every answer.
        unavailable: The share of requests answered 503 without being executed.
    """

    def __init__(
        self, emulator: Emulator, *, latency: tuple[float, float] = (0, 0), unavailable: float = 0
    ) -> None:
        self.emulator = emulator
        self.api_key = emulator.api_key
        self.read_only_key = emulator.read_only_key
        self.latency = latency
        self.unavailable = unavailable
        self.injected = 0
        self.mixed: list[str] = []
        self.keys_by_request: dict[str, set[str]] = {}
        self._rng = random.Random(2426)

    def handle(self, request: Request) -> Reply:
        request_id = request.header("x-request-id") or ""
        key = request.header("idempotency-key")
        if key is not None:
            self.keys_by_request.setdefault(request_id, set()).add(key)
        if request.body:
            inputs = msgspec.json.decode(request.body).get("inputs", {})
            if inputs.get("request_id", request_id) != request_id:
                self.mixed.append(f"{request_id} carried the body of {inputs['request_id']}")
        delay = self._rng.uniform(*self.latency)
        if self._rng.random() < self.unavailable:
            self.injected += 1
            body = b'{"error": {"code": "unavailable", "message": "injected"}}'
            headers = (("Content-Type", "application/json"), ("X-Request-ID", request_id))
            return Reply(Response(503, headers, body), delay=delay)
        reply = self.emulator.handle(request)
        return Reply(reply.response, delay=reply.delay + delay, delivery=reply.delivery)


@contextlib.asynccontextmanager
async def _running(server: CountingServer) -> AsyncIterator[CountingServer]:
    async with anyio.create_task_group() as tasks:
        await tasks.start(server.run)
        try:
            yield server
        finally:
            with anyio.CancelScope(shield=True):
                await server.shutdown()


@contextlib.contextmanager
def serving(app: Latency) -> Iterator[CountingServer]:
    """Serve ``app`` from a background thread with its own asyncio loop."""
    with start_blocking_portal("asyncio") as portal:
        # Built in the server's loop: its cancel scopes belong to that loop's backend.
        server = portal.call(CountingServer, app)
        with portal.wrap_async_context_manager(_running(server)):
            yield server
    if server.errors:
        raise server.errors[0]


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


async def fds_back_to(baseline: int | None, limit: float = 2.0) -> int:
    """Wait (bounded) until the process holds ``baseline`` fds again; return the excess."""
    if baseline is None:
        return 0
    deadline = anyio.current_time() + limit
    # The server's ends close in another thread: nothing to wait on but the count.
    while (open_fds() or 0) > baseline and anyio.current_time() < deadline:  # noqa: ASYNC110
        await anyio.sleep(0.02)
    return max(0, (open_fds() or 0) - baseline)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# -- T24 -------------------------------------------------------------------------------------


@dataclass
class Outcomes:
    latencies: list[float] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)


async def create_then_get(client: KneoClient, n: int, out: Outcomes) -> None:
    started = anyio.current_time()
    try:
        created = await client.with_options(request_id=f"create-{n}").platform.runs.create.raw(
            {"spec_id": "my-spec", "inputs": {"request_id": f"create-{n}"}}
        )
        run = await client.platform.runs.get.raw(created.parsed.run_id)
    except KneoError as error:
        out.failures.append(error)
        return
    out.latencies.append(anyio.current_time() - started)
    assert created.idempotency_key is not None
    out.keys.append(created.idempotency_key)
    out.request_ids += [created.request_id, run.request_id]


@pytest.mark.plan("T24")
@pytest.mark.anyio
async def test_a_thousand_concurrent_calls_through_one_client(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    emulator = Emulator()
    app = Latency(emulator, latency=(0.005, 0.05))
    out = Outcomes()
    started = time.monotonic()
    with serving(app) as server:
        baseline = open_fds()
        profile = Profile(name="load", url=server.url, api_key=emulator.api_key)
        with anyio.fail_after(T24_LIMIT):
            async with (
                KneoClient(profile, max_connections=MAX_CONNECTIONS) as client,
                anyio.create_task_group() as tasks,
            ):
                for n in range(CALLS):
                    tasks.start_soon(create_then_get, client, n, out)
            fd_delta = await fds_back_to(baseline)
    took = time.monotonic() - started
    executions = Counter(emulator.counters.executions.values())
    p50, p99 = percentile(out.latencies, 0.5), percentile(out.latencies, 0.99)
    figure(
        "T24",
        f"{anyio_backend}: {len(out.latencies)}/{CALLS} create-then-get calls succeeded, "
        f"distinct keys {len(set(out.keys))}, distinct request IDs {len(set(out.request_ids))}"
        f"/{2 * CALLS}, server max sockets {server.max_open} (limit {MAX_CONNECTIONS}), fd "
        f"delta {fd_delta}, latency p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms "
        f"(5-50 ms added per request), {took:.1f} s",
    )
    assert out.failures == []
    assert len(set(out.keys)) == len(out.keys) == CALLS
    assert len(set(out.request_ids)) == 2 * CALLS
    assert executions == Counter({1: CALLS})
    assert app.mixed == []
    assert server.max_open <= MAX_CONNECTIONS
    assert fd_delta == 0
    assert took <= T24_LIMIT


# -- T26 -------------------------------------------------------------------------------------


@dataclass
class Threaded:
    keys: list[str] = field(default_factory=list)
    succeeded: int = 0
    unavailable: int = 0
    other: list[BaseException] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def worker(client: SyncKneoClient, thread: int, out: Threaded) -> None:
    budget = client.retry_budget
    assert budget is not None
    for n in range(PER_THREAD):
        request_id = f"t{thread}-c{n}"
        body: RunCreateRequestDict = {"spec_id": "my-spec", "inputs": {"request_id": request_id}}
        try:
            created = client.with_options(request_id=request_id).platform.runs.create.raw(body)
        except KneoError as error:
            with out.lock:
                if error.status == 503:
                    out.unavailable += 1
                    out.keys.append(error.idempotency_key or "")
                else:
                    out.other.append(error)
        else:
            with out.lock:
                out.succeeded += 1
                out.keys.append(created.idempotency_key or "")
        with out.lock:
            out.levels.append(budget.available)


@pytest.mark.plan("T26")
def test_64_threads_share_one_blocking_client(figure: Callable[[str, str], None]) -> None:
    emulator = Emulator()
    app = Latency(emulator, unavailable=0.2)
    out = Threaded()
    fast = RetryPolicy(base_delay=0.005, max_delay=0.02)
    started = time.monotonic()
    with serving(app) as server:
        profile = Profile(name="threads", url=server.url, api_key=emulator.api_key)
        with SyncKneoClient(profile, retry_policy=fast) as client:
            budget = client.retry_budget
            assert budget is not None
            threads = [
                threading.Thread(target=worker, args=(client, t, out), name=f"t26-{t}")
                for t in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(T26_LIMIT)
            hung = [t.name for t in threads if t.is_alive()]
            capacity = budget.budget.capacity
    took = time.monotonic() - started
    calls = THREADS * PER_THREAD
    out_of_range = [level for level in out.levels if not 0 <= level <= capacity]
    keys_per_call = Counter(len(keys) for keys in app.keys_by_request.values())
    executions = Counter(emulator.counters.executions.values())
    figure(
        "T26",
        f"{THREADS} threads x {PER_THREAD} calls = {calls} creates, {app.injected} injected "
        f"503s: {out.succeeded} succeeded, {out.unavailable} 503 after retries, duplicate keys "
        f"{len(out.keys) - len(set(out.keys))}, keys per call {dict(keys_per_call)}, "
        f"executions per key {dict(executions)}, out-of-range bucket readings "
        f"{len(out_of_range)}, interleavings {len(app.mixed)}, server max sockets "
        f"{server.max_open}, {took:.1f} s",
    )
    assert hung == []
    assert out.other == []
    assert out.succeeded + out.unavailable == calls
    assert len(set(out.keys)) == calls
    assert keys_per_call == Counter({1: calls})
    assert set(executions) <= {1}
    assert out_of_range == []
    assert app.mixed == []
    assert took <= T26_LIMIT
