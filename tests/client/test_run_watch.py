"""``runs.watch``, ``wait_for_completion(on_change=...)``, polls that back off and a poll's
``Retry-After``, on the emulator in virtual time (``memory_driver`` / ``async_memory_driver``):
the blocking client, and the async client on asyncio and on trio.

With ``RunTiming(queued_seconds=0.5, step_seconds=1.0)`` a ``my-spec`` run is ``queued`` for
0.5 s, ``running`` until 2.5 s, then ``completed``; ``support-triage`` stops at
``paused_human_review`` and never ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, assert_type

import anyio
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.testing import Emulator, Fault, RunTiming, async_memory_driver, memory_driver
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import KneoRateLimited, KneoUsageError, KneoWaitTimeoutError
from kneo_proto.models import RunStatusResponse

pytestmark = pytest.mark.plan("T30")

TIMING = RunTiming(queued_seconds=0.5, step_seconds=1.0)
MODES = ["blocking", "asyncio", "trio"]


class World:
    """An emulator and one client on it: blocking, or async on a backend via ``anyio.run``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.emulator = Emulator(run_timing=TIMING)
        profile = Profile(name="watch", url="https://emulator.test", api_key=self.emulator.api_key)
        self.driver: MemoryDriver | AsyncMemoryDriver
        self.client: KneoClient | SyncKneoClient
        if mode == "blocking":
            self.driver = memory_driver(self.emulator)
            self.client = SyncKneoClient(profile, driver=self.driver)
        else:
            self.driver = async_memory_driver(self.emulator)
            self.client = KneoClient(profile, driver=self.driver)

    def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.mode == "blocking":
            return method(*args, **kwargs)

        async def bounded() -> Any:
            with anyio.fail_after(30):  # real seconds; the waits themselves are virtual
                return await method(*args, **kwargs)

        return anyio.run(bounded, backend=self.mode)

    def start(self, spec: str) -> str:
        """Create a run; forget the sleeps and requests so far."""
        run_id: str = self.call(self.client.platform.runs.create, {"spec_id": spec}).run_id
        self.driver.sleeps.clear()
        self.emulator.counters.reset()
        return run_id

    @property
    def polls(self) -> int:
        return self.emulator.counters.operations["get_run"]

    def watch(self, run_id: str, *, stop_after: int | None = None, **options: Any) -> list[str]:
        """The statuses ``runs.watch`` yields; with ``stop_after``, close it after that many."""
        seen: list[str] = []
        if isinstance(self.client, SyncKneoClient):
            watching = self.client.platform.runs.watch(run_id, **options)
            for run in watching:
                seen.append(run.status)
                if len(seen) == stop_after:
                    watching.close()
            return seen
        client = self.client

        async def body() -> None:
            with anyio.fail_after(30):
                watching = client.platform.runs.watch(run_id, **options)
                async for run in watching:
                    seen.append(run.status)
                    if len(seen) == stop_after:
                        await watching.aclose()

        anyio.run(body, backend=self.mode)
        return seen

    def close(self) -> None:
        if isinstance(self.client, SyncKneoClient):
            self.client.close()
        else:
            anyio.run(self.client.aclose, backend=self.mode)


@pytest.fixture(params=MODES)
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    built = World(request.param)
    try:
        yield built
    finally:
        built.close()


def test_watch_yields_the_run_at_each_status_change_then_ends_after_the_terminal_one(
    world: World,
) -> None:
    run_id = world.start("my-spec")
    assert world.watch(run_id, timeout=60) == ["queued", "running", "completed"]
    assert world.polls == 4  # at 0, 1, 2 and 3 s
    assert world.driver.sleeps == [1.0, 1.0, 1.0]


def test_watch_stops_polling_when_closed(world: World) -> None:
    run_id = world.start("my-spec")
    assert world.watch(run_id, stop_after=1) == ["queued"]
    assert world.polls == 1
    assert world.driver.sleeps == []


def test_watch_raises_the_wait_timeout_after_the_changes_it_saw(world: World) -> None:
    run_id = world.start("support-triage")
    with pytest.raises(KneoWaitTimeoutError) as caught:
        world.watch(run_id, timeout=10, poll_interval=1.0, poll_backoff=2.0)
    assert caught.value.last_status == "paused_human_review"
    assert world.driver.sleeps == [1.0, 2.0, 4.0, 3.0]  # never past the timeout


