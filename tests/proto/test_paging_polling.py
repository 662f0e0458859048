"""The pure machines behind ``iterate_all`` (``PageWalk``) and ``wait_for_completion``
(``RunPoll``): contract sections Pagination and RunsClient, plan section 4.2."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from kneo_proto import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_TERMINAL_STATUSES,
    MAX_PAGE_SIZE,
    Failed,
    FetchStatus,
    KneoError,
    KneoPaginationError,
    KneoServerError,
    KneoTimeoutError,
    KneoUsageError,
    KneoWaitTimeoutError,
    PageWalk,
    PaginatedResult,
    RunDone,
    RunPoll,
    Sleep,
    endpoints,
    page_of,
)
from kneo_proto.models import RunListResponse
from tests.proto.harness import FakeClock


def test_paging_polling_tables_are_not_empty() -> None:
    for table in (
        HAS_MORE_CASES,
        CLAMP_CASES,
        WALK_CASES,
        TERMINAL_CASES,
        TIMEOUT_CASES,
        BAD_POLL_ARGUMENTS,
    ):
        assert table


# -- PaginatedResult -----------------------------------------------------------------------

# (items on the page, offset, total) -> has_more
HAS_MORE_CASES: list[tuple[int, int, int, bool]] = [
    (0, 0, 0, False),
    (10, 0, 10, False),
    (10, 0, 11, True),
    (3, 7, 10, False),
    (3, 6, 10, True),
    (0, 5, 10, True),
    (5, 20, 10, False),
]


@pytest.mark.parametrize(("count", "offset", "total", "has_more"), HAS_MORE_CASES)
def test_paginated_result_count_and_has_more(
    count: int, offset: int, total: int, has_more: bool
) -> None:
    page = PaginatedResult(items=list(range(count)), total=total, limit=100, offset=offset)
    assert page.count == count
    assert page.has_more is has_more
    assert (page.sort_by, page.sort_order) == (None, None)


def test_page_of_wraps_a_list_response() -> None:
    run = {
        "run_id": "run-1",
        "spec_id": "spec-1",
        "status": "running",
        "environment": "dev",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:01Z",
    }
    body = {
        "count": 1,
        "total": 3,
        "limit": 1,
        "offset": 1,
        "sort_by": "updated_at",
        "sort_order": "desc",
        "runs": [run],
    }
    response = msgspec.convert(body, RunListResponse)
    page = page_of(response, "runs")
    assert page.items == list(response.runs)
    assert (page.total, page.limit, page.offset, page.count) == (3, 1, 1, 1)
    assert (page.sort_by, page.sort_order) == ("updated_at", "desc")
    assert page.has_more
    assert endpoints.list_runs.route.items_field == "runs"


def test_page_of_leaves_sort_fields_unset_when_the_response_has_none() -> None:
    @dataclass
    class Bare:
        things: list[int]
        total: int = 2
        limit: int = 2
        offset: int = 0

    page = page_of(Bare(things=[1, 2]), "things")
    assert (page.items, page.sort_by, page.sort_order, page.has_more) == ([1, 2], None, None, False)


# -- PageWalk ------------------------------------------------------------------------------

CLAMP_CASES: list[tuple[int, int]] = [
    (-5, 1),
    (0, 1),
    (1, 1),
    (DEFAULT_PAGE_SIZE, 100),
    (999, 999),
    (MAX_PAGE_SIZE, 1000),
    (1001, 1000),
    (10**9, 1000),
]


@pytest.mark.parametrize(("asked", "used"), CLAMP_CASES)
def test_page_walk_clamps_page_size_to_1_through_1000(asked: int, used: int) -> None:
    walk = PageWalk(page_size=asked)
    assert walk.next_page() == (used, 0)


def test_page_walk_defaults() -> None:
    walk = PageWalk()
    assert (walk.page_size, walk.offset, walk.max_pages, walk.pages, walk.done) == (
        100,
        0,
        None,
        0,
        False,
    )


@dataclass
class FakeList:
    """A list endpoint over ``total`` items that serves at most ``cap`` items per page."""

    total: int
    cap: int = MAX_PAGE_SIZE
    asked: list[tuple[int, int]] = field(default_factory=list)

    def fetch(self, limit: int, offset: int) -> PaginatedResult[int]:
        self.asked.append((limit, offset))
        items = list(range(offset, min(offset + min(limit, self.cap), self.total)))
        return PaginatedResult(items=items, total=self.total, limit=limit, offset=offset)


def walk_all(walk: PageWalk, server: FakeList) -> list[int]:
    seen: list[int] = []
    for _ in range(10_000):
        wanted = walk.next_page()
        if wanted is None:
            return seen
        page = server.fetch(*wanted)
        walk.receive_page(page)
        seen.extend(page.items)
    raise AssertionError("the walk did not stop")


# (total, page size, server cap, start offset, max pages) -> the (limit, offset) pairs asked
WALK_CASES: list[tuple[int, int, int, int, int | None, list[tuple[int, int]]]] = [
    (0, 100, 1000, 0, None, [(100, 0)]),
    (5, 100, 1000, 0, None, [(100, 0)]),
    (250, 100, 1000, 0, None, [(100, 0), (100, 100), (100, 200)]),
    (200, 100, 1000, 0, None, [(100, 0), (100, 100)]),
    (250, 100, 1000, 120, None, [(100, 120), (100, 220)]),
    (7, 100, 3, 0, None, [(100, 0), (100, 3), (100, 6)]),  # short pages: advance by count
    (2500, 5000, 1000, 0, None, [(1000, 0), (1000, 1000), (1000, 2000)]),
    (250, 100, 1000, 0, 2, [(100, 0), (100, 100)]),
    (250, 100, 1000, 0, 0, []),
    (10, 100, 1000, 50, None, [(100, 50)]),
]


@pytest.mark.parametrize(("total", "size", "cap", "start", "max_pages", "asked"), WALK_CASES)
def test_page_walk_advances_by_count_and_stops(
    total: int,
    size: int,
    cap: int,
    start: int,
    max_pages: int | None,
    asked: list[tuple[int, int]],
) -> None:
    server = FakeList(total=total, cap=cap)
    walk = PageWalk(page_size=size, start_offset=start, max_pages=max_pages)
    seen = walk_all(walk, server)
    assert server.asked == asked
    assert walk.pages == len(asked)
    if max_pages is None:
        assert seen == list(range(start, total))
        assert walk.done
    assert walk.next_page() is None


def test_page_walk_refuses_an_empty_page_while_more_are_promised() -> None:
    walk = PageWalk(page_size=10)
    walk.receive_page(PaginatedResult(items=list(range(10)), total=30, limit=10, offset=0))
    empty: PaginatedResult[int] = PaginatedResult(items=[], total=30, limit=10, offset=10)
    with pytest.raises(KneoPaginationError, match="empty page at offset 10 while reporting 30"):
        walk.receive_page(empty)


def test_page_walk_refuses_a_page_from_another_offset_instead_of_looping() -> None:
    """A server (or a proxy dropping the query) that ignores the offset must not loop."""
    walk = PageWalk(page_size=10)
    first = PaginatedResult(items=list(range(10)), total=30, limit=10, offset=0)
    walk.receive_page(first)
    assert walk.next_page() == (10, 10)
    with pytest.raises(KneoPaginationError, match="offset 0 when offset 10 was asked"):
        walk.receive_page(first)


def test_page_walk_accepts_a_final_page_whatever_its_offset() -> None:
    walk = PageWalk(page_size=10, start_offset=40)
    walk.receive_page(PaginatedResult(items=[], total=30, limit=10, offset=30))
    assert walk.done
    assert walk.next_page() is None


def test_page_walk_stops_on_an_empty_final_page() -> None:
    walk = PageWalk(page_size=10)
    walk.receive_page(PaginatedResult(items=[], total=0, limit=10, offset=0))
    assert walk.done
    assert walk.next_page() is None


@pytest.mark.parametrize("start", [-1, -1000])
def test_page_walk_refuses_a_negative_start_offset(start: int) -> None:
    with pytest.raises(KneoUsageError, match="start_offset must be >= 0"):
        PageWalk(start_offset=start)


# -- RunPoll -------------------------------------------------------------------------------


@dataclass
class Run:
    run_id: str
    status: str


@dataclass
class PollTrace:
    fetches: list[FetchStatus] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    outcome: RunDone | Failed | None = None

    @property
    def error(self) -> KneoError:
        assert isinstance(self.outcome, Failed), self.outcome
        return self.outcome.error


def drive_poll(
    poll: RunPoll,
    clock: FakeClock,
    statuses: Sequence[str | KneoError],
    *,
    poll_takes: float = 0.0,
) -> PollTrace:
    """Run ``poll`` to its end; each fetch answers with the next status (the last repeats)."""
    trace = PollTrace()
    for _ in range(100_000):
        action = poll.next_action()
        if isinstance(action, RunDone | Failed):
            trace.outcome = action
            return trace
        if isinstance(action, Sleep):
            trace.sleeps.append(action.seconds)
            clock.advance(action.seconds)
            continue
        trace.fetches.append(action)
        answer = statuses[min(len(trace.fetches), len(statuses)) - 1]
        clock.advance(poll_takes)
        if isinstance(answer, KneoError):
            poll.receive_error(answer)
        else:
            poll.receive_status(Run("run-1", answer))
    raise AssertionError("the poll did not end")


def new_poll(clock: FakeClock, **kwargs: Any) -> RunPoll:
    return RunPoll("run-1", clock=clock.clock(), **kwargs)


# (statuses seen, terminal statuses or None for the default) -> polls made
TERMINAL_CASES: list[tuple[list[str], list[str] | None, int]] = [
    (["completed"], None, 1),
    (["queued", "running", "completed"], None, 3),
    (["running", "failed"], None, 2),
    (["running", "running", "running", "cancelled"], None, 4),
    (["queued", "paused_human_review"], ["paused_human_review"], 2),
    (["queued", "completed", "archived"], ["archived"], 3),
    (["running", "brand_new_status", "completed"], None, 3),
]


@pytest.mark.parametrize(("statuses", "terminal", "polls"), TERMINAL_CASES)
def test_run_poll_ends_at_the_first_terminal_status(
    statuses: list[str], terminal: list[str] | None, polls: int
) -> None:
    clock = FakeClock()
    poll = new_poll(clock, timeout=None, poll_interval=2.0, terminal_statuses=terminal)
    trace = drive_poll(poll, clock, statuses)
    assert isinstance(trace.outcome, RunDone)
    assert trace.outcome.run == Run("run-1", statuses[polls - 1])
    assert poll.polls == len(trace.fetches) == polls
    assert trace.sleeps == [2.0] * (polls - 1)
    assert all(fetch.deadline is None for fetch in trace.fetches)
    assert poll.last_status == statuses[polls - 1]
    assert poll.next_action() is trace.outcome


def test_run_poll_default_terminal_statuses_are_the_contracts() -> None:
    assert frozenset({"completed", "failed", "cancelled"}) == DEFAULT_TERMINAL_STATUSES
    poll = RunPoll("r", clock=FakeClock().clock())
    assert poll.terminal_statuses == DEFAULT_TERMINAL_STATUSES
    assert poll.poll_interval == 1.0


# (timeout, poll interval, time one poll takes) -> (sleeps, polls)
TIMEOUT_CASES: list[tuple[float, float, float, list[float], int]] = [
    (2.5, 1.0, 0.0, [1.0, 1.0, 0.5], 3),
    (3.0, 1.0, 0.0, [1.0, 1.0, 1.0], 3),
    (0.5, 2.0, 0.0, [0.5], 1),
    (5.0, 1.0, 1.0, [1.0, 1.0], 3),
]


@pytest.mark.parametrize(("timeout", "interval", "takes", "sleeps", "polls"), TIMEOUT_CASES)
def test_run_poll_never_sleeps_past_its_timeout_and_then_raises_wait_timeout(
    timeout: float, interval: float, takes: float, sleeps: list[float], polls: int
) -> None:
    clock = FakeClock()
    start = clock.now
    poll = new_poll(clock, timeout=timeout, poll_interval=interval)
    trace = drive_poll(poll, clock, ["running"], poll_takes=takes)
    assert trace.sleeps == pytest.approx(sleeps)
    assert clock.now - start == pytest.approx(timeout)
    for index, fetch in enumerate(trace.fetches):
        assert fetch.deadline == pytest.approx(timeout - index * (interval + takes))
    error = trace.error
    assert isinstance(error, KneoWaitTimeoutError)
    assert isinstance(error, TimeoutError)
    assert (error.run_id, error.polls) == ("run-1", polls)
    assert error.last_status == ("running" if polls else None)
    assert error.elapsed == pytest.approx(timeout)
    assert f"within {timeout} s" in str(error)


@pytest.mark.parametrize(
    ("statuses", "terminal"), [(["running"], False), (["completed"], True), (["failed"], True)]
)
def test_run_poll_with_timeout_zero_polls_once(statuses: list[str], terminal: bool) -> None:
    """``timeout=0`` means "check now": one poll, on the client's own timeout (no wait's
    deadline is left to give it), then the run if terminal, else the wait's timeout."""
    clock = FakeClock()
    poll = new_poll(clock, timeout=0.0, poll_interval=1.0)
    trace = drive_poll(poll, clock, statuses, poll_takes=0.3)
    assert [fetch.deadline for fetch in trace.fetches] == [None]
    assert trace.sleeps == []
    if terminal:
        assert isinstance(trace.outcome, RunDone)
        assert trace.outcome.run == Run("run-1", statuses[0])
        return
    error = trace.error
    assert isinstance(error, KneoWaitTimeoutError)
    assert (error.polls, error.last_status) == (1, "running")
    assert str(error) == (
        "run run-1 did not reach a terminal status within 0.0 s (last status 'running' after "
        "1 polls) - pass a longer timeout, or timeout=None to wait indefinitely"
    )


