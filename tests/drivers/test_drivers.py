"""The same scenarios on every driver: each test is one body run by the async client on
asyncio and on trio and by the blocking client (called from a worker thread), each over a
real loopback socket (the emulator's server) and over the in-memory drivers, all against
the platform emulator (``kneo_client.testing``, through ``tests.support.emulated``).

Real waits stay short: retries use a fast policy, ``Retry-After`` is 1 s at most, and the
memory drivers share the emulator's virtual time (its delays advance the driver's clock).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient, SyncTransport, Transport
from kneo_client.testing import Fault, async_memory_driver, memory_driver, memory_handler
from kneo_drivers.anyio import AsyncDriver
from kneo_drivers.blocking import BlockingDriver
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver, SimulatedFailure
from kneo_proto import (
    Call,
    ClientConfig,
    FailureKind,
    KneoDecodeError,
    KneoError,
    KneoIdempotencyMismatchError,
    KneoNetworkError,
    KneoNotFoundError,
    KneoResponseTooLargeError,
    KneoTimeoutError,
    KneoWaitTimeoutError,
    Request,
    Response,
    RetryPolicy,
    endpoints,
)
from kneo_proto.models import RunStatusResponse
from tests.loopback import closed_port_url
from tests.support.emulated import (
    API_KEY,
    MEMORY_URL,
    POLL_INTERVAL,
    SLOW_SPEC,
    Emulated,
    run_id,
    serve,
)
from tests.support.socket_subject import (  # noqa: F401 - fixtures: flavour, anyio_backend
    Flavour,
    backend_fixture,
    flavour_fixture,
)

# A broken client must fail a test, not hang it. pytest-timeout bounds the test; open-ended
# waits are bounded with anyio.fail_after too (SIGALRM cannot stop anyio's trio runner).
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]
WAIT_LIMIT = 5.0

T = TypeVar("T")
Client = KneoClient | SyncKneoClient
Memory = MemoryDriver | AsyncMemoryDriver
Driver = AsyncDriver | BlockingDriver | Memory
Closable = TypeVar("Closable", bound=KneoClient | SyncKneoClient | Transport | SyncTransport)

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
ASYNC_FLAVOURS = ["asyncio", "trio"]
LATE = 5.0  # how late a held-back answer comes; far above every deadline used here
DEADLINE = 0.3
BIG_BODY = b'{"pad": "' + b"x" * 4096 + b'"}'
RUNS, AUDIT_EVENTS = 7, 12
FIRST, SECOND = run_id(1), run_id(2)


@dataclass
class World:
    """The emulator, reached over loopback or through a memory driver, by a client of one
    flavour."""

    emulated: Emulated
    url: str
    memory: bool
    flavour: Flavour
    drivers: list[Memory] = field(default_factory=list)

    @property
    def profile(self) -> Profile:
        return Profile(name="test", url=self.url, api_key=API_KEY)

    @property
    def blocking(self) -> bool:
        return self.flavour == "blocking"

    def sync_memory(self) -> MemoryDriver:
        """A blocking memory driver on the emulator's own (virtual) clock."""
        driver = memory_driver(self.emulated.emulator)
        self.drivers.append(driver)
        return driver

    def async_memory(self) -> AsyncMemoryDriver:
        """An async memory driver on the emulator's own (virtual) clock."""
        driver = async_memory_driver(self.emulated.emulator)
        self.drivers.append(driver)
        return driver

    def memory_driver(self) -> Memory:
        """A memory driver of the flavour's colour."""
        return self.sync_memory() if self.blocking else self.async_memory()

    def client(self, **options: Any) -> Client:
        options.setdefault("retry_policy", FAST)
        if self.memory:
            options.setdefault("driver", self.memory_driver())
        if self.blocking:
            return SyncKneoClient(self.profile, **options)
        return KneoClient(self.profile, **options)

    def transport(self) -> Transport | SyncTransport:
        if self.blocking:
            return SyncTransport(self.profile, driver=self.sync_memory() if self.memory else None)
        return Transport(self.profile, driver=self.async_memory() if self.memory else None)

    def driver(self) -> Driver:
        """A bare driver of the flavour's colour (a real one over loopback)."""
        if self.memory:
            return self.memory_driver()
        return BlockingDriver() if self.blocking else AsyncDriver()

    def refusing_client(self) -> Client:
        """A client whose every connect is refused."""
        profile = Profile(name="closed", url=closed_port_url(), api_key=API_KEY)
        if self.blocking:
            driver = MemoryDriver(refuse) if self.memory else None
            return SyncKneoClient(profile, retry_policy=FAST, driver=driver)
        async_driver = AsyncMemoryDriver(refuse) if self.memory else None
        return KneoClient(profile, retry_policy=FAST, driver=async_driver)

    async def call(self, method: Callable[..., Awaitable[T] | T], *args: Any, **kwargs: Any) -> T:
        """``method(*args, **kwargs)``: awaited on the async client, in a worker thread on the
        blocking one (as a blocking caller would make it, outside any event loop)."""
        if self.blocking:
            value = await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))
        else:
            value = method(*args, **kwargs)
        if inspect.isawaitable(value):
            return cast(T, await value)
        return value

    async def collect(self, items: AsyncIterable[T] | Iterable[T]) -> list[T]:
        """Every item of an ``iter_all`` iterator (walked in a worker thread when blocking)."""
        if isinstance(items, AsyncIterable):
            return [item async for item in items]
        return await anyio.to_thread.run_sync(list, items)

    def sleeps(self) -> list[float]:
        """Sleeps the memory driver was asked for (memory worlds only)."""
        return self.drivers[-1].sleeps


