"""kneo-client against the emulator over real HTTP: the async client on asyncio and on trio,
and the blocking client, each scenario written once (see ``worlds``).

The emulator runs on its virtual clock: a scenario moves time with ``emulator.advance``, so
runs progress exactly when the scenario says, however fast the machine is.
"""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from kneo_client import (
    AuthScheme,
    KneoAuthError,
    KneoClient,
    KneoDecodeError,
    KneoError,
    KneoIdempotencyMismatchError,
    KneoInvalidRequestError,
    KneoNetworkError,
    KneoPermissionError,
    Profile,
    RetryPolicy,
    SyncKneoClient,
)
from kneo_client.testing import Emulator, Fault, serve_emulator, serve_emulator_async
from tests.emulator.harness import given
from tests.integration.worlds import FLAVOURS, LIMIT, World, collect, play, resolve

pytestmark = pytest.mark.timeout(30)
ONCE = RetryPolicy(max_attempts=1)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_auth_accepts_both_schemes_and_refuses_missing_wrong_and_read_only_keys(
    flavour: str,
) -> None:
    async def scenario(world: World) -> None:
        url, key = world.running.url, world.running.api_key
        header_key = await world.open(Profile("h", url, key, AuthScheme.KNEO_API_KEY))
        assert (await resolve(header_key.platform.runs.list(limit=1))).total == 0
        wrong = await world.open(Profile("w", url, "not-the-key"))
        assert (await resolve(wrong.platform.health.readyz())).ok  # probes are public
        with pytest.raises(KneoAuthError) as caught:
            await resolve(wrong.platform.runs.list())
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        reader = await world.open(world.running.profile(read_only=True))
        assert (await resolve(reader.platform.credentials.list())).credentials is not None
        with pytest.raises(KneoPermissionError) as denied:
            await resolve(reader.platform.runs.create({"spec_id": "my-spec"}))
        assert (denied.value.status, denied.value.code) == (403, "forbidden")

    emulator = play(flavour, scenario)
    assert emulator.counters.executions.total() == 0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_run_pauses_for_human_review_and_completes_after_resume_and_continue(
    flavour: str,
) -> None:
    async def scenario(world: World) -> None:
        runs, tasks = world.client.platform.runs, world.client.platform.human_tasks
        created = await resolve(runs.create.raw({"spec_id": "support-triage"}))
        run_id = created.parsed.run_id
        assert (await resolve(runs.get(run_id))).status == "queued"
        world.emulator.advance(60)
        paused = await resolve(runs.get(run_id))
        assert paused.status == "paused_human_review"
        (task,) = (await resolve(tasks.list(status="pending"))).tasks
        assert (task.run_id, task.continuation_id) == (run_id, paused.continuation_id)
        await resolve(tasks.resume(task.continuation_id, {"decision": "approve"}))
        await resolve(runs.continue_(run_id))
        world.emulator.advance(60)
        done = await resolve(runs.wait_for_completion(run_id, timeout=5))
        assert done.status == "completed"
        trace = await resolve(runs.trace(run_id, limit=1000))
        assert [e.sequence for e in trace.events] == list(range(given(trace.total)))
        audit = await resolve(world.client.platform.audit.list(run_id=run_id, sort_order="asc"))
        assert audit.events[0].event_type == "run.created"
        assert audit.events[0].request_id == created.request_id
        assert {e.principal for e in audit.events} == {"operator"}

    play(flavour, scenario)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_lists_page_and_sort_and_refuse_out_of_bounds_queries(flavour: str) -> None:
    async def scenario(world: World) -> None:
        runs = world.client.platform.runs
        created = [(await resolve(runs.create({"spec_id": "my-spec"}))).run_id for _ in range(12)]
        page = await resolve(runs.list(limit=5, offset=10, sort_by="created_at", sort_order="asc"))
        assert (page.count, page.total, page.limit, page.offset) == (2, 12, 5, 10)
        assert [r.run_id for r in page.runs] == created[10:]
        walked = await collect(runs.iter_all(limit=5, sort_by="created_at", sort_order="asc"))
        assert [r.run_id for r in walked] == created
        transport = world.client._transport
        for query in ({"limit": 0}, {"limit": 1001}, {"sort_by": "colour"}, {"offset": -1}):
            with pytest.raises(KneoInvalidRequestError) as caught:
                await resolve(transport.request("GET", "/v1/runs", params=query))
            assert caught.value.code == "validation_error"

    play(flavour, scenario)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_idempotent_replay_returns_the_original_and_a_changed_payload_is_refused(
    flavour: str,
) -> None:
    async def scenario(world: World) -> None:
        create = world.client.platform.runs.create
        first = await resolve(create.raw({"spec_id": "my-spec"}, idempotency_key="k-1"))
        again = await resolve(create.raw({"spec_id": "my-spec"}, idempotency_key="k-1"))
        assert (first.replayed, again.replayed) == (False, True)
        assert (again.status, again.parsed.run_id) == (first.status, first.parsed.run_id)
        with pytest.raises(KneoIdempotencyMismatchError) as caught:
            await resolve(create({"spec_id": "nightly-report"}, idempotency_key="k-1"))
        assert caught.value.idempotency_key == "k-1"

    emulator = play(flavour, scenario)
    assert emulator.counters.executions["k-1"] == 1


