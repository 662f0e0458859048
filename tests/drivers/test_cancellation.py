"""Cancelling async calls over a real pool, on asyncio and trio (reliability plan T20-T22).

A pool that loses a slot to a cancelled request fails later calls with a pool timeout, long
after the cancellation that caused it, so these tests cancel calls at random points against
the emulator served on loopback and then inspect the pool itself. Every random choice comes
from a generator seeded with ``KNEO_CANCEL_SEED``, the test's backend and its parameters,
so a failure replays; ``KNEO_CANCEL_ROUNDS`` scales every loop (nightly runs set it high).

Oracles of the pool test (T20), after the calls of each round have ended:
- the pool's repr shows no request left, active or queued;
- every connection in the pool is established and idle: none is ``CONNECTING`` (the orphan
  a cancelled connect leaves in a leaking pool) or ``ACTIVE``, and no more exist than slots;
- the driver's gate is back at full value, with nobody waiting;
- a cancelled call raised the native cancellation and nothing else; no ``KneoError``;
- follow-up calls on every slot succeed within 1 s, each at its first attempt;
- once the client is closed, every socket of the test (client and server ends) is closed
  within 1 s, counted in ``/proc/self/fd`` where there is one.

The backoff test (T21) checks that a call cancelled in its backoff sleep sends no retry and
gives back the retry budget's tokens; the close test (T22) that ``aclose`` with calls in
flight is prompt and leaves no connection behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import anyio
import msgspec
import pytest

from kneo_client import KneoClient, Profile
from kneo_client.testing import Fault, Reply
from kneo_drivers._transport import httpcore
from kneo_drivers.anyio import AsyncDriver
from kneo_proto import KneoClientClosedError, Request, Response, RetryPolicy
from tests.support.emulated import API_KEY, Emulated, serve

ROUNDS = int(os.environ.get("KNEO_CANCEL_ROUNDS", "25"))

# 60 s per test at the default ROUNDS, more for nightly ones. pytest-timeout cannot stop
# anyio's trio runner: every open-ended wait below also sits inside anyio.fail_after.
pytestmark = [
    pytest.mark.plan("T20", "T21", "T22"),
    pytest.mark.anyio,
    pytest.mark.timeout(60 * math.ceil(max(ROUNDS, 25) / 25)),
]
SEED = int(os.environ.get("KNEO_CANCEL_SEED", "20250611"))
STEP = 0.0001  # cancel delays and server delays are drawn in 100 µs steps
MAX_STEPS = 50  # ... from 0 to 5 ms (at least: see test_random_cancellations_...)
MAX_PAD_KIB = 128
WAIT_LIMIT = 10.0  # a round that takes this long is hung
FOLLOW_UP_LIMIT = 1.0
CLOSE_LIMIT = 1.0
SOCKETS_LIMIT = 1.0
HEALTH = "/v1/healthz"
ONE_ATTEMPT = RetryPolicy(max_attempts=1)  # a call that meets a broken connection fails
BACKOFF = 0.1  # the sleep cancelled in T21; its cancel lands 0-5 ms into it
BUDGET_HELD_BACK = 50  # start below capacity, so that an over-refund shows


def seeded(*parts: object) -> random.Random:
    return random.Random(":".join(map(str, (SEED, *parts))))


def random_delay(rng: random.Random, steps: int = MAX_STEPS) -> float:
    return rng.randrange(steps + 1) * STEP


def profile(url: str) -> Profile:
    return Profile(name="cancel", url=url, api_key=API_KEY)


def driver_of(client: KneoClient) -> AsyncDriver:
    driver = client._transport._driver
    assert isinstance(driver, AsyncDriver)
    return driver


class Jittery:
    """A rewrite of the emulator's replies: each answer a random 0-5 ms late, its health
    answers padded to a random 0-128 KiB (so reading a body takes several reads, each a
    point a cancel can land on); both drawn from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.emulated = Emulated(rewrites=[self])
        self.arrivals = 0
        self._rng = rng
        self._lock = threading.Lock()

    def __call__(self, request: Request, reply: Reply) -> Reply:
        with self._lock:
            self.arrivals += 1
            delay = random_delay(self._rng)
            pad = self._rng.randrange(MAX_PAD_KIB + 1) * 1024
        response = reply.response
        if response.status != 200:
            return replace(reply, delay=delay)
        checks = {"pad": {"ok": True, "detail": "x" * pad}}
        body = msgspec.json.encode({"ok": True, "metadata": {"checks": checks}})
        return replace(reply, response=Response(200, response.headers, body), delay=delay)


