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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, overload

from kneo_client._session import AsyncSession, BlockingSession
from kneo_proto import (
    DEFAULT_PAGE_SIZE,
    CallOptions,
    Endpoint,
    FetchStatus,
    Finished,
    KneoError,
    PageWalk,
    RunDone,
    RunPoll,
    Sleep,
    TerminalStatuses,
    page_of,
)
from kneo_proto._operation import check_page

__all__ = [
    "ApiResponse",
    "AsyncMode",
    "BlockingMode",
    "Namespace",
    "bind",
    "paginate",
    "poll_run",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class AsyncMode:
    """Marks a namespace bound to an ``AsyncSession``."""


class BlockingMode:
    """Marks a namespace bound to a ``BlockingSession``."""


M = TypeVar("M", AsyncMode, BlockingMode)


class Namespace(Generic[M]):
    """A group of bound endpoints sharing one session."""

    def __init__(self, session: AsyncSession | BlockingSession) -> None:
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


class _AsyncItems(Generic[T]):
    """Every item of a list endpoint, one page in memory at a time, as an async iterator.

    A class rather than an async generator: leaving an ``async for`` early must not leave a
    suspended generator for the garbage collector (trio warns about those).
    """

    def __init__(
        self,
        session: AsyncSession,
        endpoint: Endpoint[Any, Any],
        args: Any,
        kwargs: dict[str, Any],
    ) -> None:
        self._session = session
        self._endpoint = endpoint
        self._args = args
        self._kwargs = kwargs
        self._walk = _walk(kwargs)
        self._items: Iterator[T] = iter(())

    def __aiter__(self) -> _AsyncItems[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            item = next(self._items, _NO_ITEM)
            if item is not _NO_ITEM:
                return item  # type: ignore[return-value]
            self._items = iter(())  # hold one page, not two, while the next one is fetched
            page_request = self._walk.next_page()
            if page_request is None:
                raise StopAsyncIteration
            limit, offset = page_request
            operation = self._endpoint(*self._args, limit=limit, offset=offset, **self._kwargs)
            finished = await self._session.execute(operation)
            self._items = iter(_page_items(self._walk, finished, self._endpoint))

    async def aclose(self) -> None:
        """Stop early: no further page is fetched."""
        self._items = iter(())
        self._walk.done = True


_NO_ITEM = object()


def _iterate_blocking(
    session: BlockingSession,
    endpoint: Endpoint[Any, Any],
    args: Any,
    kwargs: dict[str, Any],
    walk: PageWalk,
) -> Iterator[Any]:
    while (page_request := walk.next_page()) is not None:
        limit, offset = page_request
        finished = session.execute(endpoint(*args, limit=limit, offset=offset, **kwargs))
        items = _page_items(walk, finished, endpoint)
        del finished  # hold one page, not two, while the next one is fetched and decoded
        yield from items
        del items


def _page_items(walk: PageWalk, finished: Finished[Any], endpoint: Endpoint[Any, Any]) -> Any:
    page = page_of(
        finished.result,
        endpoint.route.items_field or "items",
        limit=walk.page_size,
        offset=walk.offset,
    )
    walk.receive_page(page)
    return page.items


def _walk(kwargs: dict[str, Any]) -> PageWalk:
    """The walk for an iterator's ``limit`` (page size) and ``offset``, checked as the list
    endpoint checks them: a ``KneoUsageError`` when the iterator is made, before any request.
    """
    limit, offset = kwargs.pop("limit", DEFAULT_PAGE_SIZE), kwargs.pop("offset", 0)
    check_page(limit, offset)
    return PageWalk(page_size=limit, start_offset=offset)


class AsyncPager(Generic[P, T]):
    """Iterates every item of a list endpoint: ``async for item in pager(...)``."""

    def __init__(self, session: AsyncSession, endpoint: Endpoint[P, Any]) -> None:
        self._session = session
        self._endpoint = endpoint

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return _AsyncItems(self._session, self._endpoint, args, dict(kwargs))


class BlockingPager(Generic[P, T]):
    """Iterates every item of a list endpoint: ``for item in pager(...)``."""

    def __init__(self, session: BlockingSession, endpoint: Endpoint[P, Any]) -> None:
        self._session = session
        self._endpoint = endpoint

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        arguments = dict(kwargs)
        walk = _walk(arguments)  # here, not in the generator: misuse raises at once
        return _iterate_blocking(self._session, self._endpoint, args, arguments, walk)


class paginate(Generic[P, T]):
    """Bind a list endpoint as an iterator over every item of every page.

    The iterator takes the list endpoint's arguments; ``limit`` is the page size and
    ``offset`` the first item, checked as the list endpoint checks them (``limit`` 1 to 1000,
    ``offset`` >= 0; else ``KneoUsageError`` when the iterator is made, before any request).
    It holds one page in memory at a time.
    """

    def __init__(self, endpoint: Endpoint[P, Any], item: type[T]) -> None:
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


class AsyncWaiter(Generic[R]):
    """``wait_for_completion`` on an async session."""

    def __init__(self, session: AsyncSession, get_run: Endpoint[[str], R]) -> None:
        self._session = session
        self._get_run = get_run

    async def __call__(
        self,
        run_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the contract's parameter
        poll_interval: float = 1.0,
        terminal_statuses: TerminalStatuses | None = None,
    ) -> R:
        poll = RunPoll(
            run_id,
            clock=self._session.driver.clock,
            timeout=timeout,
            poll_interval=poll_interval,
            terminal_statuses=terminal_statuses,
        )
        while True:
            action = poll.next_action()
            if isinstance(action, FetchStatus):
                options = _poll_options(action)
                try:
                    poll.receive_status(
                        (await self._session.execute(self._get_run(run_id), options)).result
                    )
                except KneoError as error:
                    poll.receive_error(error)
            elif isinstance(action, Sleep):
                await self._session.driver.asleep(action.seconds)
            elif isinstance(action, RunDone):
                return action.run  # type: ignore[no-any-return]
            else:
                raise action.error


class BlockingWaiter(Generic[R]):
    """``wait_for_completion`` on a blocking session."""

    def __init__(self, session: BlockingSession, get_run: Endpoint[[str], R]) -> None:
        self._session = session
        self._get_run = get_run

    def __call__(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        terminal_statuses: TerminalStatuses | None = None,
    ) -> R:
        poll = RunPoll(
            run_id,
            clock=self._session.driver.clock,
            timeout=timeout,
            poll_interval=poll_interval,
            terminal_statuses=terminal_statuses,
        )
        while True:
            action = poll.next_action()
            if isinstance(action, FetchStatus):
                options = _poll_options(action)
                try:
                    poll.receive_status(
                        self._session.execute(self._get_run(run_id), options).result
                    )
                except KneoError as error:
                    poll.receive_error(error)
            elif isinstance(action, Sleep):
                self._session.driver.sleep(action.seconds)
            elif isinstance(action, RunDone):
                return action.run  # type: ignore[no-any-return]
            else:
                raise action.error


def _poll_options(fetch: FetchStatus) -> CallOptions | None:
    """A poll's own retries must end by the wait's deadline, when it has one."""
    return None if fetch.deadline is None else CallOptions(deadline=fetch.deadline)


class poll_run(Generic[R]):
    """Bind ``wait_for_completion``: poll ``get_run`` until the run is terminal.

    Polls only read; a poll's own retries and every sleep stay within ``timeout``. Returns
    the terminal run (a failed run included); raises ``KneoWaitTimeoutError`` (a
    ``TimeoutError``) when ``timeout`` elapses first. ``terminal_statuses`` is a set, list,
    tuple or iterator of statuses; a lone string such as ``"completed"`` is refused with a
    ``KneoUsageError`` before the first poll (it would iterate over its letters).
    """

    def __init__(self, get_run: Endpoint[[str], R]) -> None:
        self.get_run = get_run

    @overload
    def __get__(self, obj: None, owner: type) -> poll_run[R]: ...
    @overload
    def __get__(self, obj: Namespace[AsyncMode], owner: type) -> AsyncWaiter[R]: ...
    @overload
    def __get__(self, obj: Namespace[BlockingMode], owner: type) -> BlockingWaiter[R]: ...
    def __get__(self, obj: Namespace[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        session = obj._session
        if isinstance(session, AsyncSession):
            return AsyncWaiter(session, self.get_run)
        return BlockingWaiter(session, self.get_run)
