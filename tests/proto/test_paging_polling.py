"""The pure machines behind the ``iter_*`` iterators (``ListWalk`` over ``PageWalk``) and
``wait_for_completion`` (``RunWait`` over ``RunPoll``), driven by hand: contract sections
Pagination and RunsClient, plan section 4.2."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from kneo_proto import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_TERMINAL_STATUSES,
    MAX_PAGE_SIZE,
    Done,
    Failed,
    Fetch,
    FetchStatus,
    Finished,
    Items,
    KneoError,
    KneoPaginationError,
    KneoServerError,
    KneoStateError,
    KneoTimeoutError,
    KneoUsageError,
    KneoWaitTimeoutError,
    ListWalk,
    Operation,
    PageWalk,
    PaginatedResult,
    Response,
    RunPoll,
    RunPolled,
    RunWait,
    Sleep,
    WalkState,
    endpoints,
    page_of,
)
from kneo_proto._operation import Route
from kneo_proto.models import RunListResponse, RunStatusResponse
from tests.proto.harness import FakeClock


def test_paging_polling_tables_are_not_empty() -> None:
    for table in (
        HAS_MORE_CASES,
        CLAMP_CASES,
        WALK_CASES,
        LIST_WALK_CASES,
        BAD_WINDOWS,
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


# -- ListWalk: the machine behind iter_* ---------------------------------------------------


def finished(result: Any) -> Finished[Any]:
    """What a driver reports after a ``Fetch`` whose call succeeded with ``result``."""
    return Finished(
        result=result, response=Response(200), request_id="req-1", idempotency_key=None, attempts=1
    )


def run(n: int, status: str = "completed") -> RunStatusResponse:
    return RunStatusResponse(run_id=f"run-{n}", status=status)


def limit_offset(operation: Operation[Any]) -> tuple[int, int]:
    query = dict(operation.query)
    return int(query["limit"]), int(query["offset"])


@dataclass
class RunList:
    """``GET /v1/runs`` over ``total`` runs, at most ``cap`` a page; ``bare`` pages leave out
    every paging field, as a tolerant response may (ADR 0011)."""

    total: int
    cap: int = MAX_PAGE_SIZE
    bare: bool = False
    asked: list[tuple[int, int]] = field(default_factory=list)

    def __call__(self, operation: Operation[Any]) -> RunListResponse:
        assert (operation.method, operation.path) == ("GET", "/v1/runs")
        limit, offset = limit_offset(operation)
        self.asked.append((limit, offset))
        runs = [run(n) for n in range(offset, min(offset + min(limit, self.cap), self.total))]
        if self.bare:
            return RunListResponse(runs=runs)
        return RunListResponse(runs=runs, total=self.total, limit=limit, offset=offset)


@dataclass
class WalkTrace:
    items: list[Any] = field(default_factory=list)
    fetches: list[Fetch[Any]] = field(default_factory=list)
    outcome: Done[None] | Failed | None = None

    @property
    def error(self) -> KneoError:
        assert isinstance(self.outcome, Failed), self.outcome
        return self.outcome.error


def drive_list(walk: ListWalk[Any], serve: Callable[[Operation[Any]], Any]) -> WalkTrace:
    """Run ``walk`` to its end; ``serve`` answers each fetch with a result or a ``KneoError``."""
    trace = WalkTrace()
    for _ in range(10_000):
        action = walk.next_action()
        if isinstance(action, Done | Failed):
            trace.outcome = action
            return trace
        if isinstance(action, Items):
            trace.items.extend(action.items)
            continue
        trace.fetches.append(action)
        answer = serve(action.operation)
        if isinstance(answer, KneoError):
            walk.receive_error(answer)
        else:
            walk.receive(finished(answer))
    raise AssertionError("the walk did not stop")


# (total, page size, server cap, start offset, bare pages) -> the (limit, offset) pairs asked
LIST_WALK_CASES: list[tuple[int, int, int, int, bool, list[tuple[int, int]]]] = [
    (0, 100, 1000, 0, False, [(100, 0)]),
    (250, 100, 1000, 0, False, [(100, 0), (100, 100), (100, 200)]),
    (200, 100, 1000, 0, False, [(100, 0), (100, 100)]),
    (250, 100, 1000, 120, False, [(100, 120), (100, 220)]),
    (7, 100, 3, 0, False, [(100, 0), (100, 3), (100, 6)]),  # short pages: advance by count
    (10, 100, 1000, 50, False, [(100, 50)]),
    (0, 100, 1000, 0, True, [(100, 0)]),
    (250, 100, 1000, 0, True, [(100, 0), (100, 100), (100, 200)]),  # no total: on while full
    (200, 100, 1000, 0, True, [(100, 0), (100, 100), (100, 200)]),
]


@pytest.mark.parametrize(("total", "size", "cap", "start", "bare", "asked"), LIST_WALK_CASES)
def test_list_walk_hands_out_every_item_once_in_order(
    total: int, size: int, cap: int, start: int, bare: bool, asked: list[tuple[int, int]]
) -> None:
    server = RunList(total, cap=cap, bare=bare)
    walk: ListWalk[RunStatusResponse] = ListWalk(endpoints.list_runs, limit=size, offset=start)
    trace = drive_list(walk, server)
    assert server.asked == asked
    assert [item.run_id for item in trace.items] == [f"run-{n}" for n in range(start, total)]
    assert trace.outcome == Done(None)
    assert all(fetch.options is None for fetch in trace.fetches)
    assert walk.state is WalkState.DONE
    assert walk.next_action() == Done(None)


def test_list_walk_passes_the_other_arguments_to_every_page() -> None:
    walk: ListWalk[Any] = ListWalk(endpoints.get_run_trace, "run-1", limit=2)
    fetch = walk.next_action()
    assert isinstance(fetch, Fetch)
    assert fetch.operation == endpoints.get_run_trace("run-1", limit=2, offset=0)
    runs: ListWalk[Any] = ListWalk(endpoints.list_runs, status="failed", sort_order="asc")
    first = runs.next_action()
    assert isinstance(first, Fetch)
    expected = endpoints.list_runs(status="failed", sort_order="asc", limit=DEFAULT_PAGE_SIZE)
    assert first.operation.target == expected.target


BAD_WINDOWS: list[dict[str, Any]] = [
    {"limit": 0},
    {"limit": 1001},
    {"limit": True},
    {"limit": "10"},
    {"offset": -1},
    {"offset": 1.5},
]


@pytest.mark.parametrize("window", BAD_WINDOWS)
def test_list_walk_refuses_what_the_list_endpoint_refuses_when_made(
    window: dict[str, Any],
) -> None:
    with pytest.raises(KneoUsageError) as listed:
        endpoints.list_runs(**window)
    with pytest.raises(KneoUsageError) as walked:
        ListWalk(endpoints.list_runs, **window)
    assert str(walked.value) == str(listed.value)


def test_list_walk_refuses_any_other_bad_argument_when_made() -> None:
    with pytest.raises(KneoUsageError, match="did you mean 'timestamp'"):
        ListWalk(endpoints.list_audit_events, sort_by="time")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="get_run is not a list endpoint"):
        ListWalk(endpoints.get_run, "run-1")


def test_list_walk_fails_on_an_empty_page_while_more_are_promised() -> None:
    def serve(operation: Operation[Any]) -> RunListResponse:
        limit, offset = limit_offset(operation)
        runs = [run(n) for n in range(offset, offset + limit)] if offset < 20 else []
        return RunListResponse(runs=runs, total=50, limit=limit, offset=offset)

    walk: ListWalk[RunStatusResponse] = ListWalk(endpoints.list_runs, limit=10)
    trace = drive_list(walk, serve)
    assert len(trace.items) == 20
    assert isinstance(trace.error, KneoPaginationError)
    assert "empty page at offset 20 while reporting 50" in str(trace.error)
    assert len(trace.fetches) == 3
    assert walk.state is WalkState.FAILED
    assert walk.next_action() is trace.outcome


def test_list_walk_fails_instead_of_looping_on_a_server_that_ignores_the_offset() -> None:
    def serve(operation: Operation[Any]) -> RunListResponse:
        limit, _ = limit_offset(operation)
        return RunListResponse(runs=[run(n) for n in range(limit)], total=30, limit=limit, offset=0)

    trace = drive_list(ListWalk(endpoints.list_runs, limit=10), serve)
    assert [item.run_id for item in trace.items] == [f"run-{n}" for n in range(10)]
    assert isinstance(trace.error, KneoPaginationError)
    assert "offset 0 when offset 10 was asked" in str(trace.error)
    assert len(trace.fetches) == 2


def test_list_walk_passes_a_failed_fetch_through() -> None:
    error = KneoServerError("GET /v1/runs -> 500", status=500)
    server = RunList(30)

    def serve(operation: Operation[Any]) -> RunListResponse | KneoError:
        return error if server.asked else server(operation)

    trace = drive_list(ListWalk(endpoints.list_runs, limit=10), serve)
    assert len(trace.items) == 10
    assert trace.error is error


def test_list_walk_keeps_no_page_once_it_has_handed_it_out() -> None:
    walk: ListWalk[RunStatusResponse] = ListWalk(endpoints.list_runs, limit=5)
    fetch = walk.next_action()
    assert isinstance(fetch, Fetch)
    page = RunList(20)(fetch.operation)
    walk.receive(finished(page))
    handed = walk.next_action()
    assert isinstance(handed, Items)
    assert list(handed.items) == page.runs
    assert all(held is not handed.items and held is not page for held in vars(walk).values())


def test_list_walk_close_stops_before_the_next_fetch() -> None:
    walk: ListWalk[RunStatusResponse] = ListWalk(endpoints.list_runs, limit=5)
    fetch = walk.next_action()
    assert isinstance(fetch, Fetch)
    walk.receive(finished(RunList(20)(fetch.operation)))
    walk.close()  # its items were not handed out yet: they never will be
    assert walk.next_action() == Done(None)
    assert walk.state is WalkState.DONE


def test_list_walk_refuses_calls_out_of_order() -> None:
    walk: ListWalk[RunStatusResponse] = ListWalk(endpoints.list_runs)
    with pytest.raises(KneoStateError, match=r"ListWalk.receive\(\) is not allowed in state READY"):
        walk.receive(finished(RunListResponse(runs=[])))
    assert isinstance(walk.next_action(), Fetch)
    with pytest.raises(KneoStateError, match=r"next_action\(\) is not allowed in state FETCHING"):
        walk.next_action()
    walk.abandon()  # the driver was cancelled mid-fetch: where the walk stands is unknown
    outcome = walk.next_action()
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, KneoStateError)
    assert "abandoned in the middle of a fetch" in str(outcome.error)
    assert repr(walk) == "<ListWalk list_runs state=FAILED offset=0 pages=0>"


def test_a_list_route_reads_its_items_through_the_declared_field() -> None:
    route = endpoints.list_runs.route
    assert (route.items_field, route.item_type) == ("runs", RunStatusResponse)
    assert route.items_of is not None
    assert route.items_of(RunListResponse(runs=[run(1)])) == [run(1)]
    assert endpoints.get_run.route.items_of is None


@pytest.mark.parametrize("items", ["items", "total"])
def test_a_route_refuses_an_items_field_its_result_does_not_declare_as_a_list(
    items: str,
) -> None:
    with pytest.raises(TypeError, match=f"RunListResponse has no list field '{items}'"):
        Route("GET", "/v1/runs", RunListResponse, items_field=items)


# -- RunWait: the machine behind wait_for_completion ---------------------------------------


@dataclass
class PollTrace:
    fetches: list[Fetch[RunStatusResponse]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    outcome: Done[RunStatusResponse] | Failed | None = None

    @property
    def error(self) -> KneoError:
        assert isinstance(self.outcome, Failed), self.outcome
        return self.outcome.error

    @property
    def deadlines(self) -> list[float | None]:
        """The deadline each poll's call was given (None: the client's own settings)."""
        return [None if f.options is None else f.options.deadline for f in self.fetches]


def drive_wait(
    wait: RunWait[RunStatusResponse],
    clock: FakeClock,
    statuses: Sequence[str | KneoError],
    *,
    poll_takes: float = 0.0,
) -> PollTrace:
    """Run ``wait`` to its end; each fetch answers with the next status (the last repeats)."""
    trace = PollTrace()
    for _ in range(100_000):
        action = wait.next_action()
        if isinstance(action, Done | Failed):
            trace.outcome = action
            return trace
        if isinstance(action, Sleep):
            trace.sleeps.append(action.seconds)
            clock.advance(action.seconds)
            continue
        assert (action.operation.method, action.operation.path) == ("GET", "/v1/runs/run-1")
        trace.fetches.append(action)
        answer = statuses[min(len(trace.fetches), len(statuses)) - 1]
        clock.advance(poll_takes)
        if isinstance(answer, KneoError):
            wait.receive_error(answer)
        else:
            wait.receive(finished(RunStatusResponse(run_id="run-1", status=answer)))
    raise AssertionError("the wait did not end")


def new_wait(clock: FakeClock, **kwargs: Any) -> RunWait[RunStatusResponse]:
    return RunWait(endpoints.get_run, "run-1", clock=clock.clock(), **kwargs)


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
def test_run_wait_ends_at_the_first_terminal_status(
    statuses: list[str], terminal: list[str] | None, polls: int
) -> None:
    clock = FakeClock()
    wait = new_wait(clock, timeout=None, poll_interval=2.0, terminal_statuses=terminal)
    trace = drive_wait(wait, clock, statuses)
    assert trace.outcome == Done(RunStatusResponse(run_id="run-1", status=statuses[polls - 1]))
    assert wait.poll.polls == len(trace.fetches) == polls
    assert trace.sleeps == [2.0] * (polls - 1)
    assert trace.deadlines == [None] * polls
    assert wait.poll.last_status == statuses[polls - 1]
    assert wait.state is WalkState.DONE
    assert wait.next_action() == trace.outcome


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
def test_run_wait_never_sleeps_past_its_timeout_and_then_fails_with_wait_timeout(
    timeout: float, interval: float, takes: float, sleeps: list[float], polls: int
) -> None:
    clock = FakeClock()
    start = clock.now
    trace = drive_wait(
        new_wait(clock, timeout=timeout, poll_interval=interval),
        clock,
        ["running"],
        poll_takes=takes,
    )
    assert trace.sleeps == pytest.approx(sleeps)
    assert clock.now - start == pytest.approx(timeout)
    expected = [timeout - index * (interval + takes) for index in range(polls)]
    assert trace.deadlines == pytest.approx(expected)  # a poll's retries end by the deadline
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
def test_run_wait_with_timeout_zero_polls_once(statuses: list[str], terminal: bool) -> None:
    """``timeout=0`` means "check now": one poll, on the client's own timeout (no wait's
    deadline is left to give it), then the run if terminal, else the wait's timeout."""
    clock = FakeClock()
    trace = drive_wait(
        new_wait(clock, timeout=0.0, poll_interval=1.0), clock, statuses, poll_takes=0.3
    )
    assert trace.deadlines == [None]
    assert trace.sleeps == []
    if terminal:
        assert trace.outcome == Done(RunStatusResponse(run_id="run-1", status=statuses[0]))
        return
    error = trace.error
    assert isinstance(error, KneoWaitTimeoutError)
    assert (error.polls, error.last_status) == (1, "running")
    assert str(error) == (
        "run run-1 did not reach a terminal status within 0.0 s (last status 'running' after "
        "1 polls) - pass a longer timeout, or timeout=None to wait indefinitely"
    )


