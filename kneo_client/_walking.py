"""The loops that drive a ``kneo_proto`` walk (``ListWalk``, ``RunWait``, ``RunWatch``) over
a session.

One loop per colour, the same but for ``await``: a ``Fetch`` is one ``session.execute``, a
``Sleep`` the driver's sleep; the loop returns what the walk hands its caller (``Items`` or
``Done``) and raises a ``Failed`` walk's error. Only a ``KneoError`` is reported to the walk;
anything else (cancellation, an interrupt) abandons the walk and propagates.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Generic, Protocol, TypeVar

from kneo_client._session import AsyncSession, BlockingSession
from kneo_proto import Done, Failed, Fetch, Items, KneoError, RunPolled, Sleep, Walk

__all__ = ["AsyncItems", "BlockingItems", "ItemWalk", "aadvance", "advance", "log_poll"]

R = TypeVar("R")
H = TypeVar("H", bound=Items[Any] | Done[Any])
T = TypeVar("T")


class ItemWalk(Walk[Any, Items[T] | Done[Any]], Protocol[T]):
    """A walk that hands out items and can stop early: ``ListWalk``, ``RunWatch``."""

    def close(self) -> None:
        """Stop early: nothing further is fetched or handed out."""
        ...


async def aadvance(session: AsyncSession, walk: Walk[R, H]) -> H:
    """Drive ``walk`` until it hands out items or ends; raise its error if it fails."""
    while True:
        action = walk.next_action()
        if isinstance(action, Fetch):
            try:
                finished = await session.execute(action.operation, action.options)
            except KneoError as error:
                walk.receive_error(error)
            except BaseException:
                walk.abandon()
                raise
            else:
                walk.receive(finished)
        elif isinstance(action, Sleep):
            await session.driver.asleep(action.seconds)
        elif isinstance(action, Failed):
            raise action.error
        else:
            return action


def advance(session: BlockingSession, walk: Walk[R, H]) -> H:
    """Drive ``walk`` until it hands out items or ends; raise its error if it fails."""
    while True:
        action = walk.next_action()
        if isinstance(action, Fetch):
            try:
                finished = session.execute(action.operation, action.options)
            except KneoError as error:
                walk.receive_error(error)
            except BaseException:
                walk.abandon()
                raise
            else:
                walk.receive(finished)
        elif isinstance(action, Sleep):
            session.driver.sleep(action.seconds)
        elif isinstance(action, Failed):
            raise action.error
        else:
            return action


class AsyncItems(Generic[T]):
    """Every item a walk hands out, as an async iterator: a list's items, one page in memory
    at a time, or a watched run at each change of its status.

    A class rather than an async generator: leaving an ``async for`` early must not leave a
    suspended generator for the garbage collector (trio warns about those).
    """

    def __init__(self, session: AsyncSession, walk: ItemWalk[T]) -> None:
        self._session = session
        self._walk = walk
        self._page: deque[T] = deque()

    def __aiter__(self) -> AsyncItems[T]:
        return self

    def __iter__(self) -> None:
        """Refuse a plain ``for``, saying what works instead.

        Raises:
            TypeError: always; mypy also refuses the ``for``, as this returns no iterator.
        """
        raise TypeError(
            "this iterator is async: use 'async for item in ...' inside an async function, "
            "or SyncKneoClient for a plain 'for'"
        )

    async def __anext__(self) -> T:
        while not self._page:
            handed = await aadvance(self._session, self._walk)
            if isinstance(handed, Done):
                raise StopAsyncIteration
            self._page = deque(handed.items)
        return self._page.popleft()

    async def aclose(self) -> None:
        """Stop early: no further page is fetched (no further poll made)."""
        self._page.clear()
        self._walk.close()


class BlockingItems(Generic[T]):
    """Every item a walk hands out, as an iterator: a list's items, one page in memory at a
    time, or a watched run at each change of its status.
    """

    def __init__(self, session: BlockingSession, walk: ItemWalk[T]) -> None:
        self._session = session
        self._walk = walk
        self._page: deque[T] = deque()

    def __iter__(self) -> BlockingItems[T]:
        return self

    def __next__(self) -> T:
        while not self._page:
            handed = advance(self._session, self._walk)
            if isinstance(handed, Done):
                raise StopIteration
            self._page = deque(handed.items)
        return self._page.popleft()

    def close(self) -> None:
        """Stop early: no further page is fetched (no further poll made)."""
        self._page.clear()
        self._walk.close()


def log_poll(polled: RunPolled) -> None:
    """Write one DEBUG line on ``kneo_client.transport`` for a poll of ``wait_for_completion``."""
    import logging  # here, not at the top: importing kneo_client must stay cheap

    logging.getLogger("kneo_client.transport").debug(
        "waiting for run %s: status=%s after %.1f s", polled.run_id, polled.status, polled.elapsed
    )