def test_run_poll_always_makes_its_first_poll_even_past_its_timeout() -> None:
    """A clock that moved past the timeout before the first poll still gets one poll."""
    clock = FakeClock()
    poll = new_poll(clock, timeout=1.0)
    clock.advance(2.0)
    first = poll.next_action()
    assert first == FetchStatus(None)
    poll.receive_status(Run("run-1", "running"))
    assert isinstance(poll.next_action(), Failed)


def test_run_poll_turns_a_timeout_at_the_deadline_into_wait_timeout_with_the_cause() -> None:
    clock = FakeClock()
    poll = new_poll(clock, timeout=5.0)
    cut_off = KneoTimeoutError("GET /v1/runs/run-1: timed out", kind="timeout")
    trace = drive_poll(poll, clock, ["running", cut_off], poll_takes=2.0)
    error = trace.error
    assert isinstance(error, KneoWaitTimeoutError)
    assert error.__cause__ is cut_off
    assert (error.polls, error.last_status) == (2, "running")


@pytest.mark.parametrize(
    "error",
    [
        KneoTimeoutError("GET /v1/runs/run-1: timed out", kind="timeout"),
        KneoServerError("GET /v1/runs/run-1 -> 500", status=500),
    ],
)
def test_run_poll_passes_other_errors_through(error: KneoError) -> None:
    clock = FakeClock()
    poll = new_poll(clock, timeout=60.0)
    trace = drive_poll(poll, clock, ["running", error], poll_takes=1.0)
    assert trace.error is error
    assert error.__cause__ is None