def test_run_wait_always_makes_its_first_poll_even_past_its_timeout() -> None:
    """A clock that moved past the timeout before the first poll still gets one poll."""
    clock = FakeClock()
    wait = new_wait(clock, timeout=1.0)
    clock.advance(2.0)
    first = wait.next_action()
    assert isinstance(first, Fetch)
    assert first.options is None
    wait.receive(finished(RunStatusResponse(run_id="run-1", status="running")))
    assert isinstance(wait.next_action(), Failed)
    assert wait.state is WalkState.FAILED


def test_run_poll_asks_for_its_first_poll_even_past_its_timeout() -> None:
    clock = FakeClock()
    poll = RunPoll("run-1", clock=clock.clock(), timeout=1.0)
    clock.advance(2.0)
    assert poll.next_action() == FetchStatus(None)


def test_run_wait_turns_a_timeout_at_the_deadline_into_wait_timeout_with_the_cause() -> None:
    clock = FakeClock()
    cut_off = KneoTimeoutError("GET /v1/runs/run-1: timed out", kind="timeout")
    trace = drive_wait(new_wait(clock, timeout=5.0), clock, ["running", cut_off], poll_takes=2.0)
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
def test_run_wait_passes_other_errors_through(error: KneoError) -> None:
    clock = FakeClock()
    trace = drive_wait(new_wait(clock, timeout=60.0), clock, ["running", error], poll_takes=1.0)
    assert trace.error is error
    assert error.__cause__ is None