def attempts_seen(emulated: Emulated) -> dict[str, list[str]]:
    """``X-Kneo-Attempt`` of every request the server received, by ``X-Request-ID``."""
    seen: dict[str, list[str]] = {}
    for request in emulated.requests_to(HEALTH):
        request_id = request.header("x-request-id") or ""
        seen.setdefault(request_id, []).append(request.header("x-kneo-attempt") or "")
    return seen


@dataclass
class Tally:
    """How the cancelled calls ended."""

    calls: int = 0
    completed: int = 0
    cancelled: set[str] = field(default_factory=set)
    native_seen: int = 0
    native_grouped: int = 0
    wrong: list[BaseException] = field(default_factory=list)


async def call_cancelled_in(
    client: KneoClient, request_id: str, scope: anyio.CancelScope, tally: Tally
) -> None:
    """Make one call inside ``scope``; record whether the native cancellation came out."""
    tally.calls += 1
    with scope:
        try:
            await client.with_options(request_id=request_id).platform.health.healthz()
        except BaseException as exc:
            if not is_native_cancellation(exc):  # a KneoError or anything else: a failure
                tally.wrong.append(exc)
                return
            tally.native_seen += 1
            tally.native_grouped += isinstance(exc, BaseExceptionGroup)
            raise
    if scope.cancelled_caught:
        tally.cancelled.add(request_id)
    else:
        tally.completed += 1


def is_native_cancellation(exc: BaseException) -> bool:
    """The backend's own cancellation; on trio possibly grouped by a nursery of trio's own
    (``trio.open_tcp_stream`` cancelled mid-connect raises a group of ``Cancelled``)."""
    native = anyio.get_cancelled_exc_class()
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(native)[1] is None
    return isinstance(exc, native)


def check_tally(tally: Tally) -> None:
    assert tally.wrong == []
    # Each scope that caught a cancellation caught the native one the call let through.
    assert tally.native_seen == len(tally.cancelled)
    assert tally.completed + len(tally.cancelled) == tally.calls


def pool_problems(pool: httpcore.AsyncConnectionPool, max_connections: int) -> list[str]:
    """What shows a leaked slot in a pool no call is using (empty when it is whole).

    httpcore2 offers no ``is_connecting()``: a connection's ``info()`` reads ``CONNECTING``
    while its TCP connection is neither up nor failed, which is how a cancelled connect
    shows in a leaking pool (httpcore#1093's reproduction prints it the same way).
    """
    problems: list[str] = []
    summary = repr(pool)
    if "Requests: 0 active, 0 queued" not in summary:
        problems.append(f"requests left in the pool: {summary}")
    connections = pool.connections
    if len(connections) > max_connections:
        problems.append(f"{len(connections)} connections for {max_connections} slots")
    for connection in connections:
        if connection.info() == "CONNECTING":
            problems.append(f"orphaned connection: {connection!r} in {summary}")
        elif not (connection.is_connected() and connection.is_idle()):
            problems.append(f"connection not idle: {connection!r} in {summary}")
    return problems


def check_gate(driver: AsyncDriver, max_connections: int) -> None:
    """Every slot of the gate (twice the pool's size) is free again and nobody waits."""
    gate = driver._gate
    assert gate is not None
    assert (gate.value, gate.statistics().tasks_waiting) == (2 * max_connections, 0)


