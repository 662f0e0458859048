"""Watching a run, in virtual time: polls that back off (``RunPoll``), a ``Retry-After`` on a
failed poll honoured when the wait can afford it, and ``RunWatch``, which hands out the run
each time its status changes (the machine behind ``runs.watch`` and ``on_change``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from kneo_proto import (
    Done,
    Failed,
    Fetch,
    Items,
    KneoError,
    KneoRateLimited,
    KneoServerError,
    KneoServiceUnavailableError,
    KneoStateError,
    KneoUsageError,
    KneoWaitTimeoutError,
    RunWait,
    RunWatch,
    Sleep,
    WalkState,
    endpoints,
)
from kneo_proto.models import RunStatusResponse
from tests.proto.harness import FakeClock
from tests.proto.test_paging_polling import drive_wait, finished, new_wait

# -- backoff --------------------------------------------------------------------------------

# (poll_interval, poll_backoff, max_poll_interval) -> sleeps between 6 polls (no timeout)
BACKOFF_CASES: list[tuple[float, float, float | None, list[float]]] = [
    (1.0, 1.0, None, [1.0] * 5),  # the defaults: today's fixed interval
    (1.0, 2.0, None, [1.0, 2.0, 4.0, 8.0, 16.0]),
    (1.0, 2.0, 5.0, [1.0, 2.0, 4.0, 5.0, 5.0]),
    (0.5, 1.5, None, [0.5, 0.75, 1.125, 1.6875, 2.53125]),
    (2.0, 3.0, 2.0, [2.0] * 5),
    (0.0, 2.0, None, [0.0] * 5),
]


@pytest.mark.parametrize(("interval", "backoff", "cap", "sleeps"), BACKOFF_CASES)
def test_run_wait_backs_off_from_poll_interval_up_to_max_poll_interval(
    interval: float, backoff: float, cap: float | None, sleeps: list[float]
) -> None:
    clock = FakeClock()
    wait = new_wait(clock, poll_interval=interval, poll_backoff=backoff, max_poll_interval=cap)
    trace = drive_wait(wait, clock, ["running"] * 5 + ["completed"], poll_takes=0.25)
    assert isinstance(trace.outcome, Done)
    assert trace.sleeps == pytest.approx(sleeps)


def test_run_wait_backing_off_never_sleeps_past_its_timeout() -> None:
    clock = FakeClock()
    start = clock.now
    wait = new_wait(clock, timeout=10.0, poll_interval=1.0, poll_backoff=2.0)
    trace = drive_wait(wait, clock, ["running"])
    assert trace.sleeps == [1.0, 2.0, 4.0, 3.0]  # 8 s would end past the timeout
    assert clock.now - start == pytest.approx(10.0)
    error = trace.error
    assert isinstance(error, KneoWaitTimeoutError)
    assert error.polls == 4


def test_run_wait_never_overflows_its_interval_without_a_maximum() -> None:
    clock = FakeClock()
    wait = new_wait(clock, poll_interval=1.0, poll_backoff=1e300)
    trace = drive_wait(wait, clock, ["running"] * 4 + ["completed"])
    assert all(math.isfinite(seconds) for seconds in trace.sleeps)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"poll_backoff": 0.5}, "poll_backoff must be a finite factor >= 1, not 0.5"),
        ({"poll_backoff": math.nan}, "poll_backoff must be a finite factor >= 1, not nan"),
        ({"poll_backoff": True}, "poll_backoff must be a finite factor >= 1, not True"),
        (
            {"poll_interval": 2.0, "max_poll_interval": 1.0},
            "max_poll_interval must be None (no limit) or a finite number of seconds >= "
            "poll_interval (2.0), not 1.0",
        ),
        (
            {"max_poll_interval": math.inf},
            "max_poll_interval must be None (no limit) or a finite number of seconds >= "
            "poll_interval (1.0), not inf",
        ),
    ],
)
def test_run_wait_refuses_a_bad_backoff_when_made(options: dict[str, Any], message: str) -> None:
    with pytest.raises(KneoUsageError) as caught:
        new_wait(FakeClock(), **options)
    assert str(caught.value) == message


# -- Retry-After on a failed poll -------------------------------------------------------------


def rate_limited(retry_after: float | None, **kw: Any) -> KneoRateLimited:
    """A poll whose call spent its retries on 429s; ``retry_after`` from the last one."""
    return KneoRateLimited("GET /v1/runs/run-1 -> 429", status=429, retry_after=retry_after, **kw)


# (the failed poll, the wait's timeout, max_retry_after) -> the sleep before the next poll,
# or None when the wait fails with the error instead
RETRY_AFTER_CASES: list[tuple[KneoError, float | None, float | None, float | None]] = [
    (rate_limited(2.0), 20.0, 60.0, 2.0),
    (rate_limited(2.0), None, 60.0, 2.0),
    (KneoServiceUnavailableError("503", status=503, retry_after=5.0), 20.0, 60.0, 5.0),
    (rate_limited(50.0), 20.0, 60.0, None),  # longer than the time left: fail at once
    (rate_limited(20.0), 20.0, 60.0, None),  # ends at the deadline: no time left to poll
    (rate_limited(90.0), None, 60.0, None),  # beyond the client's max_retry_after
    (rate_limited(2.0), 20.0, None, None),  # the wait was told to honour none
    (rate_limited(None), 20.0, 60.0, None),
    (rate_limited(2.0, retry_budget_exhausted=True), 20.0, 60.0, None),
    (KneoServerError("500", status=500, retry_after=2.0), 20.0, 60.0, None),
]


@pytest.mark.parametrize(("error", "timeout", "max_retry_after", "sleep"), RETRY_AFTER_CASES)
def test_run_wait_honours_a_retry_after_only_when_it_can_afford_it(
    error: KneoError, timeout: float | None, max_retry_after: float | None, sleep: float | None
) -> None:
    clock = FakeClock()
    wait = new_wait(clock, timeout=timeout, max_retry_after=max_retry_after)
    trace = drive_wait(wait, clock, [error, "completed"])
    if sleep is None:
        assert trace.error is error
        assert len(trace.fetches) == 1
    else:
        assert trace.outcome == Done(RunStatusResponse(run_id="run-1", status="completed"))
        assert trace.sleeps == [sleep]
        assert wait.poll.polls == 2


def test_run_wait_retry_after_sleeps_leave_the_backoff_where_it_was() -> None:
    clock = FakeClock()
    wait = new_wait(clock, poll_interval=1.0, poll_backoff=2.0, max_retry_after=60.0)
    answers: list[str | KneoError] = ["running", rate_limited(3.0), "running", "completed"]
    trace = drive_wait(wait, clock, answers)
    assert trace.sleeps == [1.0, 3.0, 2.0]
    assert isinstance(trace.outcome, Done)


# -- RunWatch ---------------------------------------------------------------------------------


@dataclass
class WatchTrace:
    handed: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    outcome: Done[None] | Failed | None = None


def drive_watch(
    watch: RunWatch[RunStatusResponse], clock: FakeClock, statuses: Sequence[str | KneoError]
) -> WatchTrace:
    """Run ``watch`` to its end; each poll answers with the next status (the last repeats)."""
    trace, polls = WatchTrace(), 0
    while True:
        action = watch.next_action()
        if isinstance(action, Done | Failed):
            trace.outcome = action
            return trace
        if isinstance(action, Items):
            trace.handed += [run.status for run in action.items]
        elif isinstance(action, Sleep):
            trace.sleeps.append(action.seconds)
            clock.advance(action.seconds)
        else:
            polls += 1
            answer = statuses[min(polls, len(statuses)) - 1]
            if isinstance(answer, KneoError):
                watch.receive_error(answer)
            else:
                watch.receive(finished(RunStatusResponse(run_id="run-1", status=answer)))


def new_watch(clock: FakeClock, **kwargs: Any) -> RunWatch[RunStatusResponse]:
    return RunWatch(RunWait(endpoints.get_run, "run-1", clock=clock.clock(), **kwargs))


# statuses polled -> runs handed out
CHANGE_CASES: list[tuple[list[str], list[str]]] = [
    (["completed"], ["completed"]),
    (["queued", "running", "completed"], ["queued", "running", "completed"]),
    (
        ["queued", "queued", "running", "running", "paused_human_review", "running", "failed"],
        ["queued", "running", "paused_human_review", "running", "failed"],
    ),
    (["running"] * 50 + ["cancelled"], ["running", "cancelled"]),
]


@pytest.mark.parametrize(("statuses", "handed"), CHANGE_CASES)
def test_run_watch_hands_out_the_run_at_each_change_and_the_terminal_run(
    statuses: list[str], handed: list[str]
) -> None:
    clock = FakeClock()
    watch = new_watch(clock, poll_interval=2.0)
    trace = drive_watch(watch, clock, statuses)
    assert trace.handed == handed
    assert trace.outcome == Done(None)
    assert trace.sleeps == [2.0] * (len(statuses) - 1)
    assert watch.terminal == RunStatusResponse(run_id="run-1", status=statuses[-1])
    assert watch.wait.poll.polls == len(statuses)
    assert watch.state is WalkState.DONE
    assert watch.next_action() == Done(None)


def test_run_watch_fails_as_its_wait_does_after_the_changes_it_saw() -> None:
    clock = FakeClock()
    trace = drive_watch(new_watch(clock, timeout=5.0), clock, ["queued", "running"])
    assert trace.handed == ["queued", "running"]
    assert isinstance(trace.outcome, Failed)
    assert isinstance(trace.outcome.error, KneoWaitTimeoutError)
    error = KneoServerError("GET /v1/runs/run-1 -> 500", status=500)
    trace = drive_watch(new_watch(clock), clock, ["queued", error])
    assert (trace.handed, trace.outcome) == (["queued"], Failed(error))


def test_run_watch_close_stops_before_the_next_poll() -> None:
    clock = FakeClock()
    watch = new_watch(clock)
    assert isinstance(watch.next_action(), Fetch)
    watch.receive(finished(RunStatusResponse(run_id="run-1", status="running")))
    watch.close()
    assert watch.next_action() == Done(None)
    assert watch.state is WalkState.DONE
    assert watch.wait.poll.polls == 1
    with pytest.raises(KneoStateError, match="terminal run is handed out"):
        _ = watch.terminal


def test_run_watch_refuses_calls_out_of_order_and_fails_once_abandoned() -> None:
    clock = FakeClock()
    watch = new_watch(clock)
    with pytest.raises(KneoStateError, match=r"RunWait.receive\(\) is not allowed in state READY"):
        watch.receive(finished(RunStatusResponse(run_id="run-1", status="running")))
    with pytest.raises(KneoStateError):
        _ = watch.terminal
    assert isinstance(watch.next_action(), Fetch)
    with pytest.raises(KneoStateError, match="not allowed in state FETCHING"):
        watch.next_action()
    watch.abandon()
    failed = watch.next_action()
    assert isinstance(failed, Failed)
    assert isinstance(failed.error, KneoStateError)
    assert "abandoned" in str(failed.error)
    assert repr(watch) == ("<RunWatch <RunWait run-1 state=FAILED polls=1 last_status=None>>")