def test_run_wait_passes_a_server_error_at_the_deadline_through() -> None:
    clock = FakeClock()
    error = KneoServerError("GET /v1/runs/run-1 -> 503", status=503)
    trace = drive_wait(new_wait(clock, timeout=1.0), clock, [error], poll_takes=1.0)
    assert trace.error is error


def test_run_wait_without_timeout_waits_indefinitely() -> None:
    clock = FakeClock()
    wait = new_wait(clock, timeout=None, poll_interval=30.0)
    trace = drive_wait(wait, clock, ["running"] * 999 + ["completed"])
    assert isinstance(trace.outcome, Done)
    assert wait.poll.polls == 1000
    assert trace.sleeps == [30.0] * 999
    assert set(trace.deadlines) == {None}


def test_run_wait_with_a_timeout_error_and_no_timeout_passes_it_through() -> None:
    clock = FakeClock()
    cut_off = KneoTimeoutError("timed out", kind="timeout")
    trace = drive_wait(new_wait(clock, timeout=None), clock, [cut_off])
    assert trace.error is cut_off


def test_run_wait_reports_each_poll_that_returned_the_run() -> None:
    clock = FakeClock()
    polled: list[RunPolled] = []
    wait = new_wait(clock, poll_interval=2.0, emit=polled.append)
    failure = KneoServerError("GET /v1/runs/run-1 -> 500", status=500)
    drive_wait(wait, clock, ["queued", "running", "completed"], poll_takes=0.5)
    assert polled == [
        RunPolled(run_id="run-1", status="queued", polls=1, elapsed=0.5),
        RunPolled(run_id="run-1", status="running", polls=2, elapsed=3.0),
        RunPolled(run_id="run-1", status="completed", polls=3, elapsed=5.5),
    ]
    polled.clear()
    drive_wait(new_wait(clock, emit=polled.append), clock, [failure])
    assert polled == []  # a failed poll has no status to report


