"""T30: the ``wait_for_completion`` contract, on the emulator in virtual time.

Each mode (the blocking client on ``memory_driver``, the async client on
``async_memory_driver`` under asyncio and trio) runs every scenario against a fresh emulator
whose clock the client's sleeps move, so minutes of waiting cost microseconds:

- a run completes after exactly the polls its timing implies;
- a run that never leaves ``paused_human_review`` ends in ``KneoWaitTimeoutError`` (a
  ``TimeoutError``) carrying the run ID, the last status and the number of polls, at the
  timeout and not later;
- a failed run is returned, not raised: the reference's contract ("the terminal
  RunStatusResponse", terminal statuses ``completed``, ``failed``, ``cancelled``), which the
  plan's "Names" section keeps over its section 4.2 (``KneoRunFailedError``);
- polls answered 503 and 429 with ``Retry-After`` are retried and the wait still completes
  within its timeout (each poll is an ordinary call: three failures of one poll in a row
  exhaust its retries, and then the wait sleeps the error's ``Retry-After`` and polls again
  when the time left allows, else ends with that error); a ``Retry-After`` longer than the
  time left ends the wait at once with ``KneoRateLimited`` (``retry_after`` set) instead of
  sleeping past the timeout;
- a 404 in the middle of a wait raises ``KneoNotFoundError``;
- no scenario issues anything but GETs while it waits (the methods are counted at the
  emulator).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.testing import (
    Emulator,
    Fault,
    RunTiming,
    async_memory_driver,
    memory_driver,
)
from kneo_proto import KneoNotFoundError, KneoRateLimited, KneoWaitTimeoutError, Request
from kneo_proto.models import RunStatusResponse

pytestmark = pytest.mark.plan("T30")

URL = "https://emulator.test"
TIMING = RunTiming(queued_seconds=0.5, step_seconds=1.0)
# spec -> seconds until it completes (queue + 1 s per step), with this timing
DURATIONS = {"my-spec": 2.5, "nightly-report": 3.5}
MODES = ["blocking", "asyncio", "trio"]


class CountingEmulator(Emulator):
    """An emulator that counts the methods it receives."""

    def __init__(self) -> None:
        super().__init__(run_timing=TIMING)
        self.methods: Counter[str] = Counter()

    def handle(self, request: Request) -> Any:
        self.methods[request.method] += 1
        return super().handle(request)


class Mode:
    """One way of calling the client: blocking, or async on a backend via ``anyio.run``."""

    def __init__(self, name: str, emulator: CountingEmulator) -> None:
        self.name = name
        profile = Profile(name="t30", url=URL, api_key=emulator.api_key)
        self.client: KneoClient | SyncKneoClient
        if name == "blocking":
            self.client = SyncKneoClient(profile, driver=memory_driver(emulator))
        else:
            self.client = KneoClient(profile, driver=async_memory_driver(emulator))

    def __call__(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.name == "blocking":
            return method(*args, **kwargs)

        async def bounded() -> Any:
            with anyio.fail_after(30):  # real seconds; the waits themselves are virtual
                return await method(*args, **kwargs)

        return anyio.run(bounded, backend=self.name)

    def close(self) -> None:
        if isinstance(self.client, SyncKneoClient):
            self.client.close()
        else:
            anyio.run(self.client.aclose, backend=self.name)


@contextmanager
def world(mode: str) -> Iterator[tuple[CountingEmulator, Mode]]:
    emulator = CountingEmulator()
    calling = Mode(mode, emulator)
    try:
        yield emulator, calling
    finally:
        calling.close()


def start(emulator: CountingEmulator, call: Mode, spec: str) -> str:
    """Create a run of ``spec``; reset the counters so that only the wait is counted."""
    run_id: str = call(call.client.platform.runs.create, {"spec_id": spec}).run_id
    emulator.methods.clear()
    emulator.counters.reset()
    return run_id


def wait(call: Mode, run_id: str, **options: Any) -> Any:
    return call(call.client.platform.runs.wait_for_completion, run_id, **options)


def completes_after_k_polls(mode: str) -> str:
    cases = []
    for spec, interval in (("my-spec", 1.0), ("my-spec", 0.7), ("nightly-report", 2.0)):
        with world(mode) as (emulator, call):
            run_id = start(emulator, call, spec)
            done = wait(call, run_id, timeout=60, poll_interval=interval)
            expected = math.ceil(DURATIONS[spec] / interval) + 1
            assert isinstance(done, RunStatusResponse)
            assert done.status == "completed"
            assert emulator.counters.operations["get_run"] == expected
            assert set(emulator.methods) == {"GET"}
            cases.append(f"{expected}")
    return f"completed after exactly {'/'.join(cases)} polls"


def never_completes(mode: str) -> str:
    with world(mode) as (emulator, call):
        run_id = start(emulator, call, "support-triage")
        started = emulator.clock.now()
        with pytest.raises(KneoWaitTimeoutError) as caught:
            wait(call, run_id, timeout=30, poll_interval=2.0)
        error = caught.value
        assert isinstance(error, TimeoutError)
        assert (error.run_id, error.last_status) == (run_id, "paused_human_review")
        assert error.polls == emulator.counters.operations["get_run"] >= 10
        assert error.elapsed is not None
        assert 30 <= error.elapsed <= 30 + 1e-6
        assert emulator.clock.now() - started <= 30 + 1e-6
        assert set(emulator.methods) == {"GET"}
    return f"never terminal -> KneoWaitTimeoutError(last_status, polls={error.polls}) at 30.0 s"


def failed_run_is_returned(mode: str) -> str:
    with world(mode) as (emulator, call):
        run_id = start(emulator, call, "always-fails")
        done = wait(call, run_id, timeout=60, poll_interval=1.0)
        assert done.status == "failed"
        assert done.error.code == "step_failed"
        assert set(emulator.methods) == {"GET"}
    return "failed run returned"


def poll_errors_are_retried(mode: str) -> str:
    with world(mode) as (emulator, call):
        run_id = start(emulator, call, "nightly-report")
        # Three polls each get one fault; their retries (zero latency: a normal answer) pass.
        passes = Fault.latency(0)
        emulator.faults.script(
            "GET",
            f"/v1/runs/{run_id}",
            *(Fault.error(503), passes, Fault.rate_limited(retry_after=2), passes),
            *(Fault.error(503, retry_after=1), passes),
        )
        started = emulator.clock.now()
        done = wait(call, run_id, timeout=20, poll_interval=1.0)
        assert done.status == "completed"
        assert emulator.faults.pending() == 0
        assert emulator.clock.now() - started <= 20
        assert set(emulator.methods) == {"GET"}
        retried = emulator.counters.operations["get_run"]
    with world(mode) as (emulator, call):
        run_id = start(emulator, call, "my-spec")
        emulator.faults.script("GET", f"/v1/runs/{run_id}", Fault.rate_limited(retry_after=50))
        with pytest.raises(KneoRateLimited) as caught:
            wait(call, run_id, timeout=20, poll_interval=1.0)
        assert caught.value.retry_after == 50.0
        assert caught.value.attempts == 1
        assert emulator.clock.now() - started < 20
    return (
        f"503 / 429 Retry-After 2 / 503 on 3 polls retried, completed in {retried} GETs; "
        "Retry-After 50 s vs 20 s timeout -> KneoRateLimited at once"
    )


def not_found_mid_wait(mode: str) -> str:
    with world(mode) as (emulator, call):
        run_id = start(emulator, call, "nightly-report")
        # Two polls pass through unchanged (a zero latency), the third gets a 404.
        path = f"/v1/runs/{run_id}"
        emulator.faults.script("GET", path, Fault.latency(0), Fault.latency(0), Fault.error(404))
        with pytest.raises(KneoNotFoundError) as caught:
            wait(call, run_id, timeout=60, poll_interval=1.0)
        assert caught.value.status == 404
        assert caught.value.attempts == 1
        assert emulator.counters.operations["get_run"] == 3
        assert set(emulator.methods) == {"GET"}
    return "404 on poll 3 -> KneoNotFoundError"


SCENARIOS = [
    completes_after_k_polls,
    never_completes,
    failed_run_is_returned,
    poll_errors_are_retried,
    not_found_mid_wait,
]


@pytest.mark.parametrize("mode", MODES)
def test_time_wait_for_completion_contract(mode: str, figure: Callable[[str, str], None]) -> None:
    assert SCENARIOS
    found = [scenario(mode) for scenario in SCENARIOS]
    figure("T30", f"{mode}: " + "; ".join(found) + "; 0 POSTs while waiting")
