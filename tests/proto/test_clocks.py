"""T29: clock jumps. The core reads time only through the ``Clock`` its driver injects
(``kneo_proto/_config.py``), durations only from its monotonic half, and the wall clock only
to turn an HTTP-date ``Retry-After`` into a duration.

- With every clock of the ``time`` module made to fail, calls (backoff, HTTP-date
  ``Retry-After``, deadline expiry), a ``RunPoll`` and a ``PageWalk`` still run on an
  injected clock.
- A wall clock that jumps by up to +/-10 minutes at every reading changes no decision of a
  call whose server sends delay-seconds: the same attempts, timeouts, sleeps and outcome.
- Under +/-10 minutes of skew between the server's clock and ours, an HTTP-date
  ``Retry-After`` becomes ``max(date - our wall, 0)``: the call either sleeps exactly that,
  within [0, min(max_retry_after, remaining)), or fails at once with ``retry_after`` set
  (ADR 0005: never undercut, never capped). A wall-clock jump after the response does not
  change the sleep already decided.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kneo_proto import (
    Call,
    CallOptions,
    CallState,
    ClientConfig,
    Clock,
    Failed,
    FailureKind,
    Finished,
    KneoError,
    PageWalk,
    PaginatedResult,
    RetryPolicy,
    RunPoll,
    Send,
    Sleep,
)
from kneo_proto._operation import raw_operation
from tests.proto.harness import HTTP_DATE_FORMS, http_date
from tests.proto.test_deadline_property import Schedule, random_schedule, reply
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T29")

CONFIG = ClientConfig(base_url="https://kneo.test", api_key="clock-key-0123456789")
WALL = 1_700_000_000.0
SKEW = 600
JUMP_SCHEDULES = scaled(2_000)
SKEW_CASES = scaled(2_000)
TIME_FUNCTIONS = ("time", "monotonic", "perf_counter", "time_ns", "monotonic_ns", "perf_counter_ns")


class FakeClock:
    """A monotonic clock moved by hand and a wall clock computed from it (plus a jump)."""

    def __init__(self, wall: Callable[[float], float] | None = None) -> None:
        self.now = 500.0
        self.reads = 0
        self._wall = wall or (lambda now: WALL + now)

    def monotonic(self) -> float:
        self.reads += 1
        return self.now

    def wall(self) -> float:
        self.reads += 1
        return self._wall(self.now)

    def clock(self) -> Clock:
        return Clock(monotonic=self.monotonic, wall=self.wall)


@contextmanager
def stdlib_clocks_fail(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every clock of ``time`` raise; yield the names of the ones that were called."""
    called: list[str] = []

    def failing(name: str) -> Callable[[], Any]:
        def read() -> Any:
            called.append(name)
            raise AssertionError(f"the core read time.{name}()")

        return read

    with monkeypatch.context() as patch:
        for name in TIME_FUNCTIONS:
            patch.setattr(time, name, failing(name))
        yield called


def drive(call: Call[bytes], clock: FakeClock, answers: list[Any], oversleep: float = 0.0) -> Any:
    """Answer each attempt from ``answers``; sleep on ``clock``; return the final action."""
    index = 0
    while True:
        action = call.next_action()
        if isinstance(action, Finished | Failed):
            return action
        if isinstance(action, Sleep):
            clock.now += action.seconds + oversleep
            continue
        answer = answers[min(index, len(answers) - 1)]
        index += 1
        if isinstance(answer, FailureKind):
            call.receive_failure(answer, "scripted")
        else:
            call.receive_response(*answer)


def test_time_core_reads_only_the_injected_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    date = http_date(int(WALL + clock.now) + 3)
    with stdlib_clocks_fail(monkeypatch) as called:
        options = CallOptions(deadline=30.0, retry_policy=RetryPolicy(max_attempts=4))
        backoff = Call(raw_operation("GET", "/v1/x"), CONFIG, clock=clock.clock(), options=options)
        answers: list[Any] = [
            FailureKind.TIMEOUT,
            (503, [("Retry-After", date)], b""),
            (200, [], b"{}"),
        ]
        assert isinstance(drive(backoff, clock, answers), Finished)
        late = Call(raw_operation("POST", "/v1/x"), CONFIG, clock=clock.clock(), options=options)
        expired = drive(late, clock, [(503, [], b"")], oversleep=100.0)
        assert isinstance(expired, Failed)
        assert getattr(expired.error, "kind", None) == "deadline"
        poll = RunPoll("run-1", clock=clock.clock(), timeout=5.0, poll_interval=2.0)
        while not isinstance(poll.next_action(), Failed):
            clock.now += 2.0
        walk = PageWalk(page_size=2)
        walk.receive_page(PaginatedResult(items=[1, 2], total=3, limit=2, offset=0))
        assert walk.next_page() == (2, 2)
    assert called == []
    assert clock.reads > 0