def test_run_wait_refuses_calls_out_of_order() -> None:
    wait = new_wait(FakeClock())
    with pytest.raises(KneoStateError, match=r"RunWait.receive\(\) is not allowed in state READY"):
        wait.receive(finished(RunStatusResponse(run_id="run-1", status="running")))
    assert isinstance(wait.next_action(), Fetch)
    assert repr(wait) == "<RunWait run-1 state=FETCHING polls=1 last_status=None>"
    with pytest.raises(KneoStateError, match=r"next_action\(\) is not allowed in state FETCHING"):
        wait.next_action()
    wait.abandon()
    outcome = wait.next_action()
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, KneoStateError)


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
def test_run_wait_refuses_bad_arguments_when_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(KneoUsageError) as caught:
        new_wait(FakeClock(), **kwargs)
    assert str(caught.value) == message


@pytest.mark.parametrize("run_id", ["", ".", ".."])
def test_run_wait_refuses_a_run_id_get_run_refuses_when_made(run_id: str) -> None:
    with pytest.raises(KneoUsageError, match="path parameter run_id must not be empty"):
        RunWait(endpoints.get_run, run_id, clock=FakeClock().clock())


def test_run_wait_refuses_one_string_for_the_terminal_statuses() -> None:
    with pytest.raises(KneoUsageError, match="not the string 'completed'"):
        new_wait(FakeClock(), terminal_statuses="completed")