def test_watch_refuses_bad_arguments_when_made_before_any_poll(world: World) -> None:
    run_id = world.start("my-spec")
    with pytest.raises(KneoUsageError, match="poll_backoff must be a finite factor >= 1"):
        world.client.platform.runs.watch(run_id, poll_backoff=0.5)
    assert world.polls == 0


def test_on_change_sees_each_status_change_and_the_wait_returns_the_terminal_run(
    world: World,
) -> None:
    run_id = world.start("my-spec")
    seen: list[RunStatusResponse] = []
    runs = world.client.platform.runs
    done = world.call(runs.wait_for_completion, run_id, timeout=60, on_change=seen.append)
    assert [run.status for run in seen] == ["queued", "running", "completed"]
    assert done is seen[-1]
    assert world.polls == 4


def test_an_on_change_that_raises_ends_the_wait_with_its_error(world: World) -> None:
    run_id = world.start("my-spec")

    def refuse_running(run: RunStatusResponse) -> None:
        if run.status == "running":
            raise LookupError(run.status)

    runs = world.client.platform.runs
    with pytest.raises(LookupError, match="running"):
        world.call(runs.wait_for_completion, run_id, on_change=refuse_running)
    assert world.polls == 2


def test_wait_for_completion_backs_off_up_to_max_poll_interval(world: World) -> None:
    run_id = world.start("nightly-report")  # completes at 3.5 s
    runs = world.client.platform.runs
    options = {"poll_interval": 0.5, "poll_backoff": 2.0, "max_poll_interval": 1.5}
    done = world.call(runs.wait_for_completion, run_id, timeout=60, **options)
    assert done.status == "completed"
    assert world.driver.sleeps == [0.5, 1.0, 1.5, 1.5]  # polls at 0, 0.5, 1.5, 3 and 4.5 s
    assert world.polls == 5


def test_wait_for_completion_defaults_keep_a_fixed_interval(world: World) -> None:
    run_id = world.start("nightly-report")
    done = world.call(world.client.platform.runs.wait_for_completion, run_id, timeout=60)
    assert done.status == "completed"
    assert world.driver.sleeps == [1.0, 1.0, 1.0, 1.0]


def test_a_poll_that_spent_its_retries_on_retry_after_is_polled_again(world: World) -> None:
    run_id = world.start("my-spec")
    # All three attempts of the first poll are rate limited: its call gives up, the wait
    # honours the last Retry-After and polls again.
    limited = Fault.rate_limited(retry_after=2)
    world.emulator.faults.script("GET", f"/v1/runs/{run_id}", limited, limited, limited)
    runs = world.client.platform.runs
    done = world.call(runs.wait_for_completion, run_id, timeout=30)
    assert done.status == "completed"
    assert world.driver.sleeps[:3] == [2.0, 2.0, 2.0]  # two by the call, one by the wait
    assert world.emulator.faults.pending() == 0


def test_a_retry_after_longer_than_the_time_left_still_ends_the_wait_at_once(
    world: World,
) -> None:
    run_id = world.start("my-spec")
    limited = Fault.rate_limited(retry_after=50)
    world.emulator.faults.script("GET", f"/v1/runs/{run_id}", limited)
    with pytest.raises(KneoRateLimited) as caught:
        world.call(world.client.platform.runs.wait_for_completion, run_id, timeout=20)
    assert (caught.value.retry_after, caught.value.attempts) == (50.0, 1)
    assert world.driver.sleeps == []


async def typed_user_code(client: KneoClient, sync_client: SyncKneoClient) -> None:
    """Never run: mypy (strict, over the tests) checks what users see of these names."""
    runs, sync_runs = client.platform.runs, sync_client.platform.runs
    watching = runs.watch("r", timeout=60, poll_backoff=2.0, max_poll_interval=30.0)
    async for run in watching:
        assert_type(run, RunStatusResponse)
    await watching.aclose()
    for polled in sync_runs.watch("r", terminal_statuses={"completed"}):
        assert_type(polled, RunStatusResponse)

    def show(run: RunStatusResponse) -> None:
        print(run.status)

    assert_type(await runs.wait_for_completion("r", on_change=show), RunStatusResponse)
    assert_type(sync_runs.wait_for_completion("r", on_change=show), RunStatusResponse)

    async def async_show(run: RunStatusResponse) -> None:
        print(run.status)

    # The mistakes: each must stay an error.
    await runs.wait_for_completion("r", on_change=async_show)  # type: ignore[arg-type]
    sync_runs.watch("r", on_change=show)  # type: ignore[call-arg]
    sync_runs.watch("r", terminal_statuses="completed")  # type: ignore[arg-type]
