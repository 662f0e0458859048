"""T08: 409 disambiguation and the replay marker, 100 runs per scenario.

Through the blocking client and the in-memory driver (virtual time, so a ``Retry-After``
costs nothing): on the emulator, and where the emulator has no such answer, on a scripted
platform that is still working on the first attempt.

- (a) the same key with another payload: ``KneoIdempotencyMismatchError`` after one attempt;
- (b) the first answer lost: the retry, with the same key, is replayed (the run is created
  once), and a platform still working on it answers 409 ``idempotency_key_in_progress`` with
  ``Retry-After: 1`` k times: the call retries with the same key until the original run
  arrives;
- (c) a business 409 (continuing a run that is not paused): a ``KneoConflictError``, never
  retried;
- (d) a 422 with the mismatch code: ``KneoIdempotencyMismatchError``, never retried;
- (e) a replayed 201: ``raw(...).replayed`` is True, and the same run comes back.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

import msgspec
import pytest

from kneo_client import Profile, SyncKneoClient
from kneo_client.testing._emulator import Emulator
from kneo_client.testing._faults import Fault
from kneo_client.testing._memory import memory_driver
from kneo_drivers.memory import MemoryDriver
from kneo_proto import (
    IDEMPOTENCY_KEY_HEADER,
    KneoConflictError,
    KneoIdempotencyMismatchError,
    Request,
    Response,
    RetryPolicy,
)
from kneo_proto.models import RunCreateRequestDict
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T08")

Figure = Callable[[str, str], None]
RUNS = scaled(100)
URL = "https://emulator.test"
POLICY = RetryPolicy(max_attempts=4)
SPEC: RunCreateRequestDict = {"spec_id": "my-spec"}
CREATED = {"run_id": "run-original", "status": "queued", "created_at": "2026-01-01T00:00:00Z"}


def client_on(emulator: Emulator) -> SyncKneoClient:
    profile = Profile(name="t08", url=URL, api_key=emulator.api_key)
    return SyncKneoClient(profile, retry_policy=POLICY, driver=memory_driver(emulator))


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def client(emulator: Emulator) -> Iterator[SyncKneoClient]:
    with client_on(emulator) as client:
        yield client


def test_t08_a_key_reused_with_another_payload_is_a_mismatch_never_retried(
    emulator: Emulator, client: SyncKneoClient, figure: Figure
) -> None:
    retried = 0
    for run in range(RUNS):
        key = f"a-{run}"
        client.platform.runs.create(SPEC, idempotency_key=key)
        with pytest.raises(KneoIdempotencyMismatchError) as caught:
            client.platform.runs.create({**SPEC, "inputs": {"n": run}}, idempotency_key=key)
        retried += caught.value.attempts != 1
        assert caught.value.idempotency_key == key
        assert emulator.counters.executions[key] == 1
    figure("T08", f"(a) key reused with another payload, {RUNS} runs: mismatch retried {retried}")
    assert retried == 0


def test_t08_b_a_lost_answer_is_replayed_to_the_retry(
    emulator: Emulator, client: SyncKneoClient, figure: Figure
) -> None:
    created = Counter[int]()
    for run in range(RUNS):
        key = f"b-{run}"
        emulator.faults.script("POST", "/v1/runs", Fault.lost_response())
        answer = client.platform.runs.create.raw(SPEC, idempotency_key=key)
        assert answer.attempts == 2
        assert answer.replayed
        created[emulator.counters.executions[key]] += 1
    listed = {r.run_id for r in client.platform.runs.iter_all()}
    figure(
        "T08",
        f"(b) first answer lost, {RUNS} runs: retried with the same key and replayed "
        f"{RUNS}/{RUNS}; runs created per logical call {dict(created)}; runs on the platform "
        f"{len(listed)}",
    )
    assert created == Counter({1: RUNS})
    assert len(listed) == RUNS


def in_progress_then_created(busy: int) -> tuple[Callable[[Request], Response], list[str]]:
    """A platform still running the first attempt for ``busy`` more answers."""
    keys: list[str] = []
    refused = msgspec.json.encode(
        {"error": {"code": "idempotency_key_in_progress", "message": "still running"}}
    )

    def answer(request: Request) -> Response:
        keys.append(request.header(IDEMPOTENCY_KEY_HEADER) or "")
        if len(keys) <= busy:
            return Response(409, (("Retry-After", "1"),), refused)
        return Response(201, (), msgspec.json.encode(CREATED))

    return answer, keys


def test_t08_b_in_progress_is_retried_until_the_original_run_arrives(figure: Figure) -> None:
    rng = random.Random(8)
    resolved = 0
    for _ in range(RUNS):
        busy = rng.randint(1, POLICY.max_attempts - 1)
        handler, keys = in_progress_then_created(busy)
        profile = Profile(name="t08", url=URL, api_key="kneo_t08_key_0123")
        with SyncKneoClient(profile, retry_policy=POLICY, driver=MemoryDriver(handler)) as client:
            answer = client.platform.runs.create.raw(SPEC)
        assert answer.attempts == busy + 1
        assert len(set(keys)) == 1
        assert keys[0] == answer.idempotency_key
        resolved += answer.parsed.run_id == CREATED["run_id"]
    figure(
        "T08",
        f"(b) 409 in progress with Retry-After 1, 1-3 times, {RUNS} runs: resolved to the "
        f"original run {resolved}/{RUNS}, one key per call",
    )
    assert resolved == RUNS


def test_t08_c_a_business_409_is_a_conflict_never_retried(
    emulator: Emulator, client: SyncKneoClient, figure: Figure
) -> None:
    retried = 0
    for _ in range(RUNS):
        run = client.platform.runs.create(SPEC)
        with pytest.raises(KneoConflictError) as caught:
            client.platform.runs.continue_(run.run_id)  # not paused for review
        assert caught.value.status == 409
        retried += caught.value.attempts != 1
    figure(
        "T08", f"(c) business 409, {RUNS} runs: KneoConflictError {RUNS}/{RUNS}, retried {retried}"
    )
    assert retried == 0


def test_t08_d_a_422_mismatch_is_a_mismatch_never_retried(figure: Figure) -> None:
    body = msgspec.json.encode(
        {"error": {"code": "idempotency_key_mismatch", "message": "another payload"}}
    )
    sent = 0

    def answer(request: Request) -> Response:
        nonlocal sent
        sent += 1
        return Response(422, (), body)

    profile = Profile(name="t08", url=URL, api_key="kneo_t08_key_0123")
    with SyncKneoClient(profile, retry_policy=POLICY, driver=MemoryDriver(answer)) as client:
        for _ in range(RUNS):
            with pytest.raises(KneoIdempotencyMismatchError):
                client.platform.runs.create(SPEC)
    figure("T08", f"(d) 422 mismatch, {RUNS} runs: requests sent {sent} (one each)")
    assert sent == RUNS


def test_t08_e_a_replay_is_marked(
    emulator: Emulator, client: SyncKneoClient, figure: Figure
) -> None:
    marked = 0
    for run in range(RUNS):
        key = f"e-{run}"
        first = client.platform.runs.create.raw(SPEC, idempotency_key=key)
        again = client.platform.runs.create.raw(SPEC, idempotency_key=key)
        assert not first.replayed
        assert again.parsed.run_id == first.parsed.run_id
        marked += again.replayed
    figure("T08", f"(e) replayed 201, {RUNS} runs: marked replayed {marked}/{RUNS}, same run")
    assert marked == RUNS
