"""Pagination: ``PaginatedResult`` and ``iterate_all`` over any page-fetching function.

The list namespaces also offer typed iterators directly, e.g.
``async for run in client.platform.runs.iter_all(status="failed")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from kneo_proto import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageWalk, PaginatedResult

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "PaginatedResult", "iterate_all"]

T = TypeVar("T")


async def iterate_all(
    fetch_page: Callable[[int, int], Awaitable[PaginatedResult[T]]],
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    start_offset: int = 0,
) -> AsyncIterator[T]:
    """Yield every item across pages; ``fetch_page(limit, offset)`` returns one page.

    ``page_size`` is clamped to ``MAX_PAGE_SIZE`` (1000). One page is held at a time.

    Raises:
        KneoPaginationError: if the server returns an empty page while promising more.
    """
    walk = PageWalk(page_size=page_size, start_offset=start_offset)
    while (page_request := walk.next_page()) is not None:
        page = await fetch_page(*page_request)
        walk.receive_page(page)
        for item in page.items:
            yield item