def test_run_poll_passes_a_server_error_at_the_deadline_through() -> None:
    clock = FakeClock()
    poll = new_poll(clock, timeout=1.0)
    error = KneoServerError("GET /v1/runs/run-1 -> 503", status=503)
    trace = drive_poll(poll, clock, [error], poll_takes=1.0)
    assert trace.error is error


def test_run_poll_without_timeout_waits_indefinitely() -> None:
    clock = FakeClock()
    poll = new_poll(clock, timeout=None, poll_interval=30.0)
    trace = drive_poll(poll, clock, ["running"] * 999 + ["completed"])
    assert isinstance(trace.outcome, RunDone)
    assert poll.polls == 1000
    assert trace.sleeps == [30.0] * 999
    assert all(fetch.deadline is None for fetch in trace.fetches)


def test_run_poll_with_a_timeout_error_and_no_timeout_passes_it_through() -> None:
    clock = FakeClock()
    cut_off = KneoTimeoutError("timed out", kind="timeout")
    trace = drive_poll(new_poll(clock, timeout=None), clock, [cut_off])
    assert trace.error is cut_off


INTERVAL = "poll_interval must be a finite number of seconds >= 0, not "
TIMEOUT = "timeout must be None (wait indefinitely) or a finite number of seconds >= 0, not "
# arguments -> the whole message: the argument, what it must be, and the value given
BAD_POLL_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"poll_interval": -1.0}, INTERVAL + "-1.0"),
    ({"poll_interval": math.nan}, INTERVAL + "nan"),
    ({"poll_interval": math.inf}, INTERVAL + "inf"),
    ({"poll_interval": "2"}, INTERVAL + "'2'"),
    ({"poll_interval": True}, INTERVAL + "True"),
    ({"timeout": -0.1}, TIMEOUT + "-0.1"),
    ({"timeout": math.nan}, TIMEOUT + "nan"),
    ({"timeout": -math.inf}, TIMEOUT + "-inf"),
    ({"timeout": math.inf}, TIMEOUT + "inf"),
    ({"timeout": "600"}, TIMEOUT + "'600'"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_POLL_ARGUMENTS)
def test_run_poll_refuses_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(KneoUsageError) as caught:
        new_poll(FakeClock(), **kwargs)
    assert str(caught.value) == message