FAULTS: dict[str, tuple[Fault, type[KneoError]]] = {
    "reset-before-response": (Fault.reset_before_response(), KneoNetworkError),
    "reset-mid-body": (Fault.reset_mid_body(), KneoNetworkError),
    "truncated-body": (Fault.truncated_body(), KneoNetworkError),  # KneoProtocolError, often
    "malformed-json": (Fault.malformed_json(), KneoDecodeError),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name", FAULTS)
def test_each_fault_surfaces_as_its_error_and_a_retry_gets_through(flavour: str, name: str) -> None:
    fault, error = FAULTS[name]

    async def scenario(world: World) -> None:
        world.emulator.faults.script("GET", "/v1/runs", fault, fault)
        with pytest.raises(error) as caught:
            await resolve(world.client.with_options(retry_policy=ONCE).platform.runs.list())
        assert caught.value.request_id is not None
        if name != "malformed-json":  # a 200 that does not decode is not retried
            assert (await resolve(world.client.platform.runs.list())).total == 0

    emulator = play(flavour, scenario)
    assert emulator.faults.pending() == 0 or name == "malformed-json"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_post_survives_two_scripted_503s_with_one_execution(flavour: str) -> None:
    async def scenario(world: World) -> None:
        world.emulator.faults.script("POST", "/v1/runs", Fault.error(503), Fault.error(503))
        created = await resolve(world.client.platform.runs.create.raw({"spec_id": "my-spec"}))
        assert (created.attempts, created.status) == (3, 201)
        assert world.emulator.counters.executions[created.idempotency_key or ""] == 1

    play(flavour, scenario)


def test_a_rate_limited_call_waits_out_retry_after() -> None:
    emulator = Emulator()
    emulator.faults.script("GET", "/v1/runs", Fault.rate_limited(1))
    with serve_emulator(emulator) as running, SyncKneoClient(running.profile()) as client:
        started = time.monotonic()
        assert client.platform.runs.list.raw().attempts == 2
    assert 0.95 <= time.monotonic() - started < 3.0


def slow_list(emulator: Emulator, seconds: float) -> Emulator:
    emulator.faults.script("GET", "/v1/runs", Fault.latency(seconds))
    return emulator


@pytest.mark.anyio
async def test_async_shutdown_lets_the_call_in_flight_finish() -> None:
    emulator = slow_list(Emulator(), 0.4)
    results: list[int] = []
    with anyio.fail_after(LIMIT):
        async with (
            serve_emulator_async(emulator) as running,
            KneoClient(running.profile(), retry_policy=ONCE) as client,
        ):

            async def call() -> None:
                results.append(given((await client.platform.runs.list()).total))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await anyio.sleep(0.1)
                await running.server.shutdown()
    assert results == [0]


def test_blocking_shutdown_lets_a_call_in_flight_finish_and_cuts_off_one_too_slow() -> None:
    emulator = slow_list(Emulator(), 0.4)
    emulator.faults.script("GET", "/v1/runs", Fault.latency(30))
    outcomes: list[object] = []

    def call(client: SyncKneoClient) -> None:
        try:
            outcomes.append(client.platform.runs.list().total)
        except KneoError as exc:
            outcomes.append(exc)

    with serve_emulator(emulator, grace_period=1.0) as running:
        client = SyncKneoClient(running.profile(), retry_policy=ONCE)
        threads = [threading.Thread(target=call, args=(client,)) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)  # the first request is in before the second
        started = time.monotonic()
    assert time.monotonic() - started < 3.0  # the grace period, not the 30 s latency
    for thread in threads:
        thread.join(LIMIT)
    client.close()
    assert outcomes[0] == 0
    assert isinstance(outcomes[1], KneoNetworkError)
