"""Offset pagination: ``PaginatedResult`` and ``PageWalk``, the pure machine behind it.

Invariants: a walk asks for pages of at most ``MAX_PAGE_SIZE`` items, advances by the number
of items each page really held, and stops when the server says nothing is left. It never
loops: an empty page while the server still promises more raises ``KneoPaginationError``.
A page that leaves out its paging fields (ADR 0011) is read with the limit and offset that
were asked for, and without a ``total`` the walk goes on while pages come back full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kneo_proto._errors import KneoPaginationError, KneoUsageError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "PageWalk",
    "PaginatedResult",
    "page_of",
    "read_page",
]

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(slots=True)
class PaginatedResult(Generic[T]):
    """One page of a list endpoint.

    Attributes:
        items: Items on this page.
        total: Total items across all pages, as reported by the server (when the server
            leaves it out, ``offset + count``, plus one when the page was full).
        limit: Page size requested.
        offset: Offset of the first item on this page.
        sort_by: Sort field, if reported by the server.
        sort_order: ``"asc"`` or ``"desc"``, if reported by the server.
    """

    items: list[T]
    total: int
    limit: int
    offset: int
    sort_by: str | None = None
    sort_order: str | None = None

    @property
    def count(self) -> int:
        """``len(items)``."""
        return len(self.items)

    @property
    def has_more(self) -> bool:
        """True when items remain after this page: ``offset + count < total``."""
        return self.offset + self.count < self.total


def page_of(
    response: Any, items_field: str, *, limit: int | None = None, offset: int | None = None
) -> PaginatedResult[Any]:
    """Return a list response model (``RunListResponse``, ...) as a ``PaginatedResult``.

    Args:
        response: The decoded list response.
        items_field: The response field holding the items.
        limit: The page size asked for; used when the response leaves ``limit`` out.
        offset: The offset asked for; used when the response leaves ``offset`` out.

    A response without ``total`` gets ``offset + count``, plus one when the page came back
    full: a walk then asks for one more page, and stops at the first one that is not full.
    """
    return read_page(response, list(getattr(response, items_field)), limit=limit, offset=offset)


def read_page(
    response: Any, items: list[T], *, limit: int | None = None, offset: int | None = None
) -> PaginatedResult[T]:
    """``page_of`` for items already read from ``response`` (by ``Route.items_of``)."""
    page_limit = _number(getattr(response, "limit", None)) or limit or len(items)
    page_offset = _number(getattr(response, "offset", None))
    if page_offset is None:
        page_offset = offset or 0
    total = _number(getattr(response, "total", None))
    if total is None:
        total = page_offset + len(items) + (1 if items and len(items) >= page_limit else 0)
    return PaginatedResult(
        items=items,
        total=total,
        limit=page_limit,
        offset=page_offset,
        sort_by=_text(getattr(response, "sort_by", None)),
        sort_order=_text(getattr(response, "sort_order", None)),
    )


def _number(value: object) -> int | None:
    """``value`` when the platform sent a count, else None (left out, null or not a count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class PageWalk:
    """Which page to fetch next, from pages seen so far.

    Args:
        page_size: Items per page; clamped to [1, ``MAX_PAGE_SIZE``].
        start_offset: Offset of the first item wanted.
        max_pages: Stop after this many pages (None for no limit).
    """

    __slots__ = ("done", "max_pages", "offset", "page_size", "pages")

    def __init__(
        self,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        start_offset: int = 0,
        max_pages: int | None = None,
    ) -> None:
        if start_offset < 0:
            raise KneoUsageError("start_offset must be >= 0")
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.offset = start_offset
        self.max_pages = max_pages
        self.pages = 0
        self.done = False

    def next_page(self) -> tuple[int, int] | None:
        """Return ``(limit, offset)`` of the next page to fetch, or None when done."""
        if self.done or (self.max_pages is not None and self.pages >= self.max_pages):
            return None
        return (self.page_size, self.offset)

    def receive_page(self, page: PaginatedResult[Any]) -> None:
        """Record a fetched page and decide whether another is needed."""
        self.pages += 1
        if page.count == 0 and page.has_more:
            raise KneoPaginationError(
                f"the server returned an empty page at offset {page.offset} while reporting "
                f"{page.total} items in total"
            )
        if page.has_more and page.offset != self.offset:
            # A server (or proxy) that ignores the offset would make the walk repeat itself.
            raise KneoPaginationError(
                f"the server returned the page at offset {page.offset} when offset "
                f"{self.offset} was asked for"
            )
        self.offset = page.offset + page.count
        self.done = not page.has_more or page.count == 0