@contextlib.asynccontextmanager
async def opened(resource: Closable) -> AsyncIterator[Closable]:
    """Close ``resource`` (a client or a transport, of either colour) at the end."""
    try:
        yield resource
    finally:
        if isinstance(resource, KneoClient | Transport):
            await resource.aclose()
        else:
            resource.close()


def refuse(request: Request) -> Response:
    raise SimulatedFailure(FailureKind.CONNECT, "connection refused")


@pytest.fixture(params=["loopback", "memory"])
def world(request: pytest.FixtureRequest, flavour: Flavour) -> Iterator[World]:
    emulated = Emulated()
    emulated.seed(runs=RUNS, audit_events=AUDIT_EVENTS)
    if request.param == "memory":
        yield World(emulated, MEMORY_URL, True, flavour)
        return
    with serve(emulated) as running:
        yield World(emulated, running.url, False, flavour)


def fault(world: World, method: str, path: str, *faults: Fault) -> None:
    world.emulated.emulator.faults.script(method, path, *faults)


def check_one_key_one_request_id(world: World, path: str, key: str, request_id: str) -> None:
    seen = world.emulated.requests_to(path)
    assert [r.header("idempotency-key") for r in seen] == [key] * len(seen)
    assert [r.header("x-request-id") for r in seen] == [request_id] * len(seen)
    assert [r.header("x-kneo-attempt") for r in seen] == [str(n + 1) for n in range(len(seen))]
    assert world.emulated.executions[key] == 1


# -- the client ------------------------------------------------------------------------------


async def test_success_sends_auth_and_echoes_request_id(world: World) -> None:
    async with opened(world.client()) as client:
        created = await world.call(client.platform.runs.create, {"spec_id": "my-spec"})
        got = await world.call(client.platform.runs.get.raw, created.run_id)
    assert got.status == 200
    assert isinstance(got.parsed, RunStatusResponse)
    assert got.parsed.run_id == created.run_id
    last = world.emulated.log[-1]
    assert last.header("authorization") == f"Bearer {API_KEY}"
    assert got.request_id == last.header("x-request-id")
    assert got.attempts == 1


async def test_keyed_post_retried_after_503_with_same_key_and_request_id(world: World) -> None:
    fault(world, "POST", "/v1/runs", Fault.error(503), Fault.error(503))
    async with opened(world.client()) as client:
        create = client.platform.runs.create.raw
        response = await world.call(create, {"spec_id": "my-spec"}, idempotency_key="k-1")
    assert (response.status, response.attempts, response.idempotency_key) == (201, 3, "k-1")
    check_one_key_one_request_id(world, "/v1/runs", "k-1", response.request_id)


async def test_lost_response_is_replayed_not_executed_twice(world: World) -> None:
    fault(world, "POST", "/v1/runs", Fault.lost_response(503))
    async with opened(world.client()) as client:
        response = await world.call(client.platform.runs.create.raw, {"spec_id": "my-spec"})
    assert (response.attempts, response.replayed) == (2, True)
    assert response.idempotency_key is not None
    assert world.emulated.run_ids()[-1] == response.parsed.run_id
    check_one_key_one_request_id(world, "/v1/runs", response.idempotency_key, response.request_id)


async def test_retry_after_is_honoured(world: World) -> None:
    fault(world, "GET", f"/v1/runs/{FIRST}", Fault.rate_limited(retry_after=1))
    async with opened(world.client()) as client:
        started = time.monotonic()
        response = await world.call(client.platform.runs.get.raw, FIRST)
        waited = time.monotonic() - started
    assert response.attempts == 2
    if world.memory:
        assert world.sleeps() == [1.0]
    else:
        assert 0.95 <= waited < 3.0


