"""``ListWalk``, ``RunWait`` and ``RunWatch``: paging and polling as machines in the shape
of ``Call``.

A driver loops on ``next_action()``:

- ``Fetch``: run ``operation`` as one call with ``options``, then report its ``Finished``
  with ``receive(finished)``, or its ``KneoError`` with ``receive_error(error)``;
- ``Sleep``: sleep, then ask again;
- ``Items``: hand these items to the caller, in order, then ask again;
- ``Done``: the walk is over (``result``: the terminal run of a wait, None for a list or a
  watch);
- ``Failed``: raise ``error``.

Both machines are built from an endpoint declaration, so the driver never builds a request
or reads a response. Invariants: at most one fetch is outstanding, and it is reported once
(or ``abandon()``-ed); anything else out of order raises ``KneoStateError``. A ``ListWalk``
checks its arguments as the list endpoint does before any request, holds no page once it
has handed the page's items out, and follows ``PageWalk``'s rules. A ``RunWait`` only ever
fetches ``get_run`` (a GET) and follows ``RunPoll``'s rules: each poll runs with the time
left of the wait as its call's deadline, so a poll's own retries end by the wait's deadline.
A ``RunWatch`` is a ``RunWait`` that also hands out the run, as ``Items``, each time its
status differs from the last one handed out; the terminal run is always among them (its
status is terminal, the one before was not).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from kneo_proto._actions import Failed, Finished, Sleep
from kneo_proto._config import CallOptions, Clock
from kneo_proto._errors import KneoError, KneoPaginationError, KneoStateError
from kneo_proto._operation import Endpoint, Operation, check_page
from kneo_proto._paging import DEFAULT_PAGE_SIZE, PageWalk, read_page
from kneo_proto._polling import FetchStatus, RunDone, RunPoll, TerminalStatuses

__all__ = [
    "Done",
    "Fetch",
    "HasStatus",
    "Items",
    "ListWalk",
    "RunPolled",
    "RunWait",
    "RunWatch",
    "Walk",
    "WalkState",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class Fetch(Generic[R]):
    """Run ``operation`` as one call; report its ``Finished`` or its ``KneoError``.

    Attributes:
        operation: What to call; retrying it is the call's own business.
        options: Overrides for this one call (a poll's deadline), or None.
    """

    operation: Operation[R]
    options: CallOptions | None = None


@dataclass(frozen=True, slots=True)
class Items(Generic[T]):
    """Hand ``items`` to the caller, in order, then ask for the next action."""

    items: Sequence[T]


@dataclass(frozen=True, slots=True)
class Done(Generic[D]):
    """The walk is over: ``result`` is a wait's terminal run, None at the end of a list or a
    watch.
    """

    result: D


H = TypeVar("H", bound=Items[Any] | Done[Any], covariant=True)


class Walk(Protocol[R, H]):
    """What a driver's loop drives: ``ListWalk`` and ``RunWait``.

    ``H`` is what the walk hands its caller: ``Items`` or ``Done`` (a ``RunWait`` only ``Done``).
    """

    def next_action(self) -> Fetch[R] | Sleep | H | Failed:
        """Return what the driver must do next."""
        ...

    def receive(self, finished: Finished[R]) -> None:
        """Report the outcome of the last ``Fetch``: the call succeeded."""
        ...

    def receive_error(self, error: KneoError) -> None:
        """Report the outcome of the last ``Fetch``: the call failed with ``error``."""
        ...

    def abandon(self) -> None:
        """Say the last ``Fetch`` will never be reported (cancelled or interrupted)."""
        ...


class WalkState(enum.Enum):
    """Where a ``ListWalk`` or a ``RunWait`` is; ``ALLOWED`` says which method each accepts."""

    READY = "ready"
    FETCHING = "fetching"
    DONE = "done"
    FAILED = "failed"


ALLOWED: dict[WalkState, frozenset[str]] = {
    WalkState.READY: frozenset({"next_action", "close"}),
    WalkState.FETCHING: frozenset({"receive", "receive_error", "abandon", "close"}),
    WalkState.DONE: frozenset({"next_action", "close"}),
    WalkState.FAILED: frozenset({"next_action", "close"}),
}


class _Machine:
    """The state and the misuse check that ``ListWalk`` and ``RunWait`` share."""

    def __init__(self) -> None:
        self.state = WalkState.READY
        self._failed: Failed | None = None

    def abandon(self) -> None:
        """Say the last ``Fetch`` will never be reported (cancelled or interrupted).

        The machine cannot know where it stands, so it fails: asked again, it returns
        ``Failed`` with a ``KneoStateError`` saying so.
        """
        self._check("abandon")
        self._fail(KneoStateError(f"{type(self).__name__} was abandoned in the middle of a fetch"))

    def _fail(self, error: KneoError) -> Failed:
        self.state = WalkState.FAILED
        self._failed = Failed(error)
        return self._failed

    def _check(self, method: str) -> None:
        if method not in ALLOWED[self.state]:
            raise KneoStateError(
                f"{type(self).__name__}.{method}() is not allowed in state {self.state.name}"
            )


class ListWalk(_Machine, Generic[T]):
    """Every item of a list endpoint, one page at a time: the machine behind ``iter_*``.

    Args:
        endpoint: A list endpoint (one declared with ``items=``).
        *args: The endpoint's positional arguments.
        **kwargs: The endpoint's keyword arguments: ``limit`` is the page size
            (``DEFAULT_PAGE_SIZE`` if left out) and ``offset`` the first item wanted (0).

    Raises:
        KneoUsageError: when made, before any request, for any argument the endpoint
            refuses (``limit`` outside 1 to 1000, a negative ``offset``, an unknown
            ``sort_by``).
        TypeError: for an endpoint declared without ``items=``.
    """

    def __init__(self, endpoint: Endpoint[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        super().__init__()
        items_of = endpoint.route.items_of
        if items_of is None:
            raise TypeError(f"{endpoint.name} is not a list endpoint (declared without items=)")
        others: dict[str, Any] = dict(kwargs)
        limit, offset = others.pop("limit", DEFAULT_PAGE_SIZE), others.pop("offset", 0)
        check_page(limit, offset)
        self.endpoint: Endpoint[..., Any] = endpoint
        self._items_of = items_of
        self._page: Callable[..., Operation[Any]] = functools.partial(endpoint, *args, **others)
        self._walk = PageWalk(page_size=limit, start_offset=offset)
        # The first page's operation is built now, so a bad argument raises when made.
        self._first: Operation[Any] | None = self._page(limit=limit, offset=offset)
        self._pending: list[T] = []

    def __repr__(self) -> str:
        return (
            f"<ListWalk {self.endpoint.name} state={self.state.name} "
            f"offset={self._walk.offset} pages={self._walk.pages}>"
        )

    def next_action(self) -> Fetch[Any] | Items[T] | Done[None] | Failed:
        """Return what the driver must do next."""
        self._check("next_action")
        if self._failed is not None:
            return self._failed
        if self._pending:
            items, self._pending = self._pending, []
            return Items(items)
        wanted = self._walk.next_page() if self.state is WalkState.READY else None
        if wanted is None:
            self.state = WalkState.DONE
            return Done(None)
        self.state = WalkState.FETCHING
        operation = self._first or self._page(limit=wanted[0], offset=wanted[1])
        self._first = None
        return Fetch(operation)

    def receive(self, finished: Finished[Any]) -> None:
        """Record a fetched page: its items come next, unless the server's pages disagree."""
        self._check("receive")
        response = finished.result
        items: list[T] = list(self._items_of(response))
        page = read_page(response, items, limit=self._walk.page_size, offset=self._walk.offset)
        try:
            self._walk.receive_page(page)
        except KneoPaginationError as error:
            self._fail(error)
            return
        self.state = WalkState.READY
        self._pending = page.items

    def receive_error(self, error: KneoError) -> None:
        """Record a failed fetch: the walk fails with ``error``."""
        self._check("receive_error")
        self._fail(error)

    def close(self) -> None:
        """Stop early: no further page is fetched, no further item handed out."""
        self._check("close")
        self._pending = []
        if self._failed is None:
            self.state = WalkState.DONE


class HasStatus(Protocol):
    """What ``RunWait`` reads of a polled run: its ``status``."""

    @property
    def status(self) -> str:
        """The run's status, e.g. ``"running"``."""
        ...


Run = TypeVar("Run", bound=HasStatus)


@dataclass(frozen=True, slots=True)
class RunPolled:
    """A poll of a ``RunWait`` came back with the run (what a log line says of it).

    Attributes:
        run_id: The run waited for.
        status: Its status at this poll.
        polls: Polls made so far, this one included.
        elapsed: Seconds since the wait began.
    """

    run_id: str
    status: str
    polls: int
    elapsed: float


class RunWait(_Machine, Generic[Run]):
    """Polls a run until it is terminal: the machine behind ``wait_for_completion``.

    When to poll, how long to sleep and when the wait is over are ``RunPoll``'s rules
    (``kneo_proto/_polling.py``); this machine turns them into fetches of ``get_run``.

    Args:
        get_run: The endpoint that reads one run by its ID (a GET).
        run_id: The run to wait for.
        clock: The driver's clocks.
        timeout: Total seconds to wait, or None to wait indefinitely.
        poll_interval: Seconds between polls (the first interval when polls back off).
        poll_backoff: What each interval is multiplied by for the next one (1.0: fixed).
        max_poll_interval: The longest interval, or None for no limit but the timeout.
        terminal_statuses: Statuses that end the wait; ``DEFAULT_TERMINAL_STATUSES`` if None.
        max_retry_after: The longest ``Retry-After`` of a failed poll the wait sleeps for
            before polling again (the client's ``RetryPolicy.max_retry_after``); None
            honours none.
        emit: Given a ``RunPolled`` after each poll that returned the run; None for none.

    Raises:
        KneoUsageError: when made, before the first poll: what ``RunPoll`` refuses, and a
            run ID that ``get_run`` refuses.
    """

    def __init__(
        self,
        get_run: Endpoint[[str], Run],
        run_id: str,
        *,
        clock: Clock,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        poll_backoff: float = 1.0,
        max_poll_interval: float | None = None,
        terminal_statuses: TerminalStatuses | None = None,
        max_retry_after: float | None = None,
        emit: Callable[[RunPolled], None] | None = None,
    ) -> None:
        super().__init__()
        self.poll = RunPoll(
            run_id,
            clock=clock,
            timeout=timeout,
            poll_interval=poll_interval,
            poll_backoff=poll_backoff,
            max_poll_interval=max_poll_interval,
            terminal_statuses=terminal_statuses,
            max_retry_after=max_retry_after,
        )
        """The timing: ``polls``, ``last_status``, ``elapsed``."""
        self._operation = get_run(run_id)
        self._emit = emit

    def __repr__(self) -> str:
        return (
            f"<RunWait {self.poll.run_id} state={self.state.name} polls={self.poll.polls} "
            f"last_status={self.poll.last_status!r}>"
        )

    def next_action(self) -> Fetch[Run] | Sleep | Done[Run] | Failed:
        """Return what the driver must do next."""
        self._check("next_action")
        if self._failed is not None:
            return self._failed
        action = self.poll.next_action()
        if isinstance(action, FetchStatus):
            self.state = WalkState.FETCHING
            options = None if action.deadline is None else CallOptions(deadline=action.deadline)
            return Fetch(self._operation, options)
        if isinstance(action, RunDone):
            self.state = WalkState.DONE
            return Done(action.run)
        if isinstance(action, Failed):
            return self._fail(action.error)
        return action

    def receive(self, finished: Finished[Run]) -> None:
        """Record a polled run: the wait ends if its status is terminal."""
        self._check("receive")
        self.state = WalkState.READY
        run = finished.result
        self.poll.receive_status(run)
        if self._emit is not None:
            self._emit(RunPolled(self.poll.run_id, run.status, self.poll.polls, self.poll.elapsed))

    def receive_error(self, error: KneoError) -> None:
        """Record a failed poll: the wait sleeps a ``Retry-After`` it can honour and polls
        again, else fails (as timed out, at its deadline).
        """
        self._check("receive_error")
        self.state = WalkState.READY
        self.poll.receive_error(error)


class RunWatch(Generic[Run]):
    """Polls a run until it is terminal, handing out the run each time its status changes:
    the machine behind ``watch`` and ``wait_for_completion(on_change=...)``.

    Args:
        wait: The ``RunWait`` whose polls are watched (a fresh one, not yet driven); its
            rules hold. The first polled run counts as a change.

    After the terminal run has been handed out, ``next_action`` returns ``Done(None)``, like
    the end of a list; ``terminal`` is that run.
    """

    def __init__(self, wait: RunWait[Run]) -> None:
        self.wait = wait
        """The polling: its ``poll`` has ``polls``, ``last_status`` and ``elapsed``."""
        self._changed: Run | None = None
        self._last: Run | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<RunWatch {self.wait!r}>"

    @property
    def state(self) -> WalkState:
        """Where the watch is: its ``RunWait``'s state, or ``DONE`` once closed."""
        return WalkState.DONE if self._closed else self.wait.state

    @property
    def terminal(self) -> Run:
        """The terminal run, once the watch has handed it out.

        Raises:
            KneoStateError: before that.
        """
        last = self._last
        if last is None or self._changed is not None or self.wait.state is not WalkState.DONE:
            raise KneoStateError("RunWatch.terminal is known once the terminal run is handed out")
        return last

    def next_action(self) -> Fetch[Run] | Sleep | Items[Run] | Done[None] | Failed:
        """Return what the driver must do next."""
        if self._closed:
            return Done(None)
        if self._changed is not None:
            run, self._changed = self._changed, None
            return Items((run,))
        action = self.wait.next_action()
        return Done(None) if isinstance(action, Done) else action

    def receive(self, finished: Finished[Run]) -> None:
        """Record a polled run: it is handed out next if its status changed."""
        self.wait.receive(finished)
        run = finished.result
        if self._last is None or run.status != self._last.status:
            self._changed = self._last = run

    def receive_error(self, error: KneoError) -> None:
        """Record a failed poll, as ``RunWait.receive_error`` does."""
        self.wait.receive_error(error)

    def abandon(self) -> None:
        """Say the last ``Fetch`` will never be reported; the watch fails, as a wait does."""
        self.wait.abandon()

    def close(self) -> None:
        """Stop early: no further poll is made, no further run handed out."""
        self._changed = None
        self._closed = True
