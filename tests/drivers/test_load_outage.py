"""T25: an outage does not multiply the load: the retry budget caps the retry storm.

1,000 concurrent ``runs.create`` calls through one async client (asyncio and trio) on the
in-memory driver, against the emulator, in virtual time (deterministic and fast: a backoff
costs nothing). The handler yields to the event loop before answering, so the 1,000 calls
really interleave: their first attempts all fail before any retry starts.

- Outage: every ``POST /v1/runs`` is answered 503 (no ``Retry-After``) by the emulator's
  fault injection. With the default budget (500 tokens, 5 per retry) the server sees at
  most 1,000 + 100 attempts (amplification <= 1.10); with ``retry_budget=None`` exactly
  ``max_attempts`` (3) per call.
- Recovery: faults cleared, 1,000 more calls succeed at once and refill the bucket.
- Steady 10 % 503 (a seeded script of faults): with a full budget, no retry is denied.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import pytest

from kneo_client import KneoClient, Profile
from kneo_client.core.transport import DEFAULT_RETRY_BUDGET
from kneo_client.testing import Emulator, Fault, memory_handler
from kneo_drivers.memory import AsyncMemoryDriver
from kneo_proto import KneoError, Request, Response, RetryBudget, RetryPolicy
from tests.support.scale import scaled

pytestmark = [pytest.mark.plan("T25"), pytest.mark.anyio, pytest.mark.timeout(120)]

CALLS = scaled(1000)
LIMIT = 60.0
PATH = "/v1/runs"


def interleaving(emulator: Emulator) -> Callable[[Request], Awaitable[Response]]:
    """The emulator's in-memory handler, yielding to the event loop before each answer."""
    answer = memory_handler(emulator)

    async def handle(request: Request) -> Response:
        await anyio.lowlevel.checkpoint()
        return answer(request)

    return handle


@dataclass
class Round:
    calls: int = 0
    succeeded: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    denied: int = 0
    attempts: int = 0

    @property
    def amplification(self) -> float:
        return self.attempts / self.calls


async def burst(client: KneoClient, emulator: Emulator, calls: int) -> Round:
    """``calls`` concurrent creates; the server's attempts counted from its counters."""
    before = emulator.counters.requests[PATH]
    result = Round(calls=calls)

    async def one(n: int) -> None:
        try:
            await client.platform.runs.create({"spec_id": "my-spec"})
        except KneoError as error:
            result.errors[type(error).__name__] += 1
            result.denied += error.retry_budget_exhausted
        else:
            result.succeeded += 1

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tasks:
            for n in range(calls):
                tasks.start_soon(one, n)
    result.attempts = emulator.counters.requests[PATH] - before
    return result


def client_for(emulator: Emulator, budget: RetryBudget | None) -> KneoClient:
    profile = Profile(name="outage", url="https://emulator.test", api_key=emulator.api_key)
    driver = AsyncMemoryDriver(interleaving(emulator))
    return KneoClient(profile, retry_budget=budget, driver=driver)


async def test_an_outage_with_the_budget_costs_at_most_ten_percent_more(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    emulator = Emulator()
    emulator.faults.always("POST", PATH, Fault.error(503))
    async with client_for(emulator, DEFAULT_RETRY_BUDGET) as client:
        bucket = client.retry_budget
        assert bucket is not None
        outage = await burst(client, emulator, CALLS)
        level_after_outage = bucket.available
        emulator.faults.clear()
        recovery = await burst(client, emulator, CALLS)
    capacity, cost = DEFAULT_RETRY_BUDGET.capacity, DEFAULT_RETRY_BUDGET.retry_cost
    figure(
        "T25",
        f"{anyio_backend}, budget on ({capacity} tokens, {cost} per retry): {outage.calls} "
        f"calls in a full 503 outage made {outage.attempts} attempts, amplification "
        f"{outage.amplification:.3f} (pass <= 1.10), {outage.denied} retries denied; "
        f"recovery: {recovery.succeeded}/{recovery.calls} succeeded at once with "
        f"{recovery.attempts} attempts, bucket {level_after_outage} -> {bucket.available}",
    )
    assert outage.errors == Counter({"KneoServiceUnavailableError": outage.calls})
    assert outage.attempts <= outage.calls + capacity // cost
    assert outage.amplification <= 1.10
    assert (recovery.succeeded, recovery.attempts) == (CALLS, CALLS)
    assert bucket.available == min(capacity, level_after_outage + CALLS)


async def test_an_outage_without_the_budget_makes_every_attempt(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    emulator = Emulator()
    emulator.faults.always("POST", PATH, Fault.error(503))
    async with client_for(emulator, None) as client:
        outage = await burst(client, emulator, CALLS)
    attempts = RetryPolicy().max_attempts
    figure(
        "T25",
        f"{anyio_backend}, retry_budget=None: {outage.calls} calls made {outage.attempts} "
        f"attempts, amplification {outage.amplification:.3f} (exactly {attempts}.0 expected)",
    )
    assert outage.attempts == outage.calls * attempts


async def test_a_steady_ten_percent_failure_rate_is_never_denied(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    emulator = Emulator()
    rng = random.Random(25)
    script = [Fault.error(503) if rng.random() < 0.1 else Fault.latency(0) for _ in range(CALLS)]
    script += [Fault.latency(0)] * CALLS  # retries and the tail: answered normally
    emulator.faults.script("POST", PATH, *script)
    async with client_for(emulator, DEFAULT_RETRY_BUDGET) as client:
        steady = await burst(client, emulator, CALLS)
    injected = sum(1 for fault in script[: steady.attempts] if fault.status == 503)
    figure(
        "T25",
        f"{anyio_backend}, steady ~10 % 503 ({injected} injected over {steady.attempts} "
        f"attempts): {steady.succeeded}/{steady.calls} succeeded, retries denied "
        f"{steady.denied}, amplification {steady.amplification:.3f}",
    )
    assert steady.denied == 0
    assert steady.succeeded == steady.calls