async def check_follow_ups(client: KneoClient, count: int) -> float:
    """``count`` concurrent calls (every slot, twice) succeed within 1 s at first try.

    Returns:
        The median of the seconds they took.
    """
    attempts: list[int] = []
    took: list[float] = []

    async def follow_up() -> None:
        started = anyio.current_time()
        attempts.append((await client.platform.health.healthz.raw()).attempts)
        took.append(anyio.current_time() - started)

    with anyio.fail_after(FOLLOW_UP_LIMIT):
        async with anyio.create_task_group() as tasks:
            for _ in range(count):
                tasks.start_soon(follow_up)
    assert attempts == [1] * count
    return statistics.median(took)


def open_sockets() -> int | None:
    """Sockets open in this process (client and loopback server ends), or None off Linux."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    count = 0
    for fd in fds:
        with contextlib.suppress(OSError):  # closed since listed
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


async def check_sockets_closed(baseline: int | None) -> None:
    """Open sockets drop back to ``baseline`` within 1 s (the server sees EOF and closes)."""
    if baseline is None:
        return
    deadline = time.monotonic() + SOCKETS_LIMIT
    while (now := open_sockets()) is not None and now > baseline:
        assert time.monotonic() < deadline, f"{now - baseline} sockets still open"
        await anyio.sleep(0.01)


# -- T20: cancel at a random point, then inspect the pool ---------------------------------


async def test_the_pool_oracle_sees_an_orphaned_connecting_connection(anyio_backend: str) -> None:
    """The leak httpcore 1.0.9 shows: a connection whose connect was cancelled stays in the
    pool as ``CONNECTING`` and holds a slot. The oracle must flag it (a vacuity guard)."""
    async with httpcore.AsyncConnectionPool(max_connections=2) as pool:
        assert pool_problems(pool, 2) == []
        orphan = pool.create_connection(httpcore.Origin(b"http", b"127.0.0.1", 9))
        pool._connections.append(orphan)
        assert pool_problems(pool, 2) == [
            "orphaned connection: <AsyncHTTPConnection [CONNECTING]> in <AsyncConnectionPool "
            "[Requests: 0 active, 0 queued | Connections: 1 active, 0 idle]>"
        ]


@pytest.mark.parametrize("max_connections", [1, 2, 10])
async def test_random_cancellations_leave_the_pool_whole(
    anyio_backend: str, max_connections: int
) -> None:
    """``ROUNDS`` batches of 8 calls on one client (8 over 1 slot, 4 per slot over 2, none
    waiting over 10), each cancelled 0-5 ms after it starts (in 100 µs steps), against a
    server answering 0-5 ms late.

    A cancel mid-exchange closes its connection, and a fresh connection takes longer than
    5 ms to answer on a busy machine, so every other round first runs the follow-up check,
    which leaves every slot connected: cancels then land at the gate and in connect (cold
    rounds), and in send, in the wait for the answer and in the body (warm rounds). Where
    an exchange takes longer than 5 ms, the window stretches to the median follow-up call:
    with a 5 ms window, no call would finish and no cancel would reach the body."""
    rng = seeded("pool", anyio_backend, max_connections)
    handler = Jittery(seeded("server", anyio_backend, max_connections))
    batch = 8
    steps = widest = MAX_STEPS
    tally = Tally()
    with serve(handler.emulated) as running:
        sockets = open_sockets()
        client = KneoClient(
            profile(running.url), retry_policy=ONE_ATTEMPT, max_connections=max_connections
        )
        driver = driver_of(client)
        try:
            for round_ in range(ROUNDS):
                if round_ % 2:
                    typical = await check_follow_ups(client, 2 * max_connections)
                    steps = max(MAX_STEPS, math.ceil(typical / STEP))
                    widest = max(widest, steps)
                with anyio.fail_after(WAIT_LIMIT):
                    async with anyio.create_task_group() as tasks:
                        for n in range(batch):
                            scope = anyio.move_on_after(random_delay(rng, steps))
                            tasks.start_soon(
                                call_cancelled_in, client, f"{round_}-{n}", scope, tally
                            )
                check_tally(tally)
                assert pool_problems(driver._pool, max_connections) == [], f"round {round_}"
                check_gate(driver, max_connections)
            await check_follow_ups(client, 2 * max_connections)
            assert pool_problems(driver._pool, max_connections) == []
            check_gate(driver, max_connections)
        finally:
            await client.aclose()
        await check_sockets_closed(sockets)
    seen = attempts_seen(handler.emulated)
    after_sending = [request_id for request_id in tally.cancelled if request_id in seen]
    print(
        f"\n{anyio_backend} pool={max_connections}: {tally.calls} calls, "
        f"{len(tally.cancelled)} cancelled, {len(after_sending)} of them after the request "
        f"reached the server, {tally.completed} completed; "
        f"{tally.native_grouped} cancellations came grouped; "
        f"widest window {widest * STEP * 1000:.1f} ms"
    )
    # Vacuity guards: cancels hit calls in flight, others came before they sent anything,
    # and the window reached past the end of some calls.
    assert len(after_sending) > 0
    assert len(tally.cancelled) > len(after_sending)
    assert tally.completed > 0


# -- T21: a cancel during the backoff sleep ------------------------------------------------

# The caller's scope, and how long into the backoff sleep its deadline is moved.
_CUT_IN_SLEEP: ContextVar[tuple[anyio.CancelScope, float] | None] = ContextVar(
    "_CUT_IN_SLEEP", default=None
)


class SleepCutter(AsyncDriver):
    """The async driver, plus a hook: when a call starts a backoff sleep, its caller's scope
    gets a deadline a given delay into the sleep, so the native cancel lands in it."""

    def __init__(self, *, max_connections: int) -> None:
        super().__init__(max_connections=max_connections)
        self.on_sleep: Callable[[], None] = lambda: None

    async def asleep(self, seconds: float) -> None:
        cut = _CUT_IN_SLEEP.get()
        if cut is not None:
            scope, after = cut
            scope.deadline = anyio.current_time() + after
            self.on_sleep()
        await super().asleep(seconds)


async def call_cut_in_backoff(
    client: KneoClient, request_id: str, after: float, tally: Tally
) -> None:
    scope = anyio.move_on_after(WAIT_LIMIT)
    token = _CUT_IN_SLEEP.set((scope, after))
    try:
        await call_cancelled_in(client, request_id, scope, tally)
    finally:
        _CUT_IN_SLEEP.reset(token)


async def test_cancel_during_backoff_sends_nothing_more_and_returns_the_tokens(
    anyio_backend: str,
) -> None:
    """Each call meets a 503, takes tokens for its retry and sleeps 100 ms; its caller's
    scope expires 0-5 ms into the sleep. The retry is never sent and its tokens come back."""
    rng = seeded("backoff", anyio_backend)
    emulated = Emulated()
    batch, rounds = 8, max(1, ROUNDS // 5)
    levels_in_sleep: list[int] = []
    tally = Tally()
    with serve(emulated) as running:
        sockets = open_sockets()
        driver = SleepCutter(max_connections=4)
        policy = RetryPolicy(base_delay=BACKOFF, jitter=0.0)
        client = KneoClient(profile(running.url), retry_policy=policy, driver=driver)
        budget = client.retry_budget
        assert budget is not None
        driver.on_sleep = lambda: levels_in_sleep.append(budget.available)
        assert budget.withdraw(BUDGET_HELD_BACK)
        try:
            for round_ in range(rounds):
                emulated.emulator.faults.script("GET", HEALTH, *[Fault.error(503)] * batch)
                level = budget.available
                with anyio.fail_after(WAIT_LIMIT):
                    async with anyio.create_task_group() as tasks:
                        for n in range(batch):
                            after = random_delay(rng)
                            tasks.start_soon(
                                call_cut_in_backoff, client, f"{round_}-{n}", after, tally
                            )
                    await anyio.sleep(BACKOFF + 0.05)  # past the end of every cancelled sleep
                assert len(tally.cancelled) == (round_ + 1) * batch
                assert budget.available == level
            assert len(levels_in_sleep) == rounds * batch
            assert min(levels_in_sleep) < budget.available  # tokens were held while asleep
            check_gate(driver, 4)
            assert pool_problems(driver._pool, 4) == []
        finally:
            await client.aclose()
        await check_sockets_closed(sockets)
    check_tally(tally)
    assert list(attempts_seen(emulated).values()) == [["1"]] * (rounds * batch)


# -- T22: closing the client while calls are in flight ------------------------------------


@pytest.mark.parametrize("already_cancelled", [False, True], ids=["plain", "in-cancelled-scope"])
async def test_closing_the_client_mid_flight_is_prompt_and_closes_every_connection(
    anyio_backend: str, already_cancelled: bool
) -> None:
    """100 calls over 10 slots; ``aclose`` 0-5 ms after the server got the first of them, when
    calls are waiting at the gate, connecting, and waiting for answers. ``aclose`` takes
    under 1 s (also inside an already-cancelled scope), the pool ends empty, every socket
    closes, and each call ends, with its answer or with ``KneoClientClosedError``."""
    rng = seeded("close", anyio_backend, already_cancelled)
    handler = Jittery(seeded("close-server", anyio_backend, already_cancelled))
    calls, slots, reps = 100, 10, max(1, ROUNDS // 5)
    completed: list[str] = []
    closed: dict[str, int] = {}  # request ID -> attempts it had started
    unexpected: list[BaseException] = []
    slowest_close = 0.0

    async def call(client: KneoClient, request_id: str) -> None:
        try:
            await client.with_options(request_id=request_id).platform.health.healthz()
        except KneoClientClosedError as exc:
            closed[request_id] = exc.attempts
        except BaseException as exc:
            unexpected.append(exc)
            raise
        else:
            completed.append(request_id)

    with serve(handler.emulated) as running:
        sockets = open_sockets()
        for rep in range(reps):
            client = KneoClient(profile(running.url), max_connections=slots)
            driver = driver_of(client)
            arrived = handler.arrivals
            with anyio.fail_after(WAIT_LIMIT):
                async with anyio.create_task_group() as tasks:
                    for n in range(calls):
                        tasks.start_soon(call, client, f"{rep}-{n}")
                    # A server thread counts arrivals: no anyio.Event can be set from there.
                    while handler.arrivals == arrived:  # noqa: ASYNC110
                        await anyio.sleep(STEP)
                    await anyio.sleep(random_delay(rng))
                    started = anyio.current_time()
                    with anyio.fail_after(CLOSE_LIMIT), anyio.CancelScope() as scope:
                        if already_cancelled:
                            scope.cancel()
                        await client.aclose()
                    slowest_close = max(slowest_close, anyio.current_time() - started)
            assert driver._pool.connections == []
            assert pool_problems(driver._pool, slots) == []
        await check_sockets_closed(sockets)
    seen = attempts_seen(handler.emulated)
    outcomes = Counter(
        "closed after the server got its request"
        if request_id in seen
        else "closed mid-attempt, before sending"
        if attempts
        else "closed before its first attempt"
        for request_id, attempts in closed.items()
    )
    print(
        f"\n{anyio_backend} close ({reps} x {calls} calls): {len(completed)} completed, "
        f"{dict(outcomes)}; slowest aclose {slowest_close * 1000:.1f} ms"
    )
    assert unexpected == []
    assert len(completed) + len(closed) == reps * calls
    assert outcomes["closed after the server got its request"] > 0  # cut calls in flight
    assert slowest_close < CLOSE_LIMIT