def decisions(schedule: Schedule, wall: Callable[[float], float]) -> list[object]:
    """Everything the core decided for ``schedule``, with ``wall`` as its wall clock."""
    clock = FakeClock(wall)
    call: Call[bytes] = Call(
        schedule.operation(),
        ClientConfig(base_url="https://kneo.test", timeout=schedule.timeout),
        clock=clock.clock(),
        options=CallOptions(deadline=schedule.deadline, retry_policy=schedule.policy),
        rng=random.Random(schedule.seed),
    )
    seen: list[object] = []
    while True:
        action = call.next_action()
        if isinstance(action, Sleep):
            seen.append(("sleep", action.seconds))
            clock.now += action.seconds + schedule.oversleep
        elif isinstance(action, Send):
            seen.append(("send", action.attempt, action.timeout, action.remaining))
            outcome, takes = schedule.answer(action.attempt)
            clock.now += min(takes, action.timeout)
            answer = reply(outcome)
            if takes >= action.timeout:
                call.receive_failure(FailureKind.TIMEOUT, "timeout")
            elif isinstance(answer, FailureKind):
                call.receive_failure(answer, "scheduled")
            else:
                call.receive_response(*answer)
        else:
            error = action.error if isinstance(action, Failed) else None
            seen.append((type(error).__name__, getattr(error, "retry_after", None), call.elapsed))
            return seen


def test_time_wall_clock_jumps_change_no_decision(figure: Callable[[str, str], None]) -> None:
    rng = random.Random(29)
    jumps = random.Random(2029)
    steps = 0
    for _ in range(JUMP_SCHEDULES):
        schedule = random_schedule(rng)
        steady = decisions(schedule, lambda now: WALL + now)
        jumping = decisions(schedule, lambda now: WALL + now + jumps.uniform(-SKEW, SKEW))
        assert jumping == steady, schedule
        steps += len(steady)
    figure(
        "T29",
        f"{JUMP_SCHEDULES:,} schedules ({steps:,} decisions) with the wall clock jumping up to "
        f"+/-{SKEW // 60} min at every read: 0 changed decisions",
    )


def test_time_http_date_retry_after_under_skew(figure: Callable[[str, str], None]) -> None:
    tally: Counter[str] = Counter()
    largest = [0.0]

    @given(
        # Any skew up to 10 minutes, and often a small one (so that many dates still fit).
        skew=st.integers(-SKEW, SKEW) | st.integers(-3, 3),
        offset=st.integers(-120, 120),
        form=st.sampled_from(HTTP_DATE_FORMS),
        status=st.sampled_from([429, 503]),
        deadline=st.sampled_from([None, 10.0, 120.0]) | st.floats(0.5, 900.0),
        cap=st.sampled_from([3.0, 60.0]),
        jump=st.floats(-SKEW, SKEW),
    )
    @settings(
        max_examples=SKEW_CASES,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def clamped(
        skew: int,
        offset: int,
        form: str,
        status: int,
        deadline: float | None,
        cap: float,
        jump: float,
    ) -> None:
        wall_jump = [0.0]
        clock = FakeClock(lambda now: WALL + now + wall_jump[0])
        policy = RetryPolicy(max_attempts=2, max_retry_after=cap)
        options = CallOptions(deadline=deadline, retry_policy=policy)
        call = Call(raw_operation("GET", "/v1/x"), CONFIG, clock=clock.clock(), options=options)
        assert isinstance(call.next_action(), Send)
        client_wall = clock.wall()
        target = math.floor(client_wall + skew) + offset  # the server's clock is skewed
        call.receive_response(status, [("Retry-After", http_date(target, form))], b"")
        wall_jump[0] = jump  # the wall clock jumps after the response: nothing changes
        expected = max(target - client_wall, 0.0)
        remaining = call.remaining()
        action = call.next_action()
        if expected > cap or (remaining is not None and expected >= remaining):
            assert isinstance(action, Failed), action
            assert isinstance(action.error, KneoError)
            assert action.error.retry_after == expected
            tally["failed at once"] += 1
        else:
            assert isinstance(action, Sleep), action
            assert action.seconds == expected  # exactly: never undercut, never capped
            assert 0.0 <= action.seconds <= cap
            assert remaining is None or action.seconds < remaining
            largest[0] = max(largest[0], action.seconds)
            tally["zero sleeps" if action.seconds == 0 else "sleeps"] += 1
            assert call.state is CallState.READY

    clamped()
    assert tally["failed at once"]
    assert tally["sleeps"]
    assert tally["zero sleeps"]
    figure(
        "T29",
        f"HTTP-date Retry-After under +/-{SKEW // 60} min skew, {sum(tally.values()):,} cases: "
        f"{tally['sleeps']:,} exact sleeps (max {largest[0]:.0f} s <= max_retry_after), "
        f"{tally['zero sleeps']:,} past dates -> 0 s, {tally['failed at once']:,} beyond the cap "
        "or the deadline failed at once with retry_after; 0 early retries, 0 negative waits",
    )
