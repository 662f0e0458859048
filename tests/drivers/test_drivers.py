"""The same scenarios on every driver: the async client on asyncio and on trio, and the
blocking client, each over a real loopback socket (``tests.loopback``) and over the
in-memory drivers, all against one fake platform (``tests.fake_platform``).

Real waits stay short: loopback retries use a fast policy, ``Retry-After`` is 1 s at most,
and the memory drivers run on virtual time (the fake's delays advance the same clock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient, SyncTransport, Transport
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
from tests.fake_platform import (
    API_KEY,
    FakePlatform,
    disconnect,
    lost_response,
    rate_limited,
    raw,
    slow,
    status,
)
from tests.loopback import closed_port_url, serve

# A broken client must fail a test, not hang it. pytest-timeout bounds the sync tests; async
# ones bound open-ended waits with anyio.fail_after (SIGALRM cannot stop anyio's trio runner).
pytestmark = pytest.mark.timeout(20)
WAIT_LIMIT = 5.0

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
MEMORY_URL = "http://127.0.0.1:9"
SLOW = 5.0  # what a slow scripted answer takes; far above every deadline used here
DEADLINE = 0.3
BIG_BODY = b'{"pad": "' + b"x" * 4096 + b'"}'


@dataclass
class World:
    """One fake platform, reached over loopback or through a memory driver."""

    platform: FakePlatform
    url: str
    memory: bool
    drivers: list[MemoryDriver] = field(default_factory=list)

    @property
    def profile(self) -> Profile:
        return Profile(name="test", url=self.url, api_key=API_KEY)

    def _memory_driver(self, cls: type[MemoryDriver]) -> MemoryDriver:
        driver = cls(self.platform)
        assert driver.virtual is not None
        self.platform.sleep = driver.virtual.advance
        self.drivers.append(driver)
        return driver

    def async_client(self, **options: Any) -> KneoClient:
        if not self.memory:
            return KneoClient(self.profile, retry_policy=FAST, **options)
        driver = self._memory_driver(AsyncMemoryDriver)
        return KneoClient(self.profile, retry_policy=FAST, driver=driver, **options)

    def sync_client(self, **options: Any) -> SyncKneoClient:
        if not self.memory:
            return SyncKneoClient(self.profile, retry_policy=FAST, **options)
        driver = self._memory_driver(MemoryDriver)
        return SyncKneoClient(self.profile, retry_policy=FAST, driver=driver, **options)

    def sleeps(self) -> list[float]:
        """Sleeps the memory driver was asked for (memory worlds only)."""
        return self.drivers[-1].sleeps


def refuse(request: Request) -> Response:
    raise SimulatedFailure(FailureKind.CONNECT, "connection refused")


@pytest.fixture(params=["loopback", "memory"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    platform = FakePlatform(runs=7, audit_events=12)
    if request.param == "memory":
        yield World(platform, MEMORY_URL, memory=True)
        return
    with serve(platform) as url:
        try:
            yield World(platform, url, memory=False)
        finally:
            platform.stop()


# -- checks shared by the async and the blocking scenarios ----------------------------------


def check_one_key_one_request_id(world: World, path: str, key: str, request_id: str) -> None:
    seen = world.platform.requests_to(path)
    assert [r.header("idempotency-key") for r in seen] == [key] * len(seen)
    assert [r.header("x-request-id") for r in seen] == [request_id] * len(seen)
    assert [r.header("x-kneo-attempt") for r in seen] == [str(n + 1) for n in range(len(seen))]
    assert world.platform.executions[key] == 1


def check_not_found(error: KneoNotFoundError, request_id: str) -> None:
    assert error.status == 404
    assert error.code == "not_found"
    assert error.request_id == request_id
    assert error.body["error"]["code"] == "not_found"
    assert error.attempts == 1


# -- async client: asyncio and trio, loopback and memory --------------------------------------


@pytest.mark.anyio
async def test_async_success_sends_auth_and_echoes_request_id(world: World) -> None:
    async with world.async_client() as client:
        created = await client.platform.runs.create({"spec_id": "s"})
        got = await client.platform.runs.get.raw(created.run_id)
    assert got.status == 200
    assert isinstance(got.parsed, RunStatusResponse)
    assert got.parsed.run_id == created.run_id
    last = world.platform.log[-1]
    assert last.header("authorization") == f"Bearer {API_KEY}"
    assert got.request_id == last.header("x-request-id")
    assert got.attempts == 1


@pytest.mark.anyio
async def test_async_keyed_post_retried_after_503_with_same_key_and_request_id(
    world: World,
) -> None:
    world.platform.script("/v1/runs", status(503), status(503), method="POST")
    async with world.async_client() as client:
        response = await client.platform.runs.create.raw({"spec_id": "s"}, idempotency_key="k-1")
    assert (response.status, response.attempts, response.idempotency_key) == (201, 3, "k-1")
    check_one_key_one_request_id(world, "/v1/runs", "k-1", response.request_id)


@pytest.mark.anyio
async def test_async_lost_response_is_replayed_not_executed_twice(world: World) -> None:
    world.platform.script("/v1/runs", lost_response(503), method="POST")
    async with world.async_client() as client:
        response = await client.platform.runs.create.raw({"spec_id": "s"})
    assert response.attempts == 2
    assert response.replayed
    assert response.idempotency_key is not None
    assert world.platform.run_ids()[-1] == response.parsed.run_id
    check_one_key_one_request_id(world, "/v1/runs", response.idempotency_key, response.request_id)


@pytest.mark.anyio
async def test_async_retry_after_is_honoured(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", rate_limited("1"))
    async with world.async_client() as client:
        started = time.monotonic()
        response = await client.platform.runs.get.raw("run-0001")
        waited = time.monotonic() - started
    assert response.attempts == 2
    if world.memory:
        assert world.sleeps() == [1.0]
    else:
        assert 0.95 <= waited < 3.0


@pytest.mark.anyio
async def test_async_404_raises_not_found_with_request_id(world: World) -> None:
    async with world.async_client() as client:
        with pytest.raises(KneoNotFoundError) as caught:
            await client.with_options(request_id="rid-404").platform.runs.get("nope")
    check_not_found(caught.value, "rid-404")


@pytest.mark.anyio
async def test_async_409_mismatch_raises_idempotency_mismatch(world: World) -> None:
    async with world.async_client() as client:
        await client.platform.runs.create({"spec_id": "a"}, idempotency_key="dup")
        with pytest.raises(KneoIdempotencyMismatchError) as caught:
            await client.platform.runs.create({"spec_id": "b"}, idempotency_key="dup")
    assert (caught.value.status, caught.value.idempotency_key) == (409, "dup")
    assert caught.value.code == "idempotency_key_mismatch"
    assert world.platform.executions["dup"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"run_id": 5}'])
async def test_async_undecodable_2xx_raises_decode_error(world: World, body: bytes) -> None:
    world.platform.script("/v1/runs/run-0001", raw(200, body))
    async with world.async_client() as client:
        with pytest.raises(KneoDecodeError) as caught:
            await client.platform.runs.get("run-0001")
    assert caught.value.status == 200
    assert caught.value.attempts == 1


@pytest.mark.anyio
async def test_async_iter_all_yields_every_item_once(world: World) -> None:
    async with world.async_client() as client:
        with anyio.fail_after(WAIT_LIMIT):
            runs = [run.run_id async for run in client.platform.runs.iter_all(limit=3)]
            events = [e.event_id async for e in client.platform.audit.iter_all(limit=5)]
    assert sorted(runs) == sorted(world.platform.run_ids())
    assert len(runs) == len(set(runs)) == 7
    assert len(events) == len(set(events)) == 12
    assert world.platform.requests["/v1/runs"] == 3
    assert world.platform.requests["/v1/audit-events"] == 3


@pytest.mark.anyio
async def test_async_wait_for_completion_returns_the_terminal_run(world: World) -> None:
    async with world.async_client() as client:
        created = await client.platform.runs.create({"spec_id": "s"})
        with anyio.fail_after(WAIT_LIMIT):
            done = await client.platform.runs.wait_for_completion(
                created.run_id, poll_interval=0.01
            )
    assert done.status == "completed"
    assert world.platform.requests[f"/v1/runs/{created.run_id}"] == 2


@pytest.mark.anyio
async def test_async_wait_for_completion_times_out(world: World) -> None:
    world.platform.polls_to_complete = None
    async with world.async_client() as client:
        created = await client.platform.runs.create({"spec_id": "s"})
        with pytest.raises(KneoWaitTimeoutError) as caught:
            await client.platform.runs.wait_for_completion(
                created.run_id, timeout=0.2, poll_interval=0.05
            )
    assert isinstance(caught.value, TimeoutError)
    assert (caught.value.run_id, caught.value.last_status) == (created.run_id, "running")
    assert caught.value.polls >= 2


@pytest.mark.anyio
async def test_async_deadline_cuts_a_slow_answer_short(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", slow(SLOW))
    async with world.async_client() as client:
        started = time.monotonic()
        with pytest.raises(KneoTimeoutError):
            await client.with_options(deadline=DEADLINE).platform.runs.get("run-0001")
        assert time.monotonic() - started < SLOW / 2
    assert world.platform.requests["/v1/runs/run-0001"] == 1


@pytest.mark.anyio
async def test_async_dropped_connection_is_retried(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", disconnect())
    async with world.async_client() as client:
        response = await client.platform.runs.get.raw("run-0001")
    assert response.attempts == 2


@pytest.mark.anyio
async def test_async_connection_refused_raises_network_error_after_retries(world: World) -> None:
    profile = Profile(name="closed", url=closed_port_url(), api_key=API_KEY)
    driver = AsyncMemoryDriver(refuse) if world.memory else None
    async with KneoClient(profile, retry_policy=FAST, driver=driver) as client:
        with pytest.raises(KneoNetworkError) as caught:
            await client.platform.runs.create({"spec_id": "s"})
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("connect", 3, None)


@pytest.mark.anyio
async def test_async_cancellation_propagates_and_client_stays_usable(world: World) -> None:
    async def hang_on_slow(request: Request) -> Response:
        if request.target == "/v1/runs/run-0001":
            await anyio.sleep_forever()
        return world.platform(request)

    world.platform.script("/v1/runs/run-0001", slow(SLOW))
    driver = AsyncMemoryDriver(hang_on_slow) if world.memory else None
    async with KneoClient(world.profile, retry_policy=FAST, driver=driver) as client:
        native = anyio.get_cancelled_exc_class()
        seen: list[BaseException] = []
        with anyio.move_on_after(0.2) as scope:
            try:
                await client.platform.runs.get("run-0001")
            except BaseException as exc:
                seen.append(exc)
                raise
        assert scope.cancelled_caught
        assert len(seen) == 1
        assert isinstance(seen[0], native)
        assert not isinstance(seen[0], KneoError)
        assert (await client.platform.runs.get("run-0002")).run_id == "run-0002"


@pytest.mark.anyio
async def test_async_transport_request_json(world: World) -> None:
    driver = AsyncMemoryDriver(world.platform) if world.memory else None
    async with Transport(world.profile, driver=driver) as transport:
        health = await transport.request("GET", "/v1/healthz")
        posted = await transport.request("POST", "/v1/runs", json={"spec_id": "s"})
    assert health.status_code == 200
    assert health.json()["ok"] is True
    assert posted.json()["run_id"] == world.platform.run_ids()[-1]
    assert posted.idempotency_key == world.platform.log[-1].header("idempotency-key")


@pytest.mark.anyio
async def test_async_concurrent_calls_beyond_the_pool_size_all_succeed(world: World) -> None:
    driver = AsyncMemoryDriver(world.platform) if world.memory else None
    found: list[str] = []

    async def fetch(client: KneoClient, run_id: str) -> None:
        found.append((await client.platform.runs.get(run_id)).run_id)

    async with (
        KneoClient(world.profile, retry_policy=FAST, max_connections=2, driver=driver) as client,
        anyio.create_task_group() as tasks,
    ):
        for run_id in world.platform.run_ids():
            tasks.start_soon(fetch, client, run_id)
    assert sorted(found) == world.platform.run_ids()


# -- blocking client: loopback and memory -----------------------------------------------------


def test_sync_success_sends_auth_and_echoes_request_id(world: World) -> None:
    with world.sync_client() as client:
        created = client.platform.runs.create({"spec_id": "s"})
        got = client.platform.runs.get.raw(created.run_id)
    assert got.status == 200
    assert got.parsed.run_id == created.run_id
    last = world.platform.log[-1]
    assert last.header("authorization") == f"Bearer {API_KEY}"
    assert got.request_id == last.header("x-request-id")


def test_sync_keyed_post_retried_after_503_with_same_key_and_request_id(world: World) -> None:
    world.platform.script("/v1/runs", status(503), status(503), method="POST")
    with world.sync_client() as client:
        response = client.platform.runs.create.raw({"spec_id": "s"}, idempotency_key="k-1")
    assert (response.status, response.attempts, response.idempotency_key) == (201, 3, "k-1")
    check_one_key_one_request_id(world, "/v1/runs", "k-1", response.request_id)


def test_sync_lost_response_is_replayed_not_executed_twice(world: World) -> None:
    world.platform.script("/v1/runs", lost_response(503), method="POST")
    with world.sync_client() as client:
        response = client.platform.runs.create.raw({"spec_id": "s"})
    assert (response.attempts, response.replayed) == (2, True)
    assert response.idempotency_key is not None
    check_one_key_one_request_id(world, "/v1/runs", response.idempotency_key, response.request_id)


def test_sync_retry_after_is_honoured(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", rate_limited("1"))
    with world.sync_client() as client:
        started = time.monotonic()
        response = client.platform.runs.get.raw("run-0001")
        waited = time.monotonic() - started
    assert response.attempts == 2
    if world.memory:
        assert world.sleeps() == [1.0]
    else:
        assert 0.95 <= waited < 3.0


def test_sync_404_raises_not_found_with_request_id(world: World) -> None:
    with world.sync_client() as client, pytest.raises(KneoNotFoundError) as caught:
        client.with_options(request_id="rid-404").platform.runs.get("nope")
    check_not_found(caught.value, "rid-404")


def test_sync_409_mismatch_raises_idempotency_mismatch(world: World) -> None:
    with world.sync_client() as client:
        client.platform.runs.create({"spec_id": "a"}, idempotency_key="dup")
        with pytest.raises(KneoIdempotencyMismatchError) as caught:
            client.platform.runs.create({"spec_id": "b"}, idempotency_key="dup")
    assert (caught.value.status, caught.value.code) == (409, "idempotency_key_mismatch")
    assert world.platform.executions["dup"] == 1


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"run_id": 5}'])
def test_sync_undecodable_2xx_raises_decode_error(world: World, body: bytes) -> None:
    world.platform.script("/v1/runs/run-0001", raw(200, body))
    with world.sync_client() as client, pytest.raises(KneoDecodeError) as caught:
        client.platform.runs.get("run-0001")
    assert caught.value.status == 200


def test_sync_iter_all_yields_every_item_once(world: World) -> None:
    with world.sync_client() as client:
        runs = [run.run_id for run in client.platform.runs.iter_all(limit=3)]
        events = [e.event_id for e in client.platform.audit.iter_all(limit=5)]
    assert runs == sorted(world.platform.run_ids(), reverse=True)
    assert len(events) == len(set(events)) == 12
    assert world.platform.requests["/v1/runs"] == 3
    assert world.platform.requests["/v1/audit-events"] == 3


def test_sync_wait_for_completion_returns_the_terminal_run(world: World) -> None:
    with world.sync_client() as client:
        created = client.platform.runs.create({"spec_id": "s"})
        done = client.platform.runs.wait_for_completion(created.run_id, poll_interval=0.01)
    assert done.status == "completed"
    assert world.platform.requests[f"/v1/runs/{created.run_id}"] == 2


def test_sync_wait_for_completion_times_out(world: World) -> None:
    world.platform.polls_to_complete = None
    with world.sync_client() as client:
        created = client.platform.runs.create({"spec_id": "s"})
        with pytest.raises(KneoWaitTimeoutError) as caught:
            client.platform.runs.wait_for_completion(
                created.run_id, timeout=0.2, poll_interval=0.05
            )
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.last_status == "running"


def test_sync_deadline_cuts_a_slow_answer_short(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", slow(SLOW))
    with world.sync_client() as client:
        started = time.monotonic()
        with pytest.raises(KneoTimeoutError):
            client.with_options(deadline=DEADLINE).platform.runs.get("run-0001")
        assert time.monotonic() - started < SLOW / 2
    assert world.platform.requests["/v1/runs/run-0001"] == 1


def test_sync_dropped_connection_is_retried(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", disconnect())
    with world.sync_client() as client:
        assert client.platform.runs.get.raw("run-0001").attempts == 2


def test_sync_connection_refused_raises_network_error_after_retries(world: World) -> None:
    profile = Profile(name="closed", url=closed_port_url(), api_key=API_KEY)
    driver = MemoryDriver(refuse) if world.memory else None
    with (
        SyncKneoClient(profile, retry_policy=FAST, driver=driver) as client,
        pytest.raises(KneoNetworkError) as caught,
    ):
        client.platform.runs.create({"spec_id": "s"})
    assert (caught.value.kind, caught.value.attempts, caught.value.status) == ("connect", 3, None)


def test_sync_transport_request_json(world: World) -> None:
    driver = MemoryDriver(world.platform) if world.memory else None
    with SyncTransport(world.profile, driver=driver) as transport:
        health = transport.request("GET", "/v1/healthz")
    assert health.json()["ok"] is True
    assert health.request_id == world.platform.log[-1].header("x-request-id")


def test_sync_client_shared_between_threads(world: World) -> None:
    with world.sync_client() as client, ThreadPoolExecutor(max_workers=4) as pool:
        found = list(
            pool.map(
                lambda run_id: client.platform.runs.get(run_id).run_id, world.platform.run_ids()
            )
        )
    assert found == world.platform.run_ids()


# -- the response-size cap: through the facade, and at the driver level ------------------------


@pytest.mark.anyio
async def test_async_client_refuses_a_body_over_its_cap(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", raw(200, BIG_BODY))
    async with world.async_client(max_response_bytes=1024) as client:
        with pytest.raises(KneoResponseTooLargeError) as caught:
            await client.platform.runs.get("run-0001")
        assert caught.value.attempts == 1
        assert (await client.platform.runs.get("run-0002")).run_id == "run-0002"


def test_sync_client_refuses_a_body_over_its_cap(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", raw(200, BIG_BODY))
    with world.sync_client(max_response_bytes=1024) as client:
        with pytest.raises(KneoResponseTooLargeError) as caught:
            client.platform.runs.get("run-0001")
        assert caught.value.attempts == 1
        assert client.platform.runs.get("run-0002").run_id == "run-0002"


# The drivers themselves, handed a Call built with a 1 KiB cap.


def capped_call(
    url: str, clock_driver: AsyncDriver | BlockingDriver | MemoryDriver
) -> Call[RunStatusResponse]:
    config = ClientConfig(base_url=url, api_key=API_KEY, max_response_bytes=1024)
    return Call(endpoints.get_run("run-0001"), config, clock=clock_driver.clock)


@pytest.mark.anyio
async def test_async_driver_enforces_the_response_cap(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", raw(200, BIG_BODY))
    driver = AsyncMemoryDriver(world.platform) if world.memory else AsyncDriver()
    try:
        with pytest.raises(KneoResponseTooLargeError) as caught:
            await driver.execute(capped_call(world.url, driver))
    finally:
        if isinstance(driver, AsyncDriver):
            await driver.aclose()
    assert caught.value.attempts == 1


def test_sync_driver_enforces_the_response_cap(world: World) -> None:
    world.platform.script("/v1/runs/run-0001", raw(200, BIG_BODY))
    driver = MemoryDriver(world.platform) if world.memory else BlockingDriver()
    try:
        with pytest.raises(KneoResponseTooLargeError):
            driver.execute(capped_call(world.url, driver))
    finally:
        if isinstance(driver, BlockingDriver):
            driver.close()


@pytest.mark.anyio
async def test_async_driver_accepts_a_body_at_the_cap(world: World) -> None:
    """The cap is inclusive: a body of exactly ``max_response_bytes`` is read whole."""
    body = b'{"pad": "' + b"x" * (1024 - 11) + b'"}'
    assert len(body) == 1024
    world.platform.script("/v1/runs/run-0001", raw(200, body))
    driver = AsyncMemoryDriver(world.platform) if world.memory else AsyncDriver()
    try:
        with pytest.raises(KneoDecodeError):  # the cap let it through; the model rejects it
            await driver.execute(capped_call(world.url, driver))
    finally:
        if isinstance(driver, AsyncDriver):
            await driver.aclose()
