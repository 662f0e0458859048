"""T21 and T22 gaps: cancelling a call in a ``Retry-After`` wait or after its POST was sent,
and cancelling ``wait_for_completion`` and pagination, on asyncio and trio.

``tests/drivers/test_cancellation.py`` already covers T20 (random cancels and the pool),
the cancel during a computed backoff sleep (T21) and ``aclose`` with 100 calls in flight,
also in an already-cancelled scope (T22). What is added here, each against the fake
platform over loopback with the real async driver:

- a cancel 0-5 ms into a ``Retry-After: 1`` wait (after a 429 and after a 503), in anyio's
  scope style and in each backend's own style (``asyncio.Task.cancel()``; trio's scope);
- a cancel 0-5 ms after the server received a keyed POST it answers 200 ms later;
- ``wait_for_completion`` cancelled 0-5 ms into its sleep between polls, and while a poll
  is in flight (answered 200 ms late);
- pagination left with ``break`` (plain and inside ``aclosing``) after a random item, and
  cancelled while the second page is in flight (the pager is a class, not an async
  generator, so a plain ``break`` leaves nothing for trio to finalize either).

This module still runs against ``tests/fake_platform.py``, the last one to: on the emulator
(served on loopback, latency injected), the mid-poll trio case hangs a later poll until its
deadline in about half the runs on Python 3.13 (not on 3.11), which needs its own
investigation before the module moves over.

Oracles: the backend's own cancellation exception comes out, unchanged and ungrouped
(never a ``KneoError``); no attempt of a cancelled call reaches the server after the
cancel (checked after the server's delays and the waits have passed); the retry budget is
back at its exact level; the pool holds no request and no half-used connection, and a
follow-up call succeeds at its first attempt.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import trio

from kneo_client import KneoClient, Profile
from kneo_drivers._transport import httpcore
from kneo_drivers.anyio import AsyncDriver
from kneo_proto import RetryPolicy
from tests.fake_platform import API_KEY, FakePlatform, Fault, rate_limited, slow, status
from tests.loopback import serve
from tests.support.scale import scaled

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

CANCELS = scaled(100)  # per scenario and backend
BATCH = 10
LIMIT = 60.0
SERVER_DELAY = 0.2
POLL_INTERVAL = 0.5
RUN = "run-0001"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02, jitter=0.0)
RNG = random.Random(2122)


def jitter() -> float:
    """0-5 ms, in 100 µs steps."""
    return RNG.randrange(51) * 0.0001


# The cancel to arm when the running call starts a sleep: (cancel function, delay).
_ON_SLEEP: ContextVar[Callable[[], None] | None] = ContextVar("_ON_SLEEP", default=None)


class SleepHook(AsyncDriver):
    """The async driver; a call starting a sleep arms its caller's cancel (if any)."""

    async def asleep(self, seconds: float) -> None:
        arm = _ON_SLEEP.get()
        if arm is not None:
            arm()
        await super().asleep(seconds)


def arm_scope(scope: Any) -> None:
    """Give ``scope`` (anyio's or trio's own) a deadline 0-5 ms from now."""
    now = trio.current_time() if isinstance(scope, trio.CancelScope) else anyio.current_time()
    scope.deadline = now + jitter()


def is_native(exc: BaseException) -> bool:
    return type(exc) in (asyncio.CancelledError, trio.Cancelled)


@dataclass
class Tally:
    cancels: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    completed: Counter[str] = field(default_factory=Counter)
    late_attempts: Counter[str] = field(default_factory=Counter)


TALLY = Tally()


def pool_problems(client: KneoClient) -> list[str]:
    """What shows a leaked request or a half-used connection in an idle pool."""
    driver = client._transport._driver
    assert isinstance(driver, AsyncDriver)
    pool: httpcore.AsyncConnectionPool = driver._pool
    problems = [] if "Requests: 0 active, 0 queued" in repr(pool) else [repr(pool)]
    for connection in pool.connections:
        if not (connection.is_connected() and connection.is_idle()):
            problems.append(repr(connection))
    return problems


async def settle_and_follow_up(client: KneoClient, wait: float) -> None:
    """Let the server's delays pass, check the pool, then a call succeeds at once."""
    await anyio.sleep(wait)
    assert pool_problems(client) == []
    with anyio.fail_after(1.0):
        response = await client.platform.health.healthz.raw()
    assert response.attempts == 1