async def test_404_raises_not_found_with_request_id(world: World) -> None:
    async with opened(world.client()) as client:
        with pytest.raises(KneoNotFoundError) as caught:
            await world.call(client.with_options(request_id="rid-404").platform.runs.get, "nope")
    error = caught.value
    assert (error.status, error.code, error.request_id, error.attempts) == (
        404,
        "not_found",
        "rid-404",
        1,
    )
    assert error.body["error"]["code"] == "not_found"


async def test_409_mismatch_raises_idempotency_mismatch(world: World) -> None:
    async with opened(world.client()) as client:
        create = client.platform.runs.create
        await world.call(create, {"spec_id": "my-spec"}, idempotency_key="dup")
        with pytest.raises(KneoIdempotencyMismatchError) as caught:
            await world.call(create, {"spec_id": "nightly-report"}, idempotency_key="dup")
    assert (caught.value.status, caught.value.idempotency_key) == (409, "dup")
    assert caught.value.code == "idempotency_key_mismatch"
    assert world.emulated.executions["dup"] == 1


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"run_id": 5}'])
async def test_undecodable_2xx_raises_decode_error(world: World, body: bytes) -> None:
    fault(world, "GET", f"/v1/runs/{FIRST}", Fault(status=200, body=body))
    async with opened(world.client()) as client:
        with pytest.raises(KneoDecodeError) as caught:
            await world.call(client.platform.runs.get, FIRST)
    assert caught.value.status == 200
    assert caught.value.attempts == 1


async def test_iter_all_yields_every_item_once(world: World) -> None:
    async with opened(world.client()) as client:
        with anyio.fail_after(WAIT_LIMIT):
            runs = [r.run_id for r in await world.collect(client.platform.runs.iter_all(limit=3))]
            events = await world.collect(client.platform.audit.iter_all(limit=5))
    assert runs == world.emulated.run_ids()[::-1]  # the newest first
    assert len(runs) == len(set(runs)) == RUNS
    assert len(events) == len({e.event_id for e in events}) == AUDIT_EVENTS
    assert world.emulated.requests["/v1/runs"] == 3
    assert world.emulated.requests["/v1/audit-events"] == 3


async def test_wait_for_completion_returns_the_terminal_run(world: World) -> None:
    async with opened(world.client()) as client:
        created = await world.call(client.platform.runs.create, {"spec_id": "my-spec"})
        with anyio.fail_after(WAIT_LIMIT):
            done = await world.call(
                client.platform.runs.wait_for_completion,
                created.run_id,
                poll_interval=POLL_INTERVAL,
            )
    assert done.status == "completed"
    assert world.emulated.requests[f"/v1/runs/{created.run_id}"] == 2


async def test_wait_for_completion_times_out(world: World) -> None:
    async with opened(world.client()) as client:
        created = await world.call(client.platform.runs.create, {"spec_id": SLOW_SPEC})
        with pytest.raises(KneoWaitTimeoutError) as caught:
            await world.call(
                client.platform.runs.wait_for_completion,
                created.run_id,
                timeout=0.2,
                poll_interval=0.05,
            )
    assert isinstance(caught.value, TimeoutError)
    assert (caught.value.run_id, caught.value.last_status) == (created.run_id, "running")
    assert caught.value.polls >= 2


async def test_deadline_cuts_a_slow_answer_short(world: World) -> None:
    fault(world, "GET", f"/v1/runs/{FIRST}", Fault.latency(LATE))
    async with opened(world.client()) as client:
        started = time.monotonic()
        with pytest.raises(KneoTimeoutError):
            await world.call(client.with_options(deadline=DEADLINE).platform.runs.get, FIRST)
        assert time.monotonic() - started < LATE / 2
    assert world.emulated.requests[f"/v1/runs/{FIRST}"] == 1


async def test_dropped_connection_is_retried(world: World) -> None:
    fault(world, "GET", f"/v1/runs/{FIRST}", Fault.reset_before_response())
    async with opened(world.client()) as client:
        response = await world.call(client.platform.runs.get.raw, FIRST)
    assert response.attempts == 2


