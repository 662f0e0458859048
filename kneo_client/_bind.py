"""Binding endpoint declarations to the async and the blocking facade.

A namespace class (``RunsClient``, ...) is a table of descriptors; each wraps one
``kneo_proto`` endpoint. Accessed on an async namespace a descriptor gives an async
callable; on a blocking namespace, a plain one. mypy sees both through the overloads on
``__get__``, so ``runs.get`` is ``(run_id: str) -> Awaitable[RunStatusResponse]`` on
``KneoClient`` and ``(run_id: str) -> RunStatusResponse`` on ``SyncKneoClient``. The
endpoint's docstring and signature carry across.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, overload

from kneo_client._session import AsyncSession, BlockingSession
from kneo_client._transport_base import TransportBase
from kneo_client._walking import AsyncItems, BlockingItems, aadvance, advance, log_poll
from kneo_proto import (
    Endpoint,
    Finished,
    HasStatus,
    ListWalk,
    RunWait,
    RunWatch,
    TerminalStatuses,
)

__all__ = [
    "ApiResponse",
    "AsyncMode",
    "BlockingMode",
    "Namespace",
    "bind",
    "paginate",
    "poll_run",
    "watch_run",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Run = TypeVar("Run", bound=HasStatus)


class AsyncMode:
    """Marks a namespace bound to an ``AsyncSession``."""


class BlockingMode:
    """Marks a namespace bound to a ``BlockingSession``."""


M = TypeVar("M", AsyncMode, BlockingMode)


class Namespace(Generic[M]):
    """A group of bound endpoints sharing one session."""

    def __init__(
        self, session: AsyncSession | BlockingSession | TransportBase[Any, Any, Any]
    ) -> None:
        """Bind to ``session``, or to the session of a ``Transport`` (async) or a
        ``SyncTransport`` (blocking).

        Raises:
            TypeError: for anything else.
        """
        if isinstance(session, TransportBase):
            session = session._session
        if not isinstance(session, AsyncSession | BlockingSession):
            raise TypeError(
                f"{type(self).__name__}() takes a Transport or a SyncTransport, "
                f"not {type(session).__name__}"
            )
        self._session = session

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


@dataclass(frozen=True, slots=True)
class ApiResponse(Generic[R]):
    """A result with what kneo-client knows about how it was obtained.

    Attributes:
        parsed: The decoded result.
        status: The HTTP status.
        headers: The response headers.
        request_id: The ``X-Request-ID`` the platform returned, else the one sent.
        idempotency_key: The ``Idempotency-Key`` sent (POST only).
        attempts: Attempts the call took.
        replayed: True when the platform answered from its idempotency store.
        sent_request_id: The ``X-Request-ID`` kneo-client sent (a gateway may have
            replaced it on the way back).
    """

    parsed: R
    status: int
    headers: tuple[tuple[str, str], ...]
    request_id: str
    idempotency_key: str | None
    attempts: int
    replayed: bool
    sent_request_id: str

    @classmethod
    def of(cls, finished: Finished[R]) -> ApiResponse[R]:
        """Build from a call's ``Finished`` action."""
        return cls(
            parsed=finished.result,
            status=finished.response.status,
            headers=finished.response.headers,
            request_id=finished.request_id,
            idempotency_key=finished.idempotency_key,
            attempts=finished.attempts,
            replayed=finished.replayed,
            sent_request_id=finished.sent_request_id,
        )


class AsyncBound(Generic[P, R]):
    """An endpoint bound to an async session: ``await bound(...)``, or ``.raw(...)``."""

    def __init__(self, session: AsyncSession, endpoint: Endpoint[P, R]) -> None:
        self._session = session
        self._endpoint = endpoint
        functools.update_wrapper(self, endpoint)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return (await self._session.execute(self._endpoint(*args, **kwargs))).result

    async def raw(self, *args: P.args, **kwargs: P.kwargs) -> ApiResponse[R]:
        """Call the endpoint and return the result with its request ID, key and headers."""
        return ApiResponse.of(await self._session.execute(self._endpoint(*args, **kwargs)))


class BlockingBound(Generic[P, R]):
    """An endpoint bound to a blocking session: ``bound(...)``, or ``.raw(...)``."""

    def __init__(self, session: BlockingSession, endpoint: Endpoint[P, R]) -> None:
        self._session = session
        self._endpoint = endpoint
        functools.update_wrapper(self, endpoint)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._session.execute(self._endpoint(*args, **kwargs)).result

    def raw(self, *args: P.args, **kwargs: P.kwargs) -> ApiResponse[R]:
        """Call the endpoint and return the result with its request ID, key and headers."""
        return ApiResponse.of(self._session.execute(self._endpoint(*args, **kwargs)))