async def cancelled(
    scenario: str, call: Callable[[], Awaitable[Any]], wait_for: Callable[[], bool]
) -> None:
    """Run ``call``; cancel it 0-5 ms after ``wait_for()`` holds; note how it ended."""
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(cancel_when, wait_for, scope)
            try:
                await call()
            except BaseException as exc:
                note(scenario, exc)
                raise
            tasks.cancel_scope.cancel()
    if not scope.cancelled_caught:
        TALLY.completed[scenario] += 1


async def cancel_when(wait_for: Callable[[], bool], scope: anyio.CancelScope) -> None:
    await until(wait_for)
    await anyio.sleep(jitter())
    scope.cancel()


async def until(condition: Callable[[], bool]) -> None:
    # The condition is a count kept by the server's threads: nothing to await but time.
    while not condition():  # noqa: ASYNC110
        await anyio.sleep(0.0005)


def note(scenario: str, exc: BaseException) -> None:
    if isinstance(exc, BaseExceptionGroup):
        TALLY.wrong.append(f"{scenario}: a group {exc!r}")
    elif not is_native(exc):
        TALLY.wrong.append(f"{scenario}: {exc!r}")
    else:
        TALLY.cancels[scenario] += 1


def arrived(platform: FakePlatform, request_id: str) -> Callable[[], bool]:
    return lambda: any(r.header("x-request-id") == request_id for r in platform.log)


def attempts_of(platform: FakePlatform) -> Counter[str]:
    return Counter(r.header("x-request-id") or "" for r in platform.log)


def profile(url: str) -> Profile:
    return Profile(name="cancel", url=url, api_key=API_KEY)


# -- T21: Retry-After wait, and after the POST was sent ------------------------------------


def retry_after_fault(n: int) -> Fault:
    """A 429 or a 503, each asking for a 1 s wait."""
    return rate_limited("1") if n % 2 else status(503, **{"Retry-After": "1"})