async def test_connection_refused_raises_network_error_after_retries(world: World) -> None:
    async with opened(world.refusing_client()) as client:
        with pytest.raises(KneoNetworkError) as caught:
            await world.call(client.platform.runs.create, {"spec_id": "my-spec"})
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("connect", 3, None)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS)
async def test_cancellation_propagates_and_client_stays_usable(world: World) -> None:
    """Async only: a blocking call cannot be cancelled from outside."""
    answer = memory_handler(world.emulated.emulator)

    async def hang_on_first(request: Request) -> Response:
        if request.target == f"/v1/runs/{FIRST}":
            await anyio.sleep_forever()
        return answer(request)

    fault(world, "GET", f"/v1/runs/{FIRST}", Fault.latency(LATE))
    driver = AsyncMemoryDriver(hang_on_first) if world.memory else None
    async with KneoClient(world.profile, retry_policy=FAST, driver=driver) as client:
        native = anyio.get_cancelled_exc_class()
        seen: list[BaseException] = []
        with anyio.move_on_after(0.2) as scope:
            try:
                await client.platform.runs.get(FIRST)
            except BaseException as exc:
                seen.append(exc)
                raise
        assert scope.cancelled_caught
        assert len(seen) == 1
        assert isinstance(seen[0], native)
        assert not isinstance(seen[0], KneoError)
        assert (await client.platform.runs.get(SECOND)).run_id == SECOND


async def test_transport_request_json(world: World) -> None:
    async with opened(world.transport()) as transport:
        health = await world.call(transport.request, "GET", "/v1/healthz")
        posted = await world.call(
            transport.request, "POST", "/v1/runs", json={"spec_id": "my-spec"}
        )
    assert health.status_code == 200
    assert health.json()["ok"] is True
    assert health.request_id == world.emulated.requests_to("/v1/healthz")[-1].header("x-request-id")
    assert posted.json()["run_id"] == world.emulated.run_ids()[-1]
    assert posted.idempotency_key == world.emulated.log[-1].header("idempotency-key")


async def test_concurrent_calls_beyond_the_pool_size_all_succeed(world: World) -> None:
    """Seven calls at once over two connections; the blocking client is shared between
    seven threads."""
    found: dict[str, str] = {}

    async def fetch(client: Client, wanted: str) -> None:
        found[wanted] = (await world.call(client.platform.runs.get, wanted)).run_id

    run_ids = world.emulated.run_ids()
    async with opened(world.client(max_connections=2)) as client:
        with anyio.fail_after(WAIT_LIMIT):
            async with anyio.create_task_group() as tasks:
                for wanted in run_ids:
                    tasks.start_soon(fetch, client, wanted)
    assert found == {wanted: wanted for wanted in run_ids}


# -- the response-size cap: through the client, and at the driver level ----------------------


async def test_client_refuses_a_body_over_its_cap(world: World) -> None:
    fault(world, "GET", f"/v1/runs/{FIRST}", Fault(status=200, body=BIG_BODY))
    async with opened(world.client(max_response_bytes=1024)) as client:
        with pytest.raises(KneoResponseTooLargeError) as caught:
            await world.call(client.platform.runs.get, FIRST)
        assert caught.value.attempts == 1
        assert (await world.call(client.platform.runs.get, SECOND)).run_id == SECOND


def capped_call(url: str, driver: Driver) -> Call[RunStatusResponse]:
    """A ``Call`` built with a 1 KiB cap, on ``driver``'s clock."""
    config = ClientConfig(base_url=url, api_key=API_KEY, max_response_bytes=1024)
    return Call(endpoints.get_run(FIRST), config, clock=driver.clock)


async def close_driver(world: World, driver: Driver) -> None:
    if isinstance(driver, AsyncDriver):
        await driver.aclose()
    elif isinstance(driver, BlockingDriver):
        await world.call(driver.close)


async def test_driver_enforces_the_response_cap(world: World) -> None:
    fault(world, "GET", f"/v1/runs/{FIRST}", Fault(status=200, body=BIG_BODY))
    driver = world.driver()
    try:
        with pytest.raises(KneoResponseTooLargeError) as caught:
            await world.call(driver.execute, capped_call(world.url, driver))
    finally:
        await close_driver(world, driver)
    assert caught.value.attempts == 1


async def test_driver_accepts_a_body_at_the_cap(world: World) -> None:
    """The cap is inclusive: a body of exactly ``max_response_bytes`` is read whole."""
    body = b'{"pad": "' + b"x" * (1024 - 11) + b'"}'
    assert len(body) == 1024
    fault(world, "GET", f"/v1/runs/{FIRST}", Fault(status=200, body=body))
    driver = world.driver()
    try:
        with pytest.raises(KneoDecodeError):  # the cap let it through; the model rejects it
            await world.call(driver.execute, capped_call(world.url, driver))
    finally:
        await close_driver(world, driver)