class bind(Generic[P, R]):
    """Bind ``endpoint`` as a method of a namespace, async or blocking by the namespace."""

    def __init__(self, endpoint: Endpoint[P, R]) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.__doc__ = endpoint.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> bind[P, R]: ...
    @overload
    def __get__(self, obj: Namespace[AsyncMode], owner: type) -> AsyncBound[P, R]: ...
    @overload
    def __get__(self, obj: Namespace[BlockingMode], owner: type) -> BlockingBound[P, R]: ...
    def __get__(self, obj: Namespace[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        session = obj._session
        bound: Any = (
            AsyncBound(session, self.endpoint)
            if isinstance(session, AsyncSession)
            else BlockingBound(session, self.endpoint)
        )
        obj.__dict__[self.name] = bound  # later lookups skip this descriptor
        return bound


S = TypeVar("S", AsyncSession, BlockingSession)


class _Pager(Generic[S, P, T]):
    """What the two pagers share: the session and the list endpoint."""

    def __init__(self, session: S, endpoint: Endpoint[P, Any]) -> None:
        self._session: S = session
        self._endpoint = endpoint


class AsyncPager(_Pager[AsyncSession, P, T]):
    """Iterates every item of a list endpoint: ``async for item in pager(...)``."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return AsyncItems(self._session, ListWalk[T](self._endpoint, *args, **kwargs))


class BlockingPager(_Pager[BlockingSession, P, T]):
    """Iterates every item of a list endpoint: ``for item in pager(...)``."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return BlockingItems(self._session, ListWalk[T](self._endpoint, *args, **kwargs))


class paginate(Generic[P, T]):
    """Bind a list endpoint as an iterator over every item of every page.

    The iterator takes the list endpoint's arguments; ``limit`` is the page size and
    ``offset`` the first item, checked as the list endpoint checks them (``limit`` 1 to 1000,
    ``offset`` >= 0; else ``KneoUsageError`` when the iterator is made, before any request).
    It holds one page in memory at a time. ``item`` is the item type the endpoint's
    declaration lists (else ``TypeError`` when the namespace class is defined).
    """

    def __init__(self, endpoint: Endpoint[P, Any], item: type[T]) -> None:
        declared = endpoint.route.item_type
        if item is not declared:
            listed = "nothing" if declared is None else declared.__name__
            raise TypeError(f"{endpoint.name} lists {listed}, not {item.__name__}")
        self.endpoint = endpoint
        self.item = item

    @overload
    def __get__(self, obj: None, owner: type) -> paginate[P, T]: ...
    @overload
    def __get__(self, obj: Namespace[AsyncMode], owner: type) -> AsyncPager[P, T]: ...
    @overload
    def __get__(self, obj: Namespace[BlockingMode], owner: type) -> BlockingPager[P, T]: ...
    def __get__(self, obj: Namespace[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        session = obj._session
        if isinstance(session, AsyncSession):
            return AsyncPager[P, T](session, self.endpoint)
        return BlockingPager[P, T](session, self.endpoint)


class _Waiter(Generic[S, Run]):
    """What ``wait_for_completion`` and ``watch`` share: the session and the ``RunWait``."""

    def __init__(self, session: S, get_run: Endpoint[[str], Run]) -> None:
        self._session: S = session
        self._get_run = get_run

    def _wait(
        self,
        run_id: str,
        timeout: float | None,
        poll_interval: float,
        terminal_statuses: TerminalStatuses | None,
        poll_backoff: float,
        max_poll_interval: float | None,
    ) -> RunWait[Run]:
        session = self._session
        policy = session.options.retry_policy or session.config.retry_policy
        return RunWait(
            self._get_run,
            run_id,
            clock=session.driver.clock,
            timeout=timeout,
            poll_interval=poll_interval,
            poll_backoff=poll_backoff,
            max_poll_interval=max_poll_interval,
            terminal_statuses=terminal_statuses,
            max_retry_after=policy.max_retry_after,
            emit=log_poll,
        )


class AsyncWaiter(_Waiter[AsyncSession, Run]):
    """``wait_for_completion`` on an async session."""

    async def __call__(
        self,
        run_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the contract's parameter
        poll_interval: float = 1.0,
        terminal_statuses: TerminalStatuses | None = None,
        poll_backoff: float = 1.0,
        max_poll_interval: float | None = None,
        on_change: Callable[[Run], None] | None = None,
    ) -> Run:
        wait = self._wait(
            run_id, timeout, poll_interval, terminal_statuses, poll_backoff, max_poll_interval
        )
        if on_change is None:
            return (await aadvance(self._session, wait)).result
        watch = RunWatch(wait)
        async for run in AsyncItems(self._session, watch):
            on_change(run)
        return watch.terminal


class BlockingWaiter(_Waiter[BlockingSession, Run]):
    """``wait_for_completion`` on a blocking session."""

    def __call__(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        terminal_statuses: TerminalStatuses | None = None,
        poll_backoff: float = 1.0,
        max_poll_interval: float | None = None,
        on_change: Callable[[Run], None] | None = None,
    ) -> Run:
        wait = self._wait(
            run_id, timeout, poll_interval, terminal_statuses, poll_backoff, max_poll_interval
        )
        if on_change is None:
            return advance(self._session, wait).result
        watch = RunWatch(wait)
        for run in BlockingItems(self._session, watch):
            on_change(run)
        return watch.terminal


class AsyncWatcher(_Waiter[AsyncSession, Run]):
    """``watch`` on an async session."""

    def __call__(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        terminal_statuses: TerminalStatuses | None = None,
        poll_backoff: float = 1.0,
        max_poll_interval: float | None = None,
    ) -> AsyncItems[Run]:
        wait = self._wait(
            run_id, timeout, poll_interval, terminal_statuses, poll_backoff, max_poll_interval
        )
        return AsyncItems(self._session, RunWatch(wait))


class BlockingWatcher(_Waiter[BlockingSession, Run]):
    """``watch`` on a blocking session."""

    def __call__(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        terminal_statuses: TerminalStatuses | None = None,
        poll_backoff: float = 1.0,
        max_poll_interval: float | None = None,
    ) -> BlockingItems[Run]:
        wait = self._wait(
            run_id, timeout, poll_interval, terminal_statuses, poll_backoff, max_poll_interval
        )
        return BlockingItems(self._session, RunWatch(wait))


class poll_run(Generic[Run]):
    """Bind ``wait_for_completion``: poll ``get_run`` until the run is terminal.

    Polls only read; a poll's own retries and every sleep stay within ``timeout``. Returns
    the terminal run (a failed run included); raises ``KneoWaitTimeoutError`` (a
    ``TimeoutError``) when ``timeout`` elapses first. ``terminal_statuses`` is a set, list,
    tuple or iterator of statuses; a lone string such as ``"completed"`` is refused with a
    ``KneoUsageError`` before the first poll (it would iterate over its letters). Each poll
    that returns the run is logged at DEBUG on ``kneo_client.transport`` (run ID, status,
    seconds since the wait began).

    Polls back off when ``poll_backoff`` > 1: each interval is the last one times
    ``poll_backoff``, up to ``max_poll_interval`` (None: no limit but the timeout); the
    defaults keep ``poll_interval`` fixed. A poll that fails with a 429 or 503 carrying
    ``Retry-After`` after its own retries is polled again after that delay when it is
    within the retry policy's ``max_retry_after`` and ends before ``timeout``; else the
    error is raised. ``on_change(run)`` is called with the run each time its status differs
    from the last one seen (the first poll counts), the terminal run included; what it
    raises propagates.
    """

    def __init__(self, get_run: Endpoint[[str], Run]) -> None:
        self.get_run = get_run

    @overload
    def __get__(self, obj: None, owner: type) -> poll_run[Run]: ...
    @overload
    def __get__(self, obj: Namespace[AsyncMode], owner: type) -> AsyncWaiter[Run]: ...
    @overload
    def __get__(self, obj: Namespace[BlockingMode], owner: type) -> BlockingWaiter[Run]: ...
    def __get__(self, obj: Namespace[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        session = obj._session
        if isinstance(session, AsyncSession):
            return AsyncWaiter(session, self.get_run)
        return BlockingWaiter(session, self.get_run)


class watch_run(Generic[Run]):
    """Bind ``watch``: the run each time its status changes, until it is terminal.

    An iterator (``async for`` on ``KneoClient``, ``for`` on ``SyncKneoClient``) polling as
    ``wait_for_completion`` does, with the same arguments but ``on_change``: it yields the
    first polled run, then the run whenever its status differs from the last one yielded,
    and ends after yielding the terminal run. Arguments are checked when the iterator is
    made, before any poll; ``KneoWaitTimeoutError`` and poll errors are raised from the
    iteration. ``aclose()`` (``close()`` when blocking) stops it early.
    """

    def __init__(self, get_run: Endpoint[[str], Run]) -> None:
        self.get_run = get_run

    @overload
    def __get__(self, obj: None, owner: type) -> watch_run[Run]: ...
    @overload
    def __get__(self, obj: Namespace[AsyncMode], owner: type) -> AsyncWatcher[Run]: ...
    @overload
    def __get__(self, obj: Namespace[BlockingMode], owner: type) -> BlockingWatcher[Run]: ...
    def __get__(self, obj: Namespace[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        session = obj._session
        if isinstance(session, AsyncSession):
            return AsyncWatcher(session, self.get_run)
        return BlockingWatcher(session, self.get_run)