@pytest.mark.plan("T21")
@pytest.mark.parametrize("style", ["anyio scope", "native"])
async def test_cancel_in_a_retry_after_wait_sends_nothing_more(
    anyio_backend: str, style: str, figure: Callable[[str, str], None]
) -> None:
    scenario = f"Retry-After wait, {style}, {anyio_backend}"
    platform = FakePlatform(runs=1)
    path = f"/v1/runs/{RUN}"
    with serve(platform) as url:
        client = KneoClient(profile(url), retry_policy=FAST, driver=SleepHook(max_connections=4))
        budget = client.retry_budget
        assert budget is not None
        assert budget.withdraw(50)  # start below capacity, so that an over-refund shows
        level = budget.available
        try:
            with anyio.fail_after(LIMIT):
                for round_ in range(CANCELS // BATCH):
                    platform.script(path, *[retry_after_fault(n) for n in range(BATCH)])
                    async with anyio.create_task_group() as tasks:
                        for n in range(BATCH):
                            tasks.start_soon(one_retry_after, client, f"{round_}-{n}", style)
                await settle_and_follow_up(client, 0.05)
        finally:
            await client.aclose()
    seen = attempts_of(platform)
    TALLY.late_attempts[scenario] = sum(n - 1 for rid, n in seen.items() if "-" in rid)
    assert TALLY.wrong == []
    assert TALLY.cancels[scenario] == CANCELS
    assert TALLY.late_attempts[scenario] == 0
    assert budget.available == level + 1  # the follow-up's first-try refund, nothing else
    figure(
        "T21",
        f"{scenario}: {TALLY.cancels[scenario]} cancels 0-5 ms into a Retry-After: 1 wait "
        f"(429 and 503): wrong exception 0, attempts after the cancel 0, bucket level "
        f"restored exactly",
    )


async def one_retry_after(client: KneoClient, request_id: str, style: str) -> None:
    scenario = f"Retry-After wait, {style}, {backend_name()}"
    call = client.with_options(request_id=request_id).platform.runs.get
    if style == "native" and backend_name() == "asyncio":
        # asyncio's own style: Task.cancel(), armed when the call starts its wait.
        holder: list[asyncio.Task[Any]] = []
        loop = asyncio.get_running_loop()

        def arm() -> None:
            loop.call_later(jitter(), holder[0].cancel)

        token = _ON_SLEEP.set(arm)
        try:
            holder.append(asyncio.ensure_future(call(RUN)))  # the task copies the context
        finally:
            _ON_SLEEP.reset(token)
        try:
            await holder[0]
        except BaseException as exc:
            note(scenario, exc)
        else:
            TALLY.completed[scenario] += 1
        return
    # trio's own style is its CancelScope; otherwise anyio's scope (on either backend).
    scope: Any = trio.CancelScope() if style == "native" else anyio.CancelScope()
    with scope:
        token = _ON_SLEEP.set(lambda: arm_scope(scope))
        try:
            await call(RUN)
        except BaseException as exc:
            note(scenario, exc)
            raise
        finally:
            _ON_SLEEP.reset(token)


def backend_name() -> str:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return "asyncio"
    return "trio"


@pytest.mark.plan("T21")
async def test_cancel_after_the_post_was_sent_is_not_retried(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    scenario = f"after the POST was sent, {anyio_backend}"
    platform = FakePlatform()
    with serve(platform) as url:
        client = KneoClient(profile(url), retry_policy=FAST, max_connections=BATCH)
        budget = client.retry_budget
        assert budget is not None
        assert budget.withdraw(50)
        level = budget.available
        try:
            with anyio.fail_after(LIMIT):
                for round_ in range(CANCELS // BATCH):
                    platform.script("/v1/runs", *[slow(SERVER_DELAY)] * BATCH, method="POST")
                    async with anyio.create_task_group() as tasks:
                        for n in range(BATCH):
                            rid = f"{round_}-{n}"
                            post = client.with_options(request_id=rid).platform.runs.create
                            tasks.start_soon(
                                cancelled,
                                scenario,
                                lambda post=post: post({"spec_id": "s"}),
                                arrived(platform, rid),
                            )
                    await settle_and_follow_up(client, SERVER_DELAY + 0.05)
        finally:
            await client.aclose()
            platform.stop()
    seen = attempts_of(platform)
    TALLY.late_attempts[scenario] = sum(n - 1 for rid, n in seen.items() if "-" in rid)
    assert TALLY.wrong == []
    assert TALLY.cancels[scenario] + TALLY.completed[scenario] == CANCELS
    assert TALLY.cancels[scenario] > CANCELS // 2
    assert TALLY.late_attempts[scenario] == 0
    assert set(platform.executions.values()) <= {1}
    # First-try refunds only: one follow-up per round, and each call that beat its cancel.
    assert budget.available == level + CANCELS // BATCH + TALLY.completed[scenario]
    figure(
        "T21",
        f"{scenario}: {TALLY.cancels[scenario]} cancels 0-5 ms after the server got the keyed "
        f"POST (answered {SERVER_DELAY * 1000:.0f} ms later; {TALLY.completed[scenario]} "
        f"finished first): wrong exception 0, attempts after the cancel 0, executions per key "
        f"<= 1, bucket level restored exactly, pool whole",
    )


# -- T22: wait_for_completion and pagination ------------------------------------------------


@pytest.mark.plan("T22")
async def test_cancelling_wait_for_completion_mid_sleep_and_mid_poll(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    platform = FakePlatform(polls_to_complete=None)
    hook = SleepHook(max_connections=BATCH)
    with serve(platform) as url:
        client = KneoClient(profile(url), retry_policy=FAST, driver=hook)
        try:
            with anyio.fail_after(LIMIT):
                for phase in ("sleep", "poll"):
                    for _ in range(CANCELS // BATCH):
                        await wait_round(client, platform, phase)
                    await settle_and_follow_up(client, SERVER_DELAY + 0.05)
        finally:
            await client.aclose()
            platform.stop()
    polls = Counter(
        r.url.rsplit("/", 1)[1] for r in platform.log if r.method == "GET" and "/v1/runs/" in r.url
    )
    extra = sum(n - 1 for n in polls.values())
    assert TALLY.wrong == []
    assert extra == 0
    for phase in ("sleep", "poll"):
        scenario = f"wait_for_completion mid-{phase}, {anyio_backend}"
        assert TALLY.cancels[scenario] + TALLY.completed[scenario] == CANCELS
        assert TALLY.cancels[scenario] == CANCELS
    figure(
        "T22",
        f"{anyio_backend}: wait_for_completion cancelled {CANCELS}x mid-sleep and {CANCELS}x "
        f"mid-poll: wrong exception 0, polls after the cancel {extra}, hangs 0, pool whole",
    )


async def wait_round(client: KneoClient, platform: FakePlatform, phase: str) -> None:
    runs = [await client.platform.runs.create({"spec_id": "s"}) for _ in range(BATCH)]
    scenario = f"wait_for_completion mid-{phase}, {backend_name()}"
    async with anyio.create_task_group() as tasks:
        for run in runs:
            path = f"/v1/runs/{run.run_id}"
            if phase == "poll":
                platform.script(path, slow(SERVER_DELAY))
            tasks.start_soon(one_wait, client, platform, run.run_id, path, phase, scenario)


async def one_wait(
    client: KneoClient, platform: FakePlatform, run_id: str, path: str, phase: str, scenario: str
) -> None:
    def wait() -> Awaitable[Any]:
        return client.platform.runs.wait_for_completion(
            run_id, timeout=30, poll_interval=POLL_INTERVAL
        )

    if phase == "poll":
        await cancelled(scenario, wait, lambda: platform.requests[path] > 0)
        return
    with anyio.CancelScope() as scope:
        token = _ON_SLEEP.set(lambda: arm_scope(scope))
        try:
            await wait()
        except BaseException as exc:
            note(scenario, exc)
            raise
        finally:
            _ON_SLEEP.reset(token)


@pytest.mark.plan("T22")
@pytest.mark.parametrize("closing", [True, False], ids=["aclosing", "plain-break"])
async def test_leaving_pagination_with_break_fetches_no_more_pages(
    anyio_backend: str,
    closing: bool,
    request: pytest.FixtureRequest,
    figure: Callable[[str, str], None],
) -> None:
    platform = FakePlatform(runs=55)
    breaks = scaled(20)
    expected = 0
    with serve(platform) as url:
        client = KneoClient(profile(url), retry_policy=FAST, max_connections=4)
        try:
            with anyio.fail_after(LIMIT):
                for _ in range(breaks):
                    stop_after = RNG.randrange(1, 55)
                    expected += (stop_after - 1) // 10 + 1  # 10 items a page
                    await walk_and_break(client, stop_after, closing=closing)
                    assert pool_problems(client) == []
                await settle_and_follow_up(client, 0.05)
        finally:
            await client.aclose()
    assert platform.requests["/v1/runs"] == expected
    how = "inside aclosing" if closing else "plain"
    if anyio_backend == "trio" and not closing:
        return  # the expected failure surfaces when the call phase ends
    figure(
        "T22",
        f"{anyio_backend}: pagination left by break ({how}) {breaks}x at a random item: "
        "pages fetched beyond the one in use 0, pool whole after each",
    )


@pytest.mark.plan("T22")
async def test_cancelling_pagination_mid_page_releases_everything(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    platform = FakePlatform(runs=55)
    scenario = f"pagination mid-page, {anyio_backend}"
    rounds = CANCELS // BATCH
    with serve(platform) as url:
        client = KneoClient(profile(url), retry_policy=FAST, max_connections=4)
        try:
            with anyio.fail_after(LIMIT):
                for _ in range(rounds):
                    platform.script("/v1/runs", slow(0), slow(SERVER_DELAY), method="GET")
                    await cancelled(scenario, lambda: walk_all(client), pages_fetched(platform, 2))
                    await settle_and_follow_up(client, SERVER_DELAY + 0.05)
        finally:
            await client.aclose()
            platform.stop()
    assert platform.requests["/v1/runs"] == 2 * rounds
    assert TALLY.wrong == []
    assert TALLY.cancels[scenario] == rounds
    figure(
        "T22",
        f"{anyio_backend}: pagination cancelled {rounds}x while its second page was in "
        "flight: pages fetched after the cancel 0, wrong exception 0, pool whole after each",
    )


def pages_fetched(platform: FakePlatform, count: int) -> Callable[[], bool]:
    """True once ``count`` more pages were asked for than now."""
    target = platform.requests["/v1/runs"] + count
    return lambda: platform.requests["/v1/runs"] >= target


async def walk_and_break(client: KneoClient, stop_after: int, *, closing: bool) -> None:
    if closing:
        async with aclosing(client.platform.runs.iter_all(limit=10)) as items:  # type: ignore[type-var]
            await take(items, stop_after)
    else:
        await take(client.platform.runs.iter_all(limit=10), stop_after)


async def take(items: Any, count: int) -> None:
    seen = 0
    async for _ in items:
        seen += 1
        if seen == count:
            break


async def walk_all(client: KneoClient) -> None:
    async for _ in client.platform.runs.iter_all(limit=10):
        pass
