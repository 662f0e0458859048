"""T27: the deadline property under virtual time.

A schedule gives each attempt an outcome (503, 502, 429 with a ``Retry-After``, a transport
failure, success) and how long the server takes. A simulated driver carries out the call's
actions on a virtual clock, as a real one must: an exchange lasts what the server takes but
never longer than the attempt's timeout (then it is a ``TIMEOUT``), and a sleep lasts what
was asked. On every schedule:

- no attempt starts once the deadline has passed (remaining > 0 at every ``Send``);
- each attempt's timeout is ``min(configured timeout, remaining)`` and ``Send.remaining`` the
  time left;
- no sleep starts that would end at or after the deadline;
- the whole call, and the ``elapsed`` of its error, stay within the deadline (plus, for a
  driver made to oversleep, that oversleep: the call then fails without another attempt).

The pure core runs hypothesis-generated schedules here; the async in-memory driver runs
seeded random ones of the same kind in ``tests/drivers/test_memory_driver_deadlines.py``,
which imports the schedules and their checks from this module.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kneo_proto import (
    Action,
    Call,
    CallOptions,
    ClientConfig,
    Clock,
    Failed,
    FailureKind,
    Finished,
    KneoError,
    Operation,
    RetryPolicy,
    Send,
    Sleep,
)
from kneo_proto._operation import raw_operation
from tests.support.scale import scaled

pytestmark = pytest.mark.plan("T27")

CORE_SCHEDULES = scaled(10_000)
EXPLORED = scaled(1_000)
CONFIG_TIMEOUTS = (0.5, 5.0, 30.0)
BASE_URL = "https://kneo.test"
ROUNDING = 1e-9

# (label, status or None, failure kind or None, Retry-After or None)
OUTCOMES: tuple[tuple[str, int | None, FailureKind | None, str | None], ...] = (
    ("503", 503, None, None),
    ("502", 502, None, None),
    ("503 RA 1", 503, None, "1"),
    ("429 RA 0", 429, None, "0"),
    ("429 RA 5", 429, None, "5"),
    ("429 RA 30", 429, None, "30"),
    ("429 RA 120", 429, None, "120"),
    ("timeout", None, FailureKind.TIMEOUT, None),
    ("connect", None, FailureKind.CONNECT, None),
    ("network", None, FailureKind.NETWORK, None),
    ("200", 200, None, None),
)
TAKES = (0.0, 0.01, 0.3, 1.0, 4.9, 29.0, 61.0)


@dataclass(frozen=True)
class Schedule:
    """One call: its settings and what the server does with each attempt."""

    method: str
    deadline: float
    timeout: float
    policy: RetryPolicy
    attempts: tuple[tuple[int, float], ...]  # (index into OUTCOMES, seconds the server takes)
    seed: int
    oversleep: float = 0.0  # a busy driver sleeps this much longer than asked

    def operation(self) -> Operation[bytes]:
        return raw_operation(self.method, "/v1/deadline")

    def answer(self, attempt: int) -> tuple[int, float]:
        return self.attempts[min(attempt - 1, len(self.attempts) - 1)]


POLICIES = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 8),
    base_delay=st.sampled_from([0.0, 0.05, 0.5, 2.0, 10.0]),
    max_delay=st.sampled_from([0.5, 5.0, 30.0]),
    jitter=st.sampled_from([0.0, 0.1, 1.0]),
    max_retry_after=st.sampled_from([3.0, 60.0]),
)
SCHEDULES = st.builds(
    Schedule,
    method=st.sampled_from(["GET", "POST"]),
    deadline=st.floats(0.05, 600.0) | st.sampled_from([1.0, 10.0, 120.0]),
    timeout=st.sampled_from(CONFIG_TIMEOUTS),
    policy=POLICIES,
    attempts=st.lists(
        st.tuples(
            st.integers(0, len(OUTCOMES) - 1),
            st.sampled_from(TAKES) | st.floats(0.0, 100.0),
        ),
        min_size=1,
        max_size=8,
    ).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    oversleep=st.sampled_from([0.0, 0.0, 0.0, 0.001, 0.5, 5.0]),
)


def random_schedule(rng: random.Random) -> Schedule:
    policy = RetryPolicy(
        max_attempts=rng.randint(1, 8),
        base_delay=rng.choice([0.0, 0.05, 0.5, 2.0, 10.0]),
        max_delay=rng.choice([0.5, 5.0, 30.0]),
        jitter=rng.choice([0.0, 0.1, 1.0]),
        max_retry_after=rng.choice([3.0, 60.0]),
    )
    attempts = tuple(
        (rng.randrange(len(OUTCOMES)), rng.choice([*TAKES, rng.uniform(0.0, 100.0)]))
        for _ in range(rng.randint(1, 8))
    )
    deadline = rng.choice([rng.uniform(0.05, 600.0), 1.0, 10.0, 120.0])
    return Schedule(
        rng.choice(["GET", "POST"]),
        deadline,
        rng.choice(CONFIG_TIMEOUTS),
        policy,
        attempts,
        rng.getrandbits(32),
        rng.choice([0.0, 0.0, 0.0, 0.001, 0.5, 5.0]),
    )


def reply(outcome: int) -> tuple[int, list[tuple[str, str]], bytes] | FailureKind:
    _, status, failure, retry_after = OUTCOMES[outcome]
    if failure is not None:
        return failure
    assert status is not None
    headers = [] if retry_after is None else [("Retry-After", retry_after)]
    return status, headers, b"{}" if status == 200 else b'{"error": {"code": "busy"}}'


class Tally:
    """What the schedules did, for the figure."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.worst = 0.0  # the largest elapsed / deadline seen

    def end(self, elapsed: float, schedule: Schedule, outcome: Finished[Any] | Failed) -> None:
        """Check the call's end: within the deadline, plus what the driver overslept."""
        deadline = schedule.deadline
        # Up to float rounding: an attempt cut at ``remaining`` ends at the deadline exactly.
        limit = deadline + schedule.oversleep + ROUNDING * max(deadline, 1.0)
        assert elapsed <= limit, (elapsed, schedule)
        if not schedule.oversleep:
            self.worst = max(self.worst, elapsed / deadline)
        self.counts["schedules"] += 1
        if isinstance(outcome, Failed):
            error = outcome.error
            assert isinstance(error, KneoError)
            assert error.elapsed is not None
            assert error.elapsed <= limit
            if getattr(error, "kind", None) == "deadline":
                self.counts["deadline passed in a sleep"] += 1
            elif elapsed >= deadline * (1 - ROUNDING):
                self.counts["attempt cut at the deadline"] += 1


