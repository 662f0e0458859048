"""T27: the deadline property under virtual time, on the async in-memory driver.

``AsyncMemoryDriver`` on its ``VirtualClock`` (asyncio and trio) runs seeded random schedules
through ``execute``, with a handler that plays the server of
``tests/proto/test_deadline_property.py`` (the schedules, the rules each action is checked
against and the checks of the call's end come from there): an exchange lasts what the server
takes but never longer than the attempt's timeout (then it is a ``TIMEOUT``), and a sleep
lasts what was asked.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import anyio
import pytest

from kneo_drivers.memory import AsyncMemoryDriver, SimulatedFailure
from kneo_proto import (
    Action,
    Call,
    CallOptions,
    ClientConfig,
    Failed,
    FailureKind,
    Finished,
    KneoError,
    Request,
    Response,
    Send,
)
from tests.proto.test_deadline_property import (
    BASE_URL,
    Schedule,
    Tally,
    Watch,
    random_schedule,
    reply,
)
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T27")

R = TypeVar("R")

DRIVER_SCHEDULES = scaled(1_000)


class RecordingCall(Call[R]):
    """A ``Call`` whose actions are checked by a ``Watch`` as the driver receives them."""

    watch: Watch
    last_send: Send | None = None

    def next_action(self) -> Action[R]:
        action = super().next_action()
        self.watch.check(action)
        if isinstance(action, Send):
            self.last_send = action
        return action


async def run_driver(schedule: Schedule, tally: Tally) -> None:
    """Run ``schedule`` through ``AsyncMemoryDriver.execute`` on its virtual clock."""
    holder: list[RecordingCall[bytes]] = []

    def handle(request: Request) -> Response:
        send = holder[0].last_send
        assert send is not None
        assert driver.virtual is not None
        outcome, takes = schedule.answer(send.attempt)
        if takes >= send.timeout:
            driver.virtual.advance(send.timeout)  # a real transport gives up here
            raise SimulatedFailure(FailureKind.TIMEOUT, "the attempt's timeout")
        driver.virtual.advance(takes)
        answer = reply(outcome)
        if isinstance(answer, FailureKind):
            raise SimulatedFailure(answer)
        status, headers, body = answer
        return Response(status, tuple(headers), body)

    driver = AsyncMemoryDriver(handle)
    call: RecordingCall[bytes] = RecordingCall(
        schedule.operation(),
        ClientConfig(base_url=BASE_URL, timeout=schedule.timeout),
        clock=driver.clock,
        options=CallOptions(deadline=schedule.deadline, retry_policy=schedule.policy),
        rng=random.Random(schedule.seed),
    )
    call.watch = Watch(schedule, driver.clock.monotonic, tally)
    holder.append(call)
    started = driver.clock.monotonic()
    try:
        outcome: Finished[bytes] | Failed = await driver.execute(call)
    except KneoError as error:
        outcome = Failed(error)
    tally.end(driver.clock.monotonic() - started, schedule, outcome)
    assert sum(driver.sleeps) < schedule.deadline


@pytest.mark.anyio
async def test_time_deadline_property_on_the_async_memory_driver(
    anyio_backend: str, figure: Callable[[str, str], None]
) -> None:
    tally = Tally()
    rng = random.Random(27)
    with anyio.fail_after(120):
        for _ in range(DRIVER_SCHEDULES):
            # The memory driver sleeps exactly what it is asked.
            await run_driver(replace(random_schedule(rng), oversleep=0.0), tally)
    counts = tally.counts
    assert counts["schedules"] == DRIVER_SCHEDULES
    figure(
        "T27",
        f"AsyncMemoryDriver on {anyio_backend}: {DRIVER_SCHEDULES:,} seeded schedules, "
        f"{counts['sends']:,} attempts, {counts['sleeps']:,} sleeps; 0 violations, "
        f"max elapsed/deadline {tally.worst:.3f}",
    )
