"""The emulator behind kneo-client itself, through the in-memory drivers: retries survive
injected faults, errors map to the contract's classes, and the run lifecycle plays out in
virtual time on the blocking and the async client (asyncio and trio)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.testing._clock import SystemClock
from kneo_client.testing._emulator import Emulator
from kneo_client.testing._faults import Fault
from kneo_client.testing._memory import async_memory_driver, memory_driver, memory_handler
from kneo_drivers.memory import MemoryDriver
from kneo_proto import (
    AuthScheme,
    KneoAuthError,
    KneoConflictError,
    KneoDecodeError,
    KneoIdempotencyMismatchError,
    KneoInvalidRequestError,
    KneoNotFoundError,
    KneoPermissionError,
    RetryPolicy,
)

URL = "https://emulator.test"
REVIEW_DONE = {"completed", "failed", "cancelled", "paused_human_review"}


def profile(key: str, scheme: AuthScheme = AuthScheme.BEARER) -> Profile:
    return Profile(name="emulator", url=URL, api_key=key, auth_scheme=scheme, strict_responses=True)


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def client(emulator: Emulator) -> Iterator[SyncKneoClient]:
    policy = RetryPolicy(max_attempts=4)
    with SyncKneoClient(
        profile(emulator.api_key), retry_policy=policy, driver=memory_driver(emulator)
    ) as c:
        yield c


def test_memory_handler_serves_a_plain_memory_driver(emulator: Emulator) -> None:
    driver = MemoryDriver(memory_handler(emulator))
    with SyncKneoClient(
        profile(emulator.api_key, AuthScheme.KNEO_API_KEY), driver=driver
    ) as client:
        assert client.platform.health.readyz().ok
        run = client.platform.runs.create({"spec_id": "my-spec"})
        emulator.advance(10)
        assert client.platform.runs.get(run.run_id).status == "completed"


def test_client_survives_two_injected_503s(emulator: Emulator, client: SyncKneoClient) -> None:
    emulator.faults.script("POST", "/v1/runs", Fault.error(503), Fault.error(503))
    run = client.platform.runs.create({"spec_id": "my-spec"}, idempotency_key="demo-1")
    assert run.status == "queued"
    assert emulator.counters.requests["/v1/runs"] == 3
    assert emulator.counters.executions["demo-1"] == 1


@pytest.mark.parametrize(
    "fault", [Fault.reset_mid_body(), Fault.truncated_body(), Fault.lost_response()]
)
def test_client_retry_after_a_broken_answer_is_replayed_not_run_twice(
    emulator: Emulator, client: SyncKneoClient, fault: Fault
) -> None:
    emulator.faults.script("POST", "/v1/runs", fault)
    run = client.platform.runs.create({"spec_id": "my-spec"}, idempotency_key="k")
    assert emulator.counters.executions["k"] == 1
    assert [r.run_id for r in client.platform.runs.list().runs] == [run.run_id]


def test_client_waits_out_a_429_retry_after_in_virtual_time(
    emulator: Emulator, client: SyncKneoClient
) -> None:
    emulator.faults.script("GET", "/v1/runs", Fault.rate_limited(retry_after=7))
    before = emulator.clock.now()
    client.platform.runs.list()
    assert emulator.clock.now() - before == 7  # the client's sleep moved the platform's clock


def test_latency_advances_the_emulator_clock(emulator: Emulator, client: SyncKneoClient) -> None:
    emulator.faults.script("GET", "/v1/livez", Fault.latency(4))
    before = emulator.clock.now()
    client.platform.health.livez()
    assert emulator.clock.now() - before == 4


def test_malformed_json_raises_a_decode_error(emulator: Emulator, client: SyncKneoClient) -> None:
    emulator.faults.script("GET", "/v1/security/credentials", Fault.malformed_json())
    with pytest.raises(KneoDecodeError):
        client.platform.credentials.list()


def test_errors_map_to_the_contract_classes(emulator: Emulator, client: SyncKneoClient) -> None:
    with pytest.raises(KneoNotFoundError) as missing:
        client.platform.runs.get("run-404")
    assert missing.value.request_id
    with pytest.raises(KneoPermissionError) as denied:
        client.platform.runs.create({"spec_id": "my-spec", "environment": "prod"})
    assert denied.value.code == "policy_denied"
    with pytest.raises(KneoInvalidRequestError):  # the emulator's 422: no such environment
        client.platform.runs.create({"spec_id": "my-spec", "environment": "nowhere"})
    client.platform.runs.create({"spec_id": "my-spec"}, idempotency_key="same")
    with pytest.raises(KneoIdempotencyMismatchError):
        client.platform.runs.create({"spec_id": "nightly-report"}, idempotency_key="same")


def test_wrong_and_read_only_keys_are_refused(emulator: Emulator) -> None:
    stranger = SyncKneoClient(profile("wrong-key"), driver=memory_driver(emulator))
    with stranger, pytest.raises(KneoAuthError):
        stranger.platform.runs.list()
    with SyncKneoClient(profile(emulator.read_only_key), driver=memory_driver(emulator)) as reader:
        assert reader.platform.runs.list().total == 0
        with pytest.raises(KneoPermissionError):
            reader.platform.runs.create({"spec_id": "my-spec"})


def test_whole_review_workflow_through_the_blocking_client(
    emulator: Emulator, client: SyncKneoClient
) -> None:
    specs = client.agent.specs
    spec = (
        "name: refund\n"
        "steps:\n"
        "  - name: check\n    kind: tool\n    tool: crm.lookup\n"
        "  - name: ok\n    kind: human_review\n"
    )
    assert specs.validate({"spec": spec}).valid
    compiled = specs.compile({"spec": spec})
    assert compiled.spec_id == "refund"
    runs = client.platform.runs
    created = runs.create({"spec_id": "refund", "inputs": {"order": 17}})
    paused = runs.wait_for_completion(created.run_id, timeout=60, terminal_statuses=REVIEW_DONE)
    assert paused.status == "paused_human_review"
    assert isinstance(paused.continuation_id, str)
    with pytest.raises(KneoConflictError):
        runs.continue_(created.run_id)  # the task is still pending
    client.platform.human_tasks.resume(paused.continuation_id, {"decision": "approve"})
    runs.continue_(created.run_id)
    done = runs.wait_for_completion(created.run_id, timeout=60)
    assert done.status == "completed"
    events = [e.event_type for e in runs.iter_trace(created.run_id)]
    assert events[0] == "run_started"
    assert events[-1] == "run_completed"
    audit = [
        e.event_type
        for e in client.platform.audit.list(run_id=created.run_id, sort_order="asc").events
    ]
    assert audit == ["run.created", "human_task.resumed", "run.continued"]


def test_memory_driver_needs_a_virtual_clock() -> None:
    with pytest.raises(ValueError, match="VirtualClock"):
        memory_driver(Emulator(clock=SystemClock()))


def test_memory_handler_really_waits_on_a_system_clock() -> None:
    emulator = Emulator(clock=SystemClock())
    emulator.faults.script("GET", "/v1/livez", Fault.latency(0.02))
    driver = MemoryDriver(memory_handler(emulator), virtual_time=False)
    started = time.monotonic()
    with SyncKneoClient(profile(emulator.api_key), driver=driver) as client:
        client.platform.health.livez()
    assert time.monotonic() - started >= 0.02


@pytest.mark.anyio
async def test_contract_example_runs_on_the_async_client(emulator: Emulator) -> None:
    """The contract's first example (readyz, create "my-spec", wait), on asyncio and trio."""
    async with KneoClient(
        profile(emulator.api_key), driver=async_memory_driver(emulator)
    ) as client:
        ready = await client.platform.health.readyz()
        assert ready.ok
        run = await client.platform.runs.create({"spec_id": "my-spec"})
        terminal = await client.platform.runs.wait_for_completion(run.run_id, timeout=120)
        assert terminal.status == "completed"


@pytest.mark.anyio
async def test_async_client_survives_faults_and_reviews(emulator: Emulator) -> None:
    emulator.faults.script("POST", "/v1/runs", Fault.error(503), Fault.reset_mid_body())
    async with KneoClient(
        profile(emulator.api_key),
        retry_policy=RetryPolicy(max_attempts=4),
        driver=async_memory_driver(emulator),
    ) as client:
        runs = client.platform.runs
        run = await runs.create({"spec_id": "support-triage"}, idempotency_key="a-1")
        paused = await runs.wait_for_completion(
            run.run_id, timeout=60, terminal_statuses=REVIEW_DONE
        )
        assert isinstance(paused.continuation_id, str)
        await client.platform.human_tasks.resume(paused.continuation_id, {"decision": "reject"})
        await runs.continue_(run.run_id)
        failed = await runs.get(run.run_id)
        assert failed.status == "failed"
        recovery = await runs.recovery(run.run_id)
        assert recovery.recommended_action == "restart"
    assert emulator.counters.executions["a-1"] == 1