class Watch:
    """Checks each action of one call against the deadline rules, on the virtual clock."""

    def __init__(self, schedule: Schedule, now: Callable[[], float], tally: Tally) -> None:
        self.schedule = schedule
        self.now = now
        self.tally = tally
        self.deadline_at = now() + schedule.deadline

    def check(self, action: Action[Any]) -> None:
        remaining = self.deadline_at - self.now()
        if isinstance(action, Send):
            assert remaining > 0, "an attempt started at or after the deadline"
            assert action.timeout == min(self.schedule.timeout, remaining)
            assert action.remaining == remaining
            self.tally.counts["sends"] += 1
        elif isinstance(action, Sleep):
            assert 0 <= action.seconds < remaining, "a sleep would cross the deadline"
            self.tally.counts["sleeps"] += 1


def run_core(schedule: Schedule, tally: Tally) -> None:
    """Drive the pure core with an exact virtual transport."""
    clock = [1000.0]
    call: Call[bytes] = Call(
        schedule.operation(),
        ClientConfig(base_url=BASE_URL, timeout=schedule.timeout),
        clock=Clock(monotonic=lambda: clock[0], wall=lambda: 1_700_000_000.0 + clock[0]),
        options=CallOptions(deadline=schedule.deadline, retry_policy=schedule.policy),
        rng=random.Random(schedule.seed),
    )
    watch = Watch(schedule, lambda: clock[0], tally)
    started = clock[0]
    while True:
        action = call.next_action()
        watch.check(action)
        if isinstance(action, Finished | Failed):
            tally.end(clock[0] - started, schedule, action)
            return
        if isinstance(action, Sleep):
            clock[0] += action.seconds + schedule.oversleep
            continue
        outcome, takes = schedule.answer(action.attempt)
        if takes >= action.timeout:
            clock[0] += action.timeout
            call.receive_failure(FailureKind.TIMEOUT, "the attempt's timeout")
            continue
        clock[0] += takes
        answer = reply(outcome)
        if isinstance(answer, FailureKind):
            call.receive_failure(answer, "scheduled")
        else:
            call.receive_response(*answer)


def test_time_deadline_property_on_the_core(figure: Callable[[str, str], None]) -> None:
    """hypothesis explores (and would shrink) schedules; seeded random ones add volume at a
    fraction of hypothesis's cost per example."""
    tally = Tally()

    @given(schedule=SCHEDULES)
    @settings(
        max_examples=EXPLORED,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def deadline_holds(schedule: Schedule) -> None:
        run_core(schedule, tally)

    deadline_holds()
    rng = random.Random(2027)
    for _ in range(CORE_SCHEDULES):
        run_core(random_schedule(rng), tally)
    counts = tally.counts
    assert counts["schedules"] >= CORE_SCHEDULES + EXPLORED
    assert counts["deadline passed in a sleep"] > 0
    assert counts["attempt cut at the deadline"] > 0
    figure(
        "T27",
        f"core: {counts['schedules']:,} virtual schedules ({EXPLORED:,} hypothesis + "
        f"{CORE_SCHEDULES:,} seeded), {counts['sends']:,} attempts, {counts['sleeps']:,} sleeps; "
        f"{counts['attempt cut at the deadline']:,} attempts cut at the deadline, "
        f"{counts['deadline passed in a sleep']:,} oversleeps past it (no attempt sent); "
        "0 attempts at remaining <= 0, 0 sleeps crossing it, every timeout = "
        f"min(configured, remaining); max elapsed/deadline {tally.worst:.6f}",
    )
